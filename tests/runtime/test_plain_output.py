"""What the program prints under ``gradfix diagnose`` is what it prints in a plain run: no warning caused by the
instrumentation, warnings named at the lines a plain run names, TensorFlow's start-up lines as often as there."""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from interpreter import PYTHON

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.tensorflow

PERSISTENT_WARNING = "Calling GradientTape.gradient on a persistent tape inside its context"

# A tape that is not persistent, asked for its gradient inside its context (gradfix makes every tape persistent);
# a Keras layer of the program's whose super().__init__ makes Keras warn (through gradfix's Layer.__init__ hook);
# a warning of the program's own inside the tape.
PROGRAM = """\
import warnings
import numpy as np
import tensorflow as tf
import keras


class Block(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(1)

    def call(self, x):
        return self.dense(x)


block = Block(input_shape=(3,))
x = np.ones((2, 3), "float32")
with tf.GradientTape() as tape:
    y = tf.reduce_sum(block(x))
    grads = tape.gradient(y, block.trainable_variables)
    warnings.warn("the loss is computed on ones")
print("trained", len(grads))
"""


def run(command: list[str], cwd: Path) -> str:
    # TensorFlow's C++ log at its most talkative in both runs: every start-up line it has is printed
    env = dict(os.environ, NO_COLOR="1", TF_CPP_MIN_LOG_LEVEL="0", PYTHONPATH=str(ROOT))
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """(plain run's output, gradfix diagnose's output) of PROGRAM."""
    folder = tmp_path_factory.mktemp("plain")
    (folder / "train.py").write_text(PROGRAM)
    plain = run([PYTHON, "train.py"], folder)
    diagnosed = run([sys.executable, "-m", "gradfix", "diagnose", "--python", PYTHON, "train.py"], folder)
    assert "trained 2" in plain and "trained 2" in diagnosed, diagnosed
    return plain, diagnosed


def test_persistent_tape_warning_of_gradfix_making_tapes_persistent_does_not_reach_the_user(outputs):
    plain, diagnosed = outputs
    assert PERSISTENT_WARNING not in plain
    assert PERSISTENT_WARNING not in diagnosed


def test_warnings_name_the_lines_a_plain_run_names(outputs):
    plain, diagnosed = outputs
    for expected in ("train.py:9: UserWarning: Do not pass an `input_shape`", "train.py:21: UserWarning: the loss"):
        assert expected in plain and expected in diagnosed
    assert "gradfix" + os.sep + "runtime" not in diagnosed


def start_up_lines(output: str) -> collections.Counter:
    """TensorFlow's start-up log lines, without the time and thread that differ from run to run."""
    lines = collections.Counter()
    for line in output.splitlines():
        if line.startswith("WARNING: All log messages before absl"):
            lines[line] += 1
        elif re.match(r"[IWE]\d{4} ", line):  # absl's format (TensorFlow 2.21): I0000 00:00:1796.57 4044 port.cc:153]
            lines[re.sub(r"^[IWE]\d{4} [\d:.]+\s+\d+ ", "", line)] += 1
        elif re.match(r"\d{4}-\d\d-\d\d [\d:.]+: [IWE] ", line):  # TensorFlow 2.16's: 2026-12-06 18:31:49.44: I ...
            lines[re.sub(r"^\d{4}-\d\d-\d\d [\d:.]+: ", "", line)] += 1
    return lines


def test_start_up_lines_appear_as_often_as_in_a_plain_run(outputs):
    plain, diagnosed = outputs
    assert start_up_lines(plain), "this TensorFlow printed no start-up line to compare"
    assert start_up_lines(diagnosed) == start_up_lines(plain)


def test_the_programs_own_persistent_tape_still_warns(tmp_path):
    # the program's tape is persistent itself: TensorFlow's warning is the program's, and it is shown
    source = PROGRAM.replace("tf.GradientTape()", "tf.GradientTape(persistent=True)")
    (tmp_path / "train.py").write_text(source)
    plain = run([PYTHON, "train.py"], tmp_path)
    diagnosed = run([sys.executable, "-m", "gradfix", "diagnose", "--python", PYTHON, "train.py"], tmp_path)
    assert PERSISTENT_WARNING in plain
    assert diagnosed.count(PERSISTENT_WARNING) == plain.count(PERSISTENT_WARNING) == 1
