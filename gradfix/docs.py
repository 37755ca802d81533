"""Writes each rule's documentation page and the README's rule table from the rules themselves.

Run ``python -m gradfix.docs`` after changing a rule; the tests fail while the pages are stale.
"""

from __future__ import annotations

import pathlib
import sys

from gradfix.registry import all_rules
from gradfix.rule import Rule

# Where the rule pages are published: the one place to change if the repository moves.
DOCS_BASE_URL = "https://github.com/gradfix/gradfix/blob/main/docs/rules/"

TABLE_START = "<!-- rules-table-start -->"
TABLE_END = "<!-- rules-table-end -->"


def page_name(rule: type[Rule]) -> str:
    return f"{rule.code}-{rule.name}.md"


def rule_url(code: str) -> str:
    """The address of a rule's page, from its code or name; the docs folder's index for a code no rule has (GF000)."""
    from urllib.parse import quote

    from gradfix.registry import rule_by_code

    try:
        rule = rule_by_code(code)
    except KeyError:
        return DOCS_BASE_URL
    return DOCS_BASE_URL + quote(page_name(rule))


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
