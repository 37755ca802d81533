"""`gradfix check` and `gradfix fix` end to end on the seed's first example."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner
from fixture_cases import FIXTURES

from gradfix.cli import main
from gradfix.model import Finding
from gradfix.patch import apply_diff

BUGGY = FIXTURES / "seed" / "example1.py"
FIXED = FIXTURES / "seed" / "example1.fixed.py"


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(BUGGY, tmp_path / "train.py")
    return tmp_path


def test_check_shows_the_finding_with_its_excerpt_and_fix(workdir):
    result = _run("check", "train.py")
    assert result.exit_code == 1
    out = result.stdout
    assert "train.py:10:27: GF003 [loss-ignores-prediction]" in out
    assert "intermediate_output = model.layers[0](y_true)" in out
    assert "^^^^" in out
    assert "unsafe fix:" in out


def test_check_json_is_the_model_serialised(workdir):
    result = _run("check", "--format", "json", "train.py")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    [finding] = [Finding.from_dict(item) for item in document["findings"]]
    assert (finding.rule, finding.span.start_line, finding.evidence.value) == ("GF003", 10, "static")
    assert finding.fix.applicability.value == "unsafe"
    assert Finding.from_dict(finding.to_dict()) == finding


def test_safe_fix_only_by_default_and_nothing_written(workdir):
    before = (workdir / "train.py").read_bytes()
    result = _run("fix", "train.py")
    assert result.exit_code == 1
    assert result.stdout == ""  # the only fix here is unsafe
    assert "--unsafe-fixes" in result.stderr
    assert (workdir / "train.py").read_bytes() == before


def test_unsafe_diff_applies_with_git_and_unidiff(workdir):
    result = _run("fix", "--unsafe-fixes", "train.py")
    assert result.exit_code == 1
    diff = result.stdout
    assert diff.startswith("# gradfix: GF003 loss-ignores-prediction: ")  # the header, which git and patch skip
    assert "\n--- a/train.py\n+++ b/train.py\n" in diff
    assert apply_diff(BUGGY.read_text(), diff) == FIXED.read_text()
    if shutil.which("git"):
        subprocess.run(["git", "init", "-q"], cwd=workdir, check=True)
        subprocess.run(["git", "apply", "-"], input=diff.encode(), cwd=workdir, check=True)
        assert (workdir / "train.py").read_text() == FIXED.read_text()


def test_apply_writes_the_expected_program_and_then_changes_nothing(workdir):
    result = _run("fix", "--apply", "--unsafe-fixes", "train.py")
    assert result.exit_code == 0, result.output
    assert (workdir / "train.py").read_text() == FIXED.read_text()
    again = _run("fix", "--apply", "--unsafe-fixes", "train.py")
    assert again.exit_code == 0
    assert again.stdout == ""
    assert (workdir / "train.py").read_text() == FIXED.read_text()


def test_apply_keeps_crlf_line_endings_encoding_and_mode(workdir):
    text = BUGGY.read_text().replace("\n", "\r\n")
    text = "# -*- coding: latin-1 -*-\r\n# entraîné\r\n" + text
    path = workdir / "train.py"
    path.write_bytes(text.encode("latin-1"))
    os.chmod(path, 0o640)
    result = _run("fix", "--apply", "--unsafe-fixes", "train.py")
    assert result.exit_code == 0, result.output
    data = path.read_bytes()
    expected = ("# -*- coding: latin-1 -*-\r\n# entraîné\r\n" + FIXED.read_text().replace("\n", "\r\n")).encode("latin-1")
    assert data == expected
    assert os.stat(path).st_mode & 0o777 == 0o640


def test_console_script_fix_on_a_folder(workdir):
    (workdir / "pkg").mkdir()
    shutil.move(workdir / "train.py", workdir / "pkg" / "train.py")
    completed = subprocess.run([sys.executable, "-m", "gradfix", "fix", "--unsafe-fixes", "pkg"],
                               capture_output=True, text=True, cwd=workdir)
    assert completed.returncode == 1
    assert "+++ b/pkg/train.py" in completed.stdout


def test_a_large_tree_checked_in_processes_reports_as_one_process_does(tmp_path):
    for index in range(30):
        shutil.copy(BUGGY if index % 3 == 0 else FIXED, tmp_path / f"m{index:02}.py")
    (tmp_path / "m16.py").write_text("def (:\n")
    single = _run("check", "--format", "json", "--jobs", "1", tmp_path)
    parallel = _run("check", "--format", "json", "--jobs", "2", tmp_path)
    assert single.exit_code == parallel.exit_code == 2
    assert json.loads(single.stdout) == json.loads(parallel.stdout)
    assert len(json.loads(parallel.stdout)["findings"]) == 10


@pytest.fixture
def three_files(tmp_path, monkeypatch):
    """A safe fix (a.py), an unsafe one (b.py, the seed), two safe ones (c.py)."""
    monkeypatch.chdir(tmp_path)
    for name, fixture in (("a.py", "all-variables-as-sources/batchnorm_custom_loop"), ("b.py", "seed/example1"),
                          ("c.py", "variable-rebound-to-tensor/linear_regression")):
        shutil.copy(FIXTURES / f"{fixture}.py", tmp_path / name)
    return {name: FIXTURES / f"{fixture}.fixed.py" for name, fixture in (
        ("a.py", "all-variables-as-sources/batchnorm_custom_loop"), ("b.py", "seed/example1"),
        ("c.py", "variable-rebound-to-tensor/linear_regression"))}


def test_check_fix_writes_the_safe_fixes_and_reports_what_is_left(three_files, tmp_path):
    """As Ruff's `check --fix`: the safe fixes written, the problems left reported, how many of each."""
    before = (tmp_path / "b.py").read_text()
    plain = _run("check", ".")
    assert "3 fixable with `gradfix check --fix`; 1 more with `--unsafe-fixes`" in plain.stdout
    result = _run("check", "--fix", ".")
    assert result.exit_code == 1, result.output
    for name in ("a.py", "c.py"):
        assert (tmp_path / name).read_text() == three_files[name].read_text()
    assert (tmp_path / "b.py").read_text() == before  # its fix is unsafe
    assert result.stdout.startswith("b.py:10:27: GF003 [loss-ignores-prediction] ")
    assert "Found 4 problems (3 fixed, 1 remaining)." in result.stdout
    assert "a.py:" not in result.stdout and "c.py:" not in result.stdout
    again = _run("check", "--fix", ".")
    assert again.exit_code == 1 and "Found 1 problem (0 fixed, 1 remaining)." in again.stdout
    unsafe = _run("check", "--fix", "--unsafe-fixes", "--format", "concise", ".")
    assert unsafe.exit_code == 0 and unsafe.stdout == ""
    assert "Found 1 problem (1 fixed, 0 remaining)." in unsafe.stderr
    assert (tmp_path / "b.py").read_text() == three_files["b.py"].read_text()
    clean = _run("check", "--fix", ".")
    assert clean.exit_code == 0 and clean.stderr.strip() == "No problems found."


def test_check_fix_json_lists_the_problems_left_and_the_patches_written(three_files):
    import jsonschema

    from gradfix.report import load_schema

    result = _run("check", "--fix", "--format", "json", ".")
    document = json.loads(result.stdout)
    jsonschema.validate(document, load_schema())
    assert document["command"] == "check" and document["exit_code"] == result.exit_code == 1
    assert [f["rule"] for f in document["findings"]] == ["GF003"]
    assert sorted(p["path"] for p in document["fixes"]) == ["a.py", "c.py"]
    assert all(p["applied"] for p in document["fixes"])


def test_check_fix_refusals(three_files, tmp_path):
    assert _run("check", "--unsafe-fixes", ".").exit_code == 2
    assert _run("check", "--fix", "--report-unused-noqa", ".").exit_code == 2
    piped = CliRunner().invoke(main, ["check", "--fix", "-", "--stdin-filename", "a.py"], input="x = 1\n")
    assert piped.exit_code == 2 and "gradfix fix --apply -" in piped.output
    (tmp_path / "a.py").chmod(0o444)  # refused as `fix --apply` refuses it ("the file is read-only")
    try:
        result = _run("check", "--fix", "a.py", "c.py")
        assert result.exit_code == 2
        assert [line for line in result.stderr.splitlines() if line.startswith("gradfix: error: a.py")]
        assert "a.py:23:13: GF006" in result.stdout  # not written: still there
        assert (tmp_path / "c.py").read_text() == three_files["c.py"].read_text()
    finally:
        (tmp_path / "a.py").chmod(0o644)
