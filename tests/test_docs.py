from __future__ import annotations

from fixture_cases import FIXTURES

REPO = FIXTURES.parent
from gradfix.docs import expected_files


def test_rule_pages_and_readme_table_are_current():
    stale = [str(path.relative_to(REPO)) for path, text in expected_files(REPO).items()
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    assert stale == [], f"run `python -m gradfix.docs`; stale: {stale}"


def test_no_page_for_a_rule_that_is_gone():
    pages = {p.name for p in (REPO / "docs" / "rules").glob("GF*.md")}
    expected = {p.name for p in expected_files(REPO) if p.parent.name == "rules"}
    assert pages == expected
