"""`gradfix fix --diff` patches with their header, and `gradfix apply`: all of the patch or nothing."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from click.testing import CliRunner
from fixture_cases import FIXTURES

from gradfix.cli import main

BUGGY = FIXTURES / "seed" / "example1.py"
FIXED = FIXTURES / "seed" / "example1.fixed.py"


def _run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """Two buggy files and a patch fixing both, made by `fix --diff`."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pkg").mkdir()
    shutil.copy(BUGGY, tmp_path / "train.py")
    shutil.copy(BUGGY, tmp_path / "pkg" / "other.py")
    result = _run("fix", "--diff", "--unsafe-fixes", "train.py", "pkg")
    assert result.exit_code == 1
    (tmp_path / "fixes.patch").write_text(result.stdout)
    return tmp_path


def _snapshot(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*.py"))}


def test_each_file_diff_has_a_header_naming_its_fixes(project):
    patch = (project / "fixes.patch").read_text()
    blocks = patch.split("--- a/")
    assert blocks[0].startswith("# gradfix: GF003 loss-ignores-prediction: ")
    assert "; unsafe; not verified (no re-run)" in blocks[0]
    assert "# gradfix: why unsafe: " in blocks[0]
    assert "# gradfix: sha256 of the file before: " in blocks[0]
    assert blocks[1].startswith("train.py") and "\n# gradfix: GF003" in blocks[1]  # the next file's header
    assert blocks[2].startswith("pkg/other.py")


@pytest.mark.parametrize("tool", ["git", "patch"])
def test_git_apply_and_patch_accept_the_patch_with_its_header(project, tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    command = ["git", "apply", "fixes.patch"] if tool == "git" else ["patch", "-p1", "-i", "fixes.patch"]
    if tool == "git":
        subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run(command, cwd=project, check=True, capture_output=True)
    assert (project / "train.py").read_text() == FIXED.read_text()
    assert (project / "pkg" / "other.py").read_text() == FIXED.read_text()


def test_apply_check_writes_nothing_then_apply_writes_both(project):
    before = _snapshot(project)
    checked = _run("apply", "--check", "fixes.patch")
    assert checked.exit_code == 0, checked.output
    assert "Would patch train.py (1 hunk)" in checked.stdout and "nothing written" in checked.stdout
    assert _snapshot(project) == before
    applied = _run("apply", "fixes.patch")
    assert applied.exit_code == 0, applied.output
    assert "Patched pkg/other.py" in applied.stdout and "GF003 loss-ignores-prediction" in applied.stdout
    assert (project / "train.py").read_text() == FIXED.read_text()
    assert (project / "pkg" / "other.py").read_text() == FIXED.read_text()


def test_apply_reads_standard_input(project):
    result = _run("apply", "-", input=(project / "fixes.patch").read_text())
    assert result.exit_code == 0, result.output
    assert (project / "train.py").read_text() == FIXED.read_text()


def _refused(project, patch_text, *expected):
    (project / "bad.patch").write_text(patch_text)
    before = _snapshot(project)
    for args in (("apply", "bad.patch"), ("apply", "--check", "bad.patch")):
        result = _run(*args)
        assert result.exit_code == 2, result.output
        assert "nothing written" in result.stderr
        for text in expected:
            assert text in result.stderr
    assert _snapshot(project) == before


def test_a_file_changed_since_the_patch_was_made_refuses_all_of_it(project):
    # The second file changed (a comment added at the end): the hunk still fits, the hash does not.
    with open(project / "pkg" / "other.py", "a") as out:
        out.write("# edited\n")
    _refused(project, (project / "fixes.patch").read_text(), "pkg/other.py: changed since the patch was made")
    assert (project / "train.py").read_text() == BUGGY.read_text()  # the first file was not written either


def test_a_hunk_that_no_longer_fits_refuses_all_of_it(project):
    patch = (project / "fixes.patch").read_text()
    without_hashes = "".join(line for line in patch.splitlines(keepends=True) if "sha256" not in line)
    (project / "pkg" / "other.py").write_text(BUGGY.read_text().replace("def incorrect_loss", "def renamed_loss"))
    _refused(project, without_hashes, "pkg/other.py: a hunk no longer fits")


@pytest.mark.parametrize("name", ["../outside.py", "/tmp/outside.py", "pkg/../../outside.py"])
def test_a_path_outside_the_project_is_refused(project, name):
    patch = (project / "fixes.patch").read_text()
    first = patch.split("--- a/pkg/other.py")[0]
    _refused(project, first.replace("a/train.py", f"a/{name}").replace("b/train.py", f"b/{name}")
             if not name.startswith("/") else first.replace("--- a/train.py", f"--- {name}").replace("+++ b/train.py", f"+++ {name}"),
             "outside the project" if not name.startswith("/") else "absolute path")


def test_a_link_leading_outside_the_project_is_refused(project, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "train.py"
    shutil.copy(BUGGY, outside)
    os.remove(project / "train.py")
    os.symlink(outside, project / "train.py")
    _refused(project, (project / "fixes.patch").read_text(), "train.py: leads outside the project")
    assert outside.read_text() == BUGGY.read_text()


@pytest.mark.parametrize("text", ["just some words\n", "", "--- a/train.py\n+++ b/train.py\n@@ -1,3 +1,3 @@\n garbage\n"])
def test_text_that_is_not_a_patch_is_refused(project, text):
    _refused(project, text, "not a patch")


def test_a_missing_patch_file_is_an_error(project):
    assert _run("apply", "nowhere.patch").exit_code == 2


def test_a_patch_creating_a_file_is_refused(project):
    _refused(project, "--- /dev/null\n+++ b/new.py\n@@ -0,0 +1 @@\n+x = 1\n", "creates this file")
    assert not (project / "new.py").exists()


def test_a_patch_whose_result_does_not_parse_is_refused(project):
    patch = (project / "fixes.patch").read_text().replace("+    return tf.reduce_mean", "+    return tf.reduce_mean((")
    _refused(project, patch, "would not parse")


def test_a_copy_that_cannot_be_written_stops_the_apply_before_any_file_changes(project, monkeypatch):
    from gradfix.source import PendingWrite, SourceError

    real = PendingWrite.prepare
    calls = []

    def failing_second(self):
        calls.append(self.source.path)
        if len(calls) == 2:
            raise SourceError(self.source.path, "not written: No space left on device; the file is unchanged")
        return real(self)

    monkeypatch.setattr(PendingWrite, "prepare", failing_second)
    result = _run("apply", "fixes.patch")
    assert result.exit_code == 2
    assert "No space left on device" in result.stderr and "nothing written" in result.stderr
    assert (project / "train.py").read_text() == BUGGY.read_text()  # never written
    assert (project / "pkg" / "other.py").read_text() == BUGGY.read_text()
    assert not list(project.rglob(".gradfix-*"))  # the first file's copy is removed


def test_a_failed_replacement_puts_back_the_files_already_replaced(project, monkeypatch):
    from gradfix.source import PendingWrite, SourceError

    real = PendingWrite.commit
    calls = []

    def failing_second(self):
        calls.append(self.source.path)
        if len(calls) == 2:
            self.discard()
            raise SourceError(self.source.path, "not written: Input/output error; the file is unchanged")
        return real(self)

    monkeypatch.setattr(PendingWrite, "commit", failing_second)
    result = _run("apply", "fixes.patch")
    assert result.exit_code == 2
    assert "put back as they were: train.py" in result.stderr, result.stderr
    assert (project / "train.py").read_text() == BUGGY.read_text()  # written, then put back
    assert (project / "pkg" / "other.py").read_text() == BUGGY.read_text()