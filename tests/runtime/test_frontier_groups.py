"""The frontier asks the tape about groups of tensors (``frontier.dependence``, ``connected_any``): its answers are
those of one gradient call per tensor, on tensors that depend on one variable, on both, on neither, or lost one
on the way (``tf.stop_gradient``, NumPy, an integer cast)."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest
from interpreter import PYTHON

pytestmark = pytest.mark.tensorflow

CHILD = Path(__file__).resolve().parents[2] / "gradfix" / "runtime" / "child"

# run in a child process: the test's own interpreter never imports TensorFlow
SCRIPT = textwrap.dedent("""\
    import importlib, importlib.util, json, sys
    spec = importlib.util.spec_from_file_location("_gradfix_child", sys.argv[1] + "/__init__.py",
                                                  submodule_search_locations=[sys.argv[1]])
    package = importlib.util.module_from_spec(spec)
    sys.modules["_gradfix_child"] = package
    spec.loader.exec_module(package)
    import numpy as np
    import tensorflow as tf
    state = importlib.import_module("_gradfix_child.state")
    frontier = importlib.import_module("_gradfix_child.frontier")
    state.tf = tf
    state.TENSOR_TYPES = (tf.Tensor, tf.Variable)
    a, b = tf.Variable(1.5), tf.Variable([0.5, 2.0])
    original = tf.GradientTape.gradient
    values = []
    with tf.GradientTape(persistent=True) as tape:
        total = tf.constant(0.0)
        for i in range(37):
            kind = i % 6
            if kind == 0:
                value = a * float(i)
            elif kind == 1:
                value = tf.reduce_sum(b) + 1.0
            elif kind == 2:
                value = tf.stop_gradient(a * b)
            elif kind == 3:
                value = tf.constant(np.float32((a * 2.0).numpy()))
            elif kind == 4:
                value = tf.cast(tf.cast(a * 3.0, tf.int32), tf.float32)
            else:
                value = total
            values.append(value)
            total = total + value if i < 20 else total
        values.append(tf.constant(4.0) * 2.0)
    sources = [a, b]
    grouped = frontier.dependence(tape, original, values, sources)
    one_by_one = [[g is not None for g in frontier.gradient_of(tape, original, v, sources)] for v in values]
    any_grouped = [frontier.connected_any(tape, original, values[start:start + 5], s)
                   for start in range(0, len(values), 5) for s in sources]
    any_one_by_one = [any(row[k] for row in one_by_one[start:start + 5])
                      for start in range(0, len(values), 5) for k in range(len(sources))]
    print(json.dumps({"grouped": grouped, "one_by_one": one_by_one,
                      "any_grouped": any_grouped, "any_one_by_one": any_one_by_one}))
    """)


def test_grouped_answers_are_those_of_one_call_per_tensor(tmp_path):
    done = subprocess.run([PYTHON, "-c", SCRIPT, str(CHILD)], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert done.returncode == 0, done.stderr[-3000:]
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    assert answers["grouped"] == answers["one_by_one"]
    assert answers["any_grouped"] == answers["any_one_by_one"]
    # the program holds every case: tensors of a only, of b only, of both (the running total), of neither
    rows = {tuple(row) for row in answers["one_by_one"]}
    assert {(True, False), (False, True), (True, True), (False, False)} <= rows
