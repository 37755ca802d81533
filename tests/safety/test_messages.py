"""What gradfix says is true: after a failed write, on a program's death by signal, on many findings, and a
fixed notebook's JSON is changed only in the cells fixed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.safety.conftest import BUGGY, FIXED, run


@pytest.fixture
def unwritable_folder(tmp_path):
    """A folder in which no file can be created, though the file in it can be written."""
    folder = tmp_path / "locked"
    folder.mkdir()
    (folder / "train.py").write_text(BUGGY)
    if os.geteuid() == 0:
        # root passes permission bits; an immutable folder refuses it too
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
            pytest.skip("root ignores a folder's permissions, and this file system cannot make a folder immutable")
        undo = ["chattr", "-i", str(folder)]
    else:
        folder.chmod(0o555)
        undo = ["chmod", "755", str(folder)]
    try:
        yield folder
    finally:
        subprocess.run(undo, check=False)


def test_a_failed_write_is_named_once_with_the_user_file_and_its_reason(unwritable_folder):
    path = unwritable_folder / "train.py"
    result = run("fix", "--apply", path)
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("gradfix: error:")]
    assert errors == [f"gradfix: error: {path}: not written: gradfix cannot create files in its folder {unwritable_folder}; "
                      "it writes the new text beside the file before replacing it"]
    assert ".gradfix-" not in result.stderr and result.stderr.count("not written") == 1
    assert "No problems found" not in result.stderr
    assert "1 problem not fixed: its file could not be written" in result.stderr
    assert path.read_text() == BUGGY


def test_a_program_killed_by_a_signal_is_said_to_be_killed_by_it(tmp_path):
    """The child wrote its facts (nothing yet: no gradient) and then died of SIGSEGV, as a native crash would."""
    program = tmp_path / "program.py"
    program.write_text("import os, signal\nfrom gradfix.runtime.child.state import write_facts\n"
                       "write_facts()\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    fake = tmp_path / "fake-python"
    fake.write_text(f"#!/bin/sh\nexec {sys.executable} {program}\n")
    fake.chmod(0o755)
    (tmp_path / "train.py").write_text("pass\n")
    done = subprocess.run([sys.executable, "-m", "gradfix", "diagnose", "train.py", "--python", str(fake)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "the program crashed before its first gradient" in done.stderr
    assert "killed by SIGSEGV (signal 11)" in done.stderr
    assert "exit code -11" not in done.stdout + done.stderr and "exited" not in done.stderr


def test_every_fix_of_a_file_with_more_than_twenty_findings_is_applied(tmp_path, monkeypatch):
    # what is checked is that all 25 are applied; on a machine other work crowds, the 25 passes can pass the
    # default time limit of a file (the limit itself is tested in tests/safety/test_limits.py)
    monkeypatch.setenv("GRADFIX_FILE_TIMEOUT", "600")
    head = BUGGY.split("for x, y in dataset:\n")[0]
    steps = "".join(
        f"\n\ndef step{number}(x, y):\n    with tf.GradientTape() as tape:\n        loss = loss_fn(y, model(x, training=True))\n"
        f"    grads = tape.gradient(loss, model.variables)\n    optimizer.apply_gradients(zip(grads, model.trainable_variables))\n"
        for number in range(25))
    path = tmp_path / "train.py"
    path.write_text(head + steps)
    result = run("fix", "--apply", path)
    assert result.exit_code == 0, result.stderr
    assert "Fixed 1 file (25 fixes)." in result.stderr and "did not apply cleanly" not in result.stderr
    assert "gradient(loss, model.variables)" not in path.read_text()


@pytest.mark.parametrize("layout", [{}, {"separators": (",", ":")}, {"indent": 1, "ensure_ascii": False}, {"indent": 2}])
def test_a_fixed_notebook_keeps_its_json_layout(tmp_path, layout):
    head, tail = BUGGY.split("for x, y in dataset:\n")

    def code(text):
        return {"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": [], "source": text.splitlines(True)}

    notebook = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Tr\u00e4ining\n"]}, code(head),
                          code("for x, y in dataset:\n" + tail)],
                "metadata": {"kernelspec": {"language": "python", "name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "train.ipynb"
    path.write_text(json.dumps(notebook, **layout))
    assert run("fix", "--apply", path).exit_code == 0
    notebook["cells"][2]["source"] = ("for x, y in dataset:\n" + FIXED.split("for x, y in dataset:\n")[1]).splitlines(True)
    assert path.read_text() == json.dumps(notebook, **layout)  # every byte outside the fixed cell as it was
