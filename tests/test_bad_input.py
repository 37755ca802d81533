"""Bad input: one clear line naming the file and the problem, exit 2, nothing written, the rest still processed."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
from click.testing import CliRunner

from gradfix.cli import main

GOOD = "import tensorflow as tf\nx = tf.constant(1.0)\n"


def _run(*args):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("broken.py", b"def f(:\n    pass\n", "syntax error"),
        ("latin.py", b"x = '\xe9t\xe9'\n", "not valid utf-8"),
        ("declared.py", b"# -*- coding: ascii -*-\nx = '\xc3\xa9'\n", "not valid ascii"),
        ("empty.py", b"", "file is empty"),
        ("blank.py", b"\n\n   \n", "file is empty"),
    ],
)
@pytest.mark.parametrize("command", [["check"], ["fix"], ["fix", "--apply"]])
def test_bad_file_is_named_in_one_line_and_left_alone(tmp_path, name, content, problem, command):
    bad = tmp_path / name
    bad.write_bytes(content)
    good = tmp_path / "good.py"
    good.write_text(GOOD)
    result = _run(*command, str(bad), str(good))
    assert result.exit_code == 2
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("gradfix: error:")]
    assert len(error_lines) == 1
    assert str(bad) in error_lines[0] and problem in error_lines[0]
    assert bad.read_bytes() == content
    assert good.read_text() == GOOD
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "good.py"])


def test_missing_path(tmp_path):
    missing = tmp_path / "nope.py"
    result = _run("check", str(missing))
    assert result.exit_code == 2
    assert f"{missing}: no such file or folder" in result.stderr


def test_folder_without_python_files(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "data.csv").write_text("1,2")
    result = _run("check", str(tmp_path))
    assert result.exit_code == 2
    assert f"{tmp_path}: folder holds no Python files" in result.stderr


def test_folder_is_searched_recursively(tmp_path):
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (nested / "broken.py").write_text("def (:\n")
    result = _run("check", str(tmp_path))
    assert result.exit_code == 2
    assert "broken.py" in result.stderr


def test_unknown_rule_is_an_error():
    result = _run("check", "--select", "GF999", ".")
    assert result.exit_code == 2
    assert "unknown rule GF999" in result.output


def test_clean_file_exits_zero(tmp_path):
    good = tmp_path / "good.py"
    good.write_text(GOOD)
    assert _run("check", str(good)).exit_code == 0
    result = _run("fix", "--apply", str(good))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert good.read_text() == GOOD


def test_console_entry_point_runs_as_a_program(tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("def (:\n")
    completed = subprocess.run([sys.executable, "-m", "gradfix", "check", str(bad)], capture_output=True, text=True)
    assert completed.returncode == 2
    assert completed.stderr.strip().startswith(f"gradfix: error: {bad}: syntax error")


def test_empty_init_in_a_folder_is_normal_but_a_named_empty_file_is_not(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text(GOOD)
    assert _run("check", str(tmp_path)).exit_code == 0
    named = _run("check", str(package / "__init__.py"))
    assert named.exit_code == 2 and "file is empty" in named.stderr


def test_a_failing_rule_is_reported_and_the_others_still_run(tmp_path, monkeypatch):
    from gradfix.engine import analyze, select_rules
    from gradfix.source import SourceFile

    monkeypatch.delenv("GRADFIX_STRICT", raising=False)
    rules = select_rules()
    broken = rules[0]

    def explode(analysis):
        raise RuntimeError("boom")
        yield

    monkeypatch.setattr(broken, "check", explode)
    text = (pathlib.Path(__file__).parent.parent / "fixtures" / "seed" / "example1.py").read_text()
    from gradfix.engine import IncompleteAnalysis

    with pytest.raises(IncompleteAnalysis, match=f"not fully checked: internal error in rule {broken.code}") as raised:
        analyze(SourceFile("example1.py", text, "utf-8"), rules)
    assert [f.rule for f in raised.value.findings] == ["GF003"]
