"""The run pins each cut to the user's expression that made it: its exact source range, not its line.

Three programs, each run once: two train with ``fit`` (an argmax in a ``Lambda`` layer, a comparison in a
loss passed to ``compile``), one with tapes (a cast in a helper, ``.numpy()``, ``tf.stop_gradient`` in
``Layer.call``, ``x // 2``, ``float()`` under ``round``, ``assign``, a loss computed after the tape). Each
cut op runs in library code (Keras's backend, TensorFlow's ops) called from the expression: those frames
are walked through to the user's.

``round(v)`` of a tensor itself raises in TensorFlow 2.21 (``EagerTensor`` has no ``astype``), so real code
rounds a Python number: ``round(float(s))``, where the cut is ``float(s)``.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from gradfix.causes import group_causes
from gradfix.repair_site import RepairSite
from gradfix.runtime.runner import run_step
from gradfix.source import read_source

pytestmark = pytest.mark.tensorflow

LAMBDA = textwrap.dedent("""\
    import numpy as np
    from tensorflow import keras
    from tensorflow.keras import backend as K

    x = np.random.RandomState(0).rand(16, 4).astype("float32")
    y = np.random.RandomState(1).rand(16, 1).astype("float32")

    inputs = keras.Input(shape=(4,))
    scores = keras.layers.Dense(3, name="scores")(inputs)
    picked = keras.layers.Lambda(lambda t: K.expand_dims(K.cast(K.argmax(t), "float32")))(scores)
    model = keras.Model(inputs, picked)
    model.compile("sgd", loss="mse")
    model.fit(x, y, epochs=1, verbose=0)
    """)

COMPILED_LOSS = textwrap.dedent("""\
    import numpy as np
    import tensorflow as tf
    from tensorflow import keras

    x = np.random.RandomState(0).rand(16, 4).astype("float32")
    y = np.random.RandomState(1).rand(16, 1).astype("float32")


    def hits(a, b):
        return tf.reduce_mean(tf.cast(a > b, "float32"))


    head = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(1, name="head")])
    head.compile("sgd", loss=hits)
    head.fit(x, y, epochs=1, verbose=0)
    """)

TAPE = textwrap.dedent("""\
    import tensorflow as tf


    def to_ids(t):
        return tf.cast(t, tf.int32)


    class Frozen(tf.keras.layers.Layer):
        def build(self, shape):
            self.w = self.add_weight(shape=(shape[-1], 1), name="frozen_w")

        def call(self, t):
            return tf.stop_gradient(tf.matmul(t, self.w))


    x = tf.random.stateless_normal((8, 3), seed=(1, 2))
    w1 = tf.Variable(tf.ones((3, 1)), name="w1")
    with tf.GradientTape() as tape:
        ids = to_ids(tf.matmul(x, w1) * 3.0)
        loss1 = tf.reduce_mean(tf.cast(ids, tf.float32))
    tape.gradient(loss1, [w1])

    w2 = tf.Variable(2.0, name="w2")
    with tf.GradientTape() as tape:
        t = w2 * x
        loss2 = tf.reduce_mean(tf.constant(t.numpy() ** 2))
    tape.gradient(loss2, [w2])

    layer = Frozen()
    with tf.GradientTape() as tape:
        loss3 = tf.reduce_mean(layer(x))
    tape.gradient(loss3, layer.trainable_variables)

    w4 = tf.Variable(5.0, name="w4")
    with tf.GradientTape() as tape:
        v = w4 * x
        loss4 = tf.reduce_mean(v // 2)
    tape.gradient(loss4, [w4])

    w5 = tf.Variable(1.5, name="w5")
    with tf.GradientTape() as tape:
        s = tf.reduce_sum(w5 * x)
        loss5 = tf.constant(round(float(s)), tf.float32) * 1.0
    tape.gradient(loss5, [w5])

    total = tf.Variable(0.0, trainable=False, name="total")
    w6 = tf.Variable(3.0, name="w6")
    with tf.GradientTape() as tape:
        total.assign(tf.reduce_mean(w6 * x))
        loss6 = total * 1.0
    tape.gradient(loss6, [w6])

    w7 = tf.Variable(0.5, name="w7")
    with tf.GradientTape() as tape:
        h = w7 * x
    loss7 = tf.reduce_sum(h)
    tape.gradient(loss7, [w7])
    """)

# (program, a variable the cut took the gradient from, the expression, the cause's category)
CASES = [
    ("lambda", "scores/kernel", "K.argmax(t)", "non-differentiable-op"),
    ("compiled_loss", "head/kernel", "a > b", "non-differentiable-op"),
    ("tape", "w1", "tf.cast(t, tf.int32)", "non-differentiable-op"),
    ("tape", "w2", "t.numpy()", "numpy-conversion"),
    ("tape", "frozen_w", "tf.stop_gradient(tf.matmul(t, self.w))", "stop-gradient"),
    ("tape", "w4", "v // 2", "non-differentiable-op"),
    ("tape", "w5", "float(s)", "numpy-conversion"),
    ("tape", "w6", "total.assign(tf.reduce_mean(w6 * x))", "state-update"),
    ("tape", "w7", "tf.reduce_sum(h)", "computed-outside-tape"),
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cuts")
    found = {}
    for name, text in (("lambda", LAMBDA), ("compiled_loss", COMPILED_LOSS), ("tape", TAPE)):
        (folder / f"{name}.py").write_text(text)
        facts = run_step(f"{name}.py", cwd=str(folder), timeout=300)
        assert facts.status == "ok", f"{name}.py: {facts.status}: {facts.error}"
        found[name] = (folder / f"{name}.py", group_causes(facts))
    return found


def _cause_of(causes, variable):
    named = [c for c in causes if any(key == variable or key.endswith("/" + variable) for key in c.keys)]
    assert len(named) == 1, [(c.category, c.keys) for c in causes]
    return named[0]


def _text_at(path: Path, expression) -> str:
    lines = path.read_text().splitlines(True)
    if expression.line == expression.end_line:
        return lines[expression.line - 1][expression.column - 1:expression.end_column - 1]
    middle = lines[expression.line:expression.end_line - 1]
    return "".join([lines[expression.line - 1][expression.column - 1:], *middle,
                    lines[expression.end_line - 1][:expression.end_column - 1]])


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Python 3.10 gives lines, not columns: the line-only range "
                    "is tested in the fast lane (tests/test_recorded_facts.py)")
@pytest.mark.parametrize("program, variable, text, category", CASES, ids=[c[2] for c in CASES])
def test_the_cut_is_the_exact_expression(runs, program, variable, text, category):
    path, causes = runs[program]
    cause = _cause_of(causes, variable)
    assert cause.category == category, cause.detail
    expression = cause.expression
    assert expression is not None, f"no expression pinned for {cause.category}: {cause.cut}"
    assert expression.exact and Path(expression.file) == path
    assert expression.text == text
    assert _text_at(path, expression) == text, "the range must hold the very text the run reports"
    # the repair side finds the same expression as a node of the file's tree
    node = RepairSite(cause, read_source(str(path))).pinned_node()
    assert node is not None and RepairSite(cause, read_source(str(path))).code(node) == text


def test_the_report_names_the_expression(runs):
    from gradfix.diagnose import explanation

    path, causes = runs["lambda"]
    cause = _cause_of(causes, "scores/kernel")
    words = explanation(cause)
    expression = cause.expression
    assert "The path breaks at `K.argmax(t)` (" in words
    assert f":{expression.line}:{expression.column}-{expression.end_line}:{expression.end_column})" in words
