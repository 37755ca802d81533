"""What a gradient's ``sources`` expression asks for.

A *source* is a dotted name whose variables the gradient is asked for: a model
or layer (``model`` for ``model.trainable_variables``) or a variable itself
(``w``, ``self.w``). :func:`resolve_sources` reads a ``sources`` expression into
its sources; :func:`source_elements` only splits it into the expressions it
lists, without asking what they belong to.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from gradfix.static.analysis import CODE_SCOPE, ModuleAnalysis, Statement, assigned_value
from gradfix.static.api import ALL_VARIABLE_LISTS, VARIABLE_LISTS, VARIABLE_MAKERS
from gradfix.static.bindings import values_of
from gradfix.static.names import copied_iterable, dotted


@dataclass(frozen=True)
class Source:
    """One thing a gradient's sources belong to: a model or layer (``model``, ``self.generator``) or a variable (``w``)."""

    name: str  # dotted, e.g. "model", "self.generator", "w"
    is_variable: bool  # True when the source is the variable itself rather than a model's variable list


def resolve_sources(analysis: ModuleAnalysis, sources: cst.BaseExpression | None, scope: CODE_SCOPE,
                    at: Statement | None = None, *, partial: bool = False) -> list[Source] | None:
    """The sources a ``sources`` expression lists, read at statement ``at`` (by default where it is written).

    Reads lists, tuples, ``+``, copies (``list(xs)``, ``[v for v in xs]``),
    ``model.trainable_variables`` and the like, and a name bound once to one of
    these; a name bound to ``tf.Variable(...)``, or read otherwise, is the variable.

    By default the answer is exact: None when any part cannot be told. With
    ``partial`` it is as much as can be told: parts that cannot be told are left
    out, a name whose value cannot be told stands for itself, and indexes and
    ``.layers`` are read through (``model.layers[0].trainable_variables`` is ``model``'s).
    """
    return _resolve(analysis, sources, scope, at, partial, 0)


def _resolve(analysis: ModuleAnalysis, sources: cst.BaseExpression | None, scope: CODE_SCOPE,
             at: Statement | None, partial: bool, depth: int) -> list[Source] | None:
    if sources is None or depth > 4:
        return None
    if isinstance(sources, (cst.List, cst.Tuple)):
        found: list[Source] = []
        for element in sources.elements:
            inner = _resolve(analysis, element.value, scope, at, partial, depth + 1)
            if inner is None and not partial:
                return None
            found.extend(inner or ())
        return found
    if isinstance(sources, cst.BinaryOperation) and isinstance(sources.operator, cst.Add):
        left = _resolve(analysis, sources.left, scope, at, partial, depth + 1)
        right = _resolve(analysis, sources.right, scope, at, partial, depth + 1)
        if partial:
            return (left or []) + (right or [])
        return None if left is None or right is None else left + right
    if isinstance(sources, cst.StarredElement):
        return _resolve(analysis, sources.value, scope, at, partial, depth + 1)
    copied = copied_iterable(sources)
    if copied is not None:
        return _resolve(analysis, copied, scope, at, partial, depth + 1)
    node, listed = _listed_by(sources, partial)
    name = dotted(node)
    if name is None:
        return None
    if listed:
        return [Source(name, False)]
    if isinstance(node, cst.Name):
        statement = at if at is not None else analysis.statement_index(node)
        if statement is not None:
            definitions = analysis.reaching_definitions(node.value, statement, scope)
            if len(definitions) == 1:
                value = assigned_value(definitions[0].node, node.value)
                if value is not None and not analysis.is_call_to(value, *VARIABLE_MAKERS):
                    followed = _resolve(analysis, value, scope, definitions[0], partial, depth + 1)
                    if followed or not partial:
                        return followed
    return [Source(name, True)]


def _listed_by(sources: cst.BaseExpression, partial: bool) -> tuple[cst.BaseExpression, bool]:
    """The source a variable list belongs to (``model`` for ``model.trainable_variables``), and whether ``sources`` is such a list."""
    if not partial:
        if isinstance(sources, cst.Attribute) and sources.attr.value in VARIABLE_LISTS:
            return sources.value, True
        return sources, False
    node, listed = sources, False
    while isinstance(node, cst.Subscript) or (
        isinstance(node, cst.Attribute) and (node.attr.value in ALL_VARIABLE_LISTS or node.attr.value == "layers")
    ):
        node, listed = node.value, True
    return node, listed


def source_elements(analysis: ModuleAnalysis, sources: cst.BaseExpression, depth: int = 2) -> list[cst.BaseExpression]:
    """The expressions a sources expression lists: elements of lists and tuples, operands of ``+``,
    and, up to ``depth`` names deep, what a name holding such a list was assigned."""
    if isinstance(sources, (cst.List, cst.Tuple)):
        parts: list[cst.BaseExpression] = []
        for element in sources.elements:
            parts.extend(source_elements(analysis, element.value, depth))
        return parts
    if isinstance(sources, cst.BinaryOperation) and isinstance(sources.operator, cst.Add):
        return source_elements(analysis, sources.left, depth) + source_elements(analysis, sources.right, depth)
    if isinstance(sources, cst.Name) and depth > 0:
        values = values_of(analysis, sources)
        if values and len(values) == 1 and isinstance(values[0], (cst.List, cst.Tuple, cst.BinaryOperation)):
            return source_elements(analysis, values[0], depth - 1)
    return [sources]
