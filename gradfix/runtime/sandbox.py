"""A bounded scratch copy of a project, for runs that must not touch the user's files.

``sandbox_copy(root)`` yields a :class:`Sandbox`: a temporary folder that mirrors ``root``,
removed when the block ends, whatever happens in it. What the copy holds:

- every folder is a real folder of the copy (ignored folders, ``build/`` and folders the project
  links to included), so that a file written or patched in the copy lands in the copy;
- source files (``.py``, ``.toml``, ...) are copied, always; a project whose sources exceed the
  limits raises SandboxTooLarge, with the figures, before anything is copied;
- every other file is a copy-on-write clone where the file system can make one (Btrfs, XFS), else
  a copy while the data budget lasts (smallest first), else a link to the original that the
  run may read but not write (gradfix.runtime.child.write_guard refuses the writes);
- virtual environments, tool environments (``node_modules``, ``.tox``, ...) and folders of more
  than 10,000 entries are links to the originals, read-only in the same way, except on the way to a
  file a fix patches, whose folders are real folders of the copy and whose other entries are links;
  ``.git`` and ``__pycache__`` are left out.

``Sandbox.environment`` is what a child run needs for the guard: the originals it must not write
(gradfix.runtime.child.write_guard), and a temporary folder inside the scratch folder.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Mapping, Sequence

from gradfix.paths import _gitignored, is_virtualenv
from gradfix.runtime.child.schema import READ_ONLY_ENV

SOURCE_SUFFIXES = frozenset({
    ".py", ".pyi", ".pyx", ".pxd", ".ipynb", ".toml", ".cfg", ".ini", ".yaml", ".yml", ".json", ".txt", ".md", ".rst",
})
COPY_LIMIT_BYTES = 64 * 1024 * 1024  # at most this much source is copied
COPY_LIMIT_FILES = 20_000
DATA_COPY_BYTES = 64 * 1024 * 1024  # other files copied, smallest first, while they fit; the rest are read-only links
MIRROR_LIMIT_ENTRIES = 200_000  # files and folders in the copy, links included
LINK_WHOLE_ENTRIES = 10_000  # a folder holding more (a data set of many files) is linked whole, read-only
NEVER_MIRRORED = frozenset({".git", ".hg", ".svn", "__pycache__"})
# folders a tool owns, linked whole and read-only: the program reads its packages there
ENVIRONMENT_DIRS = frozenset({"node_modules", "site-packages", "__pypackages__", ".tox", ".nox", ".direnv", ".pyenv"})
FICLONE = 0x40049409  # Linux's ioctl for a copy-on-write clone of a whole file


class SandboxTooLarge(Exception):
    """The project has more to copy than the limits allow; the message says how much and what to do."""


@dataclass
class Plan:
    folders: list[str] = field(default_factory=list)  # relative folders, created as real folders
    copies: list[str] = field(default_factory=list)  # relative source files, always copied
    data: list[tuple[str, str, int]] = field(default_factory=list)  # (relative, original, size): cloned, copied or linked
    links: list[tuple[str, str]] = field(default_factory=list)  # (relative, original): environments, linked whole
    sources: dict[str, str] = field(default_factory=dict)  # relative source file -> its original (through links)
    walked: list[str] = field(default_factory=list)  # real paths: the project, then the folders outside it it links to
    copy_bytes: int = 0


def plan(root: str, limit_bytes: int = COPY_LIMIT_BYTES, limit_files: int = COPY_LIMIT_FILES,
         keep_real: Sequence[str] = ()) -> Plan:
    """What the copy of ``root`` holds; ``keep_real`` (relative paths) are files to be written in the copy,
    whose folders must be real folders of the copy whatever they are in the project."""
    root = os.path.abspath(root)
    result = Plan()
    pending = [("", root, False)]  # (relative, path, inside an environment: only the way to a kept file is mirrored)
    seen: set[str] = set()
    entries = 0
    while pending:
        relative_dir, current, environment = pending.pop()
        real = os.path.realpath(current)
        if real in seen:  # a link back up the tree: mirrored once
            continue
        seen.add(real)
        try:
            names = sorted(os.listdir(current))
        except OSError:
            continue
        needed = any(k.startswith(relative_dir + os.sep) for k in keep_real)
        if relative_dir and not needed and len(names) > LINK_WHOLE_ENTRIES:
            result.links.append((relative_dir, real))  # a data set of many files: read in place, never written
            continue
        if relative_dir:
            result.folders.append(relative_dir)
        if not result.walked or not real.startswith(result.walked[0] + os.sep):
            result.walked.append(real)  # the project, and each folder outside it that it links to
        for name in names:
            full = os.path.join(current, name)
            relative = os.path.join(relative_dir, name)
            entries += 1
            if entries > MIRROR_LIMIT_ENTRIES:
                raise SandboxTooLarge(f"{root}: too large to mirror for a run in a copy: more than {MIRROR_LIMIT_ENTRIES} "
                                      "files and folders; name a smaller project folder")
            if os.path.isdir(full):
                if name in NEVER_MIRRORED or _dangling(full):
                    continue
                on_the_way = any(k.startswith(relative + os.sep) for k in keep_real)
                inside = environment or name in ENVIRONMENT_DIRS or is_virtualenv(full)
                if inside and not on_the_way:
                    result.links.append((relative, os.path.realpath(full)))
                else:
                    pending.append((relative, full, inside))
                continue
            try:
                size = os.stat(full).st_size
            except OSError:
                continue  # a dangling link, or a file that went away
            if not os.path.isfile(full):
                continue  # FIFOs, sockets, devices: a run in the copy does without them
            if relative in keep_real or not environment and os.path.splitext(name)[1] in SOURCE_SUFFIXES \
                    and not _gitignored(full, False, [root]):
                result.copies.append(relative)
                result.sources[relative] = full
                result.copy_bytes += size
                if result.copy_bytes > limit_bytes or len(result.copies) > limit_files:
                    raise SandboxTooLarge(
                        f"{root}: too large to copy for a run in a copy: more than {len(result.copies)} source files "
                        f"or {limit_bytes // (1024 * 1024)} MB to copy (limits: {limit_files} files, "
                        f"{limit_bytes // (1024 * 1024)} MB); name a smaller project folder, or list the bulky folders in .gitignore"
                    )
            elif environment:
                result.links.append((relative, os.path.realpath(full)))
            else:
                result.data.append((relative, full, size))
    result.data.sort(key=lambda item: (item[2], item[0]))
    return result


def _dangling(path: str) -> bool:
    return os.path.islink(path) and not os.path.exists(path)


@dataclass
class Sandbox:
    """The scratch copy: ``path`` mirrors the project; what was linked is listed for the run's write guard."""

    path: str
    scratch: str  # the temporary folder holding ``path``, removed at the end
    read_only: list[str] = field(default_factory=list)  # real paths the run may read but never write
    cloned: int = 0
    copied: int = 0
    linked: int = 0

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) with the guard's list of what the run must not write."""
        listing = os.path.join(self.scratch, "read-only.txt")
        if not os.path.exists(listing):
            with open(listing, "w", encoding="utf-8", errors="surrogateescape") as out:
                out.write(f"+ {os.path.realpath(self.scratch)}\n")
                out.writelines(f"- {path}\n" for path in self.read_only)
        env = dict(os.environ if base is None else base)
        env[READ_ONLY_ENV] = listing
        # the program's temporary files go in the scratch folder too (the guard may keep folders above the project closed)
        temporary = os.path.join(self.scratch, "tmp")
        os.makedirs(temporary, exist_ok=True)
        env["TMPDIR"] = temporary
        return env


class _Cloner:
    """Copy-on-write clones, as ``cp --reflink=auto`` makes them; once the file system refuses, not tried again."""

    def __init__(self):
        self.possible = hasattr(os, "O_RDONLY") and os.name == "posix"

    def clone(self, original: str, destination: str) -> bool:
        if not self.possible:
            return False
        import fcntl

        try:
            with open(original, "rb") as source, open(destination, "xb") as out:
                try:
                    fcntl.ioctl(out.fileno(), FICLONE, source.fileno())
                except OSError as problem:
                    if problem.errno in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY, errno.ENOSYS):
                        self.possible = False
                    raise
            shutil.copystat(original, destination)
            return True
        except OSError:
            if os.path.lexists(destination):
                os.unlink(destination)
            return False


@contextmanager
def sandbox_copy(root: str, limit_bytes: int = COPY_LIMIT_BYTES, limit_files: int = COPY_LIMIT_FILES,
                 keep_real: Sequence[str] = (), data_bytes: int = DATA_COPY_BYTES) -> Iterator[Sandbox]:
    """A scratch mirror of ``root`` (see the module's docstring); removed when the block ends."""
    root = os.path.abspath(root)
    layout = plan(root, limit_bytes, limit_files, keep_real)
    scratch = tempfile.mkdtemp(prefix="gradfix-sandbox-")
    try:
        mirror = os.path.join(scratch, os.path.basename(root.rstrip(os.sep)) or "project")
        os.mkdir(mirror)
        sandbox = Sandbox(mirror, scratch, read_only=list(layout.walked))
        for folder in layout.folders:
            os.makedirs(os.path.join(mirror, folder), exist_ok=True)
        for relative in layout.copies:
            shutil.copy2(layout.sources[relative], os.path.join(mirror, relative))
        cloner, budget = _Cloner(), data_bytes
        for relative, original, size in layout.data:
            destination = os.path.join(mirror, relative)
            if cloner.clone(original, destination):
                sandbox.cloned += 1
            elif size <= budget:
                shutil.copy2(original, destination)
                budget -= size
                sandbox.copied += 1
            else:
                os.symlink(os.path.realpath(original), destination)
                sandbox.read_only.append(os.path.realpath(original))
                sandbox.linked += 1
        for relative, original in layout.links:
            os.symlink(original, os.path.join(mirror, relative))
            sandbox.read_only.append(original)
            sandbox.linked += 1
        yield sandbox
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
