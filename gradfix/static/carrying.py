"""Which code lies on the path from a gradient's sources to its target.

A rule that looks for something breaking the gradient (a NumPy call, a rebound
variable) needs two facts the plain data flow of :mod:`gradfix.static.analysis`
does not give: which statements inside the tape feed the target, and which of
the values there carry the sources. Values carrying the sources start at the
gradient's sources and at calls of models or layers, and spread forward through
assignments.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from typing import Iterator

import libcst as cst

from gradfix.static.analysis import CODE_SCOPE, GradientCall, ModuleAnalysis, Statement, chains, inside_tape
from gradfix.static.names import dotted
from gradfix.static.sources import source_elements

_BUILTINS = frozenset(dir(builtins))


@dataclass
class CarryingRegion:
    """A stretch of code whose values carrying the sources are known, and the statements of it that feed the target."""

    analysis: ModuleAnalysis
    scope: CODE_SCOPE
    on_path: list[Statement]  # the statements whose results reach the target
    carrying: set[str] = field(default_factory=set)  # names and attribute chains holding values that carry the sources

    def carries(self, expression: cst.CSTNode) -> bool:
        if chains(expression) & self.carrying:
            return True
        return any(self.is_model_call(call) for call in self.analysis.calls(expression))

    def is_model_call(self, call: cst.Call) -> bool:
        """A call that plausibly runs a model or layer: ``model(x)``, ``self.dense(h)``, ``forward(x)``."""
        func = call.func
        if isinstance(func, cst.Name):
            if self.analysis.qualname(func) is not None or func.value in _BUILTINS:
                return False
            # A function of the module carries the sources only through its arguments.
            return self.analysis.function_named(func.value) is None
        chain = dotted(func)
        return chain is not None and chain.split(".")[0] == "self" and self.analysis.qualname(func) is None

    def spread(self, statements: list[Statement]) -> None:
        """Mark the names assigned from values carrying the sources, in order."""
        for statement in statements:
            if not isinstance(statement.node, cst.SimpleStatementLine):
                continue
            for small in statement.node.body:
                value = getattr(small, "value", None)
                if not isinstance(small, (cst.Assign, cst.AugAssign, cst.AnnAssign)) or value is None:
                    continue
                if self.carries(value) or (isinstance(small, cst.AugAssign) and self.carries(small.target)):
                    targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) else [small.target]
                    for target in targets:
                        self.carrying |= _target_chains(target)


def _target_chains(target: cst.CSTNode) -> set[str]:
    if isinstance(target, (cst.Tuple, cst.List)):
        found: set[str] = set()
        for element in target.elements:
            found |= _target_chains(element.value)
        return found
    if isinstance(target, cst.StarredElement):
        return _target_chains(target.value)
    chain = dotted(target) if isinstance(target, (cst.Name, cst.Attribute)) else None
    return {chain} if chain else set()


def tape_region(analysis: ModuleAnalysis, gradient: GradientCall) -> CarryingRegion | None:
    """The statements inside the tape that feed ``gradient``'s target, with the values there that carry the sources."""
    tape = gradient.tape
    if tape is None or gradient.target is None or tape.scope is not gradient.scope:
        return None
    in_tape = [s for s in analysis.statements(gradient.scope) if inside_tape(s, tape.node)]
    sliced = {s.index for s in analysis.backward_slice(gradient.target, gradient.scope)}
    region = CarryingRegion(analysis, gradient.scope, [s for s in in_tape if s.index in sliced])
    if gradient.sources is not None:
        region.carrying |= {chain for e in source_elements(analysis, gradient.sources, depth=0) if (chain := dotted(e))}
    region.spread(in_tape)
    return region


def function_region(
    analysis: ModuleAnalysis, function: cst.FunctionDef, carrying_params: set[str]
) -> CarryingRegion:
    """A function of the module whose parameters ``carrying_params`` receive values carrying the sources: what feeds its returns."""
    statements = analysis.statements(function)
    on_path: dict[int, Statement] = {}
    for statement in statements:
        if isinstance(statement.node, cst.SimpleStatementLine) and any(
            isinstance(small, cst.Return) and small.value is not None for small in statement.node.body
        ):
            on_path[statement.index] = statement
            for small in statement.node.body:
                if isinstance(small, cst.Return) and small.value is not None:
                    for earlier in analysis.backward_slice(small.value, function):
                        on_path[earlier.index] = earlier
    region = CarryingRegion(analysis, function, [on_path[i] for i in sorted(on_path)], set(carrying_params))
    region.spread(statements)
    return region


def carrying_parameters(region: CarryingRegion, call: cst.Call, function: cst.FunctionDef) -> set[str]:
    """The parameters of ``function`` that a call of it fills with values carrying the sources."""
    params = [p.name.value for p in function.params.params]
    if function.params.posonly_params:
        params = [p.name.value for p in function.params.posonly_params] + params
    carrying: set[str] = set()
    position = 0
    for arg in call.args:
        if arg.star:
            return set()
        if arg.keyword is None:
            if position < len(params) and region.carries(arg.value):
                carrying.add(params[position])
            position += 1
        elif region.carries(arg.value):
            carrying.add(arg.keyword.value)
    return carrying


def called_functions(region: CarryingRegion) -> Iterator[tuple[cst.Call, cst.FunctionDef]]:
    """Calls, on the region's path, of functions defined at the top level of the same module."""
    for statement in region.on_path:
        for call in region.analysis.calls(statement.node):
            if isinstance(call.func, cst.Name) and region.analysis.qualname(call.func) is None:
                function = region.analysis.function_named(call.func.value)
                if function is not None and function is not region.scope:
                    yield call, function
