"""`gradfix check -` and `gradfix fix -` with --stdin-filename: for editors that run a command, as with Ruff and Black."""

from __future__ import annotations

import json
import pathlib

from click.testing import CliRunner

from gradfix.cli import main

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures"
CASE = FIXTURES / "computed-outside-tape" / "forward_pass_before_tape.py"


def run(args, text):
    return CliRunner().invoke(main, args, input=text.encode("utf-8"))


def test_check_reads_stdin_and_names_the_file():
    result = run(["check", "-", "--stdin-filename", "src/train.py"], CASE.read_text())
    assert result.exit_code == 1
    assert "src/train.py:18:9: GF001" in result.output


def test_check_stdin_json_and_clean_input():
    result = run(["check", "--format", "json", "-", "--stdin-filename", "t.py"], CASE.read_text())
    document = json.loads(result.stdout)
    assert [f["rule"] for f in document["findings"]] == ["GF001"]
    clean = run(["check", "-"], CASE.with_name("forward_pass_before_tape.fixed.py").read_text())
    assert clean.exit_code == 0


def test_fix_stdin_prints_the_diff_and_with_apply_the_fixed_source():
    text = CASE.read_text()
    diff = run(["fix", "-", "--stdin-filename", "src/train.py"], text)
    assert diff.exit_code == 1 and "+++ b/src/train.py" in diff.stdout
    fixed = run(["fix", "--apply", "-", "--stdin-filename", "src/train.py"], text)
    assert fixed.exit_code == 0
    assert fixed.stdout == CASE.with_name("forward_pass_before_tape.fixed.py").read_text()


def test_stdin_errors():
    assert run(["check", "-"], "x = (\n").exit_code == 2
    assert run(["check", "-", str(CASE)], "x = 1\n").exit_code == 2
    assert run(["check", "--stdin-filename", "a.py", str(CASE)], "").exit_code == 2
    assert run(["fix", "--apply", "-"], "").stdout == ""
