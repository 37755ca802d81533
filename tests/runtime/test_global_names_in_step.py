"""A step whose names are the module's (``global``) is followed as one whose names are its own (TensorFlow runs
for real, in child processes).

Scripts wrap their loop in ``main()`` and declare the names they keep with ``global``; the values then live in
the module, not in the function's frame. The run must still see the statement that took the tensor out of
TensorFlow (``model.predict`` in the tape), not conclude that the loss depends on nothing the tape watched.
The program is the one of ``fixtures/repair/model_predict_inside_tape_regression.py`` (its source is cited
there), with the loop in ``main()``.
"""

from __future__ import annotations

import textwrap

import pytest

from gradfix import categories as cat
from gradfix.causes import group_causes

pytestmark = pytest.mark.tensorflow

PROGRAM = """
import numpy as np
import tensorflow as tf

x = tf.constant(np.random.rand(32, 4).astype("float32"))
y = tf.constant(np.random.rand(32, 1).astype("float32"))
model = tf.keras.Sequential([tf.keras.Input(shape=(4,)), tf.keras.layers.Dense(1)])
optimizer = tf.keras.optimizers.SGD(0.01)


def main():
    {declaration}
    for step in range(2):
        with tf.GradientTape() as tape:
            error = model.predict(x, verbose=0) - y
            loss_value = tf.reduce_mean(tf.square(error))
        grads = tape.gradient(loss_value, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))


main()
"""


@pytest.mark.parametrize("declaration", ["global step, tape, error, loss_value, grads", "pass"],
                         ids=["global-names", "local-names"])
def test_the_conversion_is_named_whichever_namespace_holds_the_names(tmp_path, run_fixture, declaration):
    program = textwrap.dedent(PROGRAM).lstrip().replace("{declaration}", declaration)
    (tmp_path / "train.py").write_text(program)
    facts = run_fixture("train.py", tmp_path)
    assert facts.status == "ok", f"{facts.status}: {facts.error}"
    causes = group_causes(facts)
    assert [c.category for c in causes] == [cat.NUMPY_CONVERSION], [(c.category, c.detail) for c in causes]
    line = next(n for n, text in enumerate(program.splitlines(), 1) if "model.predict" in text)
    assert causes[0].site.line == line
