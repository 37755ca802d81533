"""`gradfix apply`: every check before any write, `--check` refuses what a real apply refuses, line endings and
names survive the patch, notebooks in a folder's patch are applied, and a hard link cannot carry a write outside."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.safety.conftest import BUGGY, FIXED, run


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _patch(*paths) -> str:
    result = run("fix", "--diff", *paths)
    assert result.exit_code == 1, result.output
    return result.stdout


def _fingerprint(path):
    info = os.stat(path)
    return info.st_ino, info.st_mtime_ns, path.read_bytes()


def test_a_read_only_second_file_is_refused_by_check_and_nothing_is_written(project):
    (project / "a.py").write_text(BUGGY)
    (project / "b.py").write_text(BUGGY)
    (project / "fixes.patch").write_text(_patch("a.py", "b.py"))
    os.chmod(project / "b.py", 0o444)
    before = _fingerprint(project / "a.py")
    checked = run("apply", "--check", "fixes.patch")
    assert checked.exit_code == 2 and "b.py: the file is read-only" in checked.stderr
    applied = run("apply", "fixes.patch")
    assert applied.exit_code == 2 and "b.py: the file is read-only" in applied.stderr
    assert "nothing written" in applied.stderr
    assert _fingerprint(project / "a.py") == before  # never written (not written and put back: same inode, same time)


def test_the_same_file_named_twice_as_x_and_dot_slash_x_is_refused_by_check(project):
    (project / "x.py").write_text(BUGGY)
    diff = _patch("x.py")
    twice = diff + diff.replace("a/x.py", "a/./x.py").replace("b/x.py", "b/./x.py")
    (project / "twice.patch").write_text(twice)
    for args in (("apply", "--check", "twice.patch"), ("apply", "twice.patch")):
        result = run(*args)
        assert result.exit_code == 2 and "named twice in the patch" in result.stderr
    assert (project / "x.py").read_text() == BUGGY


@pytest.mark.parametrize("ending", ["\r", "\r\n"])
def test_changed_lines_keep_the_file_line_endings(project, ending):
    (project / "train.py").write_bytes(BUGGY.encode())
    patch = _patch("train.py")  # made from the file with \n endings
    (project / "fixes.patch").write_bytes(patch.encode())
    (project / "train.py").write_bytes(BUGGY.replace("\n", ending).encode())
    # the recorded hash is of the \n file: take the header away, as a patch carried through another tool would be
    (project / "fixes.patch").write_text("".join(line for line in patch.splitlines(True) if "sha256" not in line))
    result = run("apply", "fixes.patch")
    assert result.exit_code == 0, result.output
    assert (project / "train.py").read_bytes() == FIXED.replace("\n", ending).encode()


def test_a_bare_cr_file_own_patch_keeps_cr_endings(project):
    (project / "train.py").write_bytes(BUGGY.replace("\n", "\r").encode())
    (project / "fixes.patch").write_bytes(_patch("train.py").encode())
    result = run("apply", "fixes.patch")
    assert result.exit_code == 0, result.output
    assert (project / "train.py").read_bytes() == FIXED.replace("\n", "\r").encode()


def test_a_folder_patch_with_a_notebook_is_applied_whole(project):
    head, tail = BUGGY.split("for x, y in dataset:\n")
    cell = {"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": [],
            "source": ("for x, y in dataset:\n" + tail).splitlines(keepends=True)}
    notebook = {"cells": [{"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": [],
                           "source": head.splitlines(keepends=True)}, cell],
                "metadata": {"kernelspec": {"language": "python", "name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
    (project / "src").mkdir()
    (project / "src" / "train.ipynb").write_text(json.dumps(notebook, indent=1) + "\n")
    (project / "src" / "train.py").write_text(BUGGY)
    (project / "fixes.patch").write_text(_patch("src"))
    result = run("apply", "fixes.patch")
    assert result.exit_code == 0, result.output
    assert "Patched src/train.ipynb" in result.stdout and "Patched src/train.py" in result.stdout
    assert (project / "src" / "train.py").read_text() == FIXED
    fixed_cell = json.loads((project / "src" / "train.ipynb").read_text())["cells"][1]
    assert "".join(fixed_cell["source"]) == "for x, y in dataset:\n" + FIXED.split("for x, y in dataset:\n")[1]


def test_a_file_name_with_a_newline_is_quoted_as_git_quotes_it(project):
    odd = project / "odd\nname.py"
    odd.write_text(BUGGY)
    (project / "plain.py").write_text(BUGGY)
    patch = _patch(".")
    assert '--- "a/odd\\nname.py"\n+++ "b/odd\\nname.py"\n' in patch
    (project / "fixes.patch").write_text(patch)
    if shutil.which("git"):
        subprocess.run(["git", "init", "-q", "."], check=True)
        checked = subprocess.run(["git", "apply", "--check", "fixes.patch"], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
    result = run("apply", "fixes.patch")
    assert result.exit_code == 0, result.output
    assert odd.read_text() == FIXED and (project / "plain.py").read_text() == FIXED


def test_a_hard_link_cannot_carry_apply_outside_the_project(tmp_path, monkeypatch):
    outside = tmp_path / "outside.py"
    outside.write_text(BUGGY)
    project = tmp_path / "project"
    project.mkdir()
    os.link(outside, project / "train.py")
    monkeypatch.chdir(project)
    (project / "fixes.patch").write_text(_patch("train.py"))
    for args in (("apply", "--check", "fixes.patch"), ("apply", "fixes.patch")):
        result = run(*args)
        assert result.exit_code == 2
        assert "train.py: the file has 1 other hard link, which may be outside the project" in result.stderr
    assert outside.read_text() == BUGGY
