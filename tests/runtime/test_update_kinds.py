"""Verification recognises every way a step updates its variables (TensorFlow runs for real, in child processes).

One small program per way: a Keras optimizer's ``apply`` and ``apply_gradients``, ``fit``, ``train_on_batch``,
a custom ``train_step``, a ``tf.compat.v1.train`` optimizer's ``minimize(loss_fn, var_list=...)`` and
``compute_gradients``/``apply_gradients``, manual ``assign_sub``/``assign`` updates, and a step with no
optimizer. Each is diagnosed, repaired on a copy, and the verdict must say which update the fixed step ran,
that it ran, and that it gave each variable its own gradient.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import pytest

from gradfix.report import validate

pytestmark = pytest.mark.tensorflow

KERAS_MODEL = """
    import keras
    import numpy as np
    import tensorflow as tf

    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
"""


@dataclass(frozen=True)
class Way:
    name: str
    kind: str  # the update kind the verdict must name
    program: str
    calls: tuple[str, ...]  # the update calls the verdict must name


WAYS = [
    Way("keras-apply", "keras-optimizer", KERAS_MODEL + """
    optimizer = keras.optimizers.SGD(0.01)
    for step in range(3):
        with tf.GradientTape() as tape:
            pred = model(x, training=True)
            loss = tf.reduce_mean(tf.square(tf.stop_gradient(pred) - y))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
    """, ("SGD.apply",)),
    Way("keras-apply-gradients", "keras-optimizer", KERAS_MODEL + """
    optimizer = keras.optimizers.Adam(0.01)
    for step in range(3):
        with tf.GradientTape() as tape:
            pred = model(x, training=True)
            loss = tf.reduce_mean(tf.square(tf.stop_gradient(pred) - y))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
    """, ("Adam.apply_gradients",)),
    Way("fit", "keras-optimizer", KERAS_MODEL + """

    def frozen_mse(y_true, y_pred):
        return tf.reduce_mean(tf.square(tf.stop_gradient(y_pred) - y_true))


    model.compile(optimizer="sgd", loss=frozen_mse)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    """, ("SGD.apply_gradients",)),
    Way("train-on-batch", "keras-optimizer", KERAS_MODEL + """

    def frozen_mse(y_true, y_pred):
        return tf.reduce_mean(tf.square(tf.stop_gradient(y_pred) - y_true))


    model.compile(optimizer="sgd", loss=frozen_mse)
    for step in range(3):
        model.train_on_batch(x[:8], y[:8])
    """, ("SGD.apply_gradients",)),
    Way("train-step", "keras-optimizer", """
    import keras
    import numpy as np
    import tensorflow as tf


    class Regressor(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = keras.layers.Dense(4, activation="relu")
            self.out = keras.layers.Dense(1)

        def call(self, inputs):
            return self.out(self.hidden(inputs))

        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                pred = self(x, training=True)
                loss = tf.reduce_mean(tf.square(tf.stop_gradient(pred) - y))
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply(grads, self.trainable_variables)
            return {"loss": loss}


    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = Regressor()
    model.compile(optimizer="sgd")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    """, ("SGD.apply",)),
    # the shape of https://github.com/tensorflow/tensorflow/issues/42167 with a compat optimizer: the loss
    # callable returns a cost computed once, before minimize's tape
    Way("compat-v1-minimize", "compat-v1-optimizer", """
    import tensorflow as tf

    y_N = tf.Variable([1.0, 2.0, 3.0], name="dd")
    cost = -tf.reduce_mean(tf.reduce_sum(tf.math.log(y_N), axis=0))
    loss = lambda: cost
    optimizer = tf.compat.v1.train.GradientDescentOptimizer(0.1)
    for step in range(3):
        optimizer.minimize(loss, var_list=[y_N])
    """, ("GradientDescentOptimizer.apply_gradients",)),
    Way("compat-v1-apply-gradients", "compat-v1-optimizer", """
    import tensorflow as tf

    w = tf.Variable([[0.5], [-0.5]], name="w")
    b = tf.Variable([0.1], name="b")
    x = tf.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    y = tf.constant([[1.0], [2.0], [3.0]])


    def loss_fn():
        pred = tf.matmul(x, w) + b
        return tf.reduce_mean(tf.square(tf.stop_gradient(pred) - y))


    optimizer = tf.compat.v1.train.MomentumOptimizer(0.01, momentum=0.9)
    for step in range(3):
        grads_and_vars = optimizer.compute_gradients(loss_fn, var_list=[w, b])
        optimizer.apply_gradients(grads_and_vars)
    """, ("MomentumOptimizer.apply_gradients",)),
    Way("manual-assign-sub", "manual-assign", KERAS_MODEL + """
    for step in range(3):
        with tf.GradientTape() as tape:
            pred = model(x, training=True)
            loss = tf.reduce_mean(tf.square(tf.stop_gradient(pred) - y))
        grads = tape.gradient(loss, model.trainable_variables)
        for variable, grad in zip(model.trainable_variables, grads):
            variable.assign_sub(0.01 * grad)
    """, ("assign_sub",)),
    Way("manual-assign", "manual-assign", """
    import tensorflow as tf

    w = tf.Variable([[0.5], [-0.5]], name="w")
    b = tf.Variable([0.1], name="b")
    x = tf.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    y = tf.constant([[1.0], [2.0], [3.0]])
    learning_rate = 0.01
    for step in range(3):
        with tf.GradientTape() as tape:
            pred = tf.matmul(x, w) + b
            loss = tf.reduce_mean(tf.square(tf.stop_gradient(pred) - y))
        dw, db = tape.gradient(loss, [w, b])
        w.assign(w - learning_rate * dw)
        b.assign(b - learning_rate * db)
    """, ("assign",)),
    Way("no-optimizer", "no-optimizer", """
    import tensorflow as tf

    w = tf.Variable([[0.5], [-0.5]], name="w")
    x = tf.constant([[1.0, 2.0], [3.0, 4.0]])
    with tf.GradientTape() as tape:
        pred = tf.matmul(x, w)
        saliency = tf.reduce_sum(tf.stop_gradient(pred))
    print("gradient:", tape.gradient(saliency, w))
    """, ()),
]


def _diagnose(folder, *args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "gradfix", "diagnose", "-q", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("way", WAYS, ids=[w.name for w in WAYS])
def test_the_fixed_step_is_verified_through_its_update(way, tmp_path):
    (tmp_path / "train.py").write_text(textwrap.dedent(way.program).lstrip())
    done = _diagnose(tmp_path, "--json", "--fix", "--unsafe-fixes", "train.py")
    report = json.loads(done.stdout)
    validate(report)  # raises unless the report follows gradfix/schema/report-1.json
    where = f"exit {done.returncode}\n{done.stderr[-2000:]}"
    section = report["diagnose"]
    # the buggy program is diagnosed: its variables get no gradient, for a cause the run named
    assert section["status"] == "ok", where
    lost = [key for key, ok in section["gradients"].items() if not ok]
    assert lost and section["causes"], where
    # the fixed program is verified, and the verdict names the update it ran through
    repairs = section["repairs"]
    assert repairs and repairs[0]["chosen"] is not None, json.dumps(repairs, indent=1)[:3000] + where
    verdict = repairs[0]["attempts"][repairs[0]["chosen"]]["verification"]
    assert verdict["verified"] is True and not verdict["problems"]
    update = verdict["update"]
    assert update["kind"] == way.kind
    assert update["ran"] is True
    assert all(verdict["after"][key] is True for key in lost)
    assert set(update["calls"]) == set(way.calls)
    if way.kind != "no-optimizer":
        # each variable got its own gradient, of its own shape, through the update
        assert set(lost) <= set(update["variables"]), update
    assert report["verification"]["update"] == update


def test_the_text_report_says_which_update_the_fixed_step_ran(tmp_path):
    way = next(w for w in WAYS if w.name == "compat-v1-minimize")
    (tmp_path / "train.py").write_text(textwrap.dedent(way.program).lstrip())
    done = _diagnose(tmp_path, "--fix", "--unsafe-fixes", "train.py")
    assert "fix (unsafe, verified)" in done.stdout, done.stdout + done.stderr[-2000:]
    assert ("verification: the step's update (compat-v1-optimizer: GradientDescentOptimizer.apply_gradients) ran; "
            "it gave 1 variable their own gradient") in done.stdout


def test_the_facts_of_the_buggy_step_name_its_update(tmp_path, run_fixture):
    """The run records the update a buggy step tried: minimize raised before it could apply anything."""
    way = next(w for w in WAYS if w.name == "compat-v1-minimize")
    (tmp_path / "train.py").write_text(textwrap.dedent(way.program).lstrip())
    facts = run_fixture("train.py", tmp_path)
    assert facts.update_kind() == "compat-v1-optimizer"
    assert not facts.update_ran()
    assert [a.method for a in facts.applies] == ["minimize"]
    assert "No gradients provided" in facts.update_problems()[0]


def test_a_manual_update_with_a_neighbours_gradient_is_a_mismatch(tmp_path, run_fixture):
    """Two variables of one shape, each assigned the other's gradient: the shapes match, the pairing does not."""
    (tmp_path / "train.py").write_text(textwrap.dedent("""
        import tensorflow as tf

        w = tf.Variable([1.0, 2.0], name="w")
        v = tf.Variable([3.0, 4.0], name="v")
        for step in range(2):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(w * w) + tf.reduce_sum(3.0 * v)
            gw, gv = tape.gradient(loss, [w, v])
            w.assign_sub(0.1 * gv)
            v.assign_sub(0.1 * gw)
        """).lstrip())
    facts = run_fixture("train.py", tmp_path)
    assert facts.update_kind() == "manual-assign"
    assert facts.update_ran()
    assert [a.from_gradients for a in facts.applies] == [("v",), ("w",)]
    assert facts.update_problems() == ["the gradient computed for v is applied to w",
                                       "the gradient computed for w is applied to v"]
    assert facts.updated_variables() == []
