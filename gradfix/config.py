"""``[tool.gradfix]`` in ``pyproject.toml``: found by walking up from each checked file.

As in Ruff, the nearest ``pyproject.toml`` that has a ``[tool.gradfix]`` table applies
to a file; one without that table is passed over. ``settings_for(path)`` is the one
entry point; unknown keys and unknown rule codes raise ConfigError naming the key.
"""

from __future__ import annotations

import functools
import math
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import pathspec

from gradfix.source import SourceError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

KEYS = ("select", "ignore", "extend-select", "per-file-ignores", "exclude", "unsafe-fixes", "diagnose", "docs-url")
DIAGNOSE_KEYS = ("target", "timeout")


class ConfigError(SourceError):
    """A ``[tool.gradfix]`` table gradfix cannot use; the message names the file and the key.

    A SourceError of the ``pyproject.toml``: every front end that reports a file it cannot use reports it,
    once, naming the configuration file rather than each file it governs."""

    def __init__(self, path: str, key: str, problem: str):
        super().__init__(path, f"[tool.gradfix] {key}: {problem}" if key else problem)
        self.key = key
        self.detail = problem  # the problem without the key

    def __reduce__(self):
        return (self.__class__, (self.path, self.key, self.detail))

    def line(self, display_path: str | None = None) -> str:
        """The one line every front end shows: the file, the key, the problem, and what was not done."""
        return f"{display_path or shown_path(self.path)}: {self.problem}; the files it applies to were not checked"

    def location(self) -> tuple[int, int, int]:
        """Where in the file the problem is: a 0-based line and the columns of the key (or of the whole line)."""
        try:
            with open(self.path, encoding="utf-8", errors="replace") as handle:
                lines = handle.read().splitlines()
        except OSError:
            return 0, 0, 0
        return _locate(lines, self.key, self.detail)


def shown_path(path: str) -> str:
    """A configuration file as a message names it: relative to the working directory when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if relative.startswith("..") else relative


_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")
_TABLE = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+")


def _locate(lines: list[str], key: str, problem: str) -> tuple[int, int, int]:
    """The 0-based line and columns of ``key`` in ``[tool.gradfix]`` (or of TOML's own error position)."""
    found = _TOML_POSITION.search(problem)
    if "(at end of document)" in problem and lines:
        return len(lines) - 1, 0, len(lines[-1])
    if found:
        line = max(0, int(found.group(1)) - 1)
        content = lines[line] if line < len(lines) else ""
        return line, 0, len(content)
    table_line, table = None, ""
    parts = key.split(".", 1) if key else []
    wanted = parts[-1].strip('"') if parts else ""
    for number, content in enumerate(lines):
        header = _TABLE.match(content)
        if header:
            table = header.group(1).replace(" ", "").replace('"', "")
            if table == "tool.gradfix" and table_line is None:
                table_line = number
            continue
        if not table.startswith("tool.gradfix") or not wanted:
            continue
        column = _key_column(content, wanted)
        if column is not None:
            return number, column, column + len(wanted) + (2 if content[column:column + 1] in "\"'" else 0)
    if table_line is None:
        return 0, 0, 0
    return table_line, 0, len(lines[table_line])


def _key_column(content: str, key: str) -> int | None:
    """Where ``key`` (bare or quoted) stands as a key on the line: before ``=``, or inside an inline table."""
    for spelling in (key, f'"{key}"', f"'{key}'"):
        found = re.search(r"(^|[{,\s])" + re.escape(spelling) + r"\s*=", content)
        if found:
            return found.start() + len(found.group(1))
    return None


@dataclass(frozen=True)
class Settings:
    """The configuration that applies to one file; the defaults when no table applies."""

    root: str | None = None  # the folder of the pyproject.toml, against which patterns match
    config_path: str | None = None
    select: tuple[str, ...] = ()  # rule codes; empty: every rule
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    exclude: tuple[str, ...] = ()
    unsafe_fixes: bool = False
    diagnose_target: str | None = None
    diagnose_timeout: float | None = None
    docs_url: str | None = None  # where the project publishes the rule pages, ending in "/"
    _exclude_spec: Any = field(default=None, compare=False, repr=False)

    def relative(self, path: str) -> str | None:
        if self.root is None:
            return None
        relative = os.path.relpath(os.path.abspath(path), self.root)
        return None if relative.startswith("..") else relative.replace(os.sep, "/")

    def is_excluded(self, path: str, is_dir: bool = False) -> bool:
        relative = self.relative(path)
        if relative is None or self._exclude_spec is None:
            return False
        return self._exclude_spec.match_file(relative + ("/" if is_dir else ""))

    def ignored_for(self, path: str) -> set[str]:
        relative = self.relative(path)
        if relative is None:
            return set()
        ignored: set[str] = set()
        for pattern, codes in self.per_file_ignores:
            spec = pathspec.GitIgnoreSpec.from_lines([pattern])
            if spec.match_file(relative) or spec.match_file(os.path.basename(relative)):
                ignored.update(codes)
        return ignored

    def rule_codes(self, path: str, cli_select: Sequence[str] = (), cli_ignore: Sequence[str] = ()) -> tuple[str, ...]:
        """The rules that run on ``path``.

        As in Ruff, the command line comes last: its --select replaces ``select``,
        ``extend-select`` and ``ignore``; its --ignore adds to ``ignore``.
        ``per-file-ignores`` always apply.
        """
        from gradfix.registry import all_rules

        every = [rule.code for rule in all_rules()]
        if cli_select:
            chosen = set(_codes(cli_select))
        else:
            chosen = (set(self.select or every) | set(self.extend_select)) - set(self.ignore)
        chosen -= set(_codes(cli_ignore)) | self.ignored_for(path)
        return tuple(code for code in every if code in chosen)


def _codes(keys: Sequence[str]) -> list[str]:
    from gradfix.registry import all_rules

    by_key = {}
    for rule in all_rules():
        by_key[rule.code] = by_key[rule.name] = rule.code
    return [code for key in keys for code in ([r.code for r in all_rules()] if key == "ALL" else [by_key.get(key, key)])]


def _rule_list(path: str, key: str, value: Any) -> tuple[str, ...]:
    from gradfix.registry import all_rules

    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(path, key, "expected a list of rule codes, such as [\"GF001\", \"GF003\"]")
    known = {"ALL"} | {r.code for r in all_rules()} | {r.name for r in all_rules()}
    unknown = [item for item in value if item not in known]
    if unknown:
        raise ConfigError(path, key, f"unknown rule {', '.join(unknown)}; `gradfix rules` lists them")
    return tuple(_codes(value))


def _patterns(path: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(path, key, "expected a list of path patterns")
    return tuple(value)


def _did_you_mean(key: str, known: Sequence[str]) -> str:
    import difflib

    close = difflib.get_close_matches(key, known, n=1, cutoff=0.7)
    return f" (did you mean {close[0]}?)" if close else f"; gradfix knows {', '.join(known)}"


def parse_table(path: str, table: Mapping[str, Any]) -> Settings:
    unknown = [key for key in table if key not in KEYS]
    if unknown:
        raise ConfigError(path, unknown[0], f"unknown key{_did_you_mean(unknown[0], KEYS)}")
    values: dict[str, Any] = {"root": os.path.dirname(os.path.abspath(path)), "config_path": path}
    for key, name in (("select", "select"), ("ignore", "ignore"), ("extend-select", "extend_select")):
        if key in table:
            values[name] = _rule_list(path, key, table[key])
    if "per-file-ignores" in table:
        entries = table["per-file-ignores"]
        if not isinstance(entries, dict):
            raise ConfigError(path, "per-file-ignores", "expected a table of pattern = [rule codes]")
        values["per_file_ignores"] = tuple(
            (pattern, _rule_list(path, f"per-file-ignores.\"{pattern}\"", codes)) for pattern, codes in entries.items()
        )
    if "exclude" in table:
        values["exclude"] = _patterns(path, "exclude", table["exclude"])
        values["_exclude_spec"] = pathspec.GitIgnoreSpec.from_lines(values["exclude"])
    if "unsafe-fixes" in table:
        if not isinstance(table["unsafe-fixes"], bool):
            raise ConfigError(path, "unsafe-fixes", "expected true or false")
        values["unsafe_fixes"] = table["unsafe-fixes"]
    if "docs-url" in table:
        values["docs_url"] = docs_base(path, "docs-url", table["docs-url"])
    if "diagnose" in table:
        diagnose = table["diagnose"]
        if not isinstance(diagnose, dict):
            raise ConfigError(path, "diagnose", "expected a table with target and timeout")
        unknown = [key for key in diagnose if key not in DIAGNOSE_KEYS]
        if unknown:
            raise ConfigError(path, f"diagnose.{unknown[0]}",
                              f"unknown key{_did_you_mean(unknown[0], DIAGNOSE_KEYS)}")
        if "target" in diagnose:
            if not isinstance(diagnose["target"], str) or not diagnose["target"]:
                raise ConfigError(path, "diagnose.target", "expected a script or module:function, such as \"train.py\"")
            values["diagnose_target"] = diagnose["target"]
        if "timeout" in diagnose:
            timeout = diagnose["timeout"]
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
                raise ConfigError(path, "diagnose.timeout", "expected a finite number of seconds above 0")
            values["diagnose_timeout"] = float(timeout)
    return Settings(**values)


def docs_base(path: str, key: str, value: Any) -> str:
    """A base address of the rule pages: an http(s) or file URL; a page's name is appended to it."""
    from urllib.parse import urlsplit

    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https", "file") or not (parts.netloc or parts.scheme == "file"):
        raise ConfigError(path, key, "expected an http(s) or file URL of the folder of rule pages, such as "
                                     "\"https://example.org/gradfix/rules/\"")
    return value if value.endswith("/") else value + "/"


@functools.lru_cache(maxsize=4096)
def _settings_in(directory: str) -> Settings:
    candidate = os.path.join(directory, "pyproject.toml")
    if os.path.isfile(candidate):
        try:
            with open(candidate, "rb") as handle:
                data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(candidate, "", f"not valid TOML: {error}") from None
        except UnicodeDecodeError as error:
            raise ConfigError(candidate, "", f"not valid TOML: not UTF-8 text (byte {error.start})") from None
        except OSError as error:
            raise ConfigError(candidate, "", f"cannot be read: {error.strerror}") from None
        table = data.get("tool", {}).get("gradfix") if isinstance(data.get("tool"), dict) else None
        if table is not None:
            if not isinstance(table, dict):
                raise ConfigError(candidate, "", "expected a table")
            return parse_table(candidate, table)
    parent = os.path.dirname(directory)
    if parent == directory:
        return Settings()
    return _settings_in(parent)


def settings_for(path: str | os.PathLike) -> Settings:
    """The settings for a file (or folder): those of the nearest pyproject.toml with [tool.gradfix] above it."""
    absolute = os.path.abspath(os.fspath(path))
    directory = absolute if os.path.isdir(absolute) else os.path.dirname(absolute)
    return _settings_in(directory)


def clear_cache() -> None:
    _settings_in.cache_clear()
