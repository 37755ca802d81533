"""What a tape is told to watch with ``tape.watch(...)``."""

from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradfix.static.analysis import GradientCall, ModuleAnalysis, names_read
from gradfix.static.bindings import values_of
from gradfix.static.names import dotted
from gradfix.static.tree import walk


def watch_calls(analysis: ModuleAnalysis, call: GradientCall, in_block: bool = False) -> Iterator[cst.Call]:
    """The ``tape.watch(...)`` calls of the gradient's tape in its scope; with ``in_block``, only those inside
    the ``with`` block that made the tape, when it is known (a notebook's other cells reuse the name ``tape``)."""
    root = call.tape.node if in_block and call.tape is not None else call.scope
    for candidate in walk(root, cst.Call):
        func = candidate.func
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value == "watch"
            and isinstance(func.value, cst.Name)
            and func.value.value == call.tape_name
        ):
            yield candidate


def is_watched(analysis: ModuleAnalysis, call: GradientCall, name: str, in_block: bool = False) -> bool:
    """Whether the gradient's tape is told to watch ``name`` (or a list that may hold it, or something gradfix cannot tell)."""
    for watch in watch_calls(analysis, call, in_block):
        if not watch.args:
            continue
        argument = watch.args[0].value
        if name in names_read(argument) or any(dotted(a) == name for a in walk(argument, cst.Attribute)):
            return True
        if isinstance(argument, cst.Name):
            values = values_of(analysis, argument)
            if values is None or any(name in names_read(v) for v in values):
                return True  # watched through a list made elsewhere, or we cannot tell
        elif not isinstance(argument, (cst.List, cst.Tuple, cst.Attribute)):
            return True
    return False
