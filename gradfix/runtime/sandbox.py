"""A bounded scratch copy of a project, for runs that must not touch the user's files.

``sandbox_copy(root)`` yields a temporary folder that mirrors ``root``: source and
small files are copied; large files (data sets, checkpoints), folders that hold no
code of the project's own (virtual environments, build and cache folders) and what
``.gitignore`` ignores are symbolic links to the originals, read in place rather than
copied. The copy is bounded: a project whose files to copy exceed the limits raises
SandboxTooLarge, with the figures, before anything large is copied. The folder is
removed when the block ends, whatever happens in it.

What a link does not protect: a program that rewrites a large file in place (opens
it for writing rather than writing a new file) writes to the original.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from gradfix.paths import EXCLUDED_DIRS, _gitignored, is_virtualenv

SOURCE_SUFFIXES = frozenset({
    ".py", ".pyi", ".pyx", ".pxd", ".ipynb", ".toml", ".cfg", ".ini", ".yaml", ".yml", ".json", ".txt", ".md", ".rst",
})
COPY_LIMIT_BYTES = 64 * 1024 * 1024  # at most this much is copied
COPY_LIMIT_FILES = 20_000
LARGE_FILE_BYTES = 1024 * 1024  # files larger than this are linked, whatever their kind
NEVER_MIRRORED = frozenset({".git", ".hg", ".svn", "__pycache__"})


class SandboxTooLarge(Exception):
    """The project has more to copy than the limits allow; the message says how much and what to do."""


@dataclass
class Plan:
    folders: list[str]
    copies: list[str]  # relative paths to copy
    links: list[str]  # relative paths (files or whole folders) to link to the original
    copy_bytes: int = 0


def plan(root: str, limit_bytes: int = COPY_LIMIT_BYTES, limit_files: int = COPY_LIMIT_FILES) -> Plan:
    root = os.path.abspath(root)
    result = Plan([], [], [])
    for current, dirs, files in os.walk(root):
        relative_dir = os.path.relpath(current, root)
        relative_dir = "" if relative_dir == "." else relative_dir
        kept = []
        for name in sorted(dirs):
            full = os.path.join(current, name)
            relative = os.path.join(relative_dir, name)
            if name in NEVER_MIRRORED:
                continue
            if os.path.islink(full) or name in EXCLUDED_DIRS or is_virtualenv(full) or _gitignored(full, True, [root]):
                result.links.append(relative)
                continue
            kept.append(name)
            result.folders.append(relative)
        dirs[:] = kept
        for name in sorted(files):
            full = os.path.join(current, name)
            relative = os.path.join(relative_dir, name)
            try:
                size = os.lstat(full).st_size
            except OSError:
                continue
            if (os.path.islink(full) or size > LARGE_FILE_BYTES or os.path.splitext(name)[1] not in SOURCE_SUFFIXES
                    or _gitignored(full, False, [root])):
                result.links.append(relative)
                continue
            result.copies.append(relative)
            result.copy_bytes += size
            if result.copy_bytes > limit_bytes or len(result.copies) > limit_files:
                raise SandboxTooLarge(
                    f"{root}: too large to copy for a sandboxed run: more than {len(result.copies)} source files "
                    f"or {limit_bytes // (1024 * 1024)} MB to copy (limits: {limit_files} files, "
                    f"{limit_bytes // (1024 * 1024)} MB); name a smaller project folder, or list the bulky folders in .gitignore"
                )
    return result


@contextmanager
def sandbox_copy(root: str, limit_bytes: int = COPY_LIMIT_BYTES, limit_files: int = COPY_LIMIT_FILES) -> Iterator[str]:
    """A scratch mirror of ``root`` (see the module's docstring); removed when the block ends."""
    root = os.path.abspath(root)
    layout = plan(root, limit_bytes, limit_files)
    scratch = tempfile.mkdtemp(prefix="gradfix-sandbox-")
    try:
        mirror = os.path.join(scratch, os.path.basename(root.rstrip(os.sep)) or "project")
        os.mkdir(mirror)
        for folder in layout.folders:
            os.makedirs(os.path.join(mirror, folder), exist_ok=True)
        for relative in layout.copies:
            shutil.copy2(os.path.join(root, relative), os.path.join(mirror, relative))
        for relative in layout.links:
            os.symlink(os.path.join(root, relative), os.path.join(mirror, relative))
        yield mirror
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
