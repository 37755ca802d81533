"""`fix` messages, and the interactive review through a real pseudo-terminal."""

from __future__ import annotations

import os
import shutil
import sys

import pexpect
import pytest
from click.testing import CliRunner
from fixture_cases import FIXTURES

from gradfix.cli import main
from gradfix.model import Applicability, Finding, Fix, Span
from gradfix.review import ReviewItem, review

BUGGY = FIXTURES / "seed" / "example1.py"
FIXED = FIXTURES / "seed" / "example1.fixed.py"
DISPLAY_ONLY = FIXTURES / "layer-never-called" / "unused_aux_layer_custom_loop.py"


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(BUGGY, tmp_path / "train.py")
    shutil.copy(BUGGY, tmp_path / "other.py")
    return tmp_path


def test_no_unsafe_hint_when_only_suggestions_are_left(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(DISPLAY_ONLY, tmp_path / "train.py")
    result = _run("fix", "train.py")
    assert result.exit_code == 1
    assert "--unsafe-fixes" not in result.stderr
    assert "train.py:5:14: GF011 layer-never-called" in result.stderr and "(no automatic fix)" in result.stderr


def test_unsafe_hint_and_reason_when_an_unsafe_fix_is_left(workdir):
    result = _run("fix", "train.py")
    assert "`--unsafe-fixes` would fix 1 more problem" in result.stderr
    assert "unsafe fix, needs `--unsafe-fixes`: it may change what the program computes" in result.stderr


def test_apply_lists_what_is_left(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(BUGGY, tmp_path / "train.py")
    shutil.copy(DISPLAY_ONLY, tmp_path / "aux.py")
    result = _run("fix", "--apply", "--unsafe-fixes", ".")
    assert result.exit_code == 1
    assert "Fixed 1 file (1 fix)." in result.stderr
    assert "1 problem left:" in result.stderr and "aux.py:5:14: GF011" in result.stderr
    assert (tmp_path / "train.py").read_text() == FIXED.read_text()


class Scripted:
    def __init__(self, answers):
        self.answers = list(answers)
        self.shown = []
        self.totals = []

    def show(self, item, number, total=None):
        self.shown.append(number)
        self.totals.append(total)

    def ask(self, prompt):
        return self.answers.pop(0)

    def say(self, text):
        pass


def _item(rule):
    span = Span("a.py", 1, 1, 1, 2)
    fix = Fix(rule, "d", Applicability.SAFE, ())
    return ReviewItem(Finding(rule, "n", "m", span, fix=fix), fix, "")


def test_review_accepts_skips_accepts_a_whole_rule_and_quits():
    items = [_item("GF001"), _item("GF002"), _item("GF003"), _item("GF002"), _item("GF004"), _item("GF005")]
    answers = Scripted(["y", "?", "a", "n", "q"])
    reached = review(items, answers, total=6)
    assert [i.accepted for i in reached] == [True, True, False, True, False]
    assert answers.shown == [1, 2, 3, 4, 5]  # the second GF002 was accepted without asking, and shown
    assert answers.totals == [6] * 5
    assert items[4].quit and not items[3].quit
    assert items[5].accepted is None  # never reached after q


def test_the_count_grows_when_accepted_fixes_reveal_more():
    answers = Scripted(["y", "y", "y"])
    review([_item("GF001"), _item("GF002"), _item("GF003")], answers, total=2)
    assert answers.totals == [2, 2, 3]


def _spawn(cwd, *args):
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "TERM": "xterm"}
    return pexpect.spawn(sys.executable, ["-m", "gradfix", "fix", *args], cwd=str(cwd), env=env,
                         encoding="utf-8", timeout=60, dimensions=(50, 200))


def test_interactive_review_in_a_pseudo_terminal(workdir):
    child = _spawn(workdir, "--interactive", "--unsafe-fixes", "other.py", "train.py")
    child.expect(r"Fix 1 of 2")
    child.expect(r"other.py:10:27: GF003 loss-ignores-prediction")
    child.expect(r"applicability: unsafe \(it may change what the program computes")
    child.expect(r"verification: not verified \(no re-run\)")
    child.expect(r"\+    return tf.reduce_mean\(tf.abs\(y_pred\)\)")
    child.expect_exact("Apply this fix [y,n,a,q,?]? ")
    child.sendline("n")
    child.expect(r"Fix 2 of 2")
    child.expect(r"train.py:10:27: GF003")
    child.expect_exact("Apply this fix [y,n,a,q,?]? ")
    child.sendline("y")
    child.expect(r"other.py:10:27: GF003 loss-ignores-prediction: .* \(skipped in the review\)")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1  # other.py keeps its problem
    assert (workdir / "train.py").read_text() == FIXED.read_text()
    assert (workdir / "other.py").read_text() == BUGGY.read_text()


def test_interactive_accept_all_of_a_rule_then_print_the_patch(workdir):
    child = _spawn(workdir, "-i", "--diff", "--unsafe-fixes", "other.py", "train.py")
    child.expect_exact("Apply this fix [y,n,a,q,?]? ")
    child.sendline("a")
    child.expect(r"Fix 2 of 2")  # accepted with its rule, and shown as it is written
    child.expect(r"train.py:10:27: GF003 loss-ignores-prediction")
    child.expect(r"\+    return tf.reduce_mean\(tf.abs\(y_pred\)\)")
    child.expect(r"Fix 2: GF003 accepted \(all of this rule\)")
    child.expect(r"# gradfix: GF003 loss-ignores-prediction")
    child.expect(pexpect.EOF)
    child.close()
    assert (workdir / "train.py").read_text() == BUGGY.read_text()  # --diff: printed, not written


def test_interactive_needs_a_terminal(workdir):
    result = _run("fix", "--interactive", "train.py")
    assert result.exit_code == 2 and "needs a terminal" in result.output


def test_quitting_says_which_problems_the_review_did_not_reach(workdir):
    child = _spawn(workdir, "--interactive", "--unsafe-fixes", "other.py", "train.py")
    child.expect_exact("Apply this fix [y,n,a,q,?]? ")
    child.sendline("q")
    child.expect(r"other.py:10:27: GF003 loss-ignores-prediction: .* \(the review was quit here\)")
    child.expect(pexpect.EOF)
    child.close()
    assert "did not apply cleanly" not in child.before
