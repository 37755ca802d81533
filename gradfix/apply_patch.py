"""``gradfix apply PATCH``: a saved patch applied to the files as they are now, all of it or none of it.

Every check runs before anything is written: the text is a patch, each path stays inside the
project, each file is still the one the patch was made from (gradfix's header carries its hash),
every hunk fits, and every result parses. Only then are the files replaced, one by one through
the same writer as ``fix --apply``; if a write fails, the files already written are put back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import unidiff

from gradfix.patch import HEADER_PREFIX, SOURCE_HASH_PREFIX, apply_patched_file, text_hash
from gradfix.source import SourceError, SourceFile, check_compiles, read_source, write_source_atomically


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


def _strip_prefix(name: str, prefix: str) -> str:
    name = name.split("\t", 1)[0].strip()
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
    """What applying ``patch_text`` under ``root`` would write; raises PatchRefused, writing nothing."""
    patch = parse_patch(patch_text)
    planned: list[PlannedFile] = []
    seen: set[str] = set()
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
        if new in seen:
            raise PatchRefused(f"{new}: named twice in the patch")
        seen.add(new)
        if not new.endswith(".py"):
            raise PatchRefused(f"{new}: not a Python file; gradfix applies changes to Python source only")
        _inside(root, new)
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
        try:
            check_compiles(new, new_text)
        except SourceError as error:
            raise PatchRefused(f"{new}: the patched file would not parse: {error.problem}") from None
        planned.append(PlannedFile(path=new, source=source, new_text=new_text, hunks=len(patched),
                                   notes=[n for n in notes if not n.startswith(SOURCE_HASH_PREFIX)]))
    return planned


def _header_lines(patched: unidiff.PatchedFile) -> list[str]:
    info = patched.patch_info or []
    return [str(line).rstrip("\r\n")[len(HEADER_PREFIX):] for line in info if str(line).startswith(HEADER_PREFIX)]


def _recorded_hash(notes: list[str]) -> str | None:
    for note in notes:
        if note.startswith(SOURCE_HASH_PREFIX):
            return note[len(SOURCE_HASH_PREFIX):].split()[0]
    return None


def _checked_by_plan(path: str, text: str) -> None:
    """No second check: ``plan`` compiled the new text already, and a file put back gets its own old text again
    (compiling a large file twice would double apply's time)."""


def apply_planned(planned: list[PlannedFile]) -> None:
    """Write every planned file; if one write fails, put back those already written and re-raise."""
    written: list[PlannedFile] = []
    try:
        for item in planned:
            write_source_atomically(item.source, item.new_text, validate=_checked_by_plan)
            written.append(item)
    except BaseException:
        for item in reversed(written):
            try:
                write_source_atomically(SourceFile(item.source.path, item.new_text, item.source.encoding), item.source.text,
                                        validate=_checked_by_plan)
            except (SourceError, OSError):  # pragma: no cover - reported by the caller's message
                pass
        raise


def apply_patch(patch_text: str, root: str = ".", check_only: bool = False) -> list[PlannedFile]:
    planned = plan(patch_text, root)
    if not check_only:
        apply_planned(planned)
    return planned
