"""The caller's call of a helper function, with the helper's parameters bound to the call's arguments.

A cause lifted out of a helper (``gradfix.lift``) is pinned on the caller's call, ``grads(tape, loss, x)``;
what the operator must rewrite is spelled in the helper, ``tape.gradient(loss, x)``. Read through the
call, the helper's expression is the caller's: ``tape`` is the caller's tape, ``x`` its tensor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

import libcst as cst

from gradfix.lazy import lazy_module
from gradfix.static.tree import walk

if TYPE_CHECKING:
    import libcst.matchers as m
else:
    m = lazy_module("libcst.matchers")  # see gradfix.lazy


@dataclass(frozen=True)
class HelperCall:
    call: cst.Call  # in the caller
    function: cst.FunctionDef  # the helper
    arguments: Mapping[str, cst.BaseExpression]  # the helper's parameter -> the caller's argument
    inner_line: int  # the helper's line the run saw (its gradient call, or its cut)

    def in_caller(self, expression: cst.BaseExpression) -> cst.BaseExpression | None:
        """``expression`` of the helper as the caller spells it, when it reads nothing but bound parameters."""
        if isinstance(expression, cst.Name):
            return self.arguments.get(expression.value)
        if isinstance(expression, (cst.List, cst.Tuple)):
            elements = [self.in_caller(e.value) for e in expression.elements]
            if any(e is None for e in elements):
                return None
            return expression.with_changes(elements=[e.with_changes(value=v) for e, v in zip(expression.elements, elements)])
        if isinstance(expression, cst.Attribute):
            value = self.in_caller(expression.value)
            return expression.with_changes(value=value) if value is not None else None
        return None

    def substituted(self, expression: cst.BaseExpression) -> cst.BaseExpression:
        """``expression`` of the helper with each parameter it reads replaced by the caller's argument (a helper whose
        body is one statement reads no other local)."""
        return expression.visit(_Substitute(self.arguments))

    def lone_statement(self) -> cst.BaseSmallStatement | None:
        """The helper's only statement (a docstring aside), when its body is one simple statement."""
        body = self.function.body
        if not isinstance(body, cst.IndentedBlock):
            return None
        statements = [s for s in body.body if not m.matches(s, m.SimpleStatementLine([m.Expr(m.SimpleString())]))]
        if len(statements) != 1 or not isinstance(statements[0], cst.SimpleStatementLine) or len(statements[0].body) != 1:
            return None
        return statements[0].body[0]

    def gradient_call(self, lines_of) -> cst.Call | None:
        """The helper's ``tape.gradient(...)`` call at the line the run saw it asked for."""
        for call in walk(self.function, cst.Call):
            if (m.matches(call.func, m.Attribute(attr=m.Name("gradient"))) and len(call.args) >= 2
                    and lines_of(call)[0] <= self.inner_line <= lines_of(call)[1]):
                return call
        return None


def helper_call(module: cst.Module, parent_of, lines_of, caller, inner) -> HelperCall | None:
    """The call at the caller's site of the helper holding the inner site, both Sites of the run; None when the
    helper is not defined in this module or its parameters cannot be bound to the call's arguments."""
    function = _function_at(module, lines_of, inner.function, inner.line)
    if function is None:
        return None
    call = _call_at(module, lines_of, caller, function.name.value)
    if call is None:
        return None
    arguments = _bind(function, call, _is_method(function, parent_of))
    if arguments is None:
        return None
    return HelperCall(call, function, arguments, inner.line)


def _function_at(module: cst.Module, lines_of, name: str, line: int) -> cst.FunctionDef | None:
    # a site the run named from an op's record has no function name: the innermost function holding its line
    found = [f for f in walk(module, cst.FunctionDef)
             if (not name or f.name.value == name) and lines_of(f)[0] <= line <= lines_of(f)[1]]
    return min(found, key=lambda f: lines_of(f)[1] - lines_of(f)[0], default=None)


def _call_at(module: cst.Module, lines_of, caller, name: str) -> cst.Call | None:
    named = m.Call(func=m.Name(name) | m.Attribute(attr=m.Name(name)))
    calls = [c for c in walk(module, cst.Call) if m.matches(c, named) and lines_of(c)[0] == caller.line]
    return calls[0] if len(calls) == 1 else None


def _is_method(function: cst.FunctionDef, parent_of) -> bool:
    block = parent_of(function)
    owner = parent_of(block) if block is not None else None
    if not isinstance(owner, cst.ClassDef):
        return False
    return not any(m.matches(d.decorator, m.Name("staticmethod")) for d in function.decorators)


def _bind(function: cst.FunctionDef, call: cst.Call, method: bool) -> dict[str, cst.BaseExpression] | None:
    params = list(function.params.posonly_params) + list(function.params.params)
    if method and isinstance(call.func, cst.Attribute):
        params = params[1:]  # bound to the object the method is called on
    bound: dict[str, cst.BaseExpression] = {}
    positional = [a for a in call.args if a.keyword is None and not a.star]
    if any(a.star for a in call.args) or len(positional) > len(params):
        return None
    for param, arg in zip(params, positional):
        bound[param.name.value] = arg.value
    names = {p.name.value for p in params} | {p.name.value for p in function.params.kwonly_params}
    for arg in call.args:
        if arg.keyword is not None:
            if arg.keyword.value not in names:
                return None
            bound[arg.keyword.value] = arg.value
    return bound


class _Substitute(cst.CSTTransformer):
    def __init__(self, arguments: Mapping[str, cst.BaseExpression]):
        super().__init__()
        self.arguments = arguments

    def leave_Name(self, original, updated):
        value = self.arguments.get(updated.value)
        if value is None:
            return updated
        if isinstance(value, (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.Integer, cst.Float, cst.SimpleString)):
            return value
        return value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])

    def leave_Attribute(self, original, updated):
        return updated.with_changes(attr=original.attr)

    def leave_Arg(self, original, updated):
        return updated.with_changes(keyword=original.keyword)
