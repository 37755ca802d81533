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
import threading
import types
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

from gradfix.static.api import DYNAMIC_ATTRIBUTE_CALLS, DYNAMIC_ATTRIBUTE_METHODS, DYNAMIC_ATTRIBUTES
from gradfix.source import MAX_NESTING, SourceError, deepest_nesting_over, guard_parse, python_tree

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


def _read_statement(path: str, text: str) -> StatementFacts:
    with _cache_lock:
        known = _cache.get(text)
        if known is not None:
            _cache.move_to_end(text)
            return known
    statement = _statement_facts(path, text)
    with _cache_lock:
        _cache[text] = statement
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return statement


def _statement_facts(path: str, text: str) -> StatementFacts:
    try:
        tree = compile(text, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
        code = compile(tree, path, "exec", dont_inherit=True)
        table = symtable.symtable(text, path, "exec")
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        raise _Unparsable from None
    if len(text) > MAX_NESTING and deepest_nesting_over(tree, text) is not None:
        raise _Unparsable
    body = tree.body
    shared = not body or all(
        isinstance(node, (ast.Import, ast.ImportFrom))
        or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str))
        for node in body
    )
    binds, reads = _module_names(table)
    attributes_bound, methods = _attributes_stored(body)
    # every name the bytecode looks up: attribute names among them (and some module names: more joins, never fewer)
    attributes_read = _names_looked_up(code)
    reads_any = bool(reads & DYNAMIC_ATTRIBUTE_CALLS or attributes_read & DYNAMIC_ATTRIBUTES or methods & DYNAMIC_ATTRIBUTE_METHODS)
    return StatementFacts(shared, frozenset(binds), frozenset(reads), frozenset(_plain(attributes_bound)),
                     frozenset(_plain(attributes_read)), reads_any, *_class_body(body))


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


def _attributes_stored(body: list[ast.stmt]) -> tuple[set[str], set[str]]:
    """Attribute names assigned (``x.name = ...``, a class's methods and variables), and every function name defined."""
    stored: set[str] = set()
    functions: set[str] = set()
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
            stored.update(t.attr for t in _target_parts(target) if isinstance(t, ast.Attribute))
    return stored, functions


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


def _module_names(table: symtable.SymbolTable) -> tuple[set[str], set[str]]:
    """Module-level names bound and read anywhere in the statement, as CPython's own scoping resolves them."""
    binds: set[str] = set()
    reads: set[str] = set()
    for symbol in table.get_symbols():
        if symbol.is_assigned() or symbol.is_imported() or symbol.is_namespace():
            binds.add(symbol.get_name())
        if symbol.is_referenced():
            reads.add(symbol.get_name())
    pending = list(table.get_children())
    while pending:
        scope = pending.pop()
        pending.extend(scope.get_children())
        for symbol in scope.get_symbols():
            if not symbol.is_global():
                continue
            if symbol.is_referenced():
                reads.add(symbol.get_name())
            if symbol.is_declared_global() and symbol.is_assigned():
                binds.add(symbol.get_name())
    return binds, reads


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
            ranges = _pieces_by_tree(tree, lines)
        try:
            pieces = [
                Piece(piece, start + 1, end - start, _read_statement(path, piece))
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
        facts = dataclasses.replace(facts, binds=facts.binds - {"_"}, shared=False, class_name="", class_body=())
        parts.append(Piece(text, piece.first_line + start, end - start, facts, header))
    return parts


def regions(path: str, text: str) -> list[Region] | None:
    """The module's regions, or None when it is one region (analysed as the module itself). Raises SourceError.

    Each region holds the imports it reads, so that names resolve as in the module.
    """
    pieces = split_module(path, text)
    own = [i for i, piece in enumerate(pieces) if not piece.statement.shared]
    if len(own) < 2:
        return None
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

    # statements that name the same module-level object may change each other's values (``base.trainable = False``);
    # builtins and the imported modules are named by nearly everything and changed by nothing
    imported = frozenset().union(*(p.statement.binds for p in pieces if p.statement.shared))
    bound_here = frozenset().union(*(pieces[i].statement.binds for i in own))
    common = (frozenset(dir(builtins)) | imported) - bound_here
    # who names a class may use any of its statements (a class's own statements do not name it)
    members: dict[str, list[int]] = {}
    for i in own:
        if pieces[i].header is not None:
            members.setdefault(pieces[i].header.statement.class_name, []).append(i)
    namers: dict[str, int] = {}
    attribute_binders: dict[str, list[int]] = {}
    for i in own:
        statement = pieces[i].statement
        for name in (statement.reads | statement.binds) - common:
            if name in members:
                for j in members[name]:
                    union(i, j)
            elif name in namers:
                union(i, namers[name])
            else:
                namers[name] = i
        for name in statement.attributes_bound:
            attribute_binders.setdefault(name, []).append(i)
    every_binder = sorted({j for binders in attribute_binders.values() for j in binders})
    for i in own:
        statement = pieces[i].statement
        for name in statement.attributes_read:
            for j in attribute_binders.get(name, ()):
                union(i, j)
        if statement.reads_any_attribute:
            for j in every_binder:
                union(i, j)
    groups: dict[int, list[int]] = {}
    for i in own:
        groups.setdefault(find(i), []).append(i)
    if len(groups) == 1:
        return None
    shared = [i for i, piece in enumerate(pieces) if piece.statement.shared and piece.statement.binds]
    found = []
    for members in groups.values():
        reads = frozenset().union(*(pieces[i].statement.reads for i in members))
        imports = [i for i in shared if pieces[i].statement.binds & reads]
        found.append(_region(_with_headers([pieces[i] for i in sorted(imports + members)])))
    return found


def _with_headers(pieces: list[Piece]) -> list[Piece]:
    """The pieces in module order, each class statement preceded by its class's header once."""
    ordered: list[Piece] = []
    for piece in pieces:
        if piece.header is not None and not any(p is piece.header for p in ordered):
            ordered.append(piece.header)
        ordered.append(piece)
    return ordered


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
    return Region("".join(texts), tuple(segments), line - 1)
