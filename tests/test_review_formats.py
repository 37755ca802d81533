"""The report document and its schema, SARIF against the official schema, GitHub annotations, `rules CODE`."""

from __future__ import annotations

import json
import shutil

import jsonschema
import pytest
from click.testing import CliRunner
from fixture_cases import FIXTURES

from gradfix.cli import main
from gradfix.docs import rule_url
from gradfix.model import Applicability, Fix, TextEdit
from gradfix.registry import rule_by_code
from gradfix.report import validate

BUGGY = FIXTURES / "seed" / "example1.py"
SARIF_SCHEMA = FIXTURES.parent / "tests" / "schemas" / "sarif-schema-2.1.0.json"


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my dir").mkdir()
    shutil.copy(BUGGY, tmp_path / "my dir" / "train.py")
    (tmp_path / "broken.py").write_text("def (:\n")
    return tmp_path


def test_check_json_follows_the_schema_with_relative_paths_and_rule_links(workdir):
    result = _run("check", "--format", "json", workdir / "my dir", workdir / "broken.py")
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    validate(document)
    assert document["tool"]["name"] == "gradfix" and document["schema_version"] == 1
    assert (document["command"], document["exit_code"]) == ("check", 2)
    [finding] = document["findings"]
    assert finding["span"]["path"] == "my dir/train.py"  # named absolute, reported relative
    assert finding["url"] == rule_url("GF003") and finding["url"].endswith("/GF003-loss-ignores-prediction.md")
    assert finding["fix"]["applicability"] == "unsafe" and finding["fix"]["reason"]
    assert document["errors"][0]["path"] == "broken.py"


def test_fix_json_follows_the_schema_and_lists_the_patch(workdir):
    result = _run("fix", "--format", "json", "--unsafe-fixes", "my dir/train.py")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    validate(document)
    [patch] = document["fixes"]
    assert patch["path"] == "my dir/train.py" and patch["applied"] is False
    assert [fix["rule"] for fix in patch["fixes"]] == ["GF003"]
    assert "+++ b/my dir/train.py" in patch["diff"]


def test_the_schema_rejects_what_it_should():
    result = CliRunner().invoke(main, ["check", "--format", "json", str(BUGGY)])
    document = json.loads(result.stdout)
    broken = json.loads(result.stdout)
    broken["findings"][0]["span"]["start_line"] = 0
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)
    del document["schema_version"]
    with pytest.raises(jsonschema.ValidationError):
        validate(document)


PUBLISHED = "https://docs.example.org/gradfix/rules/"


def test_sarif_validates_against_the_official_schema_with_help_uris(workdir):
    (workdir / "pyproject.toml").write_text(f'[tool.gradfix]\ndocs-url = "{PUBLISHED}"\n')
    result = _run("check", "--format", "sarif", "my dir/train.py", "broken.py")
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    jsonschema.Draft4Validator(json.loads(SARIF_SCHEMA.read_text())).validate(document)
    rules = document["runs"][0]["tool"]["driver"]["rules"]
    assert {rule["helpUri"] for rule in rules if rule["id"] == "GF003"} == {PUBLISHED + "GF003-loss-ignores-prediction.md"}
    assert all(rule["helpUri"] == rule_url(rule["id"]) for rule in rules)
    [finding] = document["runs"][0]["results"]
    assert finding["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "my%20dir/train.py"
    assert finding["fixes"][0]["artifactChanges"][0]["artifactLocation"]["uri"] == "my%20dir/train.py"


def test_sarif_without_published_pages_carries_the_help_and_no_local_address(workdir):
    result = _run("check", "--format", "sarif", "my dir/train.py")
    rules = json.loads(result.stdout)["runs"][0]["tool"]["driver"]["rules"]
    assert not any("helpUri" in rule for rule in rules)
    [gf003] = [rule for rule in rules if rule["id"] == "GF003"]
    assert gf003["help"]["markdown"] == rule_by_code("GF003").doc()


def test_github_annotation_has_end_column_and_rule_link(workdir):
    (workdir / "pyproject.toml").write_text(f'[tool.gradfix]\ndocs-url = "{PUBLISHED}"\n')
    result = _run("check", "--format", "github", "my dir/train.py")
    [line] = result.stdout.splitlines()
    assert ",line=10,col=27,endLine=10,endColumn=" in line
    assert line.endswith("%0A" + PUBLISHED + "GF003-loss-ignores-prediction.md")


def test_github_annotation_without_published_pages_names_the_command(workdir):
    result = _run("check", "--format", "github", "my dir/train.py")
    [line] = result.stdout.splitlines()
    assert line.endswith("%0A`gradfix rules GF003`") and "file:" not in line


@pytest.mark.parametrize("key", ["gf003", "GF003", "Loss-Ignores-Prediction"])
def test_rules_page_in_any_case_rendered_for_a_terminal(key):
    result = _run("rules", key)
    assert result.exit_code == 0
    assert "GF003 loss-ignores-prediction" in result.stdout
    assert "# GF003" not in result.stdout  # the Markdown heading is rendered, not printed raw
    assert rule_url("GF003") in result.stdout


def test_unknown_rule_is_refused():
    assert _run("rules", "GF999").exit_code == 2


def test_fix_reason_round_trips():
    fix = Fix("GF001", "move it", Applicability.UNSAFE, (TextEdit(1, 2, "x\n"),), True, reason="the step also returns the loss")
    assert Fix.from_dict(fix.to_dict()) == fix
    older = fix.to_dict()
    del older["reason"]
    assert Fix.from_dict(older).reason == ""
