from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradfix.categories import NON_DIFFERENTIABLE
from gradfix.messages import sentence
from gradfix.model import Applicability, Severity
from gradfix.rule import Invalid, Report, Rule
from gradfix.static.analysis import ModuleAnalysis
from gradfix.static.gradpath import (
    ARGMAX_ALTERNATIVE,
    OP,
    PathContext,
    all_contexts,
    cuts_of_kind,
    describe_sources,
    might_take_gradients,
)
from gradfix.static.layergraph import graph_cuts, minimize_contexts
from gradfix.static.losses import fed_losses
from gradfix.transforms._operator import Context, suggested
from gradfix.transforms.surrogate import Surrogate


class NonDifferentiableOp(Rule):
    """An operation without a gradient lies on the only path from the differentiated variables to
    the gradient target: a comparison (`>`, `==` on tensors), `tf.equal`/`tf.greater`/...,
    `tf.round`, `tf.floor`, `tf.math.ceil`, `tf.sign`, a cast to an integer or boolean dtype,
    `tf.argmax`/`tf.argmin`, `tf.argsort`, or `tf.numpy_function` (or a `tf.py_function` running
    NumPy code). The gradient target is a tape's, a Keras loss function's, or the result of a loss
    function given to `optimizer.minimize(loss_fn, var_list=...)`; and for a Keras model built from
    layers (functional or `Sequential`) and trained (`fit`, `train_on_batch`, or a tape asked for
    its variables), the layers whose computation the program writes (a `Lambda`'s function, a
    custom layer's `call`) are read on the model's path from its trainable layers to its output.
    The finding names the operation and its differentiable alternatives. An `argmax` fed
    straight into a cross-entropy is GF008's (argmax-before-loss) and is not reported again here.

    ## Why gradients vanish
    These operations are piecewise constant (or leave TensorFlow), so TensorFlow registers no
    gradient for them: the tape treats their output as a constant. When every path from the
    variables to the loss passes through one, `tape.gradient` returns `None` for them (for
    `tf.sign`, zeros) and the model does not learn.

    ## Example
    ```python
    with tf.GradientTape() as tape:
        scores = model(x, training=True)
        hits = tf.cast(scores > 0.0, tf.float32)
        loss = tf.reduce_mean(tf.square(hits - y))
    grads = tape.gradient(loss, model.trainable_variables)
    ```

    ## Fix
    ```python
    with tf.GradientTape() as tape:
        scores = model(x, training=True)
        hits = tf.sigmoid(5.0 * scores)
        loss = tf.reduce_mean(tf.square(hits - y))
    grads = tape.gradient(loss, model.trainable_variables)
    ```

    ## Fix safety
    Display-only. Each alternative changes what the program computes (a smooth step needs a
    sharpness, a straight-through estimator changes the backward pass only, a softmax is not a
    choice), and which one is right depends on the model, so gradfix names them and leaves the
    choice to the user: `tf.sigmoid(k * x)` for a step or comparison, a softmax or the logits for
    `argmax`, `x + tf.stop_gradient(tf.round(x) - x)` for `round`, `tf.tanh(k * x)` for `sign`, a
    float dtype for a cast, TensorFlow ops or `tf.custom_gradient` for NumPy code. The suggestion
    shown with the finding is the surrogate `gradfix diagnose --fix` tries first (the `surrogate`
    operator), which a run verifies before anything is written; none is shown for an `argmax` in a
    layer whose indices a later layer of the model reads (an `Embedding`), where a soft argmax
    would leave them indices.

    ## When not to fix
    Only operations on the *only* path are reported: a comparison used as the condition of
    `tf.where` next to a differentiable branch, a mask multiplied into the prediction
    (`pred * tf.cast(pred > 0, tf.float32)`), an `argmax` computed for accuracy outside the loss,
    a rounding inside a straight-through estimator (`x + tf.stop_gradient(tf.round(x) - x)`), and
    operations on labels all leave a gradient and are left alone. In a Keras model, a layer that
    cuts its input before any trainable layer (quantizing the raw features), a mask layer whose
    input also reaches the output another way, a layer that rounds only when `training` is false,
    and a model built after training for prediction only are left alone too.
    """

    code = "GF009"
    name = "non-differentiable-op"
    summary = "An operation without a gradient cuts the path from the variables to the loss"
    applicability = Applicability.DISPLAY_ONLY
    categories = (NON_DIFFERENTIABLE,)
    needles = ("GradientTape", "compile(", "Loss)", "minimize(")

    VALID = [
        # argmax for accuracy only.
        """
import tensorflow as tf

with tf.GradientTape() as tape:
    logits = model(x, training=True)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    correct = tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), y)
    accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
grads = tape.gradient(loss, model.trainable_variables)
""",
        # Straight-through rounding.
        """
import tensorflow as tf

with tf.GradientTape() as tape:
    z = encoder(x)
    z_q = z + tf.stop_gradient(tf.round(z) - z)
    loss = tf.reduce_mean(tf.square(decoder(z_q) - x))
grads = tape.gradient(loss, encoder.trainable_variables + decoder.trainable_variables)
""",
        # A comparison as tf.where's condition, with a differentiable branch.
        """
import tensorflow as tf

with tf.GradientTape() as tape:
    err = model(x) - y
    huber = tf.where(tf.abs(err) < 1.0, 0.5 * tf.square(err), tf.abs(err) - 0.5)
    loss = tf.reduce_mean(huber)
grads = tape.gradient(loss, model.trainable_variables)
""",
        # A mask from the prediction multiplied into the prediction.
        """
import tensorflow as tf

with tf.GradientTape() as tape:
    pred = model(x)
    mask = tf.cast(pred > 0.0, tf.float32)
    loss = tf.reduce_mean(tf.square(pred * mask - y))
grads = tape.gradient(loss, model.trainable_variables)
""",
        # A comparison choosing between differentiable branches of tf.cond.
        """
import tensorflow as tf

with tf.GradientTape() as tape:
    pred = model(x)
    loss = tf.cond(tf.reduce_sum(pred) > 0, lambda: tf.reduce_mean(pred), lambda: -tf.reduce_mean(pred))
grads = tape.gradient(loss, model.trainable_variables)
""",
        # Integer casts of the labels.
        """
import tensorflow as tf

def masked_loss(y_true, y_pred):
    mask = tf.cast(tf.not_equal(y_true, 0), tf.float32)
    labels = tf.cast(y_true, tf.int32)
    per_token = tf.keras.losses.sparse_categorical_crossentropy(labels, y_pred, from_logits=True)
    return tf.reduce_sum(per_token * mask) / tf.reduce_sum(mask)

model.compile(optimizer="adam", loss=masked_loss)
""",
        # Look-alike: `tf.round` inside a `@tf.custom_gradient` straight-through function.
        """
import tensorflow as tf

@tf.custom_gradient
def round_ste(t):
    def grad(dy):
        return dy
    return tf.round(t), grad

with tf.GradientTape() as tape:
    scores = model(x, training=True)
    loss = tf.reduce_mean(tf.square(round_ste(scores) - y))
grads = tape.gradient(loss, model.trainable_variables)
""",
        # Look-alike: a threshold on the labels, not the prediction.
        """
import tensorflow as tf

with tf.GradientTape() as tape:
    scores = model(x, training=True)
    mask = tf.cast(y > 0.5, tf.float32)
    loss = tf.reduce_mean(mask * tf.square(scores - y))
grads = tape.gradient(loss, model.trainable_variables)
""",
        # Look-alike: a cast to a float dtype given by position.
        """
import tensorflow as tf

with tf.GradientTape() as tape:
    scores = model(x, training=True)
    loss = tf.reduce_mean(tf.square(tf.cast(scores, tf.float64) - y))
grads = tape.gradient(loss, model.trainable_variables)
""",
        # Look-alike: a straight-through rounding in a `Lambda` layer of a trained model.
        """
import tensorflow as tf
from tensorflow import keras

inputs = keras.Input(shape=(8,))
hidden = keras.layers.Dense(4)(inputs)
rounded = keras.layers.Lambda(lambda t: t + tf.stop_gradient(tf.round(t) - t))(hidden)
model = keras.Model(inputs, keras.layers.Dense(1)(rounded))
model.compile(optimizer="adam", loss="mse")
model.fit(x, y, epochs=1)
""",
        # Look-alike: an argmax layer added after training, in a model used only to predict.
        """
import tensorflow as tf
from tensorflow import keras

inputs = keras.Input(shape=(8,))
logits = keras.layers.Dense(10)(inputs)
model = keras.Model(inputs, logits)
model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(x, y, epochs=1)
labels = keras.layers.Lambda(lambda t: tf.argmax(t, axis=-1))(model.output)
predicted = keras.Model(model.input, labels).predict(x)
""",
        # Look-alike: a rounding layer on the raw features, before any trainable layer.
        """
import tensorflow as tf
from tensorflow import keras

class Quantize(keras.layers.Layer):
    def call(self, inputs):
        return tf.round(inputs * 4.0) / 4.0

model = keras.Sequential([keras.Input(shape=(8,)), Quantize(), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
model.fit(x, y, epochs=1)
""",
    ]

    INVALID = [
        Invalid(
            """
import tensorflow as tf

with tf.GradientTape() as tape:
    scores = model(x, training=True)
    hits = tf.cast(scores > 0.0, tf.float32)
    loss = tf.reduce_mean(tf.square(hits - y))
grads = tape.gradient(loss, model.trainable_variables)
""",
            None,
        ),
        Invalid(
            """
import tensorflow as tf

def count_loss(y_true, y_pred):
    counts = tf.round(tf.reduce_sum(y_pred, axis=-1))
    return tf.reduce_mean(tf.abs(counts - y_true))

model.compile(optimizer="adam", loss=count_loss)
""",
            None,
        ),
        Invalid(
            """
import tensorflow as tf

@tf.function
def train_step(x, y):
    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        chosen = tf.cast(tf.argmax(logits, axis=-1), tf.float32)
        loss = tf.reduce_mean(tf.square(chosen - y))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
            None,
        ),
        Invalid(
            """
import numpy as np
import tensorflow as tf

def np_penalty(t):
    return np.abs(t).astype(np.float32)

with tf.GradientTape() as tape:
    out = model(x)
    loss = tf.reduce_mean(tf.numpy_function(np_penalty, [out], tf.float32))
grads = tape.gradient(loss, model.trainable_variables)
""",
            None,
        ),
        # Variant: the cut inside a helper method.
        Invalid(
            """
import tensorflow as tf

class Trainer:
    def binarize(self, t):
        return tf.cast(t > 0.0, tf.float32)

    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            scores = self.model(x, training=True)
            loss = tf.reduce_mean(tf.square(self.binarize(scores) - y))
        grads = tape.gradient(loss, self.model.trainable_variables)
""",
            None,
        ),
        # Variant: the loss made by a factory (`make_loss()`).
        Invalid(
            """
import tensorflow as tf

def make_loss():
    def loss(y_true, y_pred):
        return tf.reduce_mean(tf.square(tf.round(y_pred) - y_true))
    return loss

model.compile(optimizer="adam", loss=make_loss())
""",
            None,
        ),
        # Variant: a lambda given to `compile(loss=...)`.
        Invalid(
            """
import tensorflow as tf

model.compile(optimizer="adam", loss=lambda y, p: tf.reduce_mean(tf.square(tf.round(p) - y)))
""",
            None,
        ),
        # A `Lambda` layer taking the argmax, on the only path from the `Dense` layer to the output `fit` trains.
        Invalid(
            """
import tensorflow as tf
from tensorflow import keras

inputs = keras.Input(shape=(8,))
scores = keras.layers.Dense(3)(inputs)
choice = keras.layers.Lambda(lambda t: tf.cast(tf.argmax(t, axis=-1), tf.float32))(scores)
model = keras.Model(inputs, choice)
model.compile(optimizer="adam", loss="mae")
model.fit(x, y, epochs=1)
""",
            None,
        ),
        # A custom layer thresholding its input, after the trainable layers of a `Sequential` model.
        Invalid(
            """
import tensorflow as tf
from tensorflow import keras

class Binarize(keras.layers.Layer):
    def call(self, inputs):
        return tf.cast(inputs > 0.5, tf.float32)

model = keras.Sequential([keras.Input(shape=(8,)), keras.layers.Dense(4, activation="sigmoid"), Binarize()])
model.compile(optimizer="adam", loss="mse")
model.fit(x, y, epochs=1)
""",
            None,
        ),
        # The loss function given to `optimizer.minimize`, for the variables of `var_list`.
        Invalid(
            """
import tensorflow as tf

w = tf.Variable(tf.zeros([4, 1]))

def loss_fn():
    return tf.reduce_mean(tf.abs(tf.round(tf.sigmoid(tf.matmul(x, w))) - y))

tf.keras.optimizers.SGD(0.1).minimize(loss_fn, var_list=[w])
""",
            None,
        ),
    ]

    def wants(self, text: str) -> bool:
        return might_take_gradients(text) or "minimize(" in text

    def check(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        claimed = {id(fed.op) for fed in fed_losses(analysis) if fed.op is not None}
        surrogate, where = Surrogate(), Context.of_analysis(analysis)
        minimized = minimize_contexts(analysis)
        for context in all_contexts(analysis) + minimized:
            for cut in cuts_of_kind(analysis, context, OP, exclude=lambda node: id(node) in claimed):
                claimed.add(id(cut.node))
                op = cut.op
                assert op is not None, "a cut of kind OP names its op"
                effect = "a gradient of zeros" if op.zero_gradient else "no gradient"
                related: list[tuple[cst.CSTNode, str]] = []
                if context.gradient is not None:
                    related.append((context.gradient.node, "the gradient is taken here"))
                # the surrogate the runtime repair would try first, shown as a suggestion
                suggestion = next(iter(surrogate.rewrite(cut.node, where)), None)
                yield Report(
                    node=cut.node,
                    message=f"{op.name} has {effect}, on every path to the loss",
                    detail=sentence(
                        f"{op.name} has {effect}, and every path from {_sources(context, cut.sources, minimized)} to the loss "
                        f"passes through it. Use {op.alternative}") + ".",
                    related=related,
                    severity=Severity.WARNING if op.zero_gradient else None,
                    **(suggested(suggestion) if suggestion is not None else {}),
                )
        for layer_cut in graph_cuts(analysis):
            cut = layer_cut.cut
            if id(cut.node) in claimed:
                continue
            claimed.add(id(cut.node))
            op = cut.op
            assert op is not None, "a layer's cut names its op"
            effect = "a gradient of zeros" if op.zero_gradient else "no gradient"
            # indices read by a later layer (an Embedding) stay indices under a soft argmax: no surrogate to suggest
            indices = op.alternative == ARGMAX_ALTERNATIVE and not layer_cut.final
            suggestion = (next(iter(surrogate.rewrite(cut.node, where)), None)
                          if isinstance(cut.node, cst.Call) and not indices else None)
            yield Report(
                node=cut.node,
                message=f"{op.name} has {effect}, cutting off the layers before",
                detail=sentence(
                    f"{op.name}, in a layer of a model that is trained, has {effect}, and every path from the trainable "
                    f"layers before that layer to the model's output passes through it, so they do not learn. Use "
                    f"{op.alternative}") + ".",
                severity=Severity.WARNING if op.zero_gradient else None,
                **(suggested(suggestion) if suggestion is not None else {}),
            )


def _sources(context: PathContext, sources: frozenset[str], minimized: list[PathContext]) -> str:
    if any(context is other for other in minimized):
        return ("the variable " if len(sources) == 1 else "the variables ") + ", ".join(f"`{source}`" for source in sorted(sources))
    return describe_sources(context, sources)
