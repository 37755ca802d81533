"""Where a finding's rule link leads: the page installed with gradfix, or the project's published pages."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import zipfile
from urllib.parse import unquote, urlsplit

import pytest
from click.testing import CliRunner

from gradfix.cli import main
from gradfix.config import clear_cache
from gradfix.docs import page, page_name, rule_url
from gradfix.registry import all_rules

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    clear_cache()
    yield tmp_path
    clear_cache()


@pytest.mark.parametrize("rule", all_rules(), ids=lambda rule: rule.code)
def test_the_default_link_opens_the_rules_page_offline(rule, elsewhere):
    url = rule_url(rule.code)
    assert url.startswith("file:///")
    opened = pathlib.Path(unquote(urlsplit(url).path))
    assert opened.read_text(encoding="utf-8") == page(rule)


def test_a_code_no_rule_has_links_to_the_folder_of_pages(elsewhere):
    folder = pathlib.Path(unquote(urlsplit(rule_url("GF000")).path))
    assert {path.name for path in folder.glob("GF*.md")} == {page_name(rule) for rule in all_rules()}


def test_a_project_that_publishes_the_pages_gets_links_to_them(elsewhere):
    (elsewhere / "pyproject.toml").write_text('[tool.gradfix]\ndocs-url = "https://ml.example.com/lint/gradfix"\n')
    assert rule_url("GF003") == "https://ml.example.com/lint/gradfix/GF003-loss-ignores-prediction.md"
    result = CliRunner().invoke(main, ["rules", "GF003"])
    assert "https://ml.example.com/lint/gradfix/GF003-loss-ignores-prediction.md" in result.stdout


@pytest.mark.parametrize("value", ['"docs/rules"', '"ftp://example.org/rules/"', "3", '"https://"'])
def test_a_docs_url_that_is_no_url_is_one_line_and_exit_2(elsewhere, value):
    (elsewhere / "pyproject.toml").write_text(f"[tool.gradfix]\ndocs-url = {value}\n")
    (elsewhere / "train.py").write_text("x = 1\n")
    result = CliRunner().invoke(main, ["check", "train.py"])
    assert result.exit_code == 2
    [line] = [line for line in result.output.splitlines() if line.startswith("gradfix: error:")]
    assert line.startswith("gradfix: error: pyproject.toml: [tool.gradfix] docs-url: expected an http(s) or file URL")


def test_the_built_package_holds_every_rules_page(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    [wheel] = tmp_path.glob("gradfix-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name for name in archive.namelist() if name.startswith("gradfix/rule_docs/")}
        assert shipped == {f"gradfix/rule_docs/{page_name(rule)}" for rule in all_rules()}
        [gf003] = [rule for rule in all_rules() if rule.code == "GF003"]
        assert archive.read(f"gradfix/rule_docs/{page_name(gf003)}").decode() == page(gf003)


def test_the_editor_links_each_file_to_its_projects_pages(elsewhere):
    from gradfix.lsp.convert import rule_href

    published = elsewhere / "published"
    (published / "src").mkdir(parents=True)
    (published / "pyproject.toml").write_text('[tool.gradfix]\ndocs-url = "https://ml.example.com/rules/"\n')
    assert rule_href("GF007", str(published / "src" / "train.py")) == "https://ml.example.com/rules/GF007-missing-watch.md"
    assert rule_href("GF007", str(elsewhere / "train.py")).startswith("file:///")
