"""Reports for CI: SARIF (structure, fixes that rebuild the fixed file) and GitHub annotations."""

from __future__ import annotations

import json

from click.testing import CliRunner
from fixture_cases import FIXTURES

from gradfix.cli import main
from gradfix.registry import all_rules

BUGGY = FIXTURES / "seed" / "example1.py"
FIXED = FIXTURES / "seed" / "example1.fixed.py"


def _apply_line_replacements(text: str, replacements: list[dict]) -> str:
    lines = text.splitlines(keepends=True)
    for item in sorted(replacements, key=lambda r: r["deletedRegion"]["startLine"], reverse=True):
        region = item["deletedRegion"]
        assert region["startColumn"] == 1 and region["endColumn"] == 1
        lines[region["startLine"] - 1: region["endLine"] - 1] = [item["insertedContent"]["text"]]
    return "".join(lines)


def test_sarif_report_of_the_seed_example(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("def (:\n")
    result = CliRunner().invoke(main, ["check", "--format", "sarif", str(BUGGY), str(broken)])
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["version"] == "2.1.0"
    [run] = document["runs"]
    driver = run["tool"]["driver"]
    assert [rule["id"] for rule in driver["rules"]] == [rule.code for rule in all_rules()]
    [finding] = run["results"]
    assert finding["ruleId"] == "GF003"
    assert driver["rules"][finding["ruleIndex"]]["id"] == "GF003"
    assert finding["level"] == "error"
    region = finding["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"]) == (10, 27)
    assert finding["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("fixtures/seed/example1.py")
    [fix] = finding["fixes"]
    replacements = fix["artifactChanges"][0]["replacements"]
    assert _apply_line_replacements(BUGGY.read_text(), replacements) == FIXED.read_text()
    [notification] = run["invocations"][0]["toolExecutionNotifications"]
    assert "syntax error" in notification["message"]["text"]
    assert run["invocations"][0]["executionSuccessful"] is False


def test_github_annotations(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("def (:\n")
    result = CliRunner().invoke(main, ["check", "--format", "github", str(BUGGY), str(broken)])
    assert result.exit_code == 2
    finding, error = result.stdout.splitlines()
    assert finding.startswith("::error file=")
    assert "example1.py,line=10,col=27,endLine=10,endColumn=50,title=GF003 loss-ignores-prediction::" in finding
    assert "(fix: " in finding and "unsafe)" in finding
    assert error.startswith(f"::error file={broken},title=gradfix::")
    assert "syntax error" in error


def _project(tmp_path, monkeypatch):
    """The seed example twice, in a folder and below it, checked from the folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    for name in ("train.py", "sub/train.py"):
        (tmp_path / name).write_text(BUGGY.read_text())


def test_concise_format_is_one_line_per_finding(tmp_path, monkeypatch):
    _project(tmp_path, monkeypatch)
    result = CliRunner().invoke(main, ["check", "--format", "concise", "."])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and lines[-1].startswith("Found 2 problems in 2 files")
    for line, path in zip(lines, ("train.py", "sub/train.py")):
        assert line.startswith(f"{path}:10:27: GF003 ")  # path:line:col: CODE message, as Ruff's and mypy's
        assert "\n" not in line and len(line.split(" GF003 ", 1)[1]) <= 80
    standard = CliRunner().invoke(main, ["check", "--format", "concise", "-", "--stdin-filename", "x.py"],
                                  input=BUGGY.read_text())
    assert standard.stdout.splitlines()[0] == lines[0].replace("train.py", "x.py", 1)


def test_paths_are_named_without_a_leading_dot_slash(tmp_path, monkeypatch):
    _project(tmp_path, monkeypatch)
    for args in (["check", "."], ["check", "./sub", "./train.py"], ["check", "--format", "github", "."]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1
        assert "./" not in result.stdout, (args, result.stdout)
        assert "sub/train.py:10:27" in result.stdout or "file=sub/train.py,line=10" in result.stdout
    sarif = json.loads(CliRunner().invoke(main, ["check", "--format", "sarif", "."]).stdout)
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in sarif["runs"][0]["results"]]
    assert sorted(uris) == ["sub/train.py", "train.py"]


def test_select_and_ignore_take_comma_separated_lists(tmp_path, monkeypatch):
    _project(tmp_path, monkeypatch)

    def codes(*args):
        result = CliRunner().invoke(main, ["check", "--format", "json", *args, "train.py"])
        assert result.exit_code in (0, 1), result.output
        return sorted({finding["rule"] for finding in json.loads(result.stdout)["findings"]})

    assert codes("--select", "GF001,GF003") == codes("--select", "GF001", "--select", "GF003") == ["GF003"]
    assert codes("--select", "GF001, loss-ignores-prediction") == ["GF003"]
    assert codes("--ignore", "GF001,GF003") == codes("--ignore", "GF001", "--ignore", "GF003") == []
    bad = CliRunner().invoke(main, ["check", "--select", "GF003,GF999", "train.py"])
    assert bad.exit_code == 2 and "unknown rule GF999" in bad.output
