"""Reading a user's file as text, and writing it back the way it was stored.

Reading takes only regular files of a bounded size; parsing lets CPython reject
what it rejects (with its line and message) before LibCST sees the text, and keeps
LibCST's native parser away from nesting that would crash it or take minutes.
Writing checks everything first (``check_write``), writes the whole new text
beside the file, and only then puts it in place (``PendingWrite``): through symbolic
links to their target, keeping hard links, owner, group and mode; a failure on the
way leaves the file as it was. Read-only files are refused unless forced, and a
file that changed since it was read always is.
"""

from __future__ import annotations

import ast
import contextlib
import errno
import hashlib
import io
import os
import re
import stat
import tempfile
import tokenize
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Callable, cast

import libcst as cst

from gradfix.parsing import parse_module

# Larger files are refused: a generated or data file named .py is not training code.
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_BYTES_ENV = "GRADFIX_MAX_FILE_BYTES"
# Deeper expressions are refused before LibCST: its native parser takes time growing with
# the square of the depth (about 2 s at 1000 levels) and overflows its stack further on.
MAX_NESTING = 1000


class SourceError(Exception):
    """A file gradfix cannot work on; the message names the file and the problem."""

    def __init__(self, path: str, problem: str, span: tuple[int, int, int, int] | None = None):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
        # where in the text the problem is, when it is at a place (a syntax error): 1-based lines and columns,
        # the end column just after the last character
        self.span = span

    def __reduce__(self) -> tuple[type[SourceError], tuple[Any, ...]]:
        return (self.__class__, (self.path, self.problem) if self.span is None else (self.path, self.problem, self.span))


class EmptySourceError(SourceError):
    """An empty file (or one of blanks): `check` and `fix` take it as clean, as Ruff and mypy do (an empty ``__init__.py``)."""


class ReadOnlyError(SourceError):
    """A read-only file, which a write refuses unless forced."""


class ParserLimitError(SourceError):
    """Text CPython accepts but LibCST's parser does not: a limit of the parser, not the user's syntax error."""


class NotRegularFileError(SourceError):
    """A FIFO, device or socket: never read, so that gradfix cannot hang or read without end."""


@dataclass(frozen=True)
class Fingerprint:
    """What the file was when it was read, to tell whether it changed before a write."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    digest: str


@dataclass(frozen=True)
class SourceFile:
    path: str
    text: str  # decoded, line endings as stored
    encoding: str
    read_as: Fingerprint | None = field(default=None, compare=False, repr=False)

    def encode(self, text: str) -> bytes:
        return text.encode(self.encoding)


def max_file_bytes() -> int:
    try:
        return int(os.environ.get(MAX_BYTES_ENV, MAX_FILE_BYTES))
    except ValueError:
        return MAX_FILE_BYTES


def max_patch_bytes() -> int:
    """The largest patch ``gradfix apply`` reads: four times the file limit (a patch that rewrites a whole
    file of the limit's size holds its old and new lines, each with a marker)."""
    return 4 * max_file_bytes()


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def decode_source(path: str, raw: bytes, read_as: Fingerprint | None = None) -> SourceFile:
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
    return SourceFile(path=path, text=text, encoding=encoding, read_as=read_as)


def _read_regular(path: str) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file; FIFOs, devices, sockets and files over the limit are refused unread."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise SourceError(path, "no such file") from None
    except OSError as error:
        raise SourceError(path, f"cannot be read: {error.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise SourceError(path, "is a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise NotRegularFileError(path, f"is {_kind(info.st_mode)}, not a regular file; skipped")
    limit = max_file_bytes()
    if info.st_size > limit:
        raise SourceError(path, f"is {_megabytes(info.st_size)}, over gradfix's limit of {_megabytes(limit)} "
                                f"(set {MAX_BYTES_ENV} to raise it); skipped")
    try:
        # O_NONBLOCK: if the path was swapped for a FIFO since the stat, opening it must not wait for a writer.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise SourceError(path, f"cannot be read: {error.strerror}") from None
    with os.fdopen(descriptor, "rb") as handle:
        opened = os.fstat(handle.fileno())
        if not stat.S_ISREG(opened.st_mode):
            raise NotRegularFileError(path, f"is {_kind(opened.st_mode)}, not a regular file; skipped")
        raw = handle.read(limit + 1)
    if len(raw) > limit:
        raise SourceError(path, f"is over gradfix's limit of {_megabytes(limit)} (set {MAX_BYTES_ENV} to raise it); skipped")
    return raw, opened


def read_source(path: str) -> SourceFile:
    raw, info = _read_regular(path)
    fingerprint = Fingerprint(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, hashlib.sha256(raw).hexdigest())
    return decode_source(path, raw, fingerprint)


def _nul_position(text: str) -> tuple[int, int] | None:
    index = text.find("\0")
    if index < 0:
        return None
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _syntax_span(error: SyntaxError) -> tuple[int, int, int, int] | None:
    """CPython's place for a syntax error (its columns count characters), at least one character wide."""
    if not error.lineno:
        return None
    line, column = error.lineno, max(1, error.offset or 1)
    end_line, end_column = error.end_lineno or line, error.end_offset or 0
    if (end_line, end_column) <= (line, column):
        end_line, end_column = line, column + 1
    return line, column, end_line, end_column


@contextlib.contextmanager
def quiet_compile_warnings() -> Iterator[None]:
    """Compiling without CPython's warnings about the code (`x is ()`, an invalid escape sequence): they are not
    gradfix's findings, and a statement compiled on its own would name a line of its own, not of the file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def python_tree(path: str, text: str, want_tree: bool = True) -> ast.Module | None:
    """CPython's own parse, whose verdict and message gradfix reports; raises SourceError."""
    nul = _nul_position(text)
    if nul is not None:
        raise SourceError(path, f"syntax error at line {nul[0]}, column {nul[1]}: source contains a NUL byte",
                          (nul[0], nul[1], nul[0], nul[1] + 1))
    try:
        with quiet_compile_warnings():
            # compiled from the text, as ``python file.py`` does: the parser's verdict and the compiler's
            # (duplicate arguments, nonlocal at module level, ...), with CPython's own limits on nesting
            if not want_tree:
                compile(text, path, "exec", dont_inherit=True)
                return None
            # cast: typeshed types an AST-only compile as any AST; the "exec" mode makes it a module
            tree = cast(ast.Module, compile(text, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True))
            try:
                compile(tree, path, "exec", dont_inherit=True)  # the compiler's verdict on the same tree, not a second parse
            except RecursionError:
                compile(text, path, "exec", dont_inherit=True)  # a tree deeper than the tree's compile recurses: from the text
            return tree
    except SyntaxError as error:
        where = f"line {error.lineno}" + (f", column {error.offset}" if error.offset else "")
        raise SourceError(path, f"syntax error at {where}: {error.msg}", _syntax_span(error)) from None
    except (RecursionError, MemoryError):
        raise SourceError(path, "too deeply nested for Python to compile") from None
    except ValueError as error:
        raise SourceError(path, f"cannot be parsed: {error}") from None


_BODIES = ("body", "orelse", "finalbody", "handlers", "cases")


def _line_starts(text: str) -> list[int]:
    """Where each line starts, and the text's end, with lines ended as Python ends them."""
    return [0, *(match.end() for match in re.finditer(r"\r\n|\r|\n", text)), len(text) + 1]


def _depth_over(node: ast.AST, limit: int) -> bool:
    stack = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(current))
    return False


def deepest_nesting_over(tree: ast.Module, text: str, limit: int = MAX_NESTING) -> int | None:
    """The line of a statement nested more than ``limit`` levels deep, or None.

    Each level of nesting takes at least one character, so only statements longer
    than ``limit`` characters are walked: the check costs little on ordinary code.
    """
    starts: list[int] | None = None
    statements = list(tree.body)
    while statements:
        statement = statements.pop()
        for name in _BODIES:
            statements.extend(getattr(statement, name, None) or ())
        if not hasattr(statement, "end_lineno") or statement.end_lineno is None:
            continue
        if statement.end_lineno == statement.lineno:
            assert statement.end_col_offset is not None, "set with end_lineno"
            length = statement.end_col_offset - statement.col_offset  # in UTF-8 bytes: at least the characters
        else:
            starts = starts or _line_starts(text)
            last = min(statement.end_lineno, len(starts) - 1)
            length = starts[last] - starts[statement.lineno - 1]  # its whole lines: at least the statement
        if length <= limit:
            continue
        headers = [value for name, value in ast.iter_fields(statement) if name not in _BODIES]
        for value in headers:
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, ast.AST) and _depth_over(item, limit - 1):
                    return statement.lineno
    return None


def guard_parse(path: str, text: str) -> ast.Module:
    """What must hold before LibCST parses ``text``: CPython accepts it and it is not pathologically nested."""
    tree = python_tree(path, text)
    assert tree is not None, "asked for the tree"
    line = deepest_nesting_over(tree, text)
    if line is not None:
        raise SourceError(path, f"the statement at line {line} is nested more than {MAX_NESTING} levels deep; "
                                "gradfix does not parse code this deep")
    return tree


def parse_source(source: SourceFile) -> cst.Module:
    guard_parse(source.path, source.text)
    return libcst_module(source.path, source.text)


# LibCST's parser rejects a run of more adjacent string literals than this (CPython takes any number).
LIBCST_MAX_ADJACENT_STRINGS = 3000


def libcst_module(path: str, text: str) -> cst.Module:
    """LibCST's tree of a text ``guard_parse`` (or the regions' prepass) has already let through.

    CPython has accepted the text, so LibCST rejecting it is a limit of LibCST's parser, said as such."""
    try:
        return parse_module(text)
    except cst.ParserSyntaxError as error:
        run = _longest_adjacent_strings(text)
        if run is not None and run[1] > LIBCST_MAX_ADJACENT_STRINGS:
            raise ParserLimitError(path, f"not checked: the string at line {run[0]} joins {run[1]} adjacent literals; "
                                         f"LibCST, the parser gradfix reads code with, takes at most "
                                         f"{LIBCST_MAX_ADJACENT_STRINGS} (Python accepts it)") from None
        raise ParserLimitError(path, f"not checked: Python accepts the file, but LibCST, the parser gradfix reads code "
                                     f"with, rejects it at line {error.raw_line}, column {error.raw_column + 1}: "
                                     f"{error.message}") from None
    except RecursionError:
        raise SourceError(path, "too deeply nested to parse") from None


def _longest_adjacent_strings(text: str) -> tuple[int, int] | None:
    """The first line and length of the longest run of adjacent string literals (None if the text does not tokenize)."""
    best: tuple[int, int] | None = None
    start, count = 0, 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.STRING:
                start, count = (start, count + 1) if count else (token.start[0], 1)
                if best is None or count > best[1]:
                    best = (start, count)
            elif token.type not in (tokenize.NL, tokenize.COMMENT):
                count = 0
    except (tokenize.TokenError, SyntaxError):
        return best
    return best


def check_syntax(source: SourceFile) -> None:
    """A syntax check for files no rule needs the tree of: Python's own parser is many times faster than LibCST's."""
    python_tree(source.path, source.text, want_tree=False)


def check_compiles(path: str, text: str) -> None:
    """CPython's verdict alone: what a patch the user applies must pass (LibCST's tree is for gradfix's own
    analysis, and parsing a large file with it costs minutes and gigabytes)."""
    python_tree(path, text, want_tree=False)


def check_parses(path: str, text: str) -> None:
    parse_source(SourceFile(path=path, text=text, encoding="utf-8"))
    try:
        with quiet_compile_warnings():
            compile(text, path, "exec", dont_inherit=True)
    except SyntaxError as error:
        raise SourceError(path, f"the fixed text does not compile: {error.msg} at line {error.lineno}") from None


def _unchanged_since_read(source: SourceFile, target: str) -> bytes:
    """The file's bytes now, refused unless they are what was read (when what was read is known)."""
    try:
        with open(target, "rb") as handle:
            info = os.fstat(handle.fileno())
            limit = max(info.st_size, source.read_as.size if source.read_as else 0)
            now = handle.read(limit + 1)
    except OSError as error:
        raise SourceError(source.path, f"not written: cannot be read again ({error.strerror})") from None
    if source.read_as is None:
        return now
    if (info.st_dev, info.st_ino) != (source.read_as.device, source.read_as.inode) \
            or hashlib.sha256(now).hexdigest() != source.read_as.digest:
        raise SourceError(source.path, "not written: the file changed since gradfix read it; run gradfix again")
    return now


def _unencodable(source: SourceFile, text: str, error: UnicodeEncodeError) -> SourceError:
    character = text[error.start]
    line = text.count("\n", 0, error.start) + 1
    return SourceError(source.path, f"not written: the new text has {character!r} (U+{ord(character):04X}) at line {line}, "
                                    f"which the file's encoding {source.encoding} cannot hold")


def _can_give_owner(info: os.stat_result) -> bool:
    """Whether a new file can be given this file's owner and group (root can; others only their own)."""
    if os.geteuid() == 0:
        return True
    return info.st_uid == os.geteuid() and info.st_gid in {os.getegid(), *os.getgroups()}


@dataclass
class PendingWrite:
    """A write every check has passed: the file, the bytes it will hold, and how they get there.

    ``prepare`` writes a complete copy of the new bytes beside the file and flushes it to disk;
    ``commit`` then puts it in place: by rename, or (for a file with other hard links, or whose
    owner a new file cannot be given) by copying it over the file's own inode, after reserving
    the room it needs, so that a full disk or a file-size limit leaves the file as it was.
    Until ``commit`` the user's file is untouched; ``discard`` removes the copy.
    """

    source: SourceFile
    target: str  # the real path (symbolic links followed)
    data: bytes
    info: os.stat_result
    in_place: bool
    force: bool = False
    temporary: str | None = None

    def _failed(self, error: OSError, after: str = "the file is unchanged") -> SourceError:
        return SourceError(self.source.path, f"not written: {error.strerror or error}; {after}")

    def prepare(self) -> "PendingWrite":
        directory = os.path.dirname(self.target)
        try:
            handle, self.temporary = tempfile.mkstemp(prefix=".gradfix-", suffix=".tmp", dir=directory)
        except OSError as error:
            raise SourceError(self.source.path, f"not written: cannot create a file in its folder {directory} "
                                                f"({error.strerror}); gradfix writes the new text beside the file first") from None
        try:
            with os.fdopen(handle, "wb") as out:
                _write_all(out.fileno(), self.data)
                if not self.in_place:
                    os.fchmod(out.fileno(), stat.S_IMODE(self.info.st_mode))
                    if (self.info.st_uid, self.info.st_gid) != (os.geteuid(), os.getegid()):
                        try:
                            os.fchown(out.fileno(), self.info.st_uid, self.info.st_gid)
                        except PermissionError:
                            self.in_place = True
                os.fsync(out.fileno())
        except OSError as error:
            self.discard()
            raise self._failed(error) from None
        return self

    def commit(self) -> None:
        assert self.temporary is not None, "prepare() first"
        try:
            old = _unchanged_since_read(self.source, self.target)
        except SourceError:
            self.discard()
            raise
        if not self.in_place:
            try:
                os.replace(self.temporary, self.target)
            except OSError as error:
                self.discard()
                raise self._failed(error) from None
            self.temporary = None
            return
        try:
            _overwrite(self.target, self.data, old, self.force)
        except _NotRestored as failure:
            # the copy stays: it holds the whole new text, which the message names
            raise self._failed(failure.error, f"the file could not be put back as it was ({failure.restore.strerror}); "
                                              f"the new text is whole in {self.temporary}") from None
        except OSError as error:
            self.discard()
            raise self._failed(error) from None
        self.discard()

    def discard(self) -> None:
        if self.temporary is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.temporary)
            self.temporary = None


class _NotRestored(Exception):
    def __init__(self, error: OSError, restore: OSError):
        super().__init__(error, restore)
        self.error = error
        self.restore = restore


def _write_all(descriptor: int, data: bytes, offset: int | None = None) -> None:
    """Every byte of ``data``, or an OSError (a short write alone raises nothing)."""
    view = memoryview(data)
    written = 0
    while written < len(view):
        if offset is None:
            count = os.write(descriptor, view[written:])
        else:
            count = os.pwrite(descriptor, view[written:], offset + written)
        if count <= 0:
            raise OSError(errno.EIO, "the write made no progress")
        written += count


def _open_for_writing(target: str, force: bool) -> int:
    try:
        return os.open(target, os.O_WRONLY)
    except PermissionError:
        if not force:
            raise
        # a read-only file the caller chose to force: open it writable for this write only
        mode = stat.S_IMODE(os.stat(target).st_mode)
        os.chmod(target, mode | stat.S_IWUSR)
        try:
            return os.open(target, os.O_WRONLY)
        finally:
            os.chmod(target, mode)


def _overwrite(target: str, data: bytes, old: bytes, force: bool) -> None:
    """Rewrite the file's own inode, so that its hard links, owner, group and mode stay.

    The room for a longer text is taken first, past the old end (a full disk or a file-size
    limit fails there, and cutting the file back leaves it as it was); the new bytes then go
    over blocks the file already holds. Should a write still fail, the old bytes are put back.
    """
    descriptor = _open_for_writing(target, force)
    try:
        if len(data) > len(old):
            try:
                _write_all(descriptor, bytes(len(data) - len(old)), len(old))
                os.fsync(descriptor)
            except OSError:
                os.ftruncate(descriptor, len(old))
                raise
        try:
            _write_all(descriptor, data, 0)
            os.ftruncate(descriptor, len(data))
            os.fsync(descriptor)
        except OSError as error:
            try:
                _write_all(descriptor, old, 0)
                os.ftruncate(descriptor, len(old))
                os.fsync(descriptor)
            except OSError as restore:
                raise _NotRestored(error, restore) from None
            raise
    finally:
        os.close(descriptor)


def check_write(source: SourceFile, new_text: str, force: bool = False, validate: Callable[[str, str], object] | None = None,
                other_links: bool = True) -> PendingWrite:
    """Every check a write of ``new_text`` over ``source`` must pass, done before anything is written.

    Refused (SourceError): text that does not validate (default: does not parse as Python),
    a character the file's encoding cannot hold, a file that is no longer a regular file,
    a read-only file unless ``force``, a file that changed since it was read, a folder in
    which gradfix cannot create the copy it writes first, and with ``other_links=False`` a
    file with other hard links (whose other names gradfix cannot see).
    """
    (validate or check_parses)(source.path, new_text)
    try:
        data = source.encode(new_text)
    except UnicodeEncodeError as error:
        raise _unencodable(source, new_text, error) from None
    target = os.path.realpath(source.path)
    try:
        info = os.stat(target)
    except OSError as error:
        raise SourceError(source.path, f"not written: {error.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise SourceError(source.path, f"not written: is {_kind(info.st_mode)}")
    if not info.st_mode & 0o222 and not force:
        raise ReadOnlyError(source.path, "not written: the file is read-only (make it writable, or pass --force to write it anyway)")
    if info.st_nlink > 1 and not other_links:
        raise SourceError(source.path, f"not written: the file has {info.st_nlink - 1} other hard link"
                                       f"{'s' * (info.st_nlink > 2)}, which may be outside the project; "
                                       "gradfix cannot see where they are (`gradfix fix --apply` on the file writes it, links kept)")
    directory = os.path.dirname(target)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise SourceError(source.path, f"not written: gradfix cannot create files in its folder {directory}; "
                                       "it writes the new text beside the file before replacing it")
    _unchanged_since_read(source, target)
    return PendingWrite(source, target, data, info, in_place=info.st_nlink > 1 or not _can_give_owner(info), force=force)


def write_source_atomically(source: SourceFile, new_text: str, force: bool = False,
                            validate: Callable[[str, str], object] | None = None) -> None:
    """Replace the file's text with ``new_text`` only if it parses, in its encoding.

    The text keeps the file's own line endings because edits are made on the
    text as stored. A symbolic link is written through to its target. The new
    text is first written whole beside the file; then a file with other hard
    links, or whose owner gradfix cannot give to a new file, gets it copied over
    its own inode (so links and owner stay; a failure leaves it as it was), and any
    other file is replaced by rename, its mode, owner and group copied. A read-only
    file is refused unless ``force``; a file that changed since it was read is always
    refused. ``validate(path, text)`` raises SourceError for text that must not be
    written (default: text that does not parse as Python).
    """
    check_write(source, new_text, force, validate).prepare().commit()
