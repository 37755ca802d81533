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
