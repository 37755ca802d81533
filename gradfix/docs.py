"""Writes each rule's documentation page and the README's rule table from the rules themselves.

Run ``python -m gradfix.docs`` after changing a rule; the tests fail while the pages are stale.
"""

from __future__ import annotations

import os
import pathlib
import sys

from gradfix.registry import all_rules
from gradfix.rule import Rule

TABLE_START = "<!-- rules-table-start -->"
TABLE_END = "<!-- rules-table-end -->"


def page_name(rule: type[Rule]) -> str:
    return f"{rule.code}-{rule.name}.md"


def pages_folder() -> pathlib.Path:
    """The rule pages installed with gradfix (``gradfix.rule_docs``, built from ``docs/rules``); in a source
    checkout run without installing, its ``docs/rules``."""
    import importlib.util

    spec = importlib.util.find_spec("gradfix.rule_docs")
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        return pathlib.Path(location)
    return pathlib.Path(__file__).resolve().parents[1] / "docs" / "rules"


def published_base(directory: str | None = None) -> str | None:
    """``docs-url`` of the ``[tool.gradfix]`` that applies to ``directory`` (the working one by default): where
    a project publishes the rule pages. A table gradfix cannot use is reported by the command that reads it."""
    from gradfix.config import ConfigError, settings_for

    try:
        return settings_for(directory or os.getcwd()).docs_url
    except ConfigError:
        return None


def rule_url(code: str, base: str | None = None) -> str:
    """The address of a rule's page, from its code or name: under the project's ``docs-url`` when it has one,
    else the page installed with gradfix (a ``file:`` URL, readable offline); the folder of pages for a code
    no rule has (GF000)."""
    from urllib.parse import quote

    from gradfix.registry import rule_by_code

    base = base or published_base()
    if base:
        try:
            name = page_name(rule_by_code(code))
        except KeyError:
            name = ""
        return base + quote(name)
    try:
        return installed_page_url(code)
    except KeyError:
        return pages_folder().as_uri() + "/"


def installed_page_url(code: str) -> str:
    """The ``file:`` URL of the rule's page installed with gradfix (the folder of pages when it is missing); a
    ``KeyError`` for a code no rule has."""
    from gradfix.registry import rule_by_code

    folder = pages_folder()
    name = page_name(rule_by_code(code))
    return (folder / name).as_uri() if (folder / name).is_file() else folder.as_uri() + "/"


def page(rule: type[Rule]) -> str:
    categories = ", ".join(f"`{c}`" for c in rule.categories) or "none"
    return (
        f"# {rule.code} {rule.name}\n\n"
        f"*{rule.summary}*\n\n"
        f"Fix applicability: **{rule.applicability.value}**. Severity: {rule.severity.value}. "
        f"Runtime categories it explains: {categories}.\n\n"
        f"{rule.doc()}\n"
    )


def table() -> str:
    rows = ["| Code | Name | Fix | What it finds |", "| --- | --- | --- | --- |"]
    for rule in all_rules():
        rows.append(f"| {rule.code} | [{rule.name}](docs/rules/{page_name(rule)}) | {rule.applicability.value} | {rule.summary} |")
    return "\n".join(rows)


def render_readme(readme: str) -> str:
    start = readme.index(TABLE_START) + len(TABLE_START)
    end = readme.index(TABLE_END)
    return readme[:start] + "\n" + table() + "\n" + readme[end:]


def expected_files(root: pathlib.Path) -> dict[pathlib.Path, str]:
    files = {root / "docs" / "rules" / page_name(rule): page(rule) for rule in all_rules()}
    readme = root / "README.md"
    files[readme] = render_readme(readme.read_text(encoding="utf-8"))
    return files


def main(root: str = ".") -> int:
    base = pathlib.Path(root)
    (base / "docs" / "rules").mkdir(parents=True, exist_ok=True)
    for stale in (base / "docs" / "rules").glob("GF*.md"):
        stale.unlink()
    for path, text in expected_files(base).items():
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
