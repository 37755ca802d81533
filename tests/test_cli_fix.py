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
