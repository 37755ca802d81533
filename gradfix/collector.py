"""Python's cyclic garbage collector held off while a file is analysed.

An analysis builds a file's trees (LibCST's nodes, the index of them, the rules' facts), and nearly every
object it makes lives until the analysis ends. The collector, triggered by the count of objects made, would
scan them again and again only to find them alive: on real training scripts that was a third of
``gradfix check``'s time (``bench/README.md``). What an analysis leaves is freed by reference counting when it
ends; the few cycles among it are collected once the collector runs again, after the file.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from typing import Iterator

_lock = threading.Lock()
_holders = [0]  # analyses running with the collector held off (threads may overlap)
_was_enabled = [False]


@contextlib.contextmanager
def collector_held_off() -> Iterator[None]:
    """Hold the collector off for the block; it runs again as before once no such block is running."""
    with _lock:
        if _holders[0] == 0:
            _was_enabled[0] = gc.isenabled()
            gc.disable()
        _holders[0] += 1
    try:
        yield
    finally:
        with _lock:
            _holders[0] -= 1
            if _holders[0] == 0 and _was_enabled[0]:
                gc.enable()
