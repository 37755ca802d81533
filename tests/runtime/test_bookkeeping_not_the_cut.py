"""A layer's own bookkeeping is not where the path was cut (TensorFlow runs for real, in child processes).

BatchNormalization stores its batch's statistics into its moving averages while training, and a metric's
``update_state`` stores the prediction into its totals: both are assigns of a value that depends on the
variables without a gradient. The loss reads neither, so neither cut the path; naming one as the cause
("state update") would hide the real break. A state update the loss does read back (a metric used as the
loss) stays the cut: ``fixtures/repair/metric_instance_in_custom_loss.py`` and its neighbours cover that.

No public report of this shape with runnable code was found, so the programs are written here. Their shape
is that of https://github.com/Svdvoort/PrognosAIs_glioma/issues/6 (a custom model whose convolution and
(Sync)BatchNormalization variables got no gradient) and of https://github.com/tensorflow/tensorflow/issues/36880
(``call`` applies its last layer to the input instead of the output of the layers before it), with the
metric-tracking ``train_step`` of the Keras guide "Customizing what happens in fit()".
"""

from __future__ import annotations

import textwrap

import pytest

from gradfix import categories as cat
from gradfix.causes import group_causes

pytestmark = pytest.mark.tensorflow

CONV_BN_CLASSIFIER = """
import keras
import numpy as np
import tensorflow as tf


class ConvNet(keras.Model):
    def __init__(self, num_classes=3):
        super().__init__()
        self.conv1 = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)
        self.bn1 = keras.layers.BatchNormalization()
        self.conv2 = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)
        self.bn2 = keras.layers.BatchNormalization()
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.classifier = keras.layers.Dense(num_classes)

    def call(self, inputs, training=False):
        x = tf.nn.relu(self.bn1(self.conv1(inputs), training=training))
        x = tf.nn.relu(self.bn2(self.conv2(x), training=training))
        return self.classifier(self.pool(inputs))


images = np.random.default_rng(0).normal(size=(8, 16, 16, 3)).astype("float32")
labels = np.arange(8) % 3
model = ConvNet()
optimizer = keras.optimizers.Adam(1e-3)
loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
for step in range(3):
    with tf.GradientTape() as tape:
        logits = model(images, training=True)
        loss = loss_fn(labels, logits)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
"""

METRIC_BESIDE_THE_LOSS = """
import keras
import numpy as np
import tensorflow as tf


class Regressor(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(8, activation="relu")
        self.out = keras.layers.Dense(1)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.mae = keras.metrics.MeanAbsoluteError(name="mae")

    def call(self, inputs):
        return self.out(self.hidden(inputs))

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            self.mae.update_state(y, y_pred)
            loss = tf.reduce_mean(tf.square(y - tf.reduce_mean(y)))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result(), "mae": self.mae.result()}


x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
y = x.sum(axis=1, keepdims=True)
model = Regressor()
model.compile(optimizer="adam")
model.fit(x, y, epochs=2, batch_size=8, verbose=0)
"""


def _causes(tmp_path, run_fixture, program):
    (tmp_path / "train.py").write_text(textwrap.dedent(program).lstrip())
    facts = run_fixture("train.py", tmp_path)
    assert facts.status == "ok", f"{facts.status}: {facts.error}"
    return facts, group_causes(facts)


def _last_line(program: str, text: str) -> int:
    lines = textwrap.dedent(program).lstrip().splitlines()
    return max(number for number, line in enumerate(lines, 1) if line.strip() == text)


def test_batchnorm_moving_statistics_are_not_the_cut(tmp_path, run_fixture):
    facts, causes = _causes(tmp_path, run_fixture, CONV_BN_CLASSIFIER)
    lost = {key for key, ok in facts.gradient_status().items() if not ok}
    assert lost == {"conv_net/conv2d/kernel", "conv_net/conv2d_1/kernel", "conv_net/batch_normalization/gamma",
                    "conv_net/batch_normalization/beta", "conv_net/batch_normalization_1/gamma",
                    "conv_net/batch_normalization_1/beta"}
    # the moving averages were stored with a connected value, and the loss never reads them
    assert all(c.category != cat.STATE_UPDATE for c in causes), [(c.category, c.detail) for c in causes]
    assert not any("moving_" in c.detail for c in causes)
    # the real break: the layers' output is never read again, the pooling reads the input instead
    assert [c.category for c in causes] == [cat.NEVER_USED]
    (cause,) = causes
    assert {v.key for v in cause.variables} == lost
    # the last `x` the layers computed
    assert cause.site.line == _last_line(CONV_BN_CLASSIFIER, "x = tf.nn.relu(self.bn2(self.conv2(x), training=training))")
    assert cause.last_connected["name"] == "x"


def test_a_metric_updated_beside_the_loss_is_not_the_cut(tmp_path, run_fixture):
    facts, causes = _causes(tmp_path, run_fixture, METRIC_BESIDE_THE_LOSS)
    assert len(facts.variables_without_gradient()) == 4
    assert all(c.category != cat.STATE_UPDATE for c in causes), [(c.category, c.detail) for c in causes]
    # the real break: the loss is computed from the targets alone, never from the prediction
    assert [c.category for c in causes] == [cat.LOSS_IGNORES_PREDICTION]
    assert causes[0].site.line == _last_line(METRIC_BESIDE_THE_LOSS, "y_pred = self(x, training=True)")
    assert causes[0].last_connected["name"] == "y_pred"


def test_the_real_break_is_repaired_and_verified(tmp_path):
    """Named right, the break gets its fix: the pooling reads the layers' output, and every variable trains."""
    import json
    import os
    import subprocess
    import sys

    (tmp_path / "train.py").write_text(textwrap.dedent(CONV_BN_CLASSIFIER).lstrip())
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-m", "gradfix", "diagnose", "--json", "-q", "--fix", "--unsafe-fixes",
                           "train.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    report = json.loads(done.stdout)
    (repair,) = report["diagnose"]["repairs"]
    assert repair["chosen"] is not None, json.dumps(repair, indent=1)[:3000]
    chosen = repair["attempts"][repair["chosen"]]
    assert chosen["verification"]["verified"] is True
    assert all(chosen["verification"]["after"].values())
    assert chosen["verification"]["update"]["kind"] == "keras-optimizer"
    (patch,) = report["fixes"]
    assert "+        return self.classifier(self.pool(x))" in patch["diff"]
