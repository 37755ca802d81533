"""One parsed module and the facts every rule asks about it.

Built once per file and shared by all rules: the tree with positions, the
import aliases, each ``GradientTape`` block, each ``tape.gradient`` call, and the
statements of each function in order, for data flow.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from gradfix.edits import ReplaceNodes, line_edits, replace_nodes, split_lines
from gradfix.model import Span, TextEdit
from gradfix.static.api import GRADIENT_TAPE
from gradfix.static.names import ImportMap, dotted
from gradfix.static.tree import children as children  # named here too, for the rules that read it from the model
from gradfix.static.tree import index_tree, walk

if TYPE_CHECKING:
    from libcst.codemod.visitors import ImportItem

T = TypeVar("T")

LINE_MARK = "\ue000"  # brackets a line number in a message, for the engine to map to the module's line


SCOPE = (cst.FunctionDef, cst.Module)
CODE_SCOPE = cst.FunctionDef | cst.Module


@dataclass
class TapeBlock:
    """A ``with tf.GradientTape() as name:`` statement (one of its items)."""

    node: cst.With
    name: str | None  # the name the tape is bound to, if any
    call: cst.Call  # the GradientTape(...) call, or the name expression of a tape made earlier
    scope: CODE_SCOPE

    @property
    def persistent(self) -> bool:
        return any(
            arg.keyword is not None and arg.keyword.value == "persistent" and dotted(arg.value) == "True"
            for arg in getattr(self.call, "args", ())
        )


@dataclass
class GradientCall:
    """``tape.gradient(target, sources)``."""

    node: cst.Call
    tape_name: str
    target: cst.BaseExpression | None
    sources: cst.BaseExpression | None
    statement: cst.BaseStatement | cst.BaseSmallStatement
    scope: CODE_SCOPE
    tape: TapeBlock | None  # the block that made the tape, when it is in the same scope
    tape_node: cst.Name | None = None  # where the call names the tape: ``tape`` of ``tape.gradient`` or a helper's argument
    helper: cst.FunctionDef | None = None  # the function that asks the tape, when ``node`` calls one such as ``grads_of(tape, loss, vars)``


@dataclass
class Statement:
    """A simple statement (one logical line) of a scope, in execution order."""

    node: cst.SimpleStatementLine | cst.BaseCompoundStatement
    index: int
    assigned: frozenset[str]
    read: frozenset[str]
    enclosing: tuple[cst.CSTNode, ...] = field(default=())  # compound statements around it, outermost first


def _body_of(replaced: object) -> list[cst.CSTNode]:
    """The statements a statement's replacement stands for (none for a removal)."""
    if isinstance(replaced, cst.FlattenSentinel):
        return list(replaced)
    if isinstance(replaced, cst.RemovalSentinel):
        return []
    assert isinstance(replaced, cst.CSTNode), "a statement's replacement is a node or a sentinel"
    return [replaced]


class ModuleAnalysis:
    def __init__(self, path: str, text: str, module: cst.Module, first_lines: Mapping[cst.CSTNode, int] | None = None):
        """``first_lines``: where the print of each top-level statement, and of statements of top-level classes'
        bodies, starts (``piecewise.Joined``); a statement of a class body found there has its positions found
        alone, without a print of its whole class."""
        self.path = path
        self._given_lines = first_lines or {}
        self.text = text
        self.wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        self.module = self.wrapper.module
        self._parents: dict[int, cst.CSTNode] = {}  # by the child's id (LibCST hashes a node in Python, an int in C)
        self._order: dict[int, int] = {}
        self._index_tree()
        self.imports = ImportMap(self.module)
        self._by_kind: dict[type | tuple[type, ...], list[cst.CSTNode]] = {}
        self._statements: dict[CODE_SCOPE, list[Statement]] = {}
        self._assignments: dict[CODE_SCOPE, dict[str, list[int]]] = {}
        self._attribute_assignments: dict[CODE_SCOPE, dict[str, list[int]]] = {}
        self._derived: dict[Callable[[ModuleAnalysis], object], object] = {}
        self._positions_by_statement: dict[cst.CSTNode, tuple[Mapping[cst.CSTNode, CodeRange], int]] = {}
        self._code: dict[cst.CSTNode, str] = {}

    def derived(self, fact: Callable[["ModuleAnalysis"], T]) -> T:
        """A fact computed from this model once, whichever rule asks first; the function computing it is its key."""
        if fact not in self._derived:
            self._derived[fact] = fact(self)
        return self._derived[fact]  # type: ignore[return-value]

    def _index_tree(self) -> None:
        _, self._order, self._parents, self.depth = index_tree(self.module)

    def walk(self, root: cst.CSTNode | None = None, kind: type | tuple[type, ...] = cst.CSTNode) -> Iterator[Any]:
        """Nodes of ``kind`` under ``root`` (the whole module by default), in source order."""
        # Any: the nodes are of the kind asked for, which callers rely on
        if root is None or root is self.module:
            if kind not in self._by_kind:
                self._by_kind[kind] = list(walk(self.module, kind))
            return iter(self._by_kind[kind])
        return walk(root, kind)

    # --- positions ---------------------------------------------------------------------------
    # LibCST's positions cost a print of the whole module with bookkeeping at every token; a finding
    # needs the positions of its own top-level statement only, placed by the plain print of those before it.
    @cached_property
    def positions(self) -> Mapping[cst.CSTNode, CodeRange]:
        return self.wrapper.resolve(PositionProvider)

    @cached_property
    def _first_lines(self) -> Mapping[cst.CSTNode, int]:
        """The line each top-level statement's print starts on (its leading blank and comment lines included)."""
        if all(statement in self._given_lines for statement in self.module.body):
            return self._given_lines
        first: dict[cst.CSTNode, int] = {}
        line = 1 + len(self.module.header)
        for statement in self.module.body:
            first[statement] = line
            line += len(split_lines(self.module.code_for_node(statement)))
        return first

    def top_statement(self, node: cst.CSTNode) -> cst.CSTNode | None:
        """The top-level statement holding ``node`` (or ``node`` itself), None for the module and its header."""
        return self._child_holding(node, self.module, self._first_lines)

    def class_member(self, statement: cst.CSTNode, node: cst.CSTNode) -> cst.CSTNode | None:
        """The statement of top-level class ``statement``'s body that holds ``node``, when its line is known."""
        if not isinstance(statement, cst.ClassDef) or not self._given_lines:
            return None
        return self._child_holding(node, statement.body, self._given_lines)

    def _child_holding(self, node: cst.CSTNode, container: cst.CSTNode, known: Mapping[cst.CSTNode, int]) -> cst.CSTNode | None:
        """The child of ``container`` that holds ``node`` (or is it), when ``known`` has it."""
        current: cst.CSTNode | None = node
        while current is not None:
            parent = self._parents.get(id(current))
            if parent is container:
                return current if current in known else None
            current = parent
        return None

    def _alone(self, statement: cst.CSTNode) -> cst.Module:
        return self.module.with_changes(body=[statement], header=[], footer=[])

    def _member_alone(self, klass: cst.ClassDef, body: Sequence[cst.CSTNode]) -> cst.Module:
        """A module of ``klass`` whose body is ``body`` alone: its statements print as they do in the class."""
        alone = klass.with_changes(leading_lines=[], body=klass.body.with_changes(body=body, footer=[]))
        return self._alone(alone)

    def _statement_positions(self, statement: cst.CSTNode) -> tuple[Mapping[cst.CSTNode, CodeRange], int]:
        """The positions of the nodes of a top-level statement, or of one statement of a class body, printed alone;
        and the lines to add to them."""
        if statement not in self._positions_by_statement:
            klass = self._parents.get(id(self._parents.get(id(statement))))
            if isinstance(klass, cst.ClassDef) and self._parents.get(id(klass)) is self.module:
                alone = self._member_alone(klass, [statement])
                # the class's line(s) before it: the module's lines less the statement's own
                before = len(split_lines(alone.code)) - len(split_lines(alone.code_for_node(statement)))
                offset = self._given_lines[statement] - 1 - before
            else:
                alone, offset = self._alone(statement), self._first_lines[statement] - 1
            wrapper = MetadataWrapper(alone, unsafe_skip_copy=True)
            self._positions_by_statement[statement] = (wrapper.resolve(PositionProvider), offset)
        return self._positions_by_statement[statement]

    def _position(self, node: cst.CSTNode) -> tuple[CodeRange, int]:
        statement = self.top_statement(node)
        if statement is None or "positions" in self.__dict__:
            return self.positions[node], 0
        statement = self.class_member(statement, node) or statement
        positions, offset = self._statement_positions(statement)
        return positions[node], offset

    def span(self, node: cst.CSTNode) -> Span:
        position, offset = self._position(node)
        return Span(
            self.path,
            position.start.line + offset,
            position.start.column + 1,
            position.end.line + offset,
            position.end.column + 1,
        )

    def fix_edits(self, replacements: Mapping[cst.CSTNode, object], imports: Sequence[ImportItem] = ()) -> tuple[TextEdit, ...]:
        """The line edits that make ``replacements``, reprinting only the top-level statements they fall in;
        with ``imports``, the module is reprinted with them added by LibCST's ``AddImportsVisitor``."""
        if imports:
            # loaded here: LibCST's codemod package loads its matchers, which a check without such a fix does not need
            from libcst.codemod import CodemodContext
            from libcst.codemod.visitors import AddImportsVisitor
            changed = self.module.visit(ReplaceNodes(replacements))
            changed = AddImportsVisitor(CodemodContext(), list(imports)).transform_module(changed)
            return line_edits(self.text, changed.code, printed=self.module.code)
        members: dict[cst.CSTNode, cst.CSTNode] = {}  # the statement reprinted for each top-level one it is in
        for node in replacements:
            statement = self.top_statement(node)
            if statement is None:
                return line_edits(self.text, replace_nodes(self.module, replacements), printed=self.module.code)
            # in a class, the one statement of its body that holds the node: the class is not printed whole
            members[self.class_member(statement, node) or statement] = statement
        bodies = {member: _body_of(member.visit(ReplaceNodes(replacements))) for member in members}
        # printed whole: a class with a statement removed (its body may be left empty), or with a change outside its
        # body's statements (its header, its decorators), which the edits of its statements would overlap
        whole = {top for member, top in members.items() if member is not top and (not bodies[member] or top in members)}
        bodies = {member: body for member, body in bodies.items() if members[member] not in whole or member is members[member]}
        for top in whole - bodies.keys():
            bodies[top] = _body_of(top.visit(ReplaceNodes(replacements)))
        edits: list[TextEdit] = []
        for statement, body in bodies.items():
            klass = self._parents.get(id(self._parents.get(id(statement))))
            if isinstance(klass, cst.ClassDef):
                old, new = self._member_alone(klass, [statement]).code, self._member_alone(klass, body).code
                # the class's line(s) before it: the print's lines less the statement's own
                offset = self._given_lines[statement] - 1 - (len(split_lines(old)) - len(split_lines(self.module.code_for_node(statement))))
            else:
                old, offset = self._alone(statement).code, self._first_lines[statement] - 1
                new = self.module.with_changes(body=body, header=[], footer=[]).code if body else ""
            edits.extend(TextEdit(e.start_line + offset, e.end_line + offset, e.new_text) for e in line_edits(old, new))
        return tuple(sorted(edits, key=lambda e: e.start_line))

    def order_of(self, node: cst.CSTNode) -> int:
        """The node's rank in source order: sorting by it needs no positions (which cost a print of the module)."""
        return self._order[id(node)]

    def precedes(self, first: cst.CSTNode, second: cst.CSTNode) -> bool:
        return self._order[id(first)] < self._order[id(second)]

    def line_of(self, node: cst.CSTNode) -> int:
        position, offset = self._position(node)
        return position.start.line + offset

    def line_reference(self, node: cst.CSTNode) -> str:
        """"line N" for a message; the engine writes the module's line number in (this text may be one region of it)."""
        return f"line {LINE_MARK}{self.line_of(node)}{LINE_MARK}"

    def code(self, node: cst.CSTNode) -> str:
        # rules compare the text of one expression with many others; each node is printed once
        text = self._code.get(node)
        if text is None:
            text = self._code[node] = self.module.code_for_node(node).strip()
        return text

    # --- tree navigation ---------------------------------------------------------------------
    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self._parents.get(id(node))

    def ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        current = self._parents.get(id(node))
        while current is not None:
            yield current
            current = self._parents.get(id(current))

    def scope_of(self, node: cst.CSTNode) -> CODE_SCOPE:
        for ancestor in self.ancestors(node):
            if isinstance(ancestor, SCOPE):
                return ancestor
        return self.module

    def statement_of(self, node: cst.CSTNode) -> cst.CSTNode:
        """The line-level statement holding ``node`` (or the node itself)."""
        if isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            return node
        for ancestor in self.ancestors(node):
            if isinstance(ancestor, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
                return ancestor
        return node

    def is_inside(self, node: cst.CSTNode, container: cst.CSTNode) -> bool:
        return node is container or any(a is container for a in self.ancestors(node))

    def enclosing_class(self, node: cst.CSTNode) -> cst.ClassDef | None:
        for ancestor in self.ancestors(node):
            if isinstance(ancestor, cst.ClassDef):
                return ancestor
        return None

    # --- names -------------------------------------------------------------------------------
    def qualname(self, node: cst.BaseExpression) -> str | None:
        return self.imports.resolve(node)

    def is_call_to(self, node: cst.CSTNode, *names: str) -> bool:
        return isinstance(node, cst.Call) and self.qualname(node.func) in names

    def calls(self, within: cst.CSTNode | None = None) -> Iterator[cst.Call]:
        root = within if within is not None else self.module
        yield from self.walk(root, cst.Call)

    @cached_property
    def functions(self) -> list[cst.FunctionDef]:
        return list(self.walk(None, cst.FunctionDef))

    def function_named(self, name: str) -> cst.FunctionDef | None:
        for function in self.functions:
            if function.name.value == name and self.enclosing_class(function) is None:
                return function
        return None

    # --- tapes -------------------------------------------------------------------------------
    @cached_property
    def tapes(self) -> list[TapeBlock]:
        blocks: list[TapeBlock] = []
        made_earlier = self._tapes_bound_by_assignment
        for with_node in self.walk(None, cst.With):
            for item in with_node.items:
                expression = item.item
                name = None
                if item.asname is not None and isinstance(item.asname.name, cst.Name):
                    name = item.asname.name.value
                if isinstance(expression, cst.Call) and self.qualname(expression.func) == GRADIENT_TAPE:
                    blocks.append(TapeBlock(with_node, name, expression, self.scope_of(with_node)))
                elif isinstance(expression, cst.Name) and expression.value in made_earlier:
                    blocks.append(TapeBlock(with_node, name or expression.value, made_earlier[expression.value], self.scope_of(with_node)))
        return blocks

    @cached_property
    def _tapes_bound_by_assignment(self) -> dict[str, cst.Call]:
        """``tape = tf.GradientTape()`` followed later by ``with tape:``."""
        bound: dict[str, cst.Call] = {}
        for assign in self.walk(None, cst.Assign):
            if isinstance(assign.value, cst.Call) and self.qualname(assign.value.func) == GRADIENT_TAPE:
                for target in assign.targets:
                    if isinstance(target.target, cst.Name):
                        bound[target.target.value] = assign.value
        return bound

    def tape_named(self, name: str, scope: CODE_SCOPE, before: cst.CSTNode | None = None) -> TapeBlock | None:
        candidates = [t for t in self.tapes if t.name == name and t.scope is scope]
        if before is not None:
            earlier = [t for t in candidates if not self.precedes(before, t.node)]
            candidates = earlier or candidates
        return candidates[-1] if candidates else None

    def tape_around(self, node: cst.CSTNode) -> TapeBlock | None:
        """The innermost tape block whose body holds ``node``."""
        for ancestor in self.ancestors(node):
            if isinstance(ancestor, cst.With):
                for tape in self.tapes:
                    if tape.node is ancestor:
                        return tape
        return None

    @cached_property
    def gradient_calls(self) -> list[GradientCall]:
        tape_names = {t.name for t in self.tapes if t.name}
        found: list[GradientCall] = []
        if not tape_names:
            return found
        helpers = self._gradient_helpers
        for call in self.walk(None, cst.Call):
            func = call.func
            if isinstance(func, cst.Attribute) and func.attr.value == "gradient" and isinstance(func.value, cst.Name):
                if func.value.value in tape_names:
                    found.append(self._gradient_call(call, func.value, argument(call, 0, "target"), argument(call, 1, "sources")))
                continue
            helper = self._helper_called(call, helpers)
            if helper is None:
                continue
            function, (tape_at, target_at, sources_at), offset = helper
            params = _param_names(function)[offset:]
            tape = argument(call, tape_at, params[tape_at])
            if isinstance(tape, cst.Name) and tape.value in tape_names:
                target = argument(call, target_at, params[target_at]) if target_at is not None else None
                sources = argument(call, sources_at, params[sources_at]) if sources_at is not None else None
                found.append(self._gradient_call(call, tape, target, sources, function))
        return found

    def _gradient_call(self, call: cst.Call, tape: cst.Name, target: cst.BaseExpression | None,
                       sources: cst.BaseExpression | None, helper: cst.FunctionDef | None = None) -> GradientCall:
        scope = self.scope_of(call)
        statement = self.statement_of(call)
        assert isinstance(statement, cst.BaseStatement), "a call is always inside a statement"
        return GradientCall(
            node=call,
            tape_name=tape.value,
            target=target,
            sources=sources,
            statement=statement,
            scope=scope,
            tape=self.tape_named(tape.value, scope, before=call),
            tape_node=tape,
            helper=helper,
        )

    def zeros_when_unconnected(self, gradient: GradientCall) -> bool:
        """Whether the call asks for zeros instead of None for a source the target does not depend on
        (``unconnected_gradients=tf.UnconnectedGradients.ZERO``, or ``"zero"``)."""
        if gradient.helper is not None:
            return False
        value = argument(gradient.node, 3, "unconnected_gradients")
        if isinstance(value, cst.SimpleString):
            return value.evaluated_value == "zero"
        if value is None:
            return False
        spelled = self.qualname(value) or dotted(value) or ""
        return spelled.endswith("UnconnectedGradients.ZERO")

    @cached_property
    def _gradient_helpers(self) -> dict[cst.FunctionDef, tuple[int, int | None, int | None]]:
        """Functions that hand back what a tape they are given says: ``def grads_of(tape, loss, vars): return tape.gradient(loss, vars)``.

        A call of one asks the caller's tape for a gradient as surely as ``tape.gradient`` written
        out, so it is a gradient call of the caller, with the arguments in the parameters' places.
        Value: the positions of the tape, target and sources among the parameters (``self`` left out).
        """
        helpers: dict[cst.FunctionDef, tuple[int, int | None, int | None]] = {}
        if ".gradient(" not in self.text:
            return helpers
        for function in self.functions:
            params = _param_names(function)
            if self.enclosing_class(function) is not None and params[:1] == ["self"]:
                params = params[1:]
            for node in walk(function.body, cst.Return):
                value = node.value
                if not (isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and value.func.attr.value == "gradient"):
                    continue
                tape = value.func.value
                if not (isinstance(tape, cst.Name) and tape.value in params):
                    continue
                places = []
                for index, keyword in ((0, "target"), (1, "sources")):
                    passed = argument(value, index, keyword)
                    places.append(params.index(passed.value) if isinstance(passed, cst.Name) and passed.value in params else None)
                if places[0] is not None or places[1] is not None:
                    helpers[function] = (params.index(tape.value), places[0], places[1])
                    break
        return helpers

    def _helper_called(self, call: cst.Call, helpers: dict[cst.FunctionDef, tuple[int, int | None, int | None]]) -> tuple[cst.FunctionDef, tuple[int, int | None, int | None], int] | None:
        """The gradient helper ``call`` calls, with how many leading parameters its callers do not pass."""
        if not helpers or any(arg.star for arg in call.args):
            return None
        callee = self.callee(call)
        if callee is None or callee[0] not in helpers:
            return None
        return callee[0], helpers[callee[0]], callee[1]

    def callee(self, call: cst.Call) -> tuple[cst.FunctionDef, int] | None:
        """The function of this module ``call`` runs: ``f(...)`` for a function ``f``, ``self.m(...)`` for a
        method of the class around the call; with how many leading parameters the call does not fill (``self``)."""
        func = call.func
        if isinstance(func, cst.Name):
            if self.qualname(func) is not None:
                return None
            function = self._function_called(func.value, call)
            return (function, 0) if function is not None else None
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self":
            klass = self.enclosing_class(call)
            for member in (klass.body.body if klass is not None else ()):
                if isinstance(member, cst.FunctionDef) and member.name.value == func.attr.value:
                    if any(dotted(d.decorator) == "staticmethod" for d in member.decorators):
                        return member, 0
                    return member, 1 if _param_names(member)[:1] else 0
        return None

    def _function_called(self, name: str, call: cst.Call) -> cst.FunctionDef | None:
        """The function ``name(...)`` runs at ``call``. Where a later ``def`` rebinds the name (a notebook's cell
        writing the function anew), a call in the same scope runs the last one before it; a call elsewhere runs
        whichever was last bound when it is made, which the text alone does not tell."""
        defined = [function for function in self.functions
                   if function.name.value == name and self.enclosing_class(function) is None]
        if len(defined) <= 1:
            return defined[0] if defined else None
        scope = self.scope_of(call)
        before = [function for function in defined
                  if self.scope_of(function) is scope and self._order[id(function)] < self._order[id(call)]]
        return before[-1] if before and scope is self.module else None

    # --- data flow ---------------------------------------------------------------------------
    def statements(self, scope: CODE_SCOPE) -> list[Statement]:
        if scope not in self._statements:
            self._statements[scope] = _StatementLister(scope).statements
        return self._statements[scope]

    def statement_index(self, node: cst.CSTNode) -> Statement | None:
        scope = self.scope_of(node)
        line_statement = self.statement_of(node)
        for statement in self.statements(scope):
            if statement.node is line_statement:
                return statement
        return None

    def reaching_definitions(self, name: str, at: Statement, scope: CODE_SCOPE) -> list[Statement]:
        """The statements before ``at`` that may have given ``name`` its value there.

        Walks backwards to the nearest unconditional assignment, keeping the
        conditional ones (inside ``if``/``for``/...) met on the way.
        """
        found: list[Statement] = []
        statements = self.statements(scope)
        assigning = self._assignments_in(scope).get(name, ())
        for index in reversed(assigning[: bisect.bisect_left(assigning, at.index)]):
            statement = statements[index]
            found.append(statement)
            if not _is_conditional(statement, at):
                break
        return found

    def _assignments_in(self, scope: CODE_SCOPE) -> dict[str, list[int]]:
        """For each name, the indices of the scope's statements that assign it, in order."""
        if scope not in self._assignments:
            by_name: dict[str, list[int]] = {}
            for statement in self.statements(scope):
                for assigned in statement.assigned:
                    by_name.setdefault(assigned, []).append(statement.index)
            self._assignments[scope] = by_name
        return self._assignments[scope]

    def attribute_definitions(self, name: str, at: Statement, scope: CODE_SCOPE) -> list[Statement]:
        """The statements of the scope that may have given the dotted name ``name`` (``self.pred``) its value at ``at``:
        its assignments before ``at`` back to the nearest unconditional one and, when none is unconditional,
        those after ``at`` in a loop around both (the loop's back edge)."""
        found: list[Statement] = []
        statements = self.statements(scope)
        assigning = self._attribute_assignments_in(scope).get(name, ())
        position = bisect.bisect_left(assigning, at.index)
        for index in reversed(assigning[:position]):
            statement = statements[index]
            found.append(statement)
            if not _is_conditional(statement, at):
                return found
        loops = [block for block in at.enclosing if isinstance(block, (cst.For, cst.While))]
        for index in assigning[position:] if loops else ():
            statement = statements[index]
            if any(loop in statement.enclosing for loop in loops):
                found.append(statement)
        return found

    def _attribute_assignments_in(self, scope: CODE_SCOPE) -> dict[str, list[int]]:
        """For each dotted name (``self.pred``), the indices of the scope's statements that assign it, in order."""
        if scope not in self._attribute_assignments:
            by_name: dict[str, list[int]] = {}
            for statement in self.statements(scope):
                for name in sorted(attributes_assigned(statement.node)):
                    by_name.setdefault(name, []).append(statement.index)
            self._attribute_assignments[scope] = by_name
        return self._attribute_assignments[scope]

    def backward_slice(self, expression: cst.CSTNode, scope: CODE_SCOPE | None = None) -> list[Statement]:
        """Every earlier statement of the scope whose result can flow into ``expression``."""
        scope = scope or self.scope_of(expression)
        start = self.statement_index(expression)
        if start is None:
            return []
        result: dict[int, Statement] = {}
        pending: list[tuple[str, Statement]] = [(n, start) for n in names_read(expression)]
        seen: set[tuple[str, int]] = set()
        while pending:
            name, at = pending.pop()
            if (name, at.index) in seen:
                continue
            seen.add((name, at.index))
            for definition in self.reaching_definitions(name, at, scope):
                if definition.index not in result:
                    result[definition.index] = definition
                    pending.extend((n, definition) for n in definition.read)
        return [result[i] for i in sorted(result)]

    def uses_after(self, name: str, statement: Statement, scope: CODE_SCOPE) -> list[Statement]:
        """Statements after ``statement`` that read ``name`` before it is assigned again."""
        uses: list[Statement] = []
        for later in self.statements(scope)[statement.index + 1:]:
            if name in later.read:
                uses.append(later)
            if name in later.assigned and not later.enclosing:
                break
        return uses


def _param_names(function: cst.FunctionDef) -> list[str]:
    return [p.name.value for p in (*function.params.posonly_params, *function.params.params)]


def argument(call: cst.Call, index: int, keyword: str | None = None) -> cst.BaseExpression | None:
    """The argument ``call`` passes at position ``index``, or else by ``keyword``."""
    positional = [a for a in call.args if a.keyword is None and not a.star]
    if index < len(positional):
        return positional[index].value
    if keyword is not None:
        for arg in call.args:
            if arg.keyword is not None and arg.keyword.value == keyword:
                return arg.value
    return None


def runs_whenever(statement: Statement, at: Statement) -> bool:
    """Whether ``statement``, coming before ``at``, runs on every path to it: it sits in no compound
    statement that ``at`` is outside of."""
    return not _is_conditional(statement, at)


def _is_conditional(statement: Statement, at: Statement) -> bool:
    """Whether ``statement`` sits in a compound statement that does not also hold ``at``; a ``with`` body always runs."""
    return any(block not in at.enclosing for block in statement.enclosing if not isinstance(block, cst.With))


def module_alias(analysis: ModuleAnalysis, module: str) -> str | None:
    """The local name the module binds to ``module`` itself (``tf`` for ``import tensorflow as tf``)."""
    names = [local for local, target in analysis.imports.aliases.items() if target == module]
    if not names:
        return None
    return "tf" if module == "tensorflow" and "tf" in names else sorted(names)[0]


def inside_tape(statement: Statement, tape_node: cst.CSTNode) -> bool:
    return any(block is tape_node for block in statement.enclosing)


def in_loop(analysis: ModuleAnalysis, node: cst.CSTNode) -> bool:
    """Whether ``node`` sits in a ``for`` or ``while`` body of its own function (or module)."""
    scope = analysis.scope_of(node)
    for ancestor in analysis.ancestors(node):
        if ancestor is scope:
            return False
        if isinstance(ancestor, (cst.For, cst.While)):
            return True
    return False


def chains(node: cst.CSTNode) -> set[str]:
    """Every name and attribute chain (``self.w``) an expression reads, longest chains and their heads."""
    found: set[str] = set()

    class _Chains(cst.CSTVisitor):
        def visit_Attribute(self, attribute: cst.Attribute) -> bool:
            chain = dotted(attribute)
            if chain is not None:
                parts = chain.split(".")
                found.update(".".join(parts[: i + 1]) for i in range(len(parts)))
                return False
            return True

        def visit_Name(self, name: cst.Name) -> None:
            found.add(name.value)

        def visit_Lambda(self, node: cst.Lambda) -> bool:
            return False

    node.visit(_Chains())
    return found


def names_read(node: cst.CSTNode) -> frozenset[str]:
    """Names an expression reads; the object of an attribute or subscript store is read too."""
    names: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        # exact types: see ``names.dotted``
        if type(current) is cst.Name:
            names.add(current.value)
        elif type(current) is cst.Attribute or type(current) is cst.Arg:
            stack.append(current.value)
        elif type(current) is cst.Lambda:
            stack.append(current.body)
        elif type(current) is cst.FunctionDef or type(current) is cst.ClassDef:
            continue
        else:
            stack.extend(children(current))
    return frozenset(names)


def names_assigned(node: cst.CSTNode) -> frozenset[str]:
    names: set[str] = set()
    targets: list[cst.CSTNode] = []
    if isinstance(node, cst.Assign):
        targets = [t.target for t in node.targets]
    elif isinstance(node, (cst.AnnAssign, cst.AugAssign)):
        targets = [node.target]
    elif isinstance(node, (cst.For,)):
        targets = [node.target]
    elif isinstance(node, cst.With):
        targets = [item.asname.name for item in node.items if item.asname is not None]
    elif isinstance(node, (cst.FunctionDef, cst.ClassDef)):
        names.add(node.name.value)
    elif isinstance(node, (cst.Import, cst.ImportFrom)) and not isinstance(node.names, cst.ImportStar):
        for alias in node.names:
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                names.add(alias.asname.name.value)
            else:
                names.add((dotted(alias.name) or "").split(".")[0])
    for target in targets:
        names.update(target_names(target))
    return frozenset(names)


def target_names(target: cst.CSTNode) -> set[str]:
    """The names an assignment target binds."""
    if isinstance(target, cst.Name):
        return {target.value}
    if isinstance(target, (cst.Tuple, cst.List)):
        names: set[str] = set()
        for element in target.elements:
            names.update(target_names(element.value))
        return names
    if isinstance(target, cst.StarredElement):
        return target_names(target.value)
    return set()


def _attribute_targets(target: cst.CSTNode) -> set[str]:
    if isinstance(target, (cst.Tuple, cst.List)):
        return {name for element in target.elements for name in _attribute_targets(element.value)}
    if isinstance(target, cst.StarredElement):
        return _attribute_targets(target.value)
    name = dotted(target) if isinstance(target, cst.Attribute) else None
    return {name} if name is not None else set()


def _small_targets(small: cst.CSTNode) -> list[cst.CSTNode]:
    if isinstance(small, cst.Assign):
        return [t.target for t in small.targets]
    if isinstance(small, (cst.AugAssign, cst.AnnAssign)):
        return [small.target]
    return []


def attributes_assigned(statement: cst.CSTNode) -> set[str]:
    """The dotted names (``self.pred``) a line-level statement assigns."""
    if not isinstance(statement, cst.SimpleStatementLine):
        return set()
    return {name for small in statement.body for target in _small_targets(small) for name in _attribute_targets(target)}


def attribute_values(statement: cst.CSTNode, name: str) -> list[cst.CSTNode]:
    """What a line-level statement assigns to the dotted name ``name``: the whole value when it is unpacked,
    and an augmented assignment's old value too."""
    values: list[cst.CSTNode] = []
    for small in statement.body if isinstance(statement, cst.SimpleStatementLine) else ():
        value = getattr(small, "value", None)
        if value is None or not any(name in _attribute_targets(t) for t in _small_targets(small)):
            continue
        values.append(value)
        if isinstance(small, cst.AugAssign):
            values.append(small.target)
    return values


# --- what a statement assigns --------------------------------------------------------------------


@dataclass
class Binding:
    """One way a name got its value.

    kind: "value" (``name = value``), "unpacked" (``a, name = value``),
    "loop" (``for name in value``), "param" (a parameter of ``function``),
    "augmented" (``name += value``) or "other" (import, def, with ... as).
    """

    kind: str
    statement: cst.CSTNode  # the line-level statement that binds the name
    value: cst.BaseExpression | None = None
    function: cst.FunctionDef | None = None
    param: cst.Param | None = None


def bindings_in(statement: cst.CSTNode, name: str) -> list[Binding]:
    """Every value a line-level statement gives ``name``, with how: tuple unpacking and loops give their whole value."""
    if isinstance(statement, cst.SimpleStatementLine):
        found = []
        for small in statement.body:
            if isinstance(small, cst.Assign):
                for target in small.targets:
                    if isinstance(target.target, cst.Name) and target.target.value == name:
                        found.append(Binding("value", statement, small.value))
                    elif isinstance(target.target, (cst.Tuple, cst.List)) and name in target_names(target.target):
                        found.append(Binding("unpacked", statement, small.value))
            elif isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name) and small.target.value == name:
                found.append(Binding("value", statement, small.value))
            elif isinstance(small, cst.AugAssign) and isinstance(small.target, cst.Name) and small.target.value == name:
                found.append(Binding("augmented", statement, small.value))
        return found or [Binding("other", statement)]
    if isinstance(statement, cst.For) and name in target_names(statement.target):
        return [Binding("loop", statement, statement.iter)]
    return [Binding("other", statement)]


def assigned_value(statement: cst.CSTNode, name: str) -> cst.BaseExpression | None:
    """The value of ``name = value`` (``a = name = value`` and ``name: T = value`` too) in a line-level statement."""
    for binding in bindings_in(statement, name):
        if binding.kind == "value":
            return binding.value
    return None


def lone_assignment(statement: cst.CSTNode) -> tuple[str, cst.BaseExpression] | None:
    """``name = value`` as a line of its own, one target and a bare name: (name, value). Such a line can be
    moved or rewritten whole without touching any other binding."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    if isinstance(small, cst.Assign) and len(small.targets) == 1 and isinstance(small.targets[0].target, cst.Name):
        return small.targets[0].target.value, small.value
    return None


def statement_values(statement: cst.CSTNode) -> list[cst.CSTNode]:
    """What the names a statement binds are computed from, whichever name: assigned values, an augmented
    assignment's target (its old value), a loop's iterable, a ``with``'s items."""
    values: list[cst.CSTNode] = []
    if isinstance(statement, cst.SimpleStatementLine):
        for small in statement.body:
            if isinstance(small, cst.Assign):
                values.append(small.value)
            elif isinstance(small, cst.AugAssign):
                values.extend([small.value, small.target])
            elif isinstance(small, cst.AnnAssign) and small.value is not None:
                values.append(small.value)
    elif isinstance(statement, cst.For):
        values.append(statement.iter)
    elif isinstance(statement, cst.With):
        values.extend(item.item for item in statement.items)
    return values


class _StatementLister:
    """The statements of one scope in source order, without descending into nested scopes."""

    def __init__(self, scope: CODE_SCOPE):
        self.statements: list[Statement] = []
        body = scope.body.body if isinstance(scope, cst.FunctionDef) else scope.body
        self._walk(body, ())

    def _add(self, node: cst.SimpleStatementLine | cst.BaseCompoundStatement, assigned: Iterable[str], read: Iterable[str],
             enclosing: tuple[cst.CSTNode, ...]) -> None:
        self.statements.append(Statement(node, len(self.statements), frozenset(assigned), frozenset(read), enclosing))

    def _walk(self, body: Sequence[cst.CSTNode], enclosing: tuple[cst.CSTNode, ...]) -> None:
        for node in body:
            if isinstance(node, cst.SimpleStatementLine):
                assigned: set[str] = set()
                read: set[str] = set()
                for small in node.body:
                    assigned |= names_assigned(small)
                    if isinstance(small, cst.Assign):
                        read |= names_read(small.value)
                        read |= {n for t in small.targets if not isinstance(t.target, (cst.Name, cst.Tuple, cst.List)) for n in names_read(t.target)}
                    elif isinstance(small, cst.AugAssign):
                        read |= names_read(small.value) | names_read(small.target)
                    elif isinstance(small, cst.AnnAssign):
                        read |= names_read(small.value) if small.value is not None else set()
                    elif not isinstance(small, (cst.Import, cst.ImportFrom)):
                        read |= names_read(small)
                self._add(node, assigned, read, enclosing)
            elif isinstance(node, (cst.FunctionDef, cst.ClassDef)):
                self._add(node, names_assigned(node), set(), enclosing)
            elif isinstance(node, cst.With):
                read = set()
                for item in node.items:
                    read |= names_read(item.item)
                self._add(node, names_assigned(node), read, enclosing)
                self._walk(node.body.body, enclosing + (node,))
            elif isinstance(node, cst.BaseCompoundStatement) and (
                    isinstance(node, (cst.For, cst.While, cst.If, cst.Try, cst.TryStar)) or hasattr(node, "body")):
                self._walk_compound(node, enclosing)

    def _walk_compound(self, node: cst.BaseCompoundStatement, enclosing: tuple[cst.CSTNode, ...]) -> None:
        header_reads: set[str] = set()
        if isinstance(node, cst.For):
            header_reads = set(names_read(node.iter))
        elif isinstance(node, (cst.While, cst.If)):
            header_reads = set(names_read(node.test))
        self._add(node, names_assigned(node), header_reads, enclosing)
        inner = enclosing + (node,)
        body = getattr(node, "body", None)
        if isinstance(body, cst.BaseSuite) and isinstance(body, cst.IndentedBlock):
            self._walk(body.body, inner)
        for part in ("orelse", "finalbody"):
            other = getattr(node, part, None)
            while other is not None:
                other_body = getattr(other, "body", None)
                if isinstance(other_body, cst.IndentedBlock):
                    self._walk(other_body.body, inner)
                other = getattr(other, "orelse", None) if isinstance(other, cst.If) else None
        for handler in getattr(node, "handlers", ()):
            if isinstance(handler.body, cst.IndentedBlock):
                self._walk(handler.body.body, inner)
