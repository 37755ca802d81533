"""The expression a run pinned a cut to, as the LibCST node that spells it: what a repair rewrites.

The run gives the cut's source range (``gradfix.runtime.facts.Expression``). Where it is exact, the node is
the expression with that very range in the file's tree (PositionProvider); where the interpreter gave only
the line (Python 3.10), it is the one expression on that line that spells the op, conversion or update the
run saw (``gradfix.static.api.OP_SPELLINGS``), and none when the line holds no such expression or several.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import libcst as cst
from libcst.metadata import CodeRange

from gradfix.lazy import lazy_module
from gradfix.runtime.facts import Expression
from gradfix.static.api import CONVERSION_SPELLINGS, NUMPY_RESULT_METHODS, OP_SPELLINGS

if TYPE_CHECKING:
    import libcst.matchers as m
else:
    m = lazy_module("libcst.matchers")  # see gradfix.lazy


def pinned_node(positions: Mapping[cst.CSTNode, CodeRange], expression: Expression,
                cut: Mapping | None = None) -> cst.BaseExpression | None:
    """The node of the expression that cut the path, in a tree whose ``positions`` PositionProvider resolved."""
    if expression.exact:
        assert expression.column is not None and expression.end_column is not None, "an exact range has columns"
        wanted = (expression.line, expression.column - 1, expression.end_line, expression.end_column - 1)
        found = [node for node, where in positions.items() if isinstance(node, cst.BaseExpression)
                 and (where.start.line, where.start.column, where.end.line, where.end.column) == wanted]
        # the outermost of nodes sharing one range: PositionProvider lists children before their parents
        return found[-1] if found else None
    names, operators = spellings(cut or {})
    if not names and not operators:
        return None
    found = [node for node, where in positions.items() if where.start.line == expression.line
             and isinstance(node, cst.BaseExpression) and spells(node, names, operators)]
    return found[0] if len(found) == 1 else None


def spellings(cut: Mapping) -> tuple[set[str], tuple[type, ...]]:
    """The function or method names and the operator classes that can make what the run saw cut the path."""
    if cut.get("kind") == "numpy-conversion" or (cut.get("how") and not cut.get("op")):
        how = cut.get("how") or ""
        names = set().union(*(found for start, found in CONVERSION_SPELLINGS.items() if how.startswith(start)))
        return names | NUMPY_RESULT_METHODS, ()
    if cut.get("kind") == "state-update":
        return ({cut["method"]}, ()) if cut.get("method") else (set(), ())
    names, operators = OP_SPELLINGS.get(cut.get("op") or "", (set(), ()))
    return set(names), tuple(operators)


def spells(node: cst.CSTNode, names: set[str], operators: tuple[type, ...]) -> bool:
    """Is ``node`` a call of one of ``names`` (a function, ``module.function`` or a method) or one of ``operators``?"""
    named = m.Name(value=m.MatchIfTrue(lambda value: value in names))
    # Any: one matcher serves the binary, unary and comparison operators, which LibCST's matchers type apart
    operator: m.MatchIfTrue[Any] = m.MatchIfTrue(lambda found: isinstance(found, operators))
    return m.matches(node, m.Call(func=named | m.Attribute(attr=named))
                     | m.BinaryOperation(operator=operator) | m.UnaryOperation(operator=operator)
                     | m.Comparison(comparisons=[m.ComparisonTarget(operator=operator)]))
