"""run_step runs real programs under TensorFlow, in child processes, and reports what it saw."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "fixtures" / "runtime"
SEED = ROOT / "fixtures" / "seed"

pytestmark = pytest.mark.tensorflow


def _lost_paths(facts):
    return sorted(source.path for _, source in facts.variables_without_gradient())


def test_seed_example1_names_dense_1(run_fixture):
    facts = run_fixture("example1.py", SEED)
    assert facts.status == "ok", facts.error
    assert facts.tensorflow_version
    assert _lost_paths(facts) == ["sequential/dense_1/bias", "sequential/dense_1/kernel"]
    assert not facts.all_variables_get_gradients()
    call, kernel = facts.variables_without_gradient()[0]
    assert kernel.shape in ((64, 10), (10,))
    assert kernel.dtype == "float32" and kernel.trainable
    assert kernel.layer.cls == "Dense"
    # the second Dense of the Sequential, in the user's file
    assert kernel.layer.built_at.line == 5 and kernel.layer.built_at.file.endswith("example1.py")
    assert "Dense(10" in kernel.layer.built_at.code
    assert call.where.line == 18
    # the frontier: predictions is the last tensor still connected, the loss line cuts it off
    assert kernel.frontier.last_connected["name"] == "predictions"
    assert kernel.frontier.break_site.line == 17
    assert "incorrect_loss" in kernel.frontier.break_code
    # the partial case: Keras only warned; the optimizer's apply was seen anyway
    assert facts.applies and [v.gradient_is_none for v in facts.applies[0].variables] == [False, False, True, True]


@pytest.mark.parametrize("name", ["example2.py", "example3.py"])
def test_seed_examples_2_and_3_get_every_gradient(run_fixture, name):
    facts = run_fixture(name, SEED)
    assert facts.status == "ok", facts.error
    assert facts.all_variables_get_gradients()
    assert facts.gradient_calls and all(not s.gradient_is_none for s in facts.gradient_calls[0].sources)


def test_model_fit_custom_loss_seen_through_keras_tape(run_fixture):
    facts = run_fixture("fit_custom_loss.py")
    assert facts.status == "ok"
    assert _lost_paths(facts) == ["sequential/dense_1/bias", "sequential/dense_1/kernel"]
    _, source = facts.variables_without_gradient()[0]
    assert source.frontier.last_connected["name"] == "y_pred"
    assert source.frontier.last_connected_read is False
    # stopped after one step: one gradient call, not three epochs of them
    assert len(facts.gradient_calls) == 1


def test_function_target_is_called(run_fixture):
    facts = run_fixture("step_function.py:train_step")
    assert facts.status == "ok"
    assert facts.all_variables_get_gradients()
    assert len(facts.all_sources()) == 4


def test_module_target(run_fixture):
    facts = run_fixture("pkg.train:main")
    assert facts.status == "ok", facts.error
    assert _lost_paths(facts) == ["sequential/dense_1/bias", "sequential/dense_1/kernel"]


def test_crash_before_first_gradient_has_trimmed_traceback(run_fixture):
    facts = run_fixture("faults/crash_before_gradient.py")
    assert facts.status == "crashed"
    assert facts.error.type == "FileNotFoundError"
    user = [frame for frame in facts.error.frames if frame.file.endswith("faults/crash_before_gradient.py")]
    assert [frame.line for frame in user] == [10, 6]
    # library frames are trimmed, apart from the one that raised
    assert sum("site-packages" in frame.file for frame in facts.error.frames) <= 1
    assert "load_data" in facts.error.traceback


def test_early_exit_and_no_gradient_call(run_fixture):
    early = run_fixture("faults/exits_early.py")
    assert early.status == "exited-before-gradient"
    assert early.exit_code == 3
    none = run_fixture("faults/no_gradient_call.py")
    assert none.status == "no-gradient-call"


def test_timeout_kills_everything(tmp_path):
    from gradfix.runtime.runner import run_step

    pids = tmp_path / "pids.txt"
    started = time.monotonic()
    facts = run_step("faults/hangs.py", args=(str(pids),), cwd=RUNTIME, timeout=25)
    assert facts.status == "timeout"
    assert time.monotonic() - started < 60
    assert pids.exists(), "the program never started within the timeout"
    for pid in map(int, pids.read_text().split()):
        assert not _alive(pid), f"process {pid} was left running"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except OSError:
        return False


def test_interpreter_without_tensorflow(tmp_path):
    from gradfix.runtime.runner import run_step

    # A fresh virtual environment is an interpreter of the same Python that has no TensorFlow.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True)
    python = str(tmp_path / "bare" / "bin" / "python")
    assert subprocess.run([python, "-c", "import tensorflow"], capture_output=True).returncode != 0
    facts = run_step("example2.py", cwd=SEED, python=python, timeout=60)
    assert facts.status == "no-tensorflow"
    assert "pip install tensorflow" in facts.error.traceback


def test_missing_interpreter():
    from gradfix.runtime.runner import run_step

    facts = run_step("example2.py", cwd=SEED, python="/nonexistent/python3", timeout=10)
    assert facts.status == "could-not-start"


def test_output_passes_through_or_is_hidden(capfd):
    from gradfix.runtime.runner import run_step

    loud = run_step("missing_watch.py", cwd=RUNTIME, quiet=False, timeout=120)
    out, _ = capfd.readouterr()
    assert "gradient of x: None" in out
    assert loud.output_tail == ""
    assert _lost_paths(loud) and loud.variables_without_gradient()[0][1].kind == "tensor"
    quiet = run_step("missing_watch.py", cwd=RUNTIME, quiet=True, timeout=120)
    out, _ = capfd.readouterr()
    assert "gradient of x" not in out
    assert "gradient of x: None" in quiet.output_tail
