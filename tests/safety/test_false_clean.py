"""Never "clean" for what was not fully checked: unreadable folders, failing rules, trees deeper than Python's stack."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from gradfix.engine import analyze, select_rules
from gradfix.registry import rule_by_code
from gradfix.source import SourceError, SourceFile
from gradfix.static.recursion_room import deepest_tree
from tests.safety.conftest import FIXTURES, run

FORMATS = ("text", "json", "sarif", "github")
# GF008 at line 23: one_hot(argmax(...)) of the prediction fed to the loss, inside the tape
ARGMAX = (FIXTURES / "argmax-before-loss" / "onehot_argmax_custom_loop.py").read_text()
LOSS_LINE = "        loss = loss_fn(y, predicted)\n"


def _in_tape(statement: str) -> str:
    assert LOSS_LINE in ARGMAX
    return ARGMAX.replace(LOSS_LINE, f"        {statement}\n{LOSS_LINE}")


def _error_listed(output_format: str, output: str, needle: str) -> bool:
    if output_format == "json":
        return any(needle in error["path"] + error["message"] for error in json.loads(output)["errors"])
    if output_format == "sarif":
        invocation = json.loads(output)["runs"][0]["invocations"][0]
        return not invocation["executionSuccessful"] and needle in json.dumps(invocation)
    return needle in output


def _unreadable_folder(tmp_path, monkeypatch):
    (tmp_path / "ok.py").write_text("x = 1\n")
    hidden = tmp_path / "secret"
    hidden.mkdir()
    (hidden / "train.py").write_text(ARGMAX)
    real_scandir = os.scandir

    def scandir(path="."):
        # what chmod 000 does for a user other than root (tests run as root, who reads every folder)
        if os.path.abspath(os.fspath(path)) == str(hidden):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)


@pytest.mark.parametrize("output_format", FORMATS)
def test_a_folder_that_cannot_be_read_is_an_error_in_every_format(tmp_path, monkeypatch, output_format):
    _unreadable_folder(tmp_path, monkeypatch)
    result = run("check", tmp_path, "--format", output_format, "--jobs", "1")
    assert result.exit_code == 2, result.output
    assert "No problems found." not in result.output
    assert _error_listed(output_format, result.stdout if output_format != "text" else result.output, "secret")
    assert "folder cannot be read (Permission denied)" in result.stderr


def test_fix_reports_a_folder_that_cannot_be_read_in_its_json(tmp_path, monkeypatch):
    _unreadable_folder(tmp_path, monkeypatch)
    result = run("fix", tmp_path, "--format", "json")
    assert result.exit_code == 2
    assert _error_listed("json", result.stdout, "secret")


UNPRIVILEGED = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _why_unprivileged_cannot_run_python() -> str:
    done = subprocess.run([*UNPRIVILEGED, sys.executable, "-c", "pass"], capture_output=True, text=True, timeout=60)
    return "" if done.returncode == 0 else (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to run gradfix as a user who cannot read a chmod 000 folder")
def test_chmod_000_folder_is_an_error_for_an_unprivileged_user():
    if why := _why_unprivileged_cannot_run_python():
        pytest.skip(f"the unprivileged user cannot start this interpreter, so not gradfix either: {why}")
    top = tempfile.mkdtemp(prefix="gradfix-unreadable-")
    try:
        os.chmod(top, 0o755)
        with open(os.path.join(top, "ok.py"), "w") as handle:
            handle.write("x = 1\n")
        os.mkdir(os.path.join(top, "locked"))
        with open(os.path.join(top, "locked", "train.py"), "w") as handle:
            handle.write(ARGMAX)
        os.chmod(os.path.join(top, "locked"), 0)
        for output_format in FORMATS:
            completed = subprocess.run(
                [*UNPRIVILEGED, sys.executable, "-m", "gradfix", "check", top, "--format", output_format],
                capture_output=True, text=True, timeout=120, cwd=top,
                env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.dirname(__file__)))})
            assert completed.returncode == 2, (output_format, completed.stdout, completed.stderr)
            assert "locked: folder cannot be read (Permission denied)" in completed.stderr
            assert _error_listed(output_format, completed.stdout if output_format != "text" else completed.stderr, "locked")
    finally:
        os.chmod(os.path.join(top, "locked"), 0o755)
        shutil.rmtree(top)


@pytest.mark.parametrize("output_format", FORMATS)
def test_a_failing_rule_makes_the_file_an_error_and_keeps_the_other_findings(tmp_path, monkeypatch, output_format):
    def broken(self, analysis):
        raise RuntimeError("broken on purpose")
        yield  # pragma: no cover - makes this a generator, as rules are

    monkeypatch.setattr(rule_by_code("GF009"), "check", broken)
    monkeypatch.delenv("GRADFIX_STRICT", raising=False)
    (tmp_path / "train.py").write_text(ARGMAX)
    result = run("check", tmp_path / "train.py", "--format", output_format)
    assert result.exit_code == 2, result.output
    shown = result.stdout if output_format != "text" else result.output
    assert _error_listed(output_format, shown, "internal error in rule GF009")
    assert "GF008" in result.stdout  # the rules that ran still report
    assert "No problems found" not in result.output


def test_a_long_and_chain_in_the_tape_does_not_hide_the_argmax(monkeypatch):
    monkeypatch.setenv("GRADFIX_STRICT", "1")  # a rule's RecursionError fails the test instead of hiding the finding
    # as long as this Python lets LibCST print (Python 3.12 and 3.13 allow fewer levels: see deepest_tree)
    chain = " and ".join(f"a{i}" for i in range(min(3000, deepest_tree() - 20)))
    source = SourceFile("train.py", _in_tape(f"flag = {chain}"), "utf-8")
    assert [(f.rule, f.span.start_line) for f in analyze(source)] == [("GF008", 23)]


def test_many_adjacent_strings_in_the_tape_do_not_hide_the_argmax(monkeypatch):
    monkeypatch.setenv("GRADFIX_STRICT", "1")
    strings = " ".join('"s"' for _ in range(min(2000, deepest_tree() - 20)))
    source = SourceFile("train.py", _in_tape(f"tag = ({strings})"), "utf-8")
    assert [(f.rule, f.span.start_line) for f in analyze(source)] == [("GF008", 23)]


def test_a_tree_deeper_than_the_limit_is_refused_with_its_depth(monkeypatch):
    from gradfix.static import recursion_room

    monkeypatch.setattr(recursion_room, "MAX_TREE_DEPTH", 500)
    chain = " and ".join(f"a{i}" for i in range(1000))
    with pytest.raises(SourceError, match=r"not checked: its syntax tree is \d+ levels deep, over gradfix's limit of 500"):
        analyze(SourceFile("train.py", _in_tape(f"flag = {chain}"), "utf-8"), select_rules())


def test_a_chain_too_long_for_the_parser_on_the_default_stack_is_checked_in_full(tmp_path):
    # 10,000 terms: LibCST's native parser overflowed the main thread's 8 MB stack (a segmentation fault); Python 3.12
    # and 3.13 let LibCST print fewer levels (see the next test), and as many as they allow are checked
    chain = " and ".join(f"a{i % 10}" for i in range(min(10_000, deepest_tree() - 20)))
    (tmp_path / "train.py").write_text(_in_tape(f"flag = {chain}"))
    completed = subprocess.run([sys.executable, "-m", "gradfix", "check", "train.py", "--format", "json"],
                               cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 1, completed.stderr
    document = json.loads(completed.stdout)
    assert [(f["rule"], f["span"]["start_line"]) for f in document["findings"]] == [("GF008", 23)]


@pytest.mark.skipif(sys.version_info[:2] not in ((3, 12), (3, 13)),
                    reason="only Python 3.12 and 3.13 cap C recursion below gradfix's own limit of tree depth")
def test_a_chain_deeper_than_this_python_lets_libcst_print_is_refused_with_the_limit(tmp_path):
    terms = deepest_tree() + 100
    chain = " and ".join(f"a{i % 10}" for i in range(terms))
    (tmp_path / "train.py").write_text(_in_tape(f"flag = {chain}"))
    completed = subprocess.run([sys.executable, "-m", "gradfix", "check", "train.py"],
                               cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 2, completed.stderr
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert f"over gradfix's limit of {deepest_tree()} on Python {version}" in completed.stderr
    assert "internal error" not in completed.stderr


def test_5000_adjacent_strings_are_not_called_a_syntax_error(tmp_path):
    lines = ["x = ("] + ['    "s"' for _ in range(5000)] + [")"]
    (tmp_path / "train.py").write_text(ARGMAX.replace("NUM_CLASSES = 4\n", "NUM_CLASSES = 4\n" + "\n".join(lines) + "\n"))
    result = run("check", tmp_path / "train.py")
    assert result.exit_code == 2
    assert "syntax error" not in result.stderr
    assert "the string at line 8 joins 5000 adjacent literals" in result.stderr
    assert "takes at most 3000 (Python accepts it)" in result.stderr
