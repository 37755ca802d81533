"""Where an object read at one place can have been made: the code its value flows from.

A rule that takes a sign from elsewhere in the module (a BatchNormalization layer made, a model loaded)
as a fact about one model must take it from that model's making only: a notebook's later cell that loads
another model, or a second network built for something else, says nothing about it. ``made_within``
follows the value back through assignments, from a function's parameter to the arguments its callers in
this module pass (a class's ``__init__`` to the calls of the class), and into the classes and functions of
this module that the code it reaches calls.
"""

from __future__ import annotations

import libcst as cst

from gradfix.static.analysis import (
    CODE_SCOPE,
    ModuleAnalysis,
    Statement,
    argument,
    attribute_values,
    attributes_assigned,
    names_read,
)
from gradfix.static.names import dotted
from gradfix.static.tree import walk

# How many calls deep a parameter is followed back to its callers' arguments.
CALLER_DEPTH = 4


def made_within(analysis: ModuleAnalysis, value: cst.BaseExpression) -> list[cst.CSTNode] | None:
    """The statements, classes and functions of this module within which the object ``value`` reads
    (``model`` of ``model.variables``, or ``self`` of a method) can have been made and changed; None when
    where it comes from is out of sight (a parameter no call of this module fills, a name bound nowhere)."""
    root = value
    while isinstance(root, (cst.Attribute, cst.Subscript)):
        root = root.value
    if not isinstance(root, cst.Name):
        return None
    at = analysis.statement_index(value)
    if at is None:
        return None
    tracer = _Tracer(analysis)
    if root.value == "self":
        klass = analysis.enclosing_class(value)
        if klass is None:
            return None
        tracer.enter(klass)
        held = _held_attribute(value)
        if held is not None and not tracer.attribute(klass, held):
            return None
        return tracer.drained()
    if not tracer.name(root.value, at, analysis.scope_of(value), 0):
        return None
    return tracer.drained()


def _held_attribute(value: cst.BaseExpression) -> str | None:
    """``self.model`` of ``self.model`` or ``self.model.encoder``: the attribute of ``self`` that holds the object."""
    chain = dotted(value) or ""
    parts = chain.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 and parts[0] == "self" else None


class _Tracer:
    """Statements and definitions are queued, not followed at once: a chain of thousands of rebindings
    (`x = f(x)` line after line) costs no recursion."""

    def __init__(self, analysis: ModuleAnalysis):
        self.analysis = analysis
        self.found: list[cst.CSTNode] = []
        self._seen: set[tuple[int, int]] = set()  # (id(scope), statement index) already taken
        self._entered: set[int] = set()  # ids of the classes and functions already taken whole
        self._names: set[tuple[str, int, int]] = set()
        self._classes = {c.name.value: c for c in walk(analysis.module, cst.ClassDef)}
        self._statements: list[tuple[Statement, CODE_SCOPE, int]] = []  # taken, their reads not yet followed
        self._definitions: list[cst.CSTNode] = []  # entered, their calls not yet followed

    def drained(self) -> list[cst.CSTNode]:
        """Follow everything queued; then ``found`` is complete."""
        while self._statements or self._definitions:
            if self._definitions:
                self._enter_callees(self._definitions.pop())
                continue
            statement, scope, depth = self._statements.pop()
            self._enter_callees(statement.node)
            for read in statement.read:
                self.name(read, statement, scope, depth)
        return self.found

    def name(self, name: str, at: Statement, scope: CODE_SCOPE, depth: int) -> bool:
        """Take the statements that bind ``name`` before ``at``; False when it is bound nowhere in sight."""
        key = (name, id(scope), at.index)
        if key in self._names:
            return True
        self._names.add(key)
        definitions = self.analysis.reaching_definitions(name, at, scope)
        if definitions:
            for definition in definitions:
                self.statement(definition, scope, depth)
            self._changes_of(name, scope)
            return True
        if isinstance(scope, cst.FunctionDef):
            if name in _parameters(scope):
                return self._parameter(scope, name, depth)
            module = self.analysis.module
            bindings = [s for s in self.analysis.statements(module) if name in s.assigned]
            for binding in bindings:
                self.statement(binding, module, depth)
            self._changes_of(name, module)
            return bool(bindings)
        return False

    def attribute(self, klass: cst.ClassDef, chain: str) -> bool:
        """Take what the class's methods assign to ``self.x``; False when a value is a name out of sight
        (a parameter of ``__init__`` that no call of the class fills)."""
        for method in klass.body.body:
            if not isinstance(method, cst.FunctionDef):
                continue
            for statement in self.analysis.statements(method):
                if chain not in attributes_assigned(statement.node):
                    continue
                self.statement(statement, method, 0)
                for assigned in attribute_values(statement.node, chain):
                    if isinstance(assigned, cst.Name) and not self.name(assigned.value, statement, method, 0):
                        return False
        return True

    def statement(self, statement: Statement, scope: CODE_SCOPE, depth: int) -> None:
        key = (id(scope), statement.index)
        if key in self._seen:
            return
        self._seen.add(key)
        self.found.append(statement.node)
        self._statements.append((statement, scope, depth))

    def enter(self, definition: cst.ClassDef | cst.FunctionDef) -> None:
        if id(definition) in self._entered:
            return
        self._entered.add(id(definition))
        self.found.append(definition)
        self._definitions.append(definition)

    def _enter_callees(self, node: cst.CSTNode) -> None:
        for call in self.analysis.calls(node):
            func = call.func
            if isinstance(func, cst.Name) and self.analysis.qualname(func) is None:
                definition = self._classes.get(func.value) or self.analysis.function_named(func.value)
                if definition is not None:
                    self.enter(definition)

    def _changes_of(self, name: str, scope: CODE_SCOPE) -> None:
        """The statements of the scope that change the object in place (``base.trainable = False``, a loop
        over ``base.layers`` that freezes each): they read the name and assign an attribute."""
        for statement in self.analysis.statements(scope):
            if name in statement.read and any(
                isinstance(target.target, cst.Attribute)
                for assign in walk(statement.node, cst.Assign) for target in assign.targets
            ):
                key = (id(scope), statement.index)
                if key not in self._seen:
                    self._seen.add(key)
                    self.found.append(statement.node)

    def _parameter(self, function: cst.FunctionDef, name: str, depth: int) -> bool:
        """Follow a parameter back to what every call of the function in this module passes for it."""
        if depth >= CALLER_DEPTH:
            return False
        position = _parameters(function).index(name)
        sites = self._calls_of(function)
        if not sites:
            return False
        for call, skipped in sites:
            if position < skipped:
                continue  # ``self``: the object the method runs on, whose making the class already holds
            passed = argument(call, position - skipped, name)
            if passed is None:
                return False  # left to its default, or passed through *args/**kwargs
            at = self.analysis.statement_index(call)
            if at is None:
                return False
            scope = self.analysis.scope_of(call)
            self.found.append(passed)
            self._enter_callees(passed)
            for read in names_read(passed):
                if not self.name(read, at, scope, depth + 1):
                    return False
        return True

    def _calls_of(self, function: cst.FunctionDef) -> list[tuple[cst.Call, int]]:
        """The calls of this module that run ``function``, each with how many leading parameters it does not
        fill; a class's ``__init__`` is run by the calls of the class."""
        analysis = self.analysis
        sites = []
        owner = analysis.enclosing_class(function)
        for call in analysis.calls(None):
            if function.name.value == "__init__" and owner is not None:
                if isinstance(call.func, cst.Name) and call.func.value == owner.name.value and analysis.qualname(call.func) is None:
                    sites.append((call, 1))
                continue
            callee = analysis.callee(call)
            if callee is not None and callee[0] is function:
                sites.append((call, callee[1]))
        if any(arg.star for call, _ in sites for arg in call.args):
            return []
        return sites


def _parameters(function: cst.FunctionDef) -> list[str]:
    params = function.params
    return [p.name.value for p in (*params.posonly_params, *params.params, *params.kwonly_params)]
