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
    own_block = call.tape.node if call.tape is not None else None
    for candidate in walk(root, cst.Call):
        func = candidate.func
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value == "watch"
            and isinstance(func.value, cst.Name)
            and func.value.value == call.tape_name
            and not _in_another_tape_block(analysis, candidate, call.tape_name, own_block)
        ):
            yield candidate


def _in_another_tape_block(analysis: ModuleAnalysis, node: cst.CSTNode, name: str, own_block: cst.CSTNode | None) -> bool:
    """Whether ``node`` lies in a ``with ... as name:`` block other than the gradient's own: there ``name`` is
    another tape (a script or a notebook that opens one tape after another under the same name)."""
    for ancestor in analysis.ancestors(node):
        if ancestor is own_block:
            return False
        if isinstance(ancestor, cst.With) and any(
                item.asname is not None and isinstance(item.asname.name, cst.Name) and item.asname.name.value == name
                for item in ancestor.items):
            return True
    return False


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
