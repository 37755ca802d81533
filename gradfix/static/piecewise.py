"""LibCST's tree of a module, joined from the trees of its statements, each parsed once per text.

LibCST takes a quarter of a second to parse a 3,000-line class, and an editor's change touches one method of
it. The regions' prepass has already split the text into top-level statements and the statements of top-level
classes (``gradfix.static.regions``): here each is parsed on its own and the trees are joined, so that after a
change only the statement that changed is parsed again.

A statement is parsed with a stand-in ``pass`` after it, at the level of the statement that follows it in the
text, so that the comments and blank lines after it are split between it and the next statement as a parse of
the whole text splits them. The join equals LibCST's parse of the whole text (``tests/test_incremental_analysis.py``
compares them on a real module and edits of it); where it could differ (indentation or line endings that differ between
statements, a statement LibCST will not parse alone), ``joined_module`` returns None and the whole is parsed.
"""

from __future__ import annotations

import io
import threading
import tokenize
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Sequence

import libcst as cst

from gradfix.edits import split_lines
from gradfix.parsing import parse_module

TOP, HEADER, MEMBER = "top", "header", "member"  # a top-level statement, a class's header lines, a statement of its body
_END = "end"
_CLASS = "class _:"


@dataclass(frozen=True)
class _Parsed:
    """One statement's tree, with the lines after it that the next statement owns."""

    statements: tuple[Any, ...]  # statements; for a class header, its ClassDef, whose body ends with the stand-in
    carry: tuple[cst.EmptyLine, ...]  # leading lines of the statement after it
    block_footer: tuple[cst.EmptyLine, ...]  # a class body's last statement: the body's footer
    module: cst.Module  # the module parsed: its header, footer and defaults
    indent: str | None  # its first indented block's indentation (None: it has none)
    # its first statement with the lines before it that the statement before it carries, by that statement's
    # parse (kept alive here, so that its id stays its own): the same node each time
    carried: "OrderedDict[int, tuple[_Parsed, Any]]" = field(default_factory=OrderedDict, compare=False)


_cache: "OrderedDict[str, _Parsed]" = OrderedDict()
_cache_lock = threading.Lock()
CACHE_SIZE = 4096  # statements, at most; and at most CACHE_CHARACTERS of their text (a tree takes ~20 bytes a character)
CACHE_CHARACTERS = 2_000_000
_cached_characters = [0]


def _indent_of(text: str) -> str:
    return text[: len(text) - len(text.lstrip(" \t"))]


def _source(role: str, text: str, following: str, newline: str, next_indent: str) -> str:
    """The text parsed for a statement: a member under a bare class line, and a stand-in for what follows."""
    stand_in = "" if following == _END else ("pass" if following != MEMBER else next_indent + "pass") + newline
    prefix = _CLASS + newline if role == MEMBER else ""
    return prefix + text + stand_in


def _parse(role: str, source: str, following: str) -> _Parsed:
    with _cache_lock:
        known = _cache.get(source)
        if known is not None:
            _cache.move_to_end(source)
            return known
    module = parse_module(source)
    indent = _first_indent(source)
    body: list[Any] = list(module.body)  # Any: the parts of a text whose shape the prepass has checked
    if role == HEADER:
        parsed = _Parsed((body[0],), tuple(body[0].body.body[-1].leading_lines), (), module, indent)  # the class, with its stand-in
    elif role == TOP:
        if following == _END:
            parsed = _Parsed(tuple(body), (), (), module, indent)
        else:
            parsed = _Parsed(tuple(body[:-1]), tuple(body[-1].leading_lines), (), module, indent)
    else:
        block = body[0].body
        members: list[Any] = list(block.body)
        if following == MEMBER:
            parsed = _Parsed(tuple(members[:-1]), tuple(members[-1].leading_lines), (), module, indent)
        elif following == _END:
            parsed = _Parsed(tuple(members), (), tuple(block.footer), module, indent)
        else:
            parsed = _Parsed(tuple(members), tuple(body[-1].leading_lines), tuple(block.footer), module, indent)
    with _cache_lock:
        if source not in _cache:
            _cached_characters[0] += len(source)
        _cache[source] = parsed
        while len(_cache) > CACHE_SIZE or _cached_characters[0] > CACHE_CHARACTERS and len(_cache) > 1:
            dropped, _ = _cache.popitem(last=False)
            _cached_characters[0] -= len(dropped)
    return parsed


def forget_trees() -> None:
    """Drop the statements' trees kept: after each file of a batch check, and in tests of an analysis from nothing."""
    with _cache_lock:
        _cache.clear()
        _cached_characters[0] = 0


def _first_indent(source: str) -> str | None:
    """The indentation LibCST takes as the module's default: that of the first indented block (None: there is none)."""
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.INDENT:
                return token.string
    except (tokenize.TokenError, SyntaxError):
        return None
    return None


def _first_newline(text: str) -> str:
    for index, char in enumerate(text):
        if char == "\n":
            return "\n"
        if char == "\r":
            return "\r\n" if text[index + 1: index + 2] == "\n" else "\r"
    return "\n"


def _with_leading(statement: Any, carry: Sequence[cst.EmptyLine]) -> Any:
    if not carry:
        return statement
    return statement.with_changes(leading_lines=(*carry, *statement.leading_lines))


@dataclass(frozen=True)
class Joined:
    """A module's tree, and the line where the print of each statement of it and of its classes' bodies starts."""

    module: cst.Module
    # its leading blank and comment lines included, as ``ModuleAnalysis`` counts them; a statement of a class body
    # is there when it is one piece's only statement
    first_lines: dict[cst.CSTNode, int]


CARRIED_KEPT = 4  # the statements before a statement that it is kept joined to: an edit changes one


def _carried_first(one: _Parsed, before: "_Parsed | None", carry: Sequence[cst.EmptyLine]) -> Any:
    """``one``'s first statement with ``carry`` (from ``before``) before its own leading lines, the same node each
    time, so that what is known of an unchanged statement's node stays known across changes."""
    statement = one.statements[0]
    if not carry or before is None:
        return statement
    with _cache_lock:
        known = one.carried.get(id(before))
        if known is not None and known[0] is before:
            one.carried.move_to_end(id(before))
            return known[1]
    made = _with_leading(statement, carry)
    with _cache_lock:
        one.carried[id(before)] = (before, made)
        while len(one.carried) > CARRIED_KEPT:
            one.carried.popitem(last=False)
    return made


def joined_module(parts: Sequence[tuple[str, str]]) -> Joined | None:
    """The tree of the text ``parts`` make, each a (role, text) in order; None when only a parse of the whole can tell."""
    if not parts or parts[0][0] == MEMBER:
        return None
    text_newline = _first_newline("".join(text for _, text in parts[:2]))
    sources: list[tuple[str, str, str]] = []
    for index, (role, text) in enumerate(parts):
        following = parts[index + 1][0] if index + 1 < len(parts) else _END
        if role == HEADER and following != MEMBER or role == MEMBER and index == 0:
            return None
        next_indent = _indent_of(parts[index + 1][1]) if following == MEMBER else ""
        sources.append((role, _source(role, text, following, text_newline, next_indent), following))
    default_indent: str | None = None
    try:
        parsed = [_parse(role, source, following) for role, source, following in sources]
    except (cst.ParserSyntaxError, RecursionError, IndexError, AttributeError):
        return None
    for one in parsed:
        if one.indent is None:
            continue
        default_indent = default_indent or one.indent
        # LibCST records a block's indentation only where it differs from the module's default
        if one.module.default_indent != default_indent:
            return None
    # a statement without a line ending (the module's last line) has no ending to disagree
    if any(one.module.default_newline != text_newline and ("\n" in source or "\r" in source)
           for one, (_, source, _) in zip(parsed, sources)):
        return None
    first, last = parsed[0].module, parsed[-1].module
    body: list[Any] = []
    members: list[Any] = []
    class_line = 0
    klass: Any = None
    carry: tuple[cst.EmptyLine, ...] = ()
    used: set[int] = set()
    first_lines: dict[cst.CSTNode, int] = {}
    line = 1
    before: _Parsed | None = None
    for (role, _, following), one, (_, text) in zip(sources, parsed, parts):
        statements = list(one.statements)
        if id(one) in used:
            # the same text twice: a node may stand in one place only
            statements = [statement.deep_clone() for statement in statements]
            if statements:
                statements[0] = _with_leading(statements[0], carry)
        elif statements:
            statements[0] = _carried_first(one, before, carry)
        used.add(id(one))
        if not statements and carry:
            return None  # lines with no statement to own them (cannot happen in a statement's text)
        if len(statements) == 1:
            header = len(first.header) if line == 1 else 0
            first_lines[statements[0]] = line + header - len(carry)
        line += len(split_lines(text))
        carry, before = one.carry, one
        if role == TOP:
            body.extend(statements)
        elif role == HEADER:
            klass = statements[0]
            assert isinstance(klass, cst.ClassDef), "a header parses to its class"
            members = list(klass.body.body[:-1])
            class_line = first_lines.pop(klass)
        else:
            members.extend(statements)
            if following != MEMBER:
                assert klass is not None, "a member follows its header"
                block = klass.body.with_changes(body=members, footer=one.block_footer)
                body.append(klass.with_changes(body=block))
                first_lines[body[-1]] = class_line
                klass, members = None, []
    module = cst.Module(
        body=body, header=first.header, footer=last.footer,
        encoding=first.encoding, default_indent=default_indent or first.default_indent,
        default_newline=text_newline, has_trailing_newline=last.has_trailing_newline)
    return Joined(module, first_lines)
