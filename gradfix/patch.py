"""Unified diffs that ``git apply`` and ``patch -p1`` accept, and reading them back with unidiff."""

from __future__ import annotations

import difflib
import hashlib
import os
from typing import Iterable

import unidiff

from gradfix.edits import split_lines
from gradfix.model import Fix

NO_NEWLINE = "\\ No newline at end of file\n"


def diff_path(path: str) -> str:
    """The path as it appears after ``a/`` and ``b/``: relative, with forward slashes."""
    relative = os.path.relpath(path) if os.path.isabs(path) else os.path.normpath(path)
    if relative.startswith(".."):
        relative = os.path.abspath(path).lstrip("/")
    return relative.replace(os.sep, "/")


_C_ESCAPES = {"\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f", "\r": "\\r",
              '"': '\\"', "\\": "\\\\"}
_C_UNESCAPES = {escaped[1]: plain for plain, escaped in _C_ESCAPES.items()}


def _needs_quotes(name: str) -> bool:
    return any(ord(c) < 0x20 or c in '"\\\x7f' for c in name)


def quote_name(name: str) -> str:
    """A name as git writes it in a diff: in C-style quotes when it holds a control character, `"` or `\\`."""
    if not _needs_quotes(name):
        return name
    out = []
    for character in name:
        if character in _C_ESCAPES:
            out.append(_C_ESCAPES[character])
        elif ord(character) < 0x20 or character == "\x7f":
            out.append(f"\\{ord(character):03o}")
        else:
            out.append(character)
    return '"' + "".join(out) + '"'


def unquote_name(name: str) -> str:
    """A name from a diff's ``---``/``+++`` line, with git's C-style quotes undone (octal escapes are UTF-8 bytes)."""
    if len(name) < 2 or not (name.startswith('"') and name.endswith('"')):
        return name
    body, out, index = name[1:-1], bytearray(), 0
    while index < len(body):
        character = body[index]
        if character != "\\" or index + 1 == len(body):
            out += character.encode("utf-8", "surrogateescape")
            index += 1
            continue
        following = body[index + 1]
        if following in "01234567" and len(body) >= index + 4 and all(c in "01234567" for c in body[index + 1:index + 4]):
            out.append(int(body[index + 1:index + 4], 8) & 0xFF)
            index += 4
        else:
            out += _C_UNESCAPES.get(following, following).encode("utf-8", "surrogateescape")
            index += 2
    return out.decode("utf-8", "surrogateescape")


def make_diff(path: str, old_text: str, new_text: str, context: int = 3) -> str:
    """The unified diff from ``old_text`` to ``new_text``; empty when they are equal."""
    if old_text == new_text:
        return ""
    name = diff_path(path)
    old_lines = split_lines(old_text)
    new_lines = split_lines(new_text)
    # a name with a newline (or another control character) would end the header line: git quotes it
    old_name, new_name = quote_name(f"a/{name}"), quote_name(f"b/{name}")
    # an unquoted name with a space ends at a tab, as git writes it, or `patch -p1` cuts it at the space
    tab = "\t" if " " in name and not _needs_quotes(name) else ""
    out: list[str] = [f"--- {old_name}{tab}\n", f"+++ {new_name}{tab}\n"]
    lines = difflib.unified_diff(old_lines, new_lines, n=context)
    next(lines), next(lines)  # its own header (a removed line "-- x" would look like one): written above
    for line in lines:
        if line.endswith("\n"):
            out.append(line)
        elif line.endswith("\r"):
            # a line of a bare-CR file is whole: the diff's own line break follows it, with no marker
            out.append(line + "\n")
        else:
            # The last line of a file without a final newline: git marks it explicitly.
            out.append(line + "\n")
            out.append(NO_NEWLINE)
    return "".join(out)


HEADER_PREFIX = "# gradfix: "
SOURCE_HASH_PREFIX = "sha256 of the file before: "


def verification_text(verified: bool | None) -> str:
    return {True: "verified (the gradients flow after it)", False: "not verified (gradients still missing after it)",
            None: "not verified (no re-run)"}[verified]


def text_hash(text: str) -> str:
    """The hash a patch header records for a file's text as read (line endings included)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def patch_header(fixes: Iterable[Fix], old_text: str | None = None) -> str:
    """Comment lines naming each fix applied to one file, to stand before that file's diff.

    ``git apply`` and ``patch -p1`` skip text that is not part of a diff, and unidiff keeps it as
    the file's ``patch_info``, so the header travels with the patch without changing what it does.
    With ``old_text`` (the file as read), a last line records its hash, so that ``gradfix apply``
    can tell a file changed since the patch was made.
    """
    from gradfix.registry import rule_by_code

    lines = []
    for fix in fixes:
        try:
            name = rule_by_code(fix.rule).name
        except KeyError:
            name = ""
        label = f"{fix.rule} {name}".strip()
        line = f"{HEADER_PREFIX}{label}: {fix.description}; {fix.applicability.value}; {verification_text(fix.verified)}"
        lines.append(_one_line(line))
        if fix.reason:
            lines.append(_one_line(f"{HEADER_PREFIX}  why {fix.applicability.value}: {fix.reason}"))
    if old_text is not None:
        lines.append(f"{HEADER_PREFIX}{SOURCE_HASH_PREFIX}{text_hash(old_text)}")
    return "".join(line + "\n" for line in lines)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def apply_diff(old_text: str, diff: str) -> str:
    """Apply a single-file unified diff to ``old_text`` with unidiff; raises ValueError if it does not fit."""
    patch = unidiff.PatchSet(diff)
    if len(patch) != 1:
        raise ValueError(f"expected a diff of one file, got {len(patch)}")
    return apply_patched_file(old_text, patch[0])


def _ending(line: str) -> str:
    return line[len(line.rstrip("\r\n")):]


def apply_patched_file(old_text: str, patched: unidiff.PatchedFile) -> str:
    """The patched text; each added line ends as the file's line before it does (or, at a hunk's
    start, the one after), so a patch made or carried with other line endings mixes none in."""
    old_lines = split_lines(old_text)
    file_ending = next((_ending(line) for line in old_lines if _ending(line)), None)
    result: list[str] = []
    position = 0  # index into old_lines
    for hunk in patched:
        start = hunk.source_start - 1 if hunk.source_length else hunk.source_start
        if start < position:
            raise ValueError("hunks overlap")
        result.extend(old_lines[position:start])
        position = start
        previous = _ending(old_lines[start - 1]) if 0 < start <= len(old_lines) else ""
        waiting: list[int] = []  # added lines at a hunk's start, which take the ending of the old line after them
        for line in hunk:
            if line.is_context or line.is_removed:
                expected = old_lines[position] if position < len(old_lines) else None
                if expected is None or expected.rstrip("\r\n") != line.value.rstrip("\r\n"):
                    raise ValueError(f"hunk does not match at line {position + 1}")
                if _ending(expected):
                    previous = _ending(expected)
                    for index in waiting:
                        result[index] = result[index].rstrip("\r\n") + previous
                    waiting = []
                if line.is_context:
                    result.append(expected)
                position += 1
            elif line.is_added:
                result.append(line.value)
                if _ending(line.value):
                    if previous:
                        result[-1] = line.value.rstrip("\r\n") + previous
                    else:
                        waiting.append(len(result) - 1)
        for index in waiting:
            result[index] = result[index].rstrip("\r\n") + (file_ending or _ending(result[index]))
    result.extend(old_lines[position:])
    text = "".join(result)
    return _drop_newline_marked_missing(text, patched)


def _drop_newline_marked_missing(text: str, patched: unidiff.PatchedFile) -> str:
    """unidiff keeps the newline on a last added line that git marked as having none."""
    last_hunk = patched[-1] if len(patched) else None
    if last_hunk is None:
        return text
    lines = list(last_hunk)
    for index, line in enumerate(lines):
        if line.value.startswith("\\ No newline") or getattr(line, "line_type", "") == "\\":
            previous = lines[index - 1] if index else None
            if previous is not None and previous.is_added and text.endswith(("\r", "\n")):
                return text[:-len(_ending(text[-2:]))]
    return text
