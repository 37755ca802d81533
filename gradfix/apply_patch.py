"""``gradfix apply PATCH``: a saved patch applied to the files as they are now, all of it or none of it.

Every check runs before anything is written: the text is a patch, each path stays inside the
project (and names a file with no other hard link, whose other names could be anywhere), each
file is still the one the patch was made from (gradfix's header carries its hash), every hunk
fits, every result parses and can be written. Only then is a whole copy of each new file
written beside it, and then each put in place, through the same writer as ``fix --apply``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import unidiff

from gradfix.notebook import check_notebook_json, is_notebook
from gradfix.patch import HEADER_PREFIX, SOURCE_HASH_PREFIX, apply_patched_file, text_hash, unquote_name
from gradfix.source import (
    ReadOnlyError,
    SourceError,
    SourceFile,
    check_compiles,
    check_write,
    read_source,
    write_source_atomically,
)

PATCHABLE = (".py", ".ipynb")


class PatchRefused(Exception):
    """The patch cannot be applied as a whole; the message says why, naming the file."""


@dataclass
class PlannedFile:
    path: str  # as named in the patch, relative to the project
    source: SourceFile
    new_text: str
    notes: list[str] = field(default_factory=list)  # gradfix's header lines: the fixes, their applicability
    hunks: int = 0


def parse_patch(text: str) -> unidiff.PatchSet:
    try:
        patch = unidiff.PatchSet(text)
    except unidiff.UnidiffParseError as error:
        raise PatchRefused(f"not a patch gradfix can read: {error}") from None
    if not len(patch):
        raise PatchRefused("not a patch: no file diff (`--- a/PATH`, `+++ b/PATH`, `@@` hunks) found in it")
    return patch


_QUOTED = re.compile(r'\s*("(?:[^"\\]|\\.)*")')


def _strip_prefix(name: str, prefix: str) -> str:
    quoted = _QUOTED.match(name)
    name = unquote_name(quoted.group(1)) if quoted else name.split("\t", 1)[0].strip()
    return name[len(prefix):] if name.startswith(prefix) else name


def _inside(root: str, path: str) -> str:
    """The real path of ``path`` under ``root``; refused when it is absolute or leads outside the project."""
    if not path or os.path.isabs(path) or path.startswith(("/", "\\")) or os.path.splitdrive(path)[0]:
        raise PatchRefused(f"{path or '(no name)'}: an absolute path; a patch may only name files inside the project")
    if ".." in path.replace("\\", "/").split("/"):
        raise PatchRefused(f"{path}: leads outside the project (`..`)")
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(real_root, path))
    if os.path.commonpath([real_root, real]) != real_root:
        raise PatchRefused(f"{path}: leads outside the project (through a link to {real})")
    return real


def plan(patch_text: str, root: str = ".") -> list[PlannedFile]:
    """What applying ``patch_text`` under ``root`` would write; raises PatchRefused, writing nothing.

    Every check a write makes is made here, for every file, so that ``--check`` refuses what
    a real apply would refuse and a real apply finds every refusal before it writes anything.
    """
    patch = parse_patch(patch_text)
    planned: list[PlannedFile] = []
    seen: dict[str, str] = {}  # real path -> the name the patch first gave it
    for patched in patch:
        old = _strip_prefix(patched.source_file, "a/")
        new = _strip_prefix(patched.target_file, "b/")
        if patched.is_binary_file:
            raise PatchRefused(f"{new}: a binary diff; gradfix applies changes to Python source only")
        if patched.is_added_file or old == "/dev/null":
            raise PatchRefused(f"{new}: the patch creates this file; gradfix patches only change existing files")
        if patched.is_removed_file or new == "/dev/null":
            raise PatchRefused(f"{old}: the patch deletes this file; gradfix patches only change existing files")
        if old != new:
            raise PatchRefused(f"{old}: the patch renames it to {new}; gradfix patches only change files in place")
        if not new.endswith(PATCHABLE):
            raise PatchRefused(f"{new}: not a Python file or notebook; gradfix applies changes to Python source only")
        real = _inside(root, new)
        if real in seen:
            also = "" if seen[real] == new else f" (as {seen[real]} and as {new})"
            raise PatchRefused(f"{new}: named twice in the patch{also}")
        seen[real] = new
        if not len(patched):
            raise PatchRefused(f"{new}: its diff has no hunks")
        try:
            source = read_source(os.path.join(root, new))
        except SourceError as error:
            raise PatchRefused(f"{new}: {error.problem}") from None
        notes = _header_lines(patched)
        recorded = _recorded_hash(notes)
        if recorded is not None and recorded != text_hash(source.text):
            raise PatchRefused(f"{new}: changed since the patch was made; make the patch again (`gradfix fix --diff`)")
        try:
            new_text = apply_patched_file(source.text, patched)
        except (ValueError, IndexError) as error:
            raise PatchRefused(f"{new}: a hunk no longer fits the file as it is now ({error})") from None
        validate = check_notebook_json if is_notebook(new) else check_compiles
        try:
            validate(new, new_text)
        except SourceError as error:
            raise PatchRefused(f"{new}: the patched file would not parse: {error.problem}") from None
        try:
            check_write(source, new_text, validate=_already_checked, other_links=False)
        except ReadOnlyError:
            raise PatchRefused(f"{new}: the file is read-only; make it writable to apply the patch") from None
        except SourceError as error:
            raise PatchRefused(f"{new}: {error.problem.removeprefix('not written: ')}") from None
        planned.append(PlannedFile(path=new, source=source, new_text=new_text, hunks=len(patched),
                                   notes=[n for n in notes if not n.startswith(SOURCE_HASH_PREFIX)]))
    return planned


def _already_checked(path: str, text: str) -> None:
    """The patched text was validated by ``plan`` itself, with the message of a patch's refusal."""


def _header_lines(patched: unidiff.PatchedFile) -> list[str]:
    info: list[str] = patched.patch_info or []
    return [str(line).rstrip("\r\n")[len(HEADER_PREFIX):] for line in info if str(line).startswith(HEADER_PREFIX)]


def _recorded_hash(notes: list[str]) -> str | None:
    for note in notes:
        if note.startswith(SOURCE_HASH_PREFIX):
            return note[len(SOURCE_HASH_PREFIX):].split()[0]
    return None


class ApplyFailed(Exception):
    """A write failed after every check had passed (a full disk, say); the message says what was written."""


def apply_planned(planned: list[PlannedFile]) -> None:
    """Write every planned file: first a whole copy of each beside it, then each put in place.

    A copy that cannot be written (a full disk, a file-size limit) stops the apply before any
    file is touched. Putting a copy in place is a rename for all but files whose owner cannot
    be kept; should one still fail, the files already replaced are put back.
    """
    pending = []
    try:
        for item in planned:
            pending.append(check_write(item.source, item.new_text, validate=_already_checked, other_links=False).prepare())
    except SourceError as error:
        for write in pending:
            write.discard()
        raise PatchRefused(f"{error.path}: {error.problem.removeprefix('not written: ')}") from None
    written: list[PlannedFile] = []
    for index, (item, write) in enumerate(zip(planned, pending)):
        try:
            write.commit()
        except SourceError as error:
            for later in pending[index + 1:]:
                later.discard()
            raise ApplyFailed(_after_failed_commit(error, written)) from None
        written.append(item)


def _after_failed_commit(error: SourceError, written: list[PlannedFile]) -> str:
    restored, kept = [], []
    for item in reversed(written):
        try:
            write_source_atomically(SourceFile(item.source.path, item.new_text, item.source.encoding), item.source.text)
            restored.append(item.path)
        except SourceError:
            kept.append(item.path)
    message = str(error)
    if restored:
        message += f"; put back as they were: {', '.join(reversed(restored))}"
    if kept:
        message += f"; written and not put back: {', '.join(reversed(kept))}"
    return message


def apply_patch(patch_text: str, root: str = ".", check_only: bool = False) -> list[PlannedFile]:
    planned = plan(patch_text, root)
    if not check_only:
        apply_planned(planned)
    return planned
