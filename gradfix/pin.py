"""Pinning a run's cut to the LibCST nodes a repair operator rewrites.

The run names the cut by its op type and, where the interpreter gives columns, the exact source
range of the user's expression that made it (``RepairSite.pinned_node``). The pinned nodes are
those inside that expression that the operator recognises as that op, whatever their spelling;
without a range (Python 3.10, or a text that changed since the run), those of the statement at
the cut's line. This is the one place that turns a cut into nodes.
"""

from __future__ import annotations

import os

import libcst as cst

from gradfix.categories import NOT_TRAINABLE
from gradfix.static.tree import walk


def cut_lines(cause) -> list[int]:
    """The lines the run places the cut on: the cut op's own, then the break statement's, then, for an
    integer variable, where it was made."""
    lines = [(cause.cut or {}).get("line"), cause.site.line if cause.site is not None else None]
    if cause.category == NOT_TRAINABLE:
        lines.extend(_integer_variables_made(cause))
    return [line for line in dict.fromkeys(lines) if line]


def _integer_variables_made(cause) -> list[int]:
    """Where the trainable variables of an integer-or-non-trainable cause were made, in the break's file.

    Such a variable is integer, and its dtype is the cut: it is set where the variable is made, not where
    the gradient is asked for. A non-trainable one is left out: its flag is its author's decision."""
    where = cause.site if cause.site is not None else cause.call.where if cause.call is not None else None
    if where is None or not where.file:
        return []
    return [v.created_at.line for v in cause.variables
            if v.trainable is not False and v.created_at is not None and v.created_at.line
            and os.path.abspath(v.created_at.file or "") == os.path.abspath(where.file)]


def pinned_nodes(context, operator, lines: list[int], op: str, expression: cst.CSTNode | None = None) -> list[cst.CSTNode]:
    """The nodes ``operator`` rewrites for a cut of op type ``op``: within the run's ``expression`` when there
    is one and it holds such a node, else on ``lines``; in source order, each once."""
    if expression is not None:
        # the expression itself, what it holds, and what holds it (``one_hot(argmax(p))`` around ``argmax(p)``)
        around = set(map(id, context.ancestors(expression)))
        inside = set(map(id, walk(expression, cst.CSTNode)))
        statement = context.statement_of(expression)
        related = [node for node in walk(statement, cst.CSTNode)
                   if (id(node) in inside or id(node) in around) and operator.pins(node, context, op)]
        if related:
            return related
    found: list[cst.CSTNode] = []
    for line in lines:
        statement = context.statement_at(line)
        if statement is None:
            continue
        for node in walk(statement, cst.CSTNode):
            if all(node is not other for other in found) and operator.pins(node, context, op):
                found.append(node)
    return found
