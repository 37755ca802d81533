"""Reading a user's file as text, and writing it back the way it was stored."""

from __future__ import annotations

import ast
import io
import os
import tempfile
import tokenize
from dataclasses import dataclass

import libcst as cst


class SourceError(Exception):
    """A file gradfix cannot work on; the message names the file and the problem."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem

    def __reduce__(self):
        return (self.__class__, (self.path, self.problem))


class EmptySourceError(SourceError):
    """An empty file: an error when named, but normal for an ``__init__.py`` met in a folder."""


@dataclass(frozen=True)
class SourceFile:
    path: str
    text: str  # decoded, line endings as stored
    encoding: str

    def encode(self, text: str) -> bytes:
        return text.encode(self.encoding)


def decode_source(path: str, raw: bytes) -> SourceFile:
    if not raw.strip():
        raise EmptySourceError(path, "file is empty")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
    except SyntaxError as error:
        if "invalid or missing encoding declaration" in str(error):
            raise SourceError(path, "not valid utf-8 text, and no coding declaration names another encoding") from None
        raise SourceError(path, f"cannot tell its encoding: {error}") from None
    try:
        text = raw.decode(encoding)
    except (UnicodeDecodeError, LookupError) as error:
        raise SourceError(path, f"not valid {encoding} text (byte {getattr(error, 'start', '?')})") from None
    return SourceFile(path=path, text=text, encoding=encoding)


def read_source(path: str) -> SourceFile:
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise SourceError(path, "no such file") from None
    except IsADirectoryError:
        raise SourceError(path, "is a folder, not a file") from None
    except OSError as error:
        raise SourceError(path, f"cannot be read: {error.strerror}") from None
    return decode_source(path, raw)


def parse_source(source: SourceFile) -> cst.Module:
    try:
        return cst.parse_module(source.text)
    except cst.ParserSyntaxError as error:
        raise SourceError(source.path, f"syntax error at line {error.raw_line}, column {error.raw_column + 1}: {error.message}") from None
    except RecursionError:
        raise SourceError(source.path, "too deeply nested to parse") from None


def check_syntax(source: SourceFile) -> None:
    """A syntax check for files no rule needs the tree of: Python's own parser is many times faster than LibCST's."""
    try:
        compile(source.text, source.path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as error:
        raise SourceError(source.path, f"syntax error at line {error.lineno}, column {error.offset}: {error.msg}") from None
    except (ValueError, RecursionError, MemoryError) as error:
        raise SourceError(source.path, f"cannot be parsed: {error}") from None


def check_parses(path: str, text: str) -> None:
    parse_source(SourceFile(path=path, text=text, encoding="utf-8"))
    try:
        compile(text, path, "exec", dont_inherit=True)
    except SyntaxError as error:
        raise SourceError(path, f"the fixed text does not compile: {error.msg} at line {error.lineno}") from None


def write_source_atomically(source: SourceFile, new_text: str) -> None:
    """Replace the file with ``new_text`` only if it parses, in its encoding, via rename.

    The text keeps the file's own line endings because edits are made on the
    text as stored; the mode bits are copied from the file being replaced.
    """
    check_parses(source.path, new_text)
    data = source.encode(new_text)
    directory = os.path.dirname(os.path.abspath(source.path))
    mode = os.stat(source.path).st_mode & 0o7777
    handle, temporary = tempfile.mkstemp(prefix=".gradfix-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, source.path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
