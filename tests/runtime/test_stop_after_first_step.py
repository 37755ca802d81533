"""The run ends after the first training step without the program noticing.

Programs that catch everything, run clean-up in ``finally`` or train in a thread would otherwise
see gradfix stopping them: print it as their own failure, swallow it and train on for every
epoch, or run their clean-up as if the step had failed.
"""

from __future__ import annotations

import pytest

from gradfix import categories as cat
from gradfix.diagnose import diagnose
from gradfix.runtime.runner import run_step

pytestmark = pytest.mark.tensorflow

SETUP = """\
import threading

import numpy as np
import tensorflow as tf

encoder = tf.keras.Sequential([tf.keras.layers.Dense(8, activation="relu")])
head = tf.keras.layers.Dense(1)
optimizer = tf.keras.optimizers.SGD(0.01)
x = np.random.rand(8, 4).astype("float32")
y = np.random.rand(8, 1).astype("float32")
"""

# each: the training part of the program, and the line (counted from the program's first line) of its bug
CATCHES_EVERYTHING = """\
try:
    for epoch in range(3):
        with tf.GradientTape() as tape:
            features = tf.stop_gradient(encoder(x))
            loss = tf.reduce_mean(tf.square(head(features) - y))
        variables = encoder.trainable_variables + head.trainable_variables
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        print("epoch", epoch, "trained")
except BaseException as error:
    print("training failed:", type(error).__name__, error)
    raise
print("training finished")
"""

SWALLOWS_EVERYTHING = """\
for epoch in range(3):
    try:
        features = encoder(x)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(head(features) - y))
        variables = encoder.trainable_variables + head.trainable_variables
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
    except:
        pass
    print("epoch", epoch, "trained")
print("training finished")
"""

CLEANS_UP = """\
for epoch in range(3):
    try:
        with tf.GradientTape() as tape:
            features = tf.stop_gradient(encoder(x))
            loss = tf.reduce_mean(tf.square(head(features) - y))
        variables = encoder.trainable_variables + head.trainable_variables
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
    finally:
        print("epoch", epoch, "trained")
print("training finished")
"""

IN_A_THREAD = """\
def train():
    for epoch in range(3):
        with tf.GradientTape() as tape:
            features = tf.stop_gradient(encoder(x))
            loss = tf.reduce_mean(tf.square(head(features) - y))
        variables = encoder.trainable_variables + head.trainable_variables
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        print("epoch", epoch, "trained")


worker = threading.Thread(target=train)
worker.start()
worker.join()
print("training finished")
"""

SETUP_LINES = SETUP.count("\n")
ENCODER = {"sequential/dense/kernel", "sequential/dense/bias"}

# program -> (cause, line of the bug)
CASES = {
    "catches_everything": (CATCHES_EVERYTHING, cat.STOP_GRADIENT, SETUP_LINES + 4),
    "swallows_everything": (SWALLOWS_EVERYTHING, cat.OUTSIDE_TAPE, SETUP_LINES + 3),
    "cleans_up": (CLEANS_UP, cat.STOP_GRADIENT, SETUP_LINES + 4),
    "in_a_thread": (IN_A_THREAD, cat.STOP_GRADIENT, SETUP_LINES + 4),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_program_does_not_see_the_run_stop(tmp_path, name):
    body, category, line = CASES[name]
    (tmp_path / "train.py").write_text(SETUP + body)
    facts = run_step("train.py", cwd=str(tmp_path), timeout=300)
    assert facts.status == "ok", facts.error
    assert facts.stopped_after_steps == 1
    result = diagnose(facts)
    assert [c.category for c in result.causes] == [category]
    assert result.causes[0].site.line == line
    assert set(result.findings[0].variables) == ENCODER
    output = facts.output_tail
    # the first step trained; nothing of the second ran, and nothing of gradfix showed
    assert [row for row in output.splitlines() if "epoch" in row] == ["epoch 0 trained"]
    assert "training finished" not in output
    assert "Gradfix" not in output and "failed" not in output and "Traceback" not in output

FIT_PER_EPOCH = """\
import numpy as np
import tensorflow as tf

model = tf.keras.Sequential([
    tf.keras.Input(shape=(4,)),
    tf.keras.layers.Dense(8, activation="relu"),
    tf.keras.layers.Dense(2),
])


def my_loss(y_true, y_pred):
    hidden = model.layers[0](y_true)
    return tf.reduce_mean(tf.square(hidden))


model.compile(optimizer="adam", loss=my_loss)
x = np.random.rand(32, 4).astype("float32")
y = np.random.rand(32, 4).astype("float32")
try:
    for epoch in range(3):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        print("epoch", epoch, "trained")
except BaseException as error:
    print("training failed:", type(error).__name__, error)
    raise
print("training finished")
"""


def test_fit_called_again_from_the_same_line_ends_the_run_unseen(tmp_path):
    # the first fit is cut after its first step and the program goes on; the second one ends the run
    (tmp_path / "train.py").write_text(FIT_PER_EPOCH)
    facts = run_step("train.py", cwd=str(tmp_path), timeout=300)
    assert facts.status == "ok", facts.error
    assert [n["kind"] for n in facts.notes if n.get("kind") == "fit-cut"] == ["fit-cut"]
    result = diagnose(facts)
    assert [c.category for c in result.causes] == [cat.LOSS_IGNORES_PREDICTION]
    assert set(result.findings[0].variables) == {"sequential/dense_1/kernel", "sequential/dense_1/bias"}
    output = facts.output_tail
    assert [row for row in output.splitlines() if "epoch" in row] == ["epoch 0 trained"]
    assert "Gradfix" not in output and "failed" not in output and "Traceback" not in output
