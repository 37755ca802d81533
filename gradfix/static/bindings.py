"""What a name or ``self`` attribute holds where it is read: the values bound to it.

Shared by the rules that ask what kind of thing a gradient source is (a
variable, a plain tensor, a frozen layer): they follow a name back to the
assignments, loop headers and parameters that bind it, in the function that
reads it and then in the module.
"""

from __future__ import annotations

from typing import Iterator, TypeGuard

import libcst as cst

from gradfix.static.analysis import CODE_SCOPE, Binding, ModuleAnalysis, bindings_in, children, names_read
from gradfix.static.api import PARAMETER_POSITIONS
from gradfix.static.tree import walk


def bindings(analysis: ModuleAnalysis, name: str, at: cst.CSTNode) -> list[Binding]:
    """The bindings of ``name`` that can reach ``at``: in its function first, else its parameters, else the module."""
    scope = analysis.scope_of(at)
    found: list[Binding] = []
    statement = analysis.statement_index(at)
    if statement is not None:
        for definition in analysis.reaching_definitions(name, statement, scope):
            found.extend(bindings_in(definition.node, name))
    if found:
        return found
    if isinstance(scope, cst.FunctionDef):
        for param in _params(scope):
            if param.name.value == name:
                return [Binding("param", scope, function=scope, param=param)]
        declared_global = _declares_global(scope, name)
        if not declared_global and any(name in s.assigned for s in analysis.statements(scope)):
            return []  # bound only later in the function (or in a loop): too unclear to follow
        for module_statement in analysis.statements(analysis.module):
            if name in module_statement.assigned:
                found.extend(bindings_in(module_statement.node, name))
        if declared_global:
            # the function's own assignments rebind the module's name: a later call reads what they left
            found.extend(ever_bound_in_scope(analysis, name, scope))
    return found


def _declares_global(function: cst.FunctionDef, name: str) -> bool:
    """Whether ``function`` itself (not a function nested in it) says ``global name``."""
    if not any(item.name.value == name for node in walk(function.body, cst.Global) for item in node.names):
        return False  # the index answers most asks: no function under it says so either
    stack: list[cst.CSTNode] = [function.body]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Global) and any(item.name.value == name for item in node.names):
            return True
        if not isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            stack.extend(children(node))
    return False


def ever_bound_in_scope(analysis: ModuleAnalysis, name: str, scope: CODE_SCOPE) -> list[Binding]:
    """Every binding of ``name`` anywhere in ``scope`` (not only those reaching a point)."""
    found: list[Binding] = []
    for statement in analysis.statements(scope):
        if name in statement.assigned:
            found.extend(bindings_in(statement.node, name))
    return found


def _params(function: cst.FunctionDef) -> Iterator[cst.Param]:
    parameters = function.params
    yield from parameters.posonly_params
    yield from parameters.params
    yield from parameters.kwonly_params


def self_attribute_values(analysis: ModuleAnalysis, class_node: cst.ClassDef, attribute: str) -> list[cst.BaseExpression]:
    """The values assigned to ``self.<attribute>`` in the methods of a class."""
    values = []
    for assign in walk(class_node, cst.Assign):
        for target in assign.targets:
            if _is_self_attribute(target.target, attribute):
                values.append(assign.value)
    return values


def _is_self_attribute(node: cst.CSTNode, attribute: str | None = None) -> TypeGuard[cst.Attribute]:
    return (
        isinstance(node, cst.Attribute)
        and isinstance(node.value, cst.Name)
        and node.value.value == "self"
        and (attribute is None or node.attr.value == attribute)
    )


def values_of(analysis: ModuleAnalysis, expression: cst.BaseExpression) -> list[cst.BaseExpression] | None:
    """The expressions a name or ``self.attr`` was plainly assigned; None when any binding is not a plain assignment."""
    if isinstance(expression, cst.Name):
        found = bindings(analysis, expression.value, expression)
        if not found or any(b.kind != "value" or b.value is None for b in found):
            return None
        return [b.value for b in found if b.value is not None]  # all, checked above
    if _is_self_attribute(expression):
        class_node = analysis.enclosing_class(expression)
        if class_node is None:
            return None
        return self_attribute_values(analysis, class_node, expression.attr.value) or None
    return None


def keyword(call: cst.Call, name: str) -> cst.BaseExpression | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg.value
    return None


def positional(call: cst.Call, index: int) -> cst.BaseExpression | None:
    plain = [arg.value for arg in call.args if arg.keyword is None and not arg.star]
    return plain[index] if index < len(plain) else None


def parameter(analysis: ModuleAnalysis, call: cst.Call, name: str) -> cst.BaseExpression | None:
    """The argument ``call`` gives the parameter ``name`` (``dtype``, ``trainable``), by keyword or by its position."""
    given = keyword(call, name)
    if given is not None:
        return given
    index = PARAMETER_POSITIONS.get(name, {}).get(analysis.qualname(call.func) or "")
    return positional(call, index) if index is not None else None


def is_false(node: cst.BaseExpression | None) -> bool:
    return isinstance(node, cst.Name) and node.value == "False"


def reads(node: cst.CSTNode, name: str) -> bool:
    return name in names_read(node)

