"""Data flow around one ``tape.gradient`` call: what the sources belong to, where
the target is computed, and which statements run a forward pass of those sources.

Shared by the rules that reason about which tape recorded what (GF001, GF003, GF012).
"""

from __future__ import annotations

from typing import Iterable, Iterator

import libcst as cst

from gradfix.static.analysis import ModuleAnalysis, Statement, TapeBlock, children
from gradfix.static.api import NOT_FORWARD, NOT_FORWARD_WORDS, NOT_LAYER_MODULES
from gradfix.static.names import dotted
from gradfix.static.sources import Source


def _not_layers_by_class(analysis: ModuleAnalysis) -> dict[cst.ClassDef, frozenset[str]]:
    return {}


def class_methods(analysis: ModuleAnalysis, node: cst.CSTNode) -> frozenset[str]:
    """Names on ``self`` that are not layers: the class's methods, and attributes set to a loss, metric or optimizer."""
    klass = analysis.enclosing_class(node)
    if klass is None:
        return frozenset()
    cache = analysis.derived(_not_layers_by_class)
    if klass not in cache:
        names = {item.name.value for item in klass.body.body if isinstance(item, cst.FunctionDef)}
        for assign in _walk_all(klass):
            if not isinstance(assign, cst.Assign) or not isinstance(assign.value, cst.Call):
                continue
            if not (analysis.qualname(assign.value.func) or "").startswith(NOT_LAYER_MODULES):
                continue
            for target in assign.targets:
                name = dotted(target.target) or ""
                if name.startswith("self.") and name.count(".") == 1:
                    names.add(name[5:])
        cache[klass] = frozenset(names)
    return cache[klass]


def _root_of_callee(func: cst.BaseExpression) -> cst.BaseExpression:
    """``model.layers[0]`` -> ``model.layers``; ``model.get_layer('d')`` -> ``model.get_layer``."""
    while isinstance(func, (cst.Subscript, cst.Call)):
        func = func.value if isinstance(func, cst.Subscript) else func.func
    return func


def is_forward_call(call: cst.Call, source: Source, methods: frozenset[str] = frozenset()) -> bool:
    """Whether ``call`` runs the forward pass of ``source`` or of one of its layers."""
    if source.is_variable:
        return False
    func = call.func
    name = dotted(func)
    if name == source.name:
        return True
    root = dotted(_root_of_callee(func))
    if root is None or not root.startswith(source.name + "."):
        return False
    rest = root[len(source.name) + 1:].split(".")
    first = rest[0]
    if name is not None and len(rest) == 1:
        # source.attr(...): a sub-layer, or the model's own call()
        if first in NOT_FORWARD or first in methods - {"call"} or any(w in first.lower() for w in NOT_FORWARD_WORDS):
            return False
        return True
    if name is None and first in {"layers", "get_layer"}:
        return True  # model.layers[0](x), model.get_layer("d")(x)
    if name is not None and len(rest) == 2 and rest[1] == "call" and first not in methods:
        return True  # self.dense.call(x)
    return False


def reads_variable(node: cst.CSTNode, source: Source) -> bool:
    """Whether ``node`` reads the variable ``source`` (``w`` or ``self.w``) as a value."""
    if not source.is_variable:
        return False
    for expression in _expressions(node):
        if dotted(expression) == source.name:
            return True
    return False


def _expressions(node: cst.CSTNode) -> Iterator[cst.BaseExpression]:
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, (cst.FunctionDef, cst.ClassDef)) and current is not node:
            continue
        if isinstance(current, (cst.Name, cst.Attribute)):
            yield current
            if isinstance(current, cst.Attribute):
                stack.append(current.value)
            continue
        if isinstance(current, cst.AssignTarget):
            target = current.target
            if not isinstance(target, (cst.Name, cst.Tuple, cst.List)):
                stack.append(target)
            continue
        stack.extend(children(current))


def statement_code(node: cst.CSTNode) -> cst.CSTNode:
    """The part of a statement that runs at that statement: a compound statement's header only."""
    if isinstance(node, (cst.For,)):
        return node.iter
    if isinstance(node, (cst.If, cst.While)):
        return node.test
    if isinstance(node, cst.With):
        return cst.List([cst.Element(item.item) for item in node.items])
    if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
        # a definition runs its decorators, defaults and bases; its body runs where it is called
        ran: list[cst.BaseExpression] = [d.decorator for d in node.decorators]
        if isinstance(node, cst.FunctionDef):
            ran += [p.default for p in (*node.params.posonly_params, *node.params.params, *node.params.kwonly_params) if p.default is not None]
        else:
            ran += [arg.value for arg in (*node.bases, *node.keywords)]
        return cst.List([cst.Element(expression) for expression in ran])
    return node


def references(analysis: ModuleAnalysis, statement: Statement, sources: Iterable[Source]) -> set[Source]:
    """The sources whose forward pass (or variable) the statement itself uses."""
    code = statement_code(statement.node)
    methods = class_methods(analysis, statement.node)
    found: set[Source] = set()
    sources = list(sources)
    calls = [node for node in _walk(code) if isinstance(node, cst.Call)]
    for source in sources:
        if source.is_variable:
            if reads_variable(code, source) or any(_callee_uses(analysis, call, source) for call in calls):
                found.add(source)
        elif any(is_forward_call(call, source, methods) or _callee_uses(analysis, call, source) for call in calls):
            found.add(source)
        elif any(isinstance(call.func, cst.Name) and call.func.value in _layers_looped(statement, source) for call in calls):
            found.add(source)
    return found


def _layers_looped(statement: Statement, source: Source) -> set[str]:
    """Names that loops around the statement take from the source's layers: ``for layer in model.layers``."""
    names: set[str] = set()
    for block in statement.enclosing:
        if isinstance(block, cst.For) and isinstance(block.target, cst.Name):
            iterated = block.iter
            while isinstance(iterated, cst.Subscript):  # model.layers[1:]
                iterated = iterated.value
            if dotted(iterated) in {f"{source.name}.layers", f"{source.name}.submodules"}:
                names.add(block.target.value)
    return names


def _callee_uses(analysis: ModuleAnalysis, call: cst.Call, source: Source, depth: int = 0) -> bool:
    """Whether ``call`` runs a function of this module that runs ``source``'s forward pass (or reads the
    variable): passed in as an argument (``forward(model, x)``), or reached through ``self`` by a method."""
    callee = analysis.callee(call)
    if callee is None or depth > 2:
        return False
    function, bound = callee
    inner: Source | None = None
    if source.name.startswith("self.") and bound:
        inner = source  # a method sees the same ``self``
    elif _reads_free(analysis, function, source):
        inner = source  # a helper that reads the model or variable of the scope around it
    else:
        params = [p.name.value for p in function.params.params][bound:]
        position = 0
        for arg in call.args:
            if arg.star:
                return False
            name = arg.keyword.value if arg.keyword is not None else (params[position] if position < len(params) else None)
            if arg.keyword is None:
                position += 1
            if name is not None and dotted(arg.value) == source.name:
                inner = Source(name, source.is_variable)
                break
    if inner is None:
        return False
    known = analysis.derived(_uses_by_function)
    key = (function, inner)
    if key not in known:
        known[key] = False  # a recursive call adds nothing
        methods = class_methods(analysis, function)
        known[key] = any(
            (reads_variable(node, inner) if inner.is_variable else is_forward_call(node, inner, methods))
            or _callee_uses(analysis, node, inner, depth + 1)
            for node in _walk(function.body) if isinstance(node, cst.Call)
        )
    return known[key]


def _reads_free(analysis: ModuleAnalysis, function: cst.FunctionDef, source: Source) -> bool:
    """Whether ``function`` can read ``source`` by its name from the scope around it: no parameter or
    assignment of the function binds the name's root."""
    root = source.name.split(".")[0]
    if root == "self":
        return False
    params = function.params
    bound = {p.name.value for p in (*params.posonly_params, *params.params, *params.kwonly_params)}
    for star in (params.star_arg, params.star_kwarg):
        if isinstance(star, cst.Param):
            bound.add(star.name.value)
    if root in bound or any(root in statement.assigned for statement in analysis.statements(function)):
        return False
    return any(isinstance(node, cst.Name) and node.value == root for node in _walk(function.body))


def _uses_by_function(analysis: ModuleAnalysis) -> dict[tuple[cst.FunctionDef, Source], bool]:
    return {}


def passed_as_argument(statement: Statement, sources: Iterable[Source]) -> set[Source]:
    """The sources handed to a call as an argument (``loss = compute(model, x)``): the callee may run them."""
    values = {dotted(node.value) for node in _walk(statement_code(statement.node)) if isinstance(node, cst.Arg)}
    return {source for source in sources if source.name in values}


def _walk_all(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(children(current))


def _walk(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, (cst.FunctionDef, cst.ClassDef)) and current is not node:
            continue
        stack.extend(children(current))


def tape_blocks_holding(analysis: ModuleAnalysis, statement: Statement) -> list[cst.With]:
    """The tape ``with`` statements around ``statement``, innermost first."""
    withs = {tape.node for tape in analysis.tapes}
    return [a for a in analysis.ancestors(statement.node) if isinstance(a, cst.With) and a in withs]


def recorded_by(analysis: ModuleAnalysis, statement: Statement, tape: TapeBlock) -> bool:
    return analysis.is_inside(statement.node, tape.node) and statement.node is not tape.node and paused_by(analysis, statement.node, tape) is None


def paused_by(analysis: ModuleAnalysis, node: cst.CSTNode, tape: TapeBlock) -> cst.With | None:
    """The ``with tape.stop_recording():`` block inside ``tape``'s block that holds ``node``: what runs there is not recorded."""
    if tape.name is None or "stop_recording" not in analysis.text:
        return None
    for ancestor in analysis.ancestors(node):
        if ancestor is tape.node:
            return None
        if isinstance(ancestor, cst.With) and any(
            isinstance(item.item, cst.Call) and dotted(item.item.func) == f"{tape.name}.stop_recording" for item in ancestor.items
        ):
            return ancestor
    return None


def tape_statement(analysis: ModuleAnalysis, tape: TapeBlock) -> Statement | None:
    for statement in analysis.statements(tape.scope):
        if statement.node is tape.node:
            return statement
    return None


def last_index_inside(analysis: ModuleAnalysis, tape: TapeBlock) -> int:
    start = tape_statement(analysis, tape)
    if start is None:
        return -1
    last = start.index
    for statement in analysis.statements(tape.scope)[start.index + 1:]:
        if analysis.is_inside(statement.node, tape.node):
            last = statement.index
        else:
            break
    return last


def sources_label(sources: Iterable[Source]) -> str:
    """``the variables of `model``` or ```w`, `b``` for a message."""
    sources = list(sources)
    models = [f"`{o.name}`" for o in sources if not o.is_variable]
    variables = [f"`{o.name}`" for o in sources if o.is_variable]
    parts = []
    if models:
        parts.append("the variables of " + ", ".join(models))
    if variables:
        parts.append(", ".join(variables))
    return " and ".join(parts)


class NameReplacer(cst.CSTTransformer):
    """Replace reads of one name by another, leaving attributes, keywords and nested scopes alone."""

    def __init__(self, old: str, new: str):
        self.old = old
        self.new = new

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        return True

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.Attribute:
        return updated_node.with_changes(attr=original_node.attr)

    def leave_Arg(self, original_node: cst.Arg, updated_node: cst.Arg) -> cst.Arg:
        return updated_node.with_changes(keyword=original_node.keyword)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        if original_node.value == self.old:
            return updated_node.with_changes(value=self.new)
        return updated_node


def rename_reads(node: cst.CSTNode, old: str, new: str) -> cst.CSTNode:
    renamed = node.visit(NameReplacer(old, new))
    assert isinstance(renamed, cst.CSTNode), "a renaming removes no node"
    return renamed
