"""The parts of a module that can be analysed apart: a cheap prepass before LibCST.

A module's top-level statements are grouped into *regions*: statements that share
no module-level name or attribute with each other cannot change each other's
gradients, so each region is analysed on its own, with the module's imports,
and a region no rule has a marker in is never given to LibCST at all.

Each top-level statement is split off by a scan of the lines, checked and read
with CPython's own parser and symbol table (many times faster than LibCST), and
remembered by its text: when an editor changes one function, only that
function's statement is read again and only its region analysed again.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import re
import symtable
import sys
import threading
import types
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Sequence

from gradfix.source import (
    MAX_NESTING,
    SourceError,
    deepest_nesting_over,
    guard_parse,
    python_tree,
    quiet_compile_warnings,
)
from gradfix.static.api import DYNAMIC_ATTRIBUTE_CALLS, DYNAMIC_ATTRIBUTE_METHODS, DYNAMIC_ATTRIBUTES
from gradfix.static.piecewise import HEADER, MEMBER, TOP

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
# a line in column 0 that continues the statement above it rather than starting one
_CONTINUES = re.compile(r"(else|elif|except|finally)\b|[)\]}]")
_DECORATED = re.compile(r"(async\s+def|def|class)\b")


@dataclass(frozen=True)
class StatementFacts:
    """What the prepass knows of one top-level statement, from its text alone."""

    shared: bool  # imports, the module docstring, leading comments: part of every region
    binds: frozenset[str]  # module-level names it assigns
    reads: frozenset[str]  # module-level names it (or any function in it) reads
    attributes_bound: frozenset[str]  # ``x.name = ...`` and method names
    attributes_read: frozenset[str]
    reads_any_attribute: bool = False  # ``getattr(self, ...)``, ``self.layers``: may reach whatever attribute is bound
    class_name: str = ""  # for a class split into its statements
    class_body: tuple[int, ...] = ()  # for a class: where its header ends and each statement of its body starts (lines from 0)
    # names bound to what no other statement can change (see ``settled_binding``): module-level names,
    # and attributes a class's statement binds; and the module-level names those values are made from
    settled: frozenset[str] = frozenset()
    settled_attributes: frozenset[str] = frozenset()
    settled_from: frozenset[str] = frozenset()
    class_reads: frozenset[str] = frozenset()  # names only a class's own body reads: perhaps the class's variables
    dynamic_roots: frozenset[str] = frozenset()  # what ``getattr(x, ...)``, ``x.layers`` read from ("" when no name)
    # attributes read only through a literal (``", ".join``) or a module-level name no scope of the statement binds
    # (``os.path.join``, ``tf.keras``), each with those names ("'" for a literal): no class's attribute when the
    # name is an imported module
    attribute_roots: frozenset[tuple[str, str]] = frozenset()
    stored_roots: frozenset[str] = frozenset()  # names whose attributes it assigns (``tf.x = ...``)


@dataclass(frozen=True)
class Piece:
    """A top-level statement, or one statement of a top-level class, with the comments and blank lines after it."""

    text: str
    first_line: int  # in the module, from 1
    line_count: int
    statement: StatementFacts
    header: "Piece | None" = None  # the class line(s) a statement of a class body is analysed under


@dataclass(frozen=True)
class Region:
    """Top-level statements analysed together, and where their lines sit in the module."""

    text: str
    segments: tuple[tuple[int, int, int], ...]  # (first line in text, first line in module, line count)
    line_count: int
    parts: tuple[tuple[str, str], ...] = ()  # (role, text) of each piece, for ``piecewise.joined_module``

    def module_line(self, line: int) -> int | None:
        """The module's line for ``line`` of the region's text (one past the end maps past the last piece)."""
        for text_first, module_first, count in self.segments:
            if text_first <= line < text_first + count:
                return module_first + line - text_first
        if line == self.line_count + 1 and self.segments:
            _, module_first, count = self.segments[-1]
            return module_first + count
        return None

    def module_lines(self, first: int, last: int) -> tuple[int, int] | None:
        """Lines ``first..last`` of the text in the module, if they are contiguous there too."""
        start, end = self.module_line(first), self.module_line(last)
        if start is None or end is None or end - start != last - first:
            return None
        return start, end


def split_lines(text: str) -> list[str]:
    return _LINE.findall(text)


def _starts_statement(line: str) -> bool:
    return bool(line) and line[0] not in " \t\f\r\n#" and not _CONTINUES.match(line)


def _pieces_by_scan(lines: Sequence[str]) -> list[tuple[int, int]]:
    """Line ranges ``[start, end)`` (from 0) of what look like top-level statements; checked by parsing them."""
    starts: list[int] = [0]
    decorated = False
    for index, line in enumerate(lines):
        if not _starts_statement(line):
            continue
        if decorated and (line.startswith("@") or _DECORATED.match(line)):
            decorated = not _DECORATED.match(line)
            continue
        decorated = line.startswith("@")
        if index != 0:
            starts.append(index)
    starts.append(len(lines))
    return [(a, b) for a, b in zip(starts, starts[1:]) if b > a]


def _pieces_by_tree(tree: ast.Module, lines: Sequence[str]) -> list[tuple[int, int]]:
    """The same ranges from CPython's tree of the whole module, for text the scan splits wrongly."""
    starts = [0]
    for statement in tree.body[1:]:
        first = min([statement.lineno] + [d.lineno for d in getattr(statement, "decorator_list", ())])
        starts.append(first - 1)
    starts.append(len(lines))
    return [(a, b) for a, b in zip(starts, starts[1:]) if b > a]


class _Unparsable(Exception):
    pass


_cache: "OrderedDict[str, StatementFacts]" = OrderedDict()
_cache_lock = threading.Lock()
CACHE_SIZE = 4096


def _read_statement(path: str, text: str, top_level: bool = False) -> StatementFacts:
    with _cache_lock:
        known = _cache.get(text)
        if known is not None:
            _cache.move_to_end(text)
            return known
    with quiet_compile_warnings():
        statement = _statement_facts(path, text, top_level)
    with _cache_lock:
        _cache[text] = statement
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return statement


def _statement_facts(path: str, text: str, top_level: bool = False) -> StatementFacts:
    split = _class_by_scan(path, text) if top_level and text.startswith(("class", "@")) else None
    if split is not None:
        return split
    try:
        tree = compile(text, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        raise _Unparsable from None
    assert isinstance(tree, ast.Module), "an \"exec\" parse is a module"
    if len(text) > MAX_NESTING and deepest_nesting_over(tree, text) is not None:
        raise _Unparsable
    body = tree.body
    class_name, class_body = _class_body(body)
    if class_body:
        # a class split into its statements: each is read on its own, so the class as a whole needs no more
        return StatementFacts(False, frozenset({class_name}), frozenset(), frozenset(), frozenset(), False, class_name, class_body)
    try:
        code = compile(tree, path, "exec", dont_inherit=True)
        table = symtable.symtable(text, path, "exec")
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        raise _Unparsable from None
    shared = not body or all(
        isinstance(node, (ast.Import, ast.ImportFrom))
        or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str))
        for node in body
    )
    binds, reads, class_reads = _module_names(table)
    nodes = list(ast.walk(tree))  # walked once: the readers below each pass over every node
    if INLINED_COMPREHENSIONS:
        inlined = _comprehension_only_names(nodes)
        binds, reads, class_reads = binds - inlined, reads - inlined, class_reads - inlined
    reads -= _annotation_only_names(nodes)
    attributes_bound, methods, attribute_targets = _attributes_stored(body)
    # every name the bytecode looks up: attribute names among them (and some module names: more joins, never fewer)
    attributes_read = _names_looked_up(code)
    reads_any = bool(reads & DYNAMIC_ATTRIBUTE_CALLS or attributes_read & DYNAMIC_ATTRIBUTES or methods & DYNAMIC_ATTRIBUTE_METHODS)
    settled: frozenset[str] = frozenset()
    settled_attributes: frozenset[str] = frozenset()
    if len(body) == 1:
        settled = (settled_binding(body[0]) or frozenset()) & frozenset(binds)
        if isinstance(body[0], ast.ClassDef):
            settled_attributes = _settled_class_names(body[0]) - attribute_targets
    return StatementFacts(shared, frozenset(binds), frozenset(reads), frozenset(_plain(attributes_bound)),
                     frozenset(_plain(attributes_read)), reads_any, class_name, class_body,
                     settled, settled_attributes, frozenset(reads) if _binds_values(body) else frozenset(),
                     frozenset(class_reads), _dynamic_roots(nodes) if reads_any else frozenset(),
                     *_attribute_roots(nodes))


# Python 3.12 inlines list, set and dict comprehensions (PEP 709): symtable shows their targets as the names of the
# scope around them, which no other statement can read
INLINED_COMPREHENSIONS = sys.version_info >= (3, 12)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _comprehension_only_names(nodes: list[ast.AST]) -> set[str]:
    """Names bound by a comprehension's ``for`` and named nowhere outside a comprehension."""
    inside: set[int] = set()
    targets: set[str] = set()
    for node in nodes:
        if isinstance(node, _COMPREHENSIONS) and id(node) not in inside:
            inside.update(id(inner) for inner in ast.walk(node) if inner is not node)
        if isinstance(node, ast.comprehension):
            targets.update(name.id for name in ast.walk(node.target) if isinstance(name, ast.Name))
    outside = {node.id for node in nodes if isinstance(node, ast.Name) and id(node) not in inside}
    return targets - outside


def _annotation_only_names(nodes: list[ast.AST]) -> set[str]:
    """Names read in annotations alone (``_F = TypeVar(...)`` in ``def f(x: _F) -> _F``): types, no values that
    carry gradients, so no tie to the statement that binds them."""
    annotations: list[ast.expr] = []
    for node in nodes:
        if isinstance(node, ast.arg) and node.annotation is not None:
            annotations.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            annotations.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            annotations.append(node.annotation)
    inside = {id(name) for annotation in annotations for name in ast.walk(annotation)}
    named = {name.id for annotation in annotations for name in ast.walk(annotation) if isinstance(name, ast.Name)}
    elsewhere = {node.id for node in nodes if isinstance(node, ast.Name) and id(node) not in inside}
    return named - elsewhere


def _attribute_roots(nodes: list[ast.AST]) -> tuple[frozenset[tuple[str, str]], frozenset[str]]:
    """``attribute_roots`` and ``stored_roots`` of StatementFacts."""
    bound_here = {node.id for node in nodes if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load)}
    bound_here |= {node.arg for node in nodes if isinstance(node, ast.arg)}
    bound_here |= {alias.asname or alias.name.split(".")[0] for node in nodes
                   if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
    roots: dict[str, set[str]] = {}
    unknown: set[str] = set()
    stored: set[str] = set()
    for node in nodes:
        if not isinstance(node, ast.Attribute):
            continue
        base = node.value
        while isinstance(base, ast.Attribute):
            base = base.value
        if isinstance(base, (ast.Constant, ast.JoinedStr)):
            roots.setdefault(node.attr, set()).add("'")
        elif isinstance(base, ast.Name) and base.id not in bound_here:
            roots.setdefault(node.attr, set()).add(base.id)
            if not isinstance(node.ctx, ast.Load):
                stored.add(base.id)
        else:
            unknown.add(node.attr)
    return frozenset((attr, root) for attr, found in roots.items() if attr not in unknown for root in found), frozenset(stored)


# what a settled value may be made of: no call (it could return a model), no lambda, no empty container to fill
_SETTLED_NODES = (
    ast.Constant, ast.Name, ast.Attribute, ast.Subscript, ast.Slice, ast.Tuple, ast.List, ast.Set, ast.Dict,
    ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.JoinedStr, ast.FormattedValue,
    ast.ListComp, ast.SetComp, ast.comprehension, ast.Starred, ast.expr_context, ast.operator, ast.unaryop,
    ast.boolop, ast.cmpop,
)


def _settled_value(value: ast.expr) -> bool:
    if isinstance(value, (ast.List, ast.Set, ast.Tuple)) and not value.elts:
        return False
    if isinstance(value, ast.Dict) and not value.keys:
        return False
    return all(isinstance(node, _SETTLED_NODES) for node in ast.walk(value))


def settled_binding(statement: ast.stmt) -> frozenset[str] | None:
    """The names ``statement`` binds, if it binds each to what no other statement can change, else None.

    A function or class it defines, or a value of constants and names alone, in plain assignments or the branches of
    an ``if``: another statement may read these, but cannot change what a third one reads (a call could return a model
    that others train, and an empty list is there to be filled).
    """
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return frozenset({statement.name})
    if isinstance(statement, ast.Assign):
        targets, value = statement.targets, statement.value
    elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
        targets, value = [statement.target], statement.value
    elif isinstance(statement, ast.If):
        names: frozenset[str] = frozenset()
        for inner in [*statement.body, *statement.orelse]:
            bound = settled_binding(inner)
            if bound is None:
                return None
            names |= bound
        return names
    elif isinstance(statement, ast.Pass) or (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)):
        return frozenset()  # a docstring or ``pass`` binds nothing
    else:
        return None
    if not all(isinstance(target, ast.Name) for target in targets) or not _settled_value(value):
        return None
    return frozenset(target.id for target in targets if isinstance(target, ast.Name))  # all are, checked above


def _dynamic_roots(nodes: list[ast.AST]) -> frozenset[str]:
    """The names dynamic attribute access starts from: ``self`` in ``getattr(self, name)`` and ``self.layers``."""
    roots: set[str] = set()
    for node in nodes:
        base = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in DYNAMIC_ATTRIBUTE_CALLS:
            base = node.args[0] if node.args else None
        elif isinstance(node, ast.Attribute) and node.attr in DYNAMIC_ATTRIBUTES:
            base = node.value
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in DYNAMIC_ATTRIBUTE_METHODS:
            roots.add("")
            continue
        else:
            continue
        while isinstance(base, (ast.Attribute, ast.Subscript)):
            base = base.value
        roots.add(base.id if isinstance(base, ast.Name) else "")
    return frozenset(roots)


def _binds_values(body: list[ast.stmt]) -> bool:
    """Whether what the statement binds is a value it computes (a function or class is settled whatever it reads)."""
    statements = body[0].body if len(body) == 1 and isinstance(body[0], ast.ClassDef) else body
    return any(isinstance(statement, (ast.Assign, ast.AnnAssign, ast.If)) for statement in statements)


def _settled_class_names(klass: ast.ClassDef) -> frozenset[str]:
    """The names the class's own statements bind settled, less any another of its statements binds otherwise."""
    settled: set[str] = set()
    unsettled: set[str] = set()
    for item in klass.body:
        bound = settled_binding(item)
        if bound is not None:
            settled |= bound
        else:
            unsettled |= {node.id for node in ast.walk(item) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
    return frozenset(settled - unsettled)


def _plain(names: set[str]) -> set[str]:
    """Dunders (``super().__init__``) would tie every class to every other; ``__dict__`` reaches any attribute."""
    return {name for name in names if name == "__dict__" or not (name.startswith("__") and name.endswith("__"))}


def _names_looked_up(code: types.CodeType) -> set[str]:
    names: set[str] = set()
    pending = [code]
    while pending:
        current = pending.pop()
        names.update(current.co_names)
        pending.extend(const for const in current.co_consts if isinstance(const, types.CodeType))
    return names


_BODIES = ("body", "orelse", "finalbody", "handlers", "cases")


def _attributes_stored(body: list[ast.stmt]) -> tuple[set[str], set[str], set[str]]:
    """Attribute names assigned (``x.name = ...``, a class's methods and variables), every function name defined,
    and the names assigned as ``x.name = ...`` alone."""
    stored: set[str] = set()
    functions: set[str] = set()
    targeted: set[str] = set()
    pending: list[ast.AST] = list(body)
    while pending:
        statement = pending.pop()
        for name in _BODIES:
            pending.extend(getattr(statement, name, None) or ())
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions.add(statement.name)
        elif isinstance(statement, ast.ClassDef):
            for item in statement.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    stored.add(item.name)
                elif isinstance(item, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                    for target in (item.targets if isinstance(item, ast.Assign) else [item.target]):
                        stored.update(t.id for t in _target_parts(target) if isinstance(t, ast.Name))
        targets: list[ast.expr] = []
        if isinstance(statement, ast.Assign):
            targets = statement.targets
        elif isinstance(statement, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor)):
            targets = [statement.target]
        elif isinstance(statement, (ast.With, ast.AsyncWith)):
            targets = [item.optional_vars for item in statement.items if item.optional_vars is not None]
        elif isinstance(statement, ast.Delete):
            targets = statement.targets
        for target in targets:
            targeted.update(t.attr for t in _target_parts(target) if isinstance(t, ast.Attribute))
    return stored | targeted, functions, targeted


def _target_parts(target: ast.expr) -> list[ast.expr]:
    parts, pending = [], [target]
    while pending:
        current = pending.pop()
        if isinstance(current, (ast.Tuple, ast.List)):
            pending.extend(current.elts)
        elif isinstance(current, ast.Starred):
            pending.append(current.value)
        else:
            parts.append(current)
    return parts


_CLASS_LINE = re.compile(r"class\s+(\w+)\b[^#]*:[ \t]*(#.*)?$")


def _class_by_scan(path: str, text: str) -> StatementFacts | None:
    """A top-level class split into its statements by a scan of its lines, as ``_class_body`` splits it, without
    reading the whole class (an edit of one method changes the class's text): each statement is read on its own,
    which checks the scan. None when the scan cannot tell (the facts are then read from the whole class)."""
    lines = split_lines(text)
    at = next((i for i, line in enumerate(lines) if line.startswith("class")), None)
    found = _CLASS_LINE.match(lines[at].rstrip("\r\n")) if at is not None else None
    if at is None or found is None or any(not line.startswith(("@", " ", "\t", ")", "#")) and line.strip()
                                          for line in lines[:at]):
        return None  # a class line across lines, or one with its body on it
    body = [i for i in range(at + 1, len(lines)) if lines[i].strip() and not lines[i].lstrip().startswith("#")]
    indent = _indent_of(lines[body[0]]) if body else ""
    if not indent:
        return None
    candidates: list[int] = []
    decorated = False
    for index in body:
        line = lines[index]
        rest = line[len(indent):]
        if not line.startswith(indent) or not rest or rest[0] in " \t\f\r\n#" or _CONTINUES.match(rest):
            continue
        if decorated and (rest.startswith("@") or _DECORATED.match(rest)):
            decorated = not _DECORATED.match(rest)
            continue
        decorated = rest.startswith("@")
        candidates.append(index)
    if not candidates or candidates[0] != body[0]:
        return None
    try:
        starts = _statement_starts(path, lines, candidates)
        if starts is None:
            return None
        ends = [*starts[1:], len(lines)]
        first = compile("class _:\n" + "".join(lines[starts[0]:ends[0]]), path, "exec", flags=ast.PyCF_ONLY_AST,
                        dont_inherit=True)
        assert isinstance(first, ast.Module) and isinstance(first.body[0], ast.ClassDef), "a class was compiled"
        opening = first.body[0].body
        if len(opening) == 1 and isinstance(opening[0], ast.Expr) and isinstance(opening[0].value, ast.Constant):
            starts = starts[1:]  # the docstring stays with the header
        if len(starts) < 2:
            return None
        header = "".join(lines[: starts[0]])
        checked = compile(header + indent + "pass\n", path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
        if (not isinstance(checked, ast.Module) or len(checked.body) != 1 or not isinstance(checked.body[0], ast.ClassDef)
                or len(header) > MAX_NESTING and deepest_nesting_over(checked, header) is not None):
            return None
    except (SyntaxError, RecursionError, MemoryError, ValueError, IndexError):
        return None
    return StatementFacts(False, frozenset({found.group(1)}), frozenset(), frozenset(), frozenset(), False, found.group(1),
                          tuple(starts))


MAX_LINES_JOINED = 256  # lines at a class body's indentation that a scan may take for statements, inside one


def _statement_starts(path: str, lines: Sequence[str], candidates: list[int]) -> list[int] | None:
    """Which of the ``candidates`` (lines at a class body's indentation that look like a statement's start) do start
    one: each statement, from one to the next, is read on its own (which a text that ends inside a string or a
    bracket cannot be), a candidate inside a docstring or a bracket joined to the statement before it."""
    starts: list[int] = []
    index = 0
    while index < len(candidates):
        after = index + 1
        while True:
            end = candidates[after] if after < len(candidates) else len(lines)
            try:
                _read_statement(path, "class _:\n" + "".join(lines[candidates[index]:end]))
                break
            except _Unparsable:
                if after >= len(candidates) or after - index > MAX_LINES_JOINED:
                    return None
                after += 1
        starts.append(candidates[index])
        index = after
    return starts


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _class_body(body: list[ast.stmt]) -> tuple[str, tuple[int, ...]]:
    if len(body) != 1 or not isinstance(body[0], ast.ClassDef):
        return "", ()
    statements = body[0].body
    if statements and isinstance(statements[0], ast.Expr) and isinstance(statements[0].value, ast.Constant):
        statements = statements[1:]  # the docstring stays with the header
    if len(statements) < 2 or statements[0].lineno == body[0].lineno:
        return "", ()
    starts = [min([s.lineno] + [d.lineno for d in getattr(s, "decorator_list", ())]) - 1 for s in statements]
    return body[0].name, tuple(starts)


def _module_names(table: symtable.SymbolTable) -> tuple[set[str], set[str], set[str]]:
    """Module-level names bound and read anywhere in the statement, as CPython's own scoping resolves them; and the
    names only a top-level class's own body reads (they may be the class's own variables)."""
    binds: set[str] = set()
    reads: set[str] = set()
    class_reads: set[str] = set()
    for symbol in table.get_symbols():
        if symbol.is_assigned() or symbol.is_imported() or symbol.is_namespace():
            binds.add(symbol.get_name())
        if symbol.is_referenced():
            reads.add(symbol.get_name())
    other_reads = set(reads)
    pending = [(child, child.get_type() == "class") for child in table.get_children()]
    while pending:
        scope, class_body = pending.pop()
        pending.extend((child, False) for child in scope.get_children())
        for symbol in scope.get_symbols():
            if not symbol.is_global():
                continue
            if symbol.is_referenced():
                reads.add(symbol.get_name())
                (class_reads if class_body else other_reads).add(symbol.get_name())
            if symbol.is_declared_global() and symbol.is_assigned():
                binds.add(symbol.get_name())
    return binds, reads, class_reads - other_reads


def split_module(path: str, text: str) -> list[Piece]:
    """The module's top-level statements, each read once per distinct text. Raises SourceError as Python would."""
    lines = split_lines(text)
    if "__future__" in text or "\x00" in text:
        # where a future import may stand, and a NUL byte, only the whole module can tell
        python_tree(path, text, want_tree=False)
    for attempt in ("scan", "tree"):
        if attempt == "scan":
            ranges = _pieces_by_scan(lines)
        else:
            tree = python_tree(path, text)  # raises the error Python reports for the whole module
            assert tree is not None, "asked for the tree"
            ranges = _pieces_by_tree(tree, lines)
        try:
            pieces = [
                Piece(piece, start + 1, end - start, _read_statement(path, piece, top_level=True))
                for start, end in ranges
                for piece in ["".join(lines[start:end])]
            ]
            return [part for piece in pieces for part in _class_parts(path, piece)]
        except _Unparsable:
            continue
    # the module compiles, yet a statement of it does not on its own (nesting past gradfix's limit)
    guard_parse(path, text)
    raise SourceError(path, "cannot be split into statements")


def _class_parts(path: str, piece: Piece) -> list[Piece]:
    """A class's statements as pieces of their own, each read under the class's header; other pieces as they are."""
    starts = piece.statement.class_body
    if not starts:
        return [piece]
    lines = split_lines(piece.text)
    header_text = "".join(lines[: starts[0]])
    header = Piece(header_text, piece.first_line, starts[0], piece.statement)
    parts = []
    for start, end in zip(starts, [*starts[1:], len(lines)]):
        text = "".join(lines[start:end])
        # read under a bare header: the bases and decorators are the class's, not each statement's
        facts = _read_statement(path, "class _:\n" + text)
        facts = dataclasses.replace(
            facts, binds=facts.binds - {"_"}, settled=facts.settled - {"_"}, shared=False, class_name="", class_body=())
        parts.append(Piece(text, piece.first_line + start, end - start, facts, header))
    return parts


_STAR_IMPORT = re.compile(r"\bimport\s*\*")


def regions(path: str, text: str, worth: Callable[[str], bool] = lambda text: True) -> list[Region] | None:
    """The module's regions worth analysing, or None when it is best analysed whole. Raises SourceError.

    Statements are grouped by what ties them (a module-level object both name, an attribute one stores and the
    other reads, a class one names); a statement that reads a *settled* name (see ``settled_binding``) is not tied
    to the others that read it, but its region holds the statements that bind it, with whatever those need. Only
    regions whose text is ``worth`` it are analysed, and regions that overlap are analysed together, so that no
    statement is analysed twice (each region repeats the imports it reads, so that names resolve as in the module).
    """
    pieces = split_module(path, text)
    own = [i for i, piece in enumerate(pieces) if not piece.statement.shared]
    if len(own) < 2:
        return None
    if any(piece.statement.shared and _STAR_IMPORT.search(piece.text) for piece in pieces):
        return None  # `from keras.layers import *` binds names no statement shows: what ties statements is unknown
    groups, needs = _groups(pieces, own)
    if len(groups) == 1:
        return None
    closures: list[set[int]] = []
    for root in groups:
        reached, pending = {root}, [root]
        while pending:
            for other in needs[pending.pop()]:
                if other not in reached:
                    reached.add(other)
                    pending.append(other)
        closure = {i for group_root in reached for i in groups[group_root]}
        # worth it by what it needs too: a call of a function that holds a tape may tell what its parameters are
        if worth("".join(piece.text for piece in _with_headers([pieces[i] for i in sorted(closure)]))):
            closures.append(closure)
    merged = _merge_overlapping(closures)
    if len(merged) == 1 and len(merged[0]) == len(own):
        return None
    shared = [i for i, piece in enumerate(pieces) if piece.statement.shared and piece.statement.binds]
    found = []
    for chosen in merged:
        reads = frozenset().union(*(pieces[i].statement.reads for i in chosen))
        imports = [i for i in shared if pieces[i].statement.binds & reads]
        found.append(_region(_with_headers([pieces[i] for i in sorted(imports + sorted(chosen))])))
    return found


def _merge_overlapping(sets: list[set[int]]) -> list[set[int]]:
    """The unions of the sets that share a member."""
    parent = list(range(len(sets)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    holder: dict[int, int] = {}
    for index, members in enumerate(sets):
        for member in members:
            if member in holder:
                parent[find(index)] = find(holder[member])
            else:
                holder[member] = index
    merged: dict[int, set[int]] = {}
    for index, members in enumerate(sets):
        merged.setdefault(find(index), set()).update(members)
    return sorted(merged.values(), key=min)


def _groups(pieces: Sequence[Piece], own: list[int]) -> tuple[dict[int, list[int]], dict[int, set[int]]]:
    """The groups of statements tied together (by their first statement), and the groups each group's names need."""
    parent = {i: i for i in own}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        a, b = find(i), find(j)
        if a != b:
            parent[a] = b

    # builtins and the imported modules are named by nearly everything and changed by nothing
    imported = frozenset().union(*(p.statement.binds for p in pieces if p.statement.shared))
    bound_here = frozenset().union(*(pieces[i].statement.binds for i in own))
    common = (frozenset(dir(builtins)) | imported) - bound_here
    binders: dict[str, list[int]] = {}
    attribute_binders: dict[str, list[int]] = {}
    class_names: dict[str, set[str]] = {}  # a split class's own variables and methods
    members: dict[str, list[int]] = {}  # who names a class may use any of its statements
    for i in own:
        statement = pieces[i].statement
        for name in statement.binds:
            binders.setdefault(name, []).append(i)
        for name in statement.attributes_bound:
            attribute_binders.setdefault(name, []).append(i)
        header = pieces[i].header
        if header is not None:
            class_name = header.statement.class_name
            members.setdefault(class_name, []).append(i)
            class_names.setdefault(class_name, set()).update(statement.attributes_bound)
    settled = _settled_names(pieces, binders, common, lambda statement: statement.settled)
    settled_attributes = _settled_names(pieces, attribute_binders, common, lambda statement: statement.settled_attributes, settled)
    # a settled name ties a reader to its binders one way only: the reader needs them, while readers that share
    # nothing else stay apart, since none of them can change what another reads
    needs: dict[int, set[int]] = {i: set() for i in own}
    namers: dict[str, int] = {}
    for i in own:
        statement = pieces[i].statement
        names = (statement.reads | statement.binds) - common
        header = pieces[i].header
        if header is not None:
            # a class body's read of one of the class's own variables (``@parameterized(DTYPES)``) is no module name
            names -= (statement.class_reads & class_names[header.statement.class_name]) - frozenset(binders)
        for name in names:
            if name in members:
                if name in settled or name not in binders:
                    needs[i].update(members[name])
                else:
                    for j in members[name]:
                        union(i, j)
            elif name in settled:
                needs[i].update(binders[name])
            elif name in namers:
                union(i, namers[name])
            else:
                namers[name] = i
    # attributes read only off a literal or an imported module are no class's: ``", ".join``, ``os.path.join``
    modules = imported - frozenset().union(*(pieces[i].statement.stored_roots for i in own))
    for i in own:
        statement = pieces[i].statement
        roots: dict[str, set[str]] = {}
        for name, root in statement.attribute_roots:
            roots.setdefault(name, set()).add(root)
        off_modules = {name for name, found in roots.items() if all(root == "'" or root in modules for root in found)}
        for name in statement.attributes_read - off_modules:
            if name in settled_attributes:
                needs[i].update(attribute_binders[name])
            else:
                for j in attribute_binders.get(name, ()):
                    union(i, j)
        if statement.reads_any_attribute and statement.dynamic_roots - common:
            # what it reads is known only when it runs: a stored attribute may be a layer it reaches, but no rule
            # can tell which method or class variable it reads, so those are not needed
            for name, binding in attribute_binders.items():
                if name not in settled_attributes:
                    for j in binding:
                        union(i, j)
    groups: dict[int, list[int]] = {}
    for i in own:
        groups.setdefault(find(i), []).append(i)
    group_needs = {root: {find(j) for i in group for j in needs[i]} - {root} for root, group in groups.items()}
    return groups, group_needs


def _settled_names(pieces: Sequence[Piece], binders: dict[str, list[int]], common: frozenset[str],
                   settled_by: Callable[[StatementFacts], frozenset[str]], module_settled: frozenset[str] | None = None) -> frozenset[str]:
    """The bound names every binder binds settled, each made only from names that are settled too."""
    unsettled = {name for name, binding in binders.items() if any(name not in settled_by(pieces[i].statement) for i in binding)}
    changed = True
    while changed:
        changed = False
        for name, binding in binders.items():
            if name in unsettled:
                continue
            made_from = frozenset().union(*(pieces[i].statement.settled_from for i in binding)) - common - {name}
            if made_from & unsettled or (module_settled is not None and made_from - module_settled):
                unsettled.add(name)
                changed = True
    return frozenset(binders) - unsettled


def _with_headers(pieces: list[Piece]) -> list[Piece]:
    """The pieces in module order, each class statement preceded by its class's header once."""
    ordered: list[Piece] = []
    headers: set[int] = set()
    for piece in pieces:
        if piece.header is not None and id(piece.header) not in headers:
            headers.add(id(piece.header))
            ordered.append(piece.header)
        ordered.append(piece)
    return ordered


def _role(piece: Piece) -> str:
    if piece.header is not None:
        return MEMBER
    return HEADER if piece.statement.class_body else TOP


def _region(pieces: Sequence[Piece]) -> Region:
    texts: list[str] = []
    segments: list[tuple[int, int, int]] = []
    line = 1
    for piece in pieces:
        text = piece.text
        if texts and not texts[-1].endswith(("\n", "\r")):
            texts[-1] += "\n"  # only the module's last line can lack an ending
        texts.append(text)
        segments.append((line, piece.first_line, piece.line_count))
        line += piece.line_count
    return Region("".join(texts), tuple(segments), line - 1, tuple(zip([_role(piece) for piece in pieces], texts)))


def module_parts(path: str, text: str) -> tuple[tuple[str, str], ...]:
    """The (role, text) of each piece of the whole module, for ``piecewise.joined_module``. Raises SourceError."""
    return _region(_with_headers(split_module(path, text))).parts
