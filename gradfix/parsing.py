"""LibCST's parse of a text CPython has accepted, without LibCST's check of each node as it is made.

Every LibCST node checks its own fields when it is made (``CSTNode._validate``: parentheses that pair, the
whitespace a keyword needs, ...). Those checks are for trees built by hand; a tree LibCST's own parser builds from
source text is valid by construction, and checking its nodes one by one is an eighth to a fifth of the parse
(``bench/README.md``). LibCST's authors note the same (``PERF`` in ``CSTNode.__post_init__``).

The check is skipped only for the nodes the parser makes in the thread that asked for the parse: nodes that
transforms build, in any thread, are checked as before.
"""

from __future__ import annotations

import threading

import libcst as cst
from libcst import CSTNode

_this_thread = threading.local()
_checked_post_init = getattr(CSTNode, "__post_init__", None)


def _post_init(self: CSTNode) -> None:
    if not getattr(_this_thread, "parsing", False):
        _checked_post_init(self)  # type: ignore[misc]  # installed only where it is LibCST's check


def _install() -> None:
    # only where the check is where this LibCST keeps it, and no node class checks itself in a ``__post_init__``
    # of its own (a later LibCST might): elsewhere nodes are checked as LibCST checks them
    if _checked_post_init is not None and hasattr(CSTNode, "_validate") and not any(
            "__post_init__" in vars(kind) for kind in _node_classes()):
        CSTNode.__post_init__ = _post_init  # type: ignore[method-assign]


def _node_classes() -> list[type]:
    found, stack = [], [CSTNode]
    while stack:
        kind = stack.pop()
        for sub in kind.__subclasses__():
            found.append(sub)
            stack.append(sub)
    return found


def parse_module(text: str) -> cst.Module:
    """``libcst.parse_module(text)``, its nodes unchecked; raises what it raises."""
    _this_thread.parsing = True
    try:
        return cst.parse_module(text)
    finally:
        _this_thread.parsing = False


_install()
