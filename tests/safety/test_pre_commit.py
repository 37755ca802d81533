"""The hooks in .pre-commit-hooks.yaml, run by pre-commit itself on a small repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# installs gradfix into pre-commit's own environment (about 100 s): outside the fast lane
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BUGGY = ROOT / "fixtures" / "all-variables-as-sources" / "batchnorm_custom_loop.py"
FIXED = ROOT / "fixtures" / "all-variables-as-sources" / "batchnorm_custom_loop.fixed.py"
PRE_COMMIT = [sys.executable, "-m", "pre_commit"]


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(cwd), "PATH": "/usr/bin:/bin"})


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory):
    """gradfix as it is in this working tree, committed to a scratch repository pre-commit can install from."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed on this machine")
    repo = tmp_path_factory.mktemp("gradfix-hooks")
    ignore = shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info", "build", ".pytest_cache", "tests")
    # docs/rules installs as gradfix.rule_docs
    for name in ("gradfix", "transforms", "docs", "pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, repo / name, **({"ignore": ignore} if source.is_dir() else {}))
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "hooks")
    return repo


@pytest.mark.parametrize("hook, code, expected", [("gradfix", 1, BUGGY), ("gradfix-fix", 1, FIXED)])
def test_hook_runs_through_pre_commit(tmp_path, hook_repo, hook, code, expected):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(BUGGY, project / "train.py")
    (project / "venv").mkdir()
    shutil.copy(BUGGY, project / "venv" / "vendored.py")  # passed over by --force-exclude
    _git(project, "init", "-q")
    _git(project, "add", "-A")
    completed = subprocess.run(
        [*PRE_COMMIT, "try-repo", str(hook_repo), hook, "--all-files"], cwd=project, capture_output=True, text=True,
        timeout=900, env={"PRE_COMMIT_HOME": str(hook_repo.parent / "pre-commit-home"), "PATH": "/usr/bin:/bin",
                          "HOME": str(tmp_path)},
    )
    assert completed.returncode == code, completed.stdout + completed.stderr
    assert "GF006" in completed.stdout or hook == "gradfix-fix"
    assert (project / "train.py").read_text() == expected.read_text()
    assert (project / "venv" / "vendored.py").read_text() == BUGGY.read_text()
