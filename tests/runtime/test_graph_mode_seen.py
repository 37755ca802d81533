"""gradfix runs tf.functions eagerly; a program that fails, or loses gradients, only in graph mode is told so: a
``graph-mode`` note at the construct's line names it. Each program below shows its construct in a plain run first."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from interpreter import PYTHON

RUNTIME = Path(__file__).resolve().parents[2] / "fixtures" / "runtime"

pytestmark = pytest.mark.tensorflow

# NumPy on a tensor inside a tf.function: a plain run raises at trace time; the eager run computes a loss
NUMPY_IN_FUNCTION = """\
import numpy as np
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
x = np.random.rand(8, 3).astype("float32")
y = np.random.rand(8, 1).astype("float32")


@tf.function
def step(x, y):
    with tf.GradientTape() as tape:
        pred = model(x)
        loss = tf.reduce_mean(np.square(pred - y))
    return tape.gradient(loss, model.trainable_variables)


print([g is None for g in step(x, y)])
"""

# values made once, at trace time: NumPy noise frozen into the graph, a variable a second trace may not make
TRACE_TIME_VALUE = """\
import numpy as np
import tensorflow as tf

w = tf.Variable(np.ones((3, 1), "float32"))
x = np.random.rand(8, 3).astype("float32")


@tf.function
def step(x):
    with tf.GradientTape() as tape:
        noise = tf.constant(np.random.normal(size=(8, 1)).astype("float32"))
        scale = tf.Variable(2.0)
        loss = tf.reduce_mean(tf.matmul(x, w) * scale + noise)
    return tape.gradient(loss, [w])


for _ in range(2):
    print([g is None for g in step(x)])
"""

# a Python flag read at trace time: the graph keeps use_head False, and the head never gets a gradient
PYTHON_STATE = """\
import tensorflow as tf

body = tf.keras.layers.Dense(4)
head = tf.keras.layers.Dense(1)
head.build((None, 4))
x = tf.ones((2, 3))
use_head = False


@tf.function
def step():
    with tf.GradientTape() as tape:
        out = body(x)
        if use_head:
            out = head(out)
        loss = tf.reduce_mean(out)
    return tape.gradient(loss, body.trainable_variables + head.trainable_variables)


for i in range(2):
    print("step", i, [g is None for g in step()])
    use_head = True
"""


def plain_run(folder, name: str, source: str) -> subprocess.CompletedProcess:
    (folder / name).write_text(source)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([PYTHON, name], cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def graph_mode_notes(run_fixture, folder, name: str) -> dict[tuple[str, int], str]:
    facts = run_fixture(name, folder)
    assert facts.status == "ok", facts.error
    return {(note["construct"], note["site"]["line"]): note["message"]
            for note in facts.shown_notes() if note["kind"] == "graph-mode"}


def test_numpy_inside_a_tf_function(run_fixture, tmp_path):
    plain = plain_run(tmp_path, "numpy_step.py", NUMPY_IN_FUNCTION)
    assert plain.returncode != 0 and "Cannot convert a symbolic tf.Tensor" in plain.stderr
    notes = graph_mode_notes(run_fixture, tmp_path, "numpy_step.py")
    assert list(notes) == [("numpy-in-function", 13)]
    assert "np.square(pred - y)" in notes["numpy-in-function", 13] and "eagerly" in notes["numpy-in-function", 13]


def test_values_made_once_at_trace_time(run_fixture, tmp_path):
    plain = plain_run(tmp_path, "trace_step.py", TRACE_TIME_VALUE)
    assert plain.returncode != 0 and "singleton tf.Variables" in plain.stderr
    notes = graph_mode_notes(run_fixture, tmp_path, "trace_step.py")
    assert sorted(notes) == [("numpy-in-function", 11), ("trace-time-value", 12)]
    assert "frozen into the graph" in notes["numpy-in-function", 11]
    assert "a variable is created inside a tf.function" in notes["trace-time-value", 12]


def test_python_state_captured_at_trace(run_fixture, tmp_path):
    plain = plain_run(tmp_path, "flag_step.py", PYTHON_STATE)
    # in graph mode the head gets no gradient at the second step either, though use_head is True by then
    assert "step 1 [False, False, True, True]" in plain.stdout, plain.stderr
    notes = graph_mode_notes(run_fixture, tmp_path, "flag_step.py")
    assert list(notes) == [("python-state", 14)]
    assert "`use_head` (False now)" in notes["python-state", 14] and "line 22" in notes["python-state", 14]


# the loop's own variable, read by the function: traced at epoch 0, the graph never sees another epoch
LOOP_STATE = """\
import tensorflow as tf

w = tf.Variable(1.0)


@tf.function
def step():
    with tf.GradientTape() as tape:
        loss = w * w if epoch < 1 else w * 0.0
    return tape.gradient(loss, [w])


for epoch in range(2):
    print("epoch", epoch, step()[0].numpy())
"""


def test_a_loop_variable_read_at_trace(run_fixture, tmp_path):
    plain = plain_run(tmp_path, "loop_step.py", LOOP_STATE)
    # in graph mode the second epoch still takes the first branch
    assert "epoch 1 2.0" in plain.stdout, plain.stderr
    notes = graph_mode_notes(run_fixture, tmp_path, "loop_step.py")
    assert list(notes) == [("python-state", 9)]
    assert "`epoch` (0 now)" in notes["python-state", 9] and "line 13" in notes["python-state", 9]


def test_a_function_without_these_constructs_has_no_graph_mode_note(run_fixture):
    # a tf.function whose step is TensorFlow ops only (tf.round cuts its path in graph mode as in the eager run)
    assert graph_mode_notes(run_fixture, RUNTIME, "tf_function_round.py") == {}
