"""A sample of respelled bugs, rewritten by their operator and run: before, some variable gets no gradient;
after, every variable gets one and the step runs to its update."""

from __future__ import annotations

import textwrap

import pytest
from test_operators import rewrites

from gradfix.runtime.runner import run_step
from gradfix.transforms.surrogate import Surrogate
from gradfix.transforms.unwrap_stop_gradient import UnwrapStopGradient

pytestmark = pytest.mark.tensorflow

PROGRAMS = [
    pytest.param(Surrogate(), "ArgMax", """
        import numpy as np
        import tensorflow as tf
        from tensorflow.keras import backend as K
        from tensorflow.keras.layers import Dense, Input, Lambda

        inputs = Input(shape=(4,))
        logits = Dense(3)(inputs)
        decoded = Lambda(lambda x: K.one_hot(K.argmax(x), 3))(logits)  # cut
        model = tf.keras.Model(inputs, decoded)
        model.compile(optimizer="sgd", loss="categorical_crossentropy")
        model.fit(np.ones((8, 4)), np.eye(3)[np.arange(8) % 3], epochs=1, verbose=0)
        """, id="K-one-hot-argmax-in-Lambda-fit"),
    pytest.param(Surrogate(), "Greater", """
        import numpy as np
        import tensorflow as tf

        model = tf.keras.Sequential([tf.keras.Input(shape=(4,)), tf.keras.layers.Dense(1)])
        optimizer = tf.keras.optimizers.SGD(0.1)

        @tf.function
        def step(x, y):
            with tf.GradientTape() as tape:
                scores = model(x, training=True)
                hits = tf.cast(scores > 0.0, tf.float32)  # cut
                loss = tf.reduce_mean(tf.square(hits - y))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))

        step(np.ones((8, 4), "float32"), np.ones((8, 1), "float32"))
        """, id="comparison-cast-in-tf-function"),
    pytest.param(UnwrapStopGradient(), "StopGradient", """
        import numpy as np
        import keras
        from tensorflow.keras import backend as K

        class Frozen(keras.layers.Layer):
            def __init__(self):
                super().__init__()
                self.dense = keras.layers.Dense(2)

            def call(self, x):
                return K.stop_gradient(self.dense(x))  # cut

        model = keras.Sequential([keras.Input(shape=(3,)), Frozen(), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        model.fit(np.ones((8, 3)), np.ones((8, 1)), epochs=1, verbose=0)
        """, id="K-stop-gradient-in-Layer-call"),
]


@pytest.mark.parametrize("operator, op, program", PROGRAMS)
def test_rewritten_program_trains_every_variable(operator, op, program, tmp_path):
    code = textwrap.dedent(program)
    path = tmp_path / "train.py"
    path.write_text(code)
    before = run_step(path.name, cwd=str(tmp_path), timeout=300)
    assert before.status == "ok", f"{before.status}: {before.error}"
    assert before.variables_without_gradient(), "the program as written must lose a gradient"
    _, fixed = rewrites(operator, code, op)[0]
    path.write_text(fixed)
    after = run_step(path.name, cwd=str(tmp_path), timeout=300)
    assert after.status == "ok", f"{after.status}: {after.error}"
    assert after.variables_without_gradient() == []
    assert not after.update_problems()
