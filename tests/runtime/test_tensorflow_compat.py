"""The child across TensorFlow versions (``child/compat.py``): a TensorFlow without what gradfix needs is named as
unsupported, and one without an optional hook gives a diagnosis that says what it could not see."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from interpreter import PYTHON

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "fixtures" / "runtime"

pytestmark = pytest.mark.tensorflow


def gradfix(args: list[str], cwd: Path, pythonpath: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_COLOR="1", PYTHONPATH=os.pathsep.join(p for p in (pythonpath, str(ROOT)) if p))
    return subprocess.run([sys.executable, "-m", "gradfix", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_stub_tensorflow_without_the_hooks_is_unsupported(tmp_path):
    # a "tensorflow" that imports, with a version, and none of what gradfix hooks into
    (tmp_path / "stub" / "tensorflow").mkdir(parents=True)
    (tmp_path / "stub" / "tensorflow" / "__init__.py").write_text('__version__ = "2.99.0"\n')
    (tmp_path / "train.py").write_text("import tensorflow as tf\nprint(tf.__version__)\n")
    done = gradfix(["diagnose", "train.py"], tmp_path, pythonpath=str(tmp_path / "stub"))
    assert done.returncode == 2, done.stderr
    assert "could not diagnose train.py: unsupported TensorFlow 2.99: no tf.GradientTape" in done.stderr
    assert "install" not in done.stderr.lower()


def wrapped_interpreter(tmp_path: Path, sitecustomize: str) -> str:
    """An interpreter that runs ``sitecustomize`` first: what the program (and gradfix's child) then sees is a
    TensorFlow changed that way, and gradfix itself (the parent) runs untouched."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(sitecustomize)
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nPYTHONPATH="{tmp_path / "site"}${{PYTHONPATH:+:$PYTHONPATH}}" '
                      f'exec "{PYTHON}" "$@"\n')
    python.chmod(0o755)
    return str(python)


WITHOUT_OP_CALLBACKS = """\
# a TensorFlow whose op_callbacks module lost add_op_callback (TensorFlow itself only calls invoke_op_callbacks)
from tensorflow.python.framework import op_callbacks
del op_callbacks.add_op_callback
"""


def test_missing_optional_hook_degrades_the_diagnosis_with_a_note(tmp_path):
    from gradfix.runtime.runner import run_step

    python = wrapped_interpreter(tmp_path, WITHOUT_OP_CALLBACKS)
    facts = run_step("custom_loop_stop_gradient.py", cwd=RUNTIME, python=python, timeout=120)
    assert facts.status == "ok"
    assert facts.inactive_hooks() == ["op-callbacks"]
    assert facts.capabilities["gradient-tape"]["active"] and facts.capabilities["tensor-conversions"]["active"]
    assert [n["hook"] for n in facts.notes if n["kind"] == "degraded"] == ["op-callbacks"]

    done = gradfix(["diagnose", "--python", python, "-q", "custom_loop_stop_gradient.py"], RUNTIME)
    # still a diagnosis: the encoder's variables get no gradient ...
    assert done.returncode == 1, done.stderr
    assert "2 of 4 variables get no gradient" in done.stdout
    # ... and the report says what this run could not see
    version = ".".join(facts.tensorflow_version.split(".")[:2])
    assert (f"Note: TensorFlow {version} has no tensorflow.python.framework.op_callbacks.add_op_callback: the "
            "diagnosis cannot see the op that cut each path") in done.stdout.replace("\n", " ")


def test_every_hook_is_active_on_this_tensorflow(run_fixture):
    facts = run_fixture("custom_loop_stop_gradient.py")
    assert facts.status == "ok"
    assert facts.capabilities and facts.inactive_hooks() == []
    assert not [n for n in facts.notes if n["kind"] == "degraded"]
