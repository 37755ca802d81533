from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradfix.categories import NON_DIFFERENTIABLE
from gradfix.messages import brief, sentence
from gradfix.model import Applicability
from gradfix.rule import Invalid, Report, Rule
from gradfix.rules._prediction_width import caveat
from gradfix.static.analysis import ModuleAnalysis
from gradfix.static.gradpath import might_take_gradients
from gradfix.static.losses import INSTEAD, fed_losses, metrics_used_as_losses
from gradfix.transforms._operator import Context, suggested
from gradfix.transforms.surrogate import Surrogate


class ArgmaxBeforeLoss(Rule):
    """A cross-entropy (a Keras loss, `tf.nn.*cross_entropy*`) or a metric used as a loss is fed
    `tf.argmax(y_pred)`, a rounded or thresholded prediction, or a prediction cast to an integer,
    instead of the probabilities or logits. Also reported: an accuracy-type metric (or any Keras
    metric object) whose value is the loss.

    ## Why gradients vanish
    `argmax`, `round`, comparisons and integer casts have no gradient: TensorFlow records them as
    constants with respect to their input. A loss computed from their output does not depend on
    any variable, so every gradient is `None` and `apply_gradients` raises
    `ValueError: No gradients provided for any variable`. Metrics do the same inside: accuracy
    takes an argmax or a threshold, and metric objects accumulate into state variables.

    ## Example
    ```python
    loss_fn = tf.keras.losses.CategoricalCrossentropy()
    with tf.GradientTape() as tape:
        probs = model(x, training=True)
        loss = loss_fn(y_onehot, tf.one_hot(tf.argmax(probs, axis=-1), depth=10))
    grads = tape.gradient(loss, model.trainable_variables)
    ```

    ## Fix
    ```python
    loss_fn = tf.keras.losses.CategoricalCrossentropy()
    with tf.GradientTape() as tape:
        probs = model(x, training=True)
        loss = loss_fn(y_onehot, probs)
    grads = tape.gradient(loss, model.trainable_variables)
    ```

    ## Fix safety
    The fix passes the tensor the `argmax` (or `round`, or threshold) read, which is what a
    cross-entropy expects, where the shapes stay consistent: `argmax(p, axis=-1)` into a sparse
    cross-entropy becomes `p` (the labels keep their form); `one_hot(argmax(p, -1), depth)` or
    `round(p)` into any cross-entropy becomes `p`; `cast(p > t, float)` into a binary
    cross-entropy becomes `p`. It is **safe** where what it assumes of `p` is shown: a rounding
    or a threshold has its input's shape; an `argmax` took the classes from the last axis only
    when its axis is `-1` (`tf.argmax`'s default axis is 0, NumPy's and `keras.ops`' flatten,
    `axis=1` is the last only for a prediction of rank 2); and the one-hot rows have `p`'s shape
    only when `p` has `depth` classes, shown where `p` is the output of a `Dense` layer (the last
    of a `Sequential` model, or the layer a subclassed model's `call` returns) whose units are
    `depth` (the same number or constant, or the same expression of the same function). Where
    one of these is not shown, the fix is **unsafe**, with the assumption named. The program
    could not train before; the loss's `from_logits` setting is kept as written, check it
    matches what the model outputs. Everything else (an integer cast, an `argmax` into a
    categorical cross-entropy, a metric used as a loss) is **display-only**, with the
    differentiable alternative named in the message and, where the `surrogate` operator has one,
    the straight-through surrogate `gradfix diagnose --fix` would try, as a suggestion.

    ## When not to fix
    An `argmax` on the labels (`tf.argmax(y_onehot, -1)`), an `argmax` of the model's output used
    as pseudo-labels (the `y_true` side), and an `argmax` or accuracy computed only for a metric,
    outside the path to the loss, are left alone. A stateful metric object with a loss of the same
    meaning (`keras.metrics.MeanSquaredError()`) whose value is the loss is GF013's finding, with
    its fix, and is not reported here too.
    """

    code = "GF008"
    name = "argmax-before-loss"
    summary = "A cross-entropy or metric used as a loss reads argmax/round/cast of the prediction"
    applicability = Applicability.SAFE
    categories = (NON_DIFFERENTIABLE,)
    needles = ("argmax", "argmin", "round", "rint", "cast", "greater", ">", "metrics")

    VALID = [
        # argmax used only for accuracy, outside the loss.
        """
import tensorflow as tf

loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
with tf.GradientTape() as tape:
    logits = model(x, training=True)
    loss = loss_fn(y, logits)
    acc = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), y), tf.float32))
grads = tape.gradient(loss, model.trainable_variables)
""",
        # argmax on the one-hot labels.
        """
import tensorflow as tf

with tf.GradientTape() as tape:
    logits = model(x)
    loss = tf.keras.losses.sparse_categorical_crossentropy(tf.argmax(y_onehot, -1), logits, from_logits=True)
grads = tape.gradient(loss, model.trainable_variables)
""",
        # Pseudo-labels from the model's own confident predictions sit on the y_true side.
        """
import tensorflow as tf

scce = tf.keras.losses.SparseCategoricalCrossentropy()
with tf.GradientTape() as tape:
    weak = model(x_weak, training=True)
    pseudo = tf.argmax(weak, axis=-1)
    strong = model(x_strong, training=True)
    loss = scce(pseudo, strong)
grads = tape.gradient(loss, model.trainable_variables)
""",
        # A metric updated for logging in train_step.
        """
import tensorflow as tf

class Classifier(tf.keras.Model):
    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.loss_fn(y, y_pred)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        self.acc.update_state(y, tf.argmax(y_pred, -1))
        return {"loss": loss}
""",
        # Look-alike: argmax for an accuracy beside a differentiable loss.
        """
import tensorflow as tf

loss_fn = tf.keras.losses.SparseCategoricalCrossentropy()
with tf.GradientTape() as tape:
    probs = model(x, training=True)
    loss = loss_fn(y, probs)
    correct = tf.reduce_mean(tf.cast(tf.equal(y, tf.argmax(probs, axis=-1)), tf.float32))
grads = tape.gradient(loss, model.trainable_variables)
""",
    ]

    INVALID = [
        Invalid(
            """
import tensorflow as tf

loss_fn = tf.keras.losses.CategoricalCrossentropy()
with tf.GradientTape() as tape:
    probs = model(x, training=True)
    loss = loss_fn(y_onehot, tf.one_hot(tf.argmax(probs, axis=-1), depth=10))
grads = tape.gradient(loss, model.trainable_variables)
""",
            """
import tensorflow as tf

loss_fn = tf.keras.losses.CategoricalCrossentropy()
with tf.GradientTape() as tape:
    probs = model(x, training=True)
    loss = loss_fn(y_onehot, probs)
grads = tape.gradient(loss, model.trainable_variables)
""",
        ),
        Invalid(
            """
import tensorflow as tf

with tf.GradientTape() as tape:
    logits = model(x, training=True)
    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, tf.argmax(logits, -1))
grads = tape.gradient(loss, model.trainable_variables)
""",
            """
import tensorflow as tf

with tf.GradientTape() as tape:
    logits = model(x, training=True)
    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits)
grads = tape.gradient(loss, model.trainable_variables)
""",
        ),
        Invalid(
            """
import tensorflow as tf

def bce_on_labels(y_true, y_pred):
    hard = tf.cast(y_pred > 0.5, tf.float32)
    return tf.keras.losses.binary_crossentropy(y_true, hard)

model.compile(optimizer="adam", loss=bce_on_labels)
""",
            """
import tensorflow as tf

def bce_on_labels(y_true, y_pred):
    hard = tf.cast(y_pred > 0.5, tf.float32)
    return tf.keras.losses.binary_crossentropy(y_true, y_pred)

model.compile(optimizer="adam", loss=bce_on_labels)
""",
        ),
        # An integer cast: no certain fix, display-only.
        Invalid(
            """
import tensorflow as tf

with tf.GradientTape() as tape:
    probs = model(x)
    loss = tf.keras.losses.binary_crossentropy(y, tf.cast(tf.cast(probs, tf.int32), tf.float32))
grads = tape.gradient(loss, model.trainable_variables)
""",
            None,
        ),
        # Accuracy used as the loss: display-only.
        Invalid(
            """
import tensorflow as tf

with tf.GradientTape() as tape:
    probs = model(x)
    loss = 1.0 - tf.reduce_mean(tf.keras.metrics.sparse_categorical_accuracy(y, probs))
grads = tape.gradient(loss, model.trainable_variables)
""",
            None,
        ),
        # Variant: a lambda given to `compile(loss=...)`.
        Invalid(
            """
import tensorflow as tf

model.compile(optimizer="adam", loss=lambda y, p: tf.keras.losses.binary_crossentropy(y, tf.round(p)))
""",
            """
import tensorflow as tf

model.compile(optimizer="adam", loss=lambda y, p: tf.keras.losses.binary_crossentropy(y, p))
""",
        ),
        # Variant: the loss made by a factory (`make_loss()`).
        Invalid(
            """
import tensorflow as tf

def make_loss():
    def loss(y_true, y_pred):
        return tf.keras.losses.binary_crossentropy(y_true, tf.round(y_pred))
    return loss

model.compile(optimizer="adam", loss=make_loss())
""",
            """
import tensorflow as tf

def make_loss():
    def loss(y_true, y_pred):
        return tf.keras.losses.binary_crossentropy(y_true, y_pred)
    return loss

model.compile(optimizer="adam", loss=make_loss())
""",
        ),
        # Variant: the prediction made hard by a helper function.
        Invalid(
            """
import tensorflow as tf

def hard_labels(p):
    return tf.one_hot(tf.argmax(p, axis=-1), depth=10)

loss_fn = tf.keras.losses.CategoricalCrossentropy()
with tf.GradientTape() as tape:
    probs = model(x, training=True)
    loss = loss_fn(y_onehot, hard_labels(probs))
grads = tape.gradient(loss, model.trainable_variables)
""",
            """
import tensorflow as tf

def hard_labels(p):
    return tf.one_hot(tf.argmax(p, axis=-1), depth=10)

loss_fn = tf.keras.losses.CategoricalCrossentropy()
with tf.GradientTape() as tape:
    probs = model(x, training=True)
    loss = loss_fn(y_onehot, probs)
grads = tape.gradient(loss, model.trainable_variables)
""",
        ),
    ]

    def wants(self, text: str) -> bool:
        return might_take_gradients(text) and any(needle in text for needle in self.needles)

    def check(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        surrogate, where = Surrogate(), Context.of_analysis(analysis)
        stateful = {id(used.call) for used in metrics_used_as_losses(analysis)}
        for fed in fed_losses(analysis):
            instead = INSTEAD[fed.kind]
            if fed.op is None and id(fed.call) in stateful:
                continue  # a stateful metric used as the loss: GF013's finding, with its fix
            if fed.op is None:
                yield Report(
                    node=fed.call,
                    message=f"The loss is the metric `{brief(analysis.code(fed.call.func).rsplit('.', 1)[-1], 36)}`, which has no gradient",
                    detail=(f"`{analysis.code(fed.call.func)}` is a metric and has no gradient, yet the loss is made of it; "
                            f"{instead}."),
                    applicability=Applicability.DISPLAY_ONLY,
                )
                continue
            message = f"The loss reads {fed.op_name} of the prediction, which has no gradient"
            detail = (
                f"{fed.op_name} of the prediction is fed to `{analysis.code(fed.call.func)}`; it has no gradient, "
                "so the loss does not depend on the model's variables"
            )
            related: list[tuple[cst.CSTNode, str]] = [(fed.call, "the loss that reads it")]
            if fed.replacement is None:
                # no certain fix: the surrogate the runtime repair would try first, shown as a suggestion
                suggestion = next(iter(surrogate.rewrite(fed.op, where)), None)
                yield Report(node=fed.op, message=message, detail=sentence(f"{detail}: {instead}") + ".", related=related,
                             applicability=Applicability.DISPLAY_ONLY, **(suggested(suggestion) if suggestion is not None else {}))
                continue
            unproven = caveat(analysis, fed.op, fed.replacement)
            yield Report(
                node=fed.op,
                message=message,
                detail=sentence(f"{detail}. Pass `{analysis.code(fed.replacement)}` itself") + ".",
                related=related,
                replacements={fed.y_pred: fed.replacement},
                fix_description=f"Pass `{analysis.code(fed.replacement)}` to the loss instead of {fed.op_name} of it",
                applicability=Applicability.UNSAFE if unproven else None,
                applicability_reason=unproven,
            )
