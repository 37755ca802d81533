"""Reviewing what `diagnose` proposes: the interactive review, the patch, the JSON document (TensorFlow runs for real)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from fixture_cases import REPAIR

pytestmark = pytest.mark.tensorflow

PROGRAM = REPAIR / "gan_negated_gen_loss_in_gradient_call.py"
FIXED = REPAIR / "gan_negated_gen_loss_in_gradient_call.fixed.py"


def _diagnose(cwd, *args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "gradfix", "diagnose", "-q", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_interactive_review_writes_what_is_accepted(tmp_path):
    """`diagnose --interactive` in a real pseudo-terminal: the verified fix is shown, accepted, written."""
    import pexpect

    shutil.copyfile(PROGRAM, tmp_path / "train.py")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", NO_COLOR="1", COLUMNS="120")
    child = pexpect.spawn(sys.executable, ["-m", "gradfix", "diagnose", "-q", "--interactive", "train.py"], cwd=str(tmp_path),
                          env=env, encoding="utf-8", timeout=600)
    child.expect(r"Fix 1")
    child.expect(r"GF001")
    child.expect(r"verified")
    child.expect(r"\+        negative_gen_objective = -gen_objective")
    child.expect(r"\?")
    child.sendline("y")
    child.expect(pexpect.EOF)
    child.close()
    assert (tmp_path / "train.py").read_text() == FIXED.read_text()
    assert child.exitstatus == 0


def test_the_patch_applies_with_git_and_says_what_was_verified(tmp_path):
    shutil.copyfile(PROGRAM, tmp_path / "train.py")
    done = _diagnose(tmp_path, "--diff", "train.py")
    assert done.returncode == 1, done.stderr
    assert "# gradfix: GF001" in done.stdout and "verified" in done.stdout
    (tmp_path / "fix.patch").write_text(done.stdout)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "apply", "fix.patch"], cwd=tmp_path, check=True)
    assert (tmp_path / "train.py").read_text() == FIXED.read_text()


def test_the_json_document_follows_the_schema(tmp_path):
    from gradfix.report import validate

    shutil.copyfile(PROGRAM, tmp_path / "train.py")
    done = _diagnose(tmp_path, "--json", "--fix", "train.py")
    document = json.loads(done.stdout)
    validate(document)
    [cause] = document["diagnose"]["causes"]
    assert cause["category"] == "computed-outside-tape" and cause["basis"] == "run" and cause["cut"]["op"] == "Neg"
    [repair] = document["diagnose"]["repairs"]
    assert repair["attempts"][repair["chosen"]]["verification"]["verified"] is True
    assert document["fixes"] and document["fixes"][0]["applied"] is False
