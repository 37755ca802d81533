"""Limits that hold: timeouts that are numbers, the file time bound for `fix` too, bounded standard input and patches."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.safety.conftest import BUGGY, run


def _one_error_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("gradfix: error: "), result.output
    return lines[0]


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-1"])
@pytest.mark.parametrize("command", ["diagnose", "report"])
def test_a_timeout_that_is_not_a_finite_number_above_0_is_refused_in_one_line(tmp_path, monkeypatch, command, value):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text("pass\n")
    # /bin/false as the interpreter: were the value taken, nothing heavy would run
    result = run(command, "train.py", "--python", "/bin/false", "--timeout", value)
    assert result.exit_code == 2
    assert f"'{value}' is not a finite number of seconds above 0" in _one_error_line(result)
    assert not (tmp_path / "gradfix-report.html").exists()


def test_timeout_nan_in_the_configuration_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text("pass\n")
    (tmp_path / "pyproject.toml").write_text('[tool.gradfix]\ndiagnose = { target = "train.py", timeout = nan }\n')
    result = run("diagnose", "--python", "/bin/false")
    assert result.exit_code == 2
    assert "diagnose.timeout: expected a finite number of seconds above 0" in _one_error_line(result)


def test_fix_is_bounded_by_the_file_time_limit_as_check_is(tmp_path, monkeypatch):
    import gradfix.engine

    def slow_fix(*args, **kwargs):  # an analysis that would run on: the bound must stop it
        time.sleep(30)
        raise AssertionError("the file time limit did not stop the fix")

    monkeypatch.setattr(gradfix.engine, "fix_source", slow_fix)
    monkeypatch.setenv("GRADFIX_FILE_TIMEOUT", "0.2")
    (tmp_path / "train.py").write_text(BUGGY)
    result = run("fix", tmp_path / "train.py")
    assert result.exit_code == 2
    assert "train.py: analysis took longer than 0.2 s and was stopped (set GRADFIX_FILE_TIMEOUT" in result.output


@pytest.mark.parametrize("value", ["nan", "0", "soon"])
def test_a_file_time_limit_that_is_not_a_number_above_0_is_refused(tmp_path, monkeypatch, value):
    monkeypatch.setenv("GRADFIX_FILE_TIMEOUT", value)
    (tmp_path / "train.py").write_text(BUGGY)
    for command in ("check", "fix"):
        result = run(command, tmp_path / "train.py")
        assert result.exit_code == 2
        assert f"GRADFIX_FILE_TIMEOUT='{value}': expected a finite number of seconds above 0" in _one_error_line(result)


@pytest.mark.parametrize("command", ["check", "fix"])
def test_standard_input_is_read_up_to_the_file_limit_and_no_further(tmp_path, command):
    limit = 100_000
    endless = tmp_path / "input.py"
    endless.write_bytes(b"x = 1\n" * (limit // 2))  # three times the limit
    with open(endless, "rb") as stdin:
        completed = subprocess.run([sys.executable, "-m", "gradfix", command, "-"], stdin=stdin, capture_output=True,
                                   text=True, timeout=120, env={**os.environ, "GRADFIX_MAX_FILE_BYTES": str(limit)})
        consumed = os.lseek(stdin.fileno(), 0, os.SEEK_CUR)  # the offset gradfix's reads left in the shared file
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [
        "gradfix: error: -: standard input is over gradfix's limit of 0.1 MB (set GRADFIX_MAX_FILE_BYTES to raise it); "
        "the rest was not read"]
    assert limit < consumed < 2 * limit  # the limit and the rest of one buffered read, not the whole input


def test_a_patch_over_the_limit_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GRADFIX_MAX_FILE_BYTES", "1000")  # patches up to 4000 bytes
    (tmp_path / "x.py").write_text("x = 1\n")
    patch = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n" + "# padding\n" * 500
    (tmp_path / "big.patch").write_text(patch)
    result = run("apply", "big.patch")
    assert result.exit_code == 2
    assert "big.patch: over gradfix's limit of 0.0 MB for a patch (four times GRADFIX_MAX_FILE_BYTES)" in _one_error_line(result)
    assert (tmp_path / "x.py").read_text() == "x = 1\n"


def test_apply_checks_the_result_with_python_not_with_libcst(tmp_path, monkeypatch):
    # LibCST's parser, which cost minutes and gigabytes on large patched files, rejects more than
    # 3000 adjacent strings; Python does not, and Python's verdict is the one a patch must pass
    monkeypatch.chdir(tmp_path)
    strings = "".join('    "s"\n' for _ in range(5000))
    (tmp_path / "x.py").write_text(f"x = 1\ny = (\n{strings})\n")
    (tmp_path / "fix.patch").write_text("--- a/x.py\n+++ b/x.py\n@@ -1,2 +1,2 @@\n-x = 1\n+x = 2\n y = (\n")
    result = run("apply", "fix.patch")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "x.py").read_text().startswith("x = 2\ny = (\n")
