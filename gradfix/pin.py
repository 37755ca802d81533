"""Pinning a run's cut to the LibCST nodes a repair operator rewrites.

The run names the cut by its op type and the line of the user's code that made it; the pinned
nodes are those of the statement at that line that the operator recognises as that op, whatever
their spelling. This is the one place that turns a cut into nodes: when the run records the exact
source span of the cut expression, it is pinned here by that span instead.
"""

from __future__ import annotations

import libcst as cst

from gradfix.static.tree import walk


def cut_lines(cause) -> list[int]:
    """The lines the run places the cut on: the cut op's own, then the break statement's."""
    lines = [(cause.cut or {}).get("line"), cause.site.line if cause.site is not None else None]
    return [line for line in dict.fromkeys(lines) if line]


def pinned_nodes(context, operator, lines: list[int], op: str) -> list[cst.CSTNode]:
    """The nodes ``operator`` rewrites for a cut of op type ``op`` on ``lines``, in source order, each once."""
    found: list[cst.CSTNode] = []
    for line in lines:
        statement = context.statement_at(line)
        if statement is None:
            continue
        for node in walk(statement, cst.CSTNode):
            if all(node is not other for other in found) and operator.pins(node, context, op):
                found.append(node)
    return found
