"""Which files a run looks at: folders walked as Ruff walks them.

A folder is searched for ``.py`` and ``.ipynb`` files, passing over hidden folders,
virtual environments (any folder holding ``pyvenv.cfg``), build and cache folders,
what ``.gitignore`` files ignore and what ``[tool.gradfix] exclude`` excludes.
A file named on the command line is always taken, unless ``force_exclude`` applies
the same exclusions to it (as a pre-commit hook, which names every staged file, needs).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Iterator, Sequence

import pathspec

from gradfix.config import ConfigError, settings_for

EXTENSIONS = (".py", ".ipynb")
# Ruff's default exclusions, which hold no code of the project's own.
EXCLUDED_DIRS = frozenset({
    ".bzr", ".direnv", ".eggs", ".git", ".git-rewrite", ".hg", ".ipynb_checkpoints", ".mypy_cache", ".nox",
    ".pants.d", ".pyenv", ".pytest_cache", ".pytype", ".ruff_cache", ".svn", ".tox", ".venv", ".vscode",
    "__pycache__", "__pypackages__", "_build", "buck-out", "build", "dist", "node_modules", "site-packages", "venv",
})


@dataclass(frozen=True)
class Discovered:
    path: str
    named: bool  # named on the command line, rather than met in a folder
    problem: str | None = None  # why a named path yields nothing, or why a folder met in a walk could not be read
    config_error: ConfigError | None = None  # the pyproject.toml that applies cannot be used: the error names it


def shown(path: str) -> str:
    """A path as the reports name it: as given, without a leading ``./`` (``./train.py`` is ``train.py``)."""
    while path.startswith("./") and len(path) > 2:
        path = path[2:].lstrip("/") or "."
    if os.sep != "/":
        while path.startswith("." + os.sep) and len(path) > 2:
            path = path[2:]
    return path


def is_virtualenv(directory: str) -> bool:
    return os.path.isfile(os.path.join(directory, "pyvenv.cfg"))


def _excluded_dir_name(name: str) -> bool:
    return name in EXCLUDED_DIRS or name.startswith(".") or name.endswith(".egg-info")


@functools.lru_cache(maxsize=4096)
def _gitignore(directory: str):
    path = os.path.join(directory, ".gitignore")
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return pathspec.GitIgnoreSpec.from_lines(handle)
    except OSError:
        return None


def _git_root(directory: str) -> str | None:
    current = directory
    while True:
        if os.path.exists(os.path.join(current, ".git")):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def _ancestors(directory: str) -> list[str]:
    """The folders whose .gitignore applies to ``directory``: up to the repository's root, or itself alone."""
    root = _git_root(directory)
    chain = [directory]
    if root is None:
        return chain
    while chain[-1] != root:
        parent = os.path.dirname(chain[-1])
        if parent == chain[-1]:
            break
        chain.append(parent)
    return chain[::-1]


def _gitignored(path: str, is_dir: bool, bases: Sequence[str]) -> bool:
    ignored = False
    for base in bases:
        spec = _gitignore(base)
        if spec is None:
            continue
        relative = os.path.relpath(path, base).replace(os.sep, "/")
        if relative.startswith(".."):
            continue
        result = spec.check_file(relative + ("/" if is_dir else ""))
        if result.include is not None:
            ignored = result.include
    return ignored


def excluded_reason(path: str) -> str | None:
    """Why a file named on the command line would be passed over in a folder walk (for --force-exclude)."""
    absolute = os.path.abspath(path)
    settings = settings_for(absolute)
    if settings.is_excluded(absolute):
        return "excluded by [tool.gradfix] exclude"
    top = settings.root or os.getcwd()
    relative = os.path.relpath(os.path.dirname(absolute), top)
    if not relative.startswith(".."):
        current = top
        for part in [] if relative == "." else relative.split(os.sep):
            current = os.path.join(current, part)
            if _excluded_dir_name(part) or is_virtualenv(current):
                return f"inside {part}/, which gradfix passes over"
            if settings.is_excluded(current, is_dir=True):
                return "excluded by [tool.gradfix] exclude"
    directory = os.path.dirname(absolute)
    if _gitignored(absolute, False, _ancestors(directory)):
        return "ignored by .gitignore"
    return None


def discover(paths: Sequence[str], force_exclude: bool = False, extensions: Sequence[str] = EXTENSIONS) -> Iterator[Discovered]:
    for path in paths:
        if os.path.isdir(path):
            found = False
            for item in _walk(path, tuple(extensions)):
                found = True
                yield item
            if not found:
                yield Discovered(path, True, "folder holds no Python files (or all are excluded)")
        elif os.path.lexists(path):
            if force_exclude:
                try:
                    if excluded_reason(path) is not None:
                        continue
                except ConfigError as error:
                    yield Discovered(error.path, True, error.problem, config_error=error)
                    continue
            yield Discovered(shown(path), True)
        else:
            yield Discovered(path, True, "no such file or folder")


def _unreadable(errors: list[OSError]) -> Iterator[Discovered]:
    """The folders the walk could not list: each an error, so that a run never calls a tree it did not see clean."""
    while errors:
        error = errors.pop(0)
        folder = error.filename if error.filename is not None else "?"
        yield Discovered(folder, False, f"folder cannot be read ({error.strerror or error}); the files in it were not checked")


def _walk(top: str, extensions: tuple[str, ...]) -> Iterator[Discovered]:
    bases_above = _ancestors(os.path.abspath(top))[:-1]
    errors: list[OSError] = []
    for root, dirs, files in os.walk(top, onerror=errors.append):
        yield from _unreadable(errors)
        absolute_root = os.path.abspath(root)
        bases = [*bases_above, *_chain_below(os.path.abspath(top), absolute_root)]
        try:
            settings = settings_for(absolute_root)
        except ConfigError as error:
            # the files below follow settings gradfix cannot read: an error for them, and the walk goes on elsewhere
            dirs[:] = []
            yield Discovered(error.path, True, error.problem, config_error=error)
            continue
        kept = []
        for name in sorted(dirs):
            full = os.path.join(absolute_root, name)
            if _excluded_dir_name(name) or is_virtualenv(full) or settings.is_excluded(full, is_dir=True):
                continue
            if _gitignored(full, True, bases):
                continue
            kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            if not name.endswith(extensions):
                continue
            full = os.path.join(absolute_root, name)
            if settings.is_excluded(full) or _gitignored(full, False, bases):
                continue
            yield Discovered(shown(os.path.join(root, name)), False)
    yield from _unreadable(errors)


def _chain_below(top: str, directory: str) -> list[str]:
    chain = [directory]
    while chain[-1] != top and len(chain[-1]) > len(top):
        chain.append(os.path.dirname(chain[-1]))
    return chain[::-1]


def clear_cache() -> None:
    _gitignore.cache_clear()
