from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradfix.categories import STOP_GRADIENT
from gradfix.messages import call_brief, quoted_list
from gradfix.model import Applicability
from gradfix.rule import Invalid, Report, Rule
from gradfix.static.analysis import ModuleAnalysis, argument
from gradfix.static.gradpath import (
    BOTH,
    STOP,
    PathContext,
    SourceFlow,
    all_contexts,
    cuts_of_kind,
    describe_sources,
    might_take_gradients,
    on_path,
)
from gradfix.static.layergraph import graph_cuts
from gradfix.transforms._operator import Context
from gradfix.transforms.unwrap_stop_gradient import UnwrapStopGradient


class StrayStopGradient(Rule):
    """A `tf.stop_gradient(...)` (or `keras.ops.stop_gradient`) cuts the only path from the
    variables a gradient is asked for to the gradient's target, so none of them gets a gradient.
    The rule follows the target back through the tape (or through a Keras loss function, from
    `y_pred`) and reports a `stop_gradient` only when every path from the differentiated
    variables to the loss passes through it. In a Keras model that is trained (`fit`,
    `train_on_batch`, a tape), it reads a `Lambda`'s function or a custom layer's `call` and
    reports a `stop_gradient` there that cuts every path from the trainable layers before it to
    the model's outputs.

    ## Why gradients vanish
    `tf.stop_gradient(x)` returns `x` as a constant: the tape records nothing through it. When the
    prediction itself is wrapped, the loss no longer depends on any variable, `tape.gradient`
    returns `None` for each of them and `apply_gradients` raises
    `ValueError: No gradients provided for any variable`.

    ## Example
    ```python
    with tf.GradientTape() as tape:
        logits = tf.stop_gradient(model(x, training=True))
        loss = loss_fn(y, logits)
    grads = tape.gradient(loss, model.trainable_variables)
    ```

    ## Fix
    ```python
    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        loss = loss_fn(y, logits)
    grads = tape.gradient(loss, model.trainable_variables)
    ```

    ## Fix safety
    The fix unwraps the call, keeping its argument: the forward values, their dtype and shape
    are the same. It is **safe** when the `stop_gradient` wraps a whole value (a name, an
    attribute or a call such as `model(x)`), no variable in the sources gets a gradient
    otherwise, and no other gradient of the module whose path it stands on still gets one: the
    program cannot train as written, and unwrapping is the only change that makes it. It is
    **unsafe** when other sources still get gradients (the `stop_gradient` may be a deliberate
    freeze of part of the model, and unwrapping starts training it), when it also stands on the
    path of another gradient that trains (a persistent tape asked twice: there it may be the
    freeze), or when it wraps an arithmetic expression (such as a straight-through estimator
    missing its `x +`), where the intended formula is not certain. In a layer of a model it is
    always **unsafe**: the layers before it start training on every output after it, and a stop
    meant for one branch belongs on that branch's input instead.

    ## When not to fix
    Legitimate uses stay untouched because another path to the loss remains, or because what
    is stopped does not depend on the sources: a target network's output in a Q-learning target
    (`r + gamma * tf.stop_gradient(target_model(s2))`), a straight-through estimator
    `x + tf.stop_gradient(q - x)`, a teacher's output in distillation, `stop_gradient` on labels
    or targets, and a stopped branch next to a live one.
    """

    code = "GF002"
    name = "stray-stop-gradient"
    summary = "`tf.stop_gradient` cuts the only path from the variables to the loss"
    applicability = Applicability.SAFE
    categories = (STOP_GRADIENT,)
    needles = ("stop_gradient",)

    VALID = [
        # DQN: the target network is not among the sources; the online network's path remains.
        """
import tensorflow as tf

def train_step(s, a, r, s2, done):
    target = r + 0.99 * (1.0 - done) * tf.reduce_max(tf.stop_gradient(target_model(s2)), axis=1)
    with tf.GradientTape() as tape:
        q = tf.reduce_sum(model(s) * tf.one_hot(a, 4), axis=1)
        loss = tf.reduce_mean(tf.square(tf.stop_gradient(target) - q))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
        # Straight-through estimator.
        """
import tensorflow as tf

with tf.GradientTape() as tape:
    x = encoder(images)
    q = tf.round(x)
    x_q = x + tf.stop_gradient(q - x)
    loss = tf.reduce_mean(tf.square(decoder(x_q) - images))
grads = tape.gradient(loss, encoder.trainable_variables + decoder.trainable_variables)
""",
        # Distillation: the teacher is stopped, the student trains.
        """
import tensorflow as tf

with tf.GradientTape() as tape:
    soft = tf.stop_gradient(tf.nn.softmax(teacher(x) / 4.0))
    student_logits = student(x, training=True)
    loss = tf.keras.losses.KLDivergence()(soft, tf.nn.softmax(student_logits / 4.0))
grads = tape.gradient(loss, student.trainable_variables)
""",
        # stop_gradient on the labels.
        """
import tensorflow as tf

with tf.GradientTape() as tape:
    pred = model(x)
    loss = tf.reduce_mean(tf.square(tf.stop_gradient(y) - pred))
grads = tape.gradient(loss, model.trainable_variables)
""",
        # A stopped branch next to a live one: the variables still get gradients.
        """
import tensorflow as tf

with tf.GradientTape() as tape:
    features = backbone(x)
    aux = tf.reduce_mean(tf.stop_gradient(features))
    loss = tf.reduce_mean(tf.square(head(features) - y)) + 0.1 * aux
grads = tape.gradient(loss, backbone.trainable_variables + head.trainable_variables)
""",
        # VQ-VAE: commitment and codebook terms stop one side each; the straight-through path trains the encoder.
        """
import tensorflow as tf

with tf.GradientTape() as tape:
    z = encoder(x)
    q = quantize(z)
    commitment = tf.reduce_mean(tf.square(tf.stop_gradient(q) - z))
    z_st = z + tf.stop_gradient(q - z)
    loss = tf.reduce_mean(tf.square(decoder(z_st) - x)) + 0.25 * commitment
grads = tape.gradient(loss, encoder.trainable_variables + decoder.trainable_variables)
""",
        # Same network as its own target (DQN without a target network): the prediction path remains.
        """
import tensorflow as tf

with tf.GradientTape() as tape:
    q = model(s)
    target = r + 0.9 * tf.reduce_max(tf.stop_gradient(model(s2)), axis=1)
    loss = tf.reduce_mean(tf.square(target - tf.reduce_max(q, axis=1)))
grads = tape.gradient(loss, model.trainable_variables)
""",
        # Look-alike: a straight-through estimator in a helper function.
        """
import tensorflow as tf

def straight_through(x):
    return x + tf.stop_gradient(tf.round(x) - x)

with tf.GradientTape() as tape:
    z = straight_through(encoder(images))
    loss = tf.reduce_mean(tf.square(decoder(z) - images))
grads = tape.gradient(loss, encoder.trainable_variables + decoder.trainable_variables)
""",
        # Look-alike: a loss factory that stops the labels, not the prediction.
        """
import tensorflow as tf

def make_loss():
    def loss(y_true, y_pred):
        return tf.reduce_mean(tf.square(tf.stop_gradient(y_true) - y_pred))
    return loss

model.compile(optimizer="adam", loss=make_loss())
""",
        # Look-alike: a function written anew without its stop (a notebook's later cell); the call runs the new one.
        """
import tensorflow as tf

def f(w1, w2):
    return 3 * w1 ** 2 + tf.stop_gradient(2 * w1 * w2)

w1, w2 = tf.Variable(5.0), tf.Variable(3.0)

def f(w1, w2):
    return 3 * w1 ** 2 + 2 * w1 * w2

with tf.GradientTape() as tape:
    z = f(w1, w2)
gradients = tape.gradient(z, [w1, w2])
""",
        # Look-alike: a functional model whose stop is on one head's input; the other head trains the trunk.
        """
import tensorflow as tf
from tensorflow.keras import layers

inputs = layers.Input(shape=(12,))
trunk = layers.Dense(8, activation="relu")(inputs)
frozen = layers.Lambda(lambda t: tf.stop_gradient(t))(trunk)
first = layers.Dense(2)(frozen)
second = layers.Dense(2)(trunk)
model = tf.keras.Model(inputs, [first, second])
model.compile(optimizer="adam", loss=["mse", "mse"])
model.fit(x, [y1, y2], epochs=1)
""",
        # Look-alike: the stop comes before any trainable layer (it stops the inputs, which hold no variable).
        """
import tensorflow as tf
from tensorflow.keras import layers

model = tf.keras.Sequential([
    layers.Input(shape=(12,)),
    layers.Lambda(lambda t: tf.stop_gradient(t)),
    layers.Dense(8, activation="relu"),
    layers.Dense(1),
])
model.compile(optimizer="adam", loss="mse")
model.fit(x, y, epochs=1)
""",
        # Look-alike: a straight-through rounding layer; the gradient passes its identity term.
        """
import tensorflow as tf
from tensorflow.keras import layers

model = tf.keras.Sequential([
    layers.Input(shape=(12,)),
    layers.Dense(8, activation="sigmoid"),
    layers.Lambda(lambda t: t + tf.stop_gradient(tf.round(t) - t)),
    layers.Dense(1),
])
model.compile(optimizer="adam", loss="mse")
model.fit(x, y, epochs=1)
""",
        # Look-alike: the library function applied by a `Lambda` on one head's input only.
        """
import tensorflow as tf
from tensorflow.keras import backend as K
from tensorflow.keras import layers

inputs = layers.Input(shape=(12,))
trunk = layers.Dense(8, activation="relu")(inputs)
first = layers.Dense(2)(layers.Lambda(K.stop_gradient)(trunk))
second = layers.Dense(2)(trunk)
model = tf.keras.Model(inputs, [first, second])
model.compile(optimizer="adam", loss=["mse", "mse"])
model.fit(x, [y1, y2], epochs=1)
""",
        # Look-alike: a model with the stop that is built but never trained (a feature extractor for inference).
        """
import tensorflow as tf
from tensorflow.keras import layers

inputs = layers.Input(shape=(12,))
features = layers.Dense(8, activation="relu")(inputs)
frozen = layers.Lambda(lambda t: tf.stop_gradient(t))(features)
extractor = tf.keras.Model(inputs, frozen)
codes = extractor.predict(x)
""",
    ]

    INVALID = [
        # The library function applied by a `Lambda` on the shared trunk, as the question's asker spelled it.
        Invalid(
            """
import tensorflow as tf
from tensorflow.keras import backend as K
from tensorflow.keras import layers

inputs = layers.Input(shape=(12,))
trunk = layers.Dense(8, activation="relu")(inputs)
stopped = layers.Lambda(K.stop_gradient)(trunk)
first = layers.Dense(2)(stopped)
second = layers.Dense(2)(stopped)
model = tf.keras.Model(inputs, [first, second])
model.compile(optimizer="adam", loss=["mse", "mse"])
model.fit(x, [y1, y2], epochs=1)
""",
            None,
        ),
        # The function written anew with a stop (a notebook's later cell): the call runs the new one.
        Invalid(
            """
import tensorflow as tf

def f(w1, w2):
    return 3 * w1 ** 2 + 2 * w1 * w2

w1, w2 = tf.Variable(5.0), tf.Variable(3.0)

def f(w1, w2):
    return 3 * w1 ** 2 + tf.stop_gradient(2 * w1 * w2)

with tf.GradientTape() as tape:
    z = f(w1, w2)
gradients = tape.gradient(z, [w1, w2])
""",
            """
import tensorflow as tf

def f(w1, w2):
    return 3 * w1 ** 2 + 2 * w1 * w2

w1, w2 = tf.Variable(5.0), tf.Variable(3.0)

def f(w1, w2):
    return 3 * w1 ** 2 + (2 * w1 * w2)

with tf.GradientTape() as tape:
    z = f(w1, w2)
gradients = tape.gradient(z, [w1, w2])
""",
            applicability=Applicability.UNSAFE,
        ),
        Invalid(
            """
import tensorflow as tf
from tensorflow.keras import layers

model = tf.keras.Sequential([
    layers.Input(shape=(12,)),
    layers.Dense(8, activation="relu"),
    layers.Lambda(lambda t: tf.stop_gradient(t)),
    layers.Dense(1),
])
model.compile(optimizer="adam", loss="mse")
model.fit(x, y, epochs=1)
""",
            """
import tensorflow as tf
from tensorflow.keras import layers

model = tf.keras.Sequential([
    layers.Input(shape=(12,)),
    layers.Dense(8, activation="relu"),
    layers.Lambda(lambda t: t),
    layers.Dense(1),
])
model.compile(optimizer="adam", loss="mse")
model.fit(x, y, epochs=1)
""",
            applicability=Applicability.UNSAFE,
        ),
        Invalid(
            """
import tensorflow as tf

with tf.GradientTape() as tape:
    logits = tf.stop_gradient(model(x, training=True))
    loss = loss_fn(y, logits)
grads = tape.gradient(loss, model.trainable_variables)
""",
            """
import tensorflow as tf

with tf.GradientTape() as tape:
    logits = model(x, training=True)
    loss = loss_fn(y, logits)
grads = tape.gradient(loss, model.trainable_variables)
""",
        ),
        Invalid(
            """
import tensorflow as tf

def custom_loss(y_true, y_pred):
    return tf.reduce_mean(tf.square(y_true - tf.stop_gradient(y_pred)))

model.compile(optimizer="adam", loss=custom_loss)
""",
            """
import tensorflow as tf

def custom_loss(y_true, y_pred):
    return tf.reduce_mean(tf.square(y_true - y_pred))

model.compile(optimizer="adam", loss=custom_loss)
""",
        ),
        # Part of the sources is frozen by the stop_gradient: unsafe, may be deliberate.
        Invalid(
            """
import keras
import tensorflow as tf

@tf.function
def train_step(x, y):
    with tf.GradientTape() as tape:
        features = keras.ops.stop_gradient(encoder(x))
        loss = loss_fn(y, head(features))
    variables = encoder.trainable_variables + head.trainable_variables
    grads = tape.gradient(loss, variables)
    optimizer.apply_gradients(zip(grads, variables))
""",
            """
import keras
import tensorflow as tf

@tf.function
def train_step(x, y):
    with tf.GradientTape() as tape:
        features = encoder(x)
        loss = loss_fn(y, head(features))
    variables = encoder.trainable_variables + head.trainable_variables
    grads = tape.gradient(loss, variables)
    optimizer.apply_gradients(zip(grads, variables))
""",
        ),
        # Variant: the cut inside a helper method.
        Invalid(
            """
import tensorflow as tf

class Trainer:
    def frozen(self, t):
        return tf.stop_gradient(t)

    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            logits = self.frozen(self.model(x, training=True))
            loss = self.loss_fn(y, logits)
        grads = tape.gradient(loss, self.model.trainable_variables)
""",
            """
import tensorflow as tf

class Trainer:
    def frozen(self, t):
        return t

    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            logits = self.frozen(self.model(x, training=True))
            loss = self.loss_fn(y, logits)
        grads = tape.gradient(loss, self.model.trainable_variables)
""",
        ),
        # Variant: the loss made by a factory (`make_loss()`).
        Invalid(
            """
import tensorflow as tf

def make_loss():
    def loss(y_true, y_pred):
        return tf.reduce_mean(tf.square(y_true - tf.stop_gradient(y_pred)))
    return loss

model.compile(optimizer="adam", loss=make_loss())
""",
            """
import tensorflow as tf

def make_loss():
    def loss(y_true, y_pred):
        return tf.reduce_mean(tf.square(y_true - y_pred))
    return loss

model.compile(optimizer="adam", loss=make_loss())
""",
        ),
        # Variant: a lambda given to `compile(loss=...)`.
        Invalid(
            """
import tensorflow as tf

model.compile(optimizer="adam", loss=lambda y, p: tf.reduce_mean(tf.square(y - tf.stop_gradient(p))))
""",
            """
import tensorflow as tf

model.compile(optimizer="adam", loss=lambda y, p: tf.reduce_mean(tf.square(y - p)))
""",
        ),
        # Variant: the sources rebuilt as a list (`[v for v in ...]`).
        Invalid(
            """
import tensorflow as tf

params = [v for v in model.trainable_variables]
with tf.GradientTape() as tape:
    logits = tf.stop_gradient(model(x, training=True))
    loss = loss_fn(y, logits)
grads = tape.gradient(loss, params)
""",
            """
import tensorflow as tf

params = [v for v in model.trainable_variables]
with tf.GradientTape() as tape:
    logits = model(x, training=True)
    loss = loss_fn(y, logits)
grads = tape.gradient(loss, params)
""",
        ),
        # Variant: the gradient asked through a helper that takes the tape.
        Invalid(
            """
import tensorflow as tf

def grads_of(tape, loss, variables):
    return tape.gradient(loss, variables)

with tf.GradientTape() as tape:
    logits = tf.stop_gradient(model(x, training=True))
    loss = loss_fn(y, logits)
grads = grads_of(tape, loss, model.trainable_variables)
""",
            """
import tensorflow as tf

def grads_of(tape, loss, variables):
    return tape.gradient(loss, variables)

with tf.GradientTape() as tape:
    logits = model(x, training=True)
    loss = loss_fn(y, logits)
grads = grads_of(tape, loss, model.trainable_variables)
""",
        ),
        # Variant: the cut inside a closure of the training step.
        Invalid(
            """
import tensorflow as tf

def train_step(x, y):
    def forward():
        return tf.stop_gradient(model(x, training=True))
    with tf.GradientTape() as tape:
        logits = forward()
        loss = loss_fn(y, logits)
    grads = tape.gradient(loss, model.trainable_variables)
""",
            """
import tensorflow as tf

def train_step(x, y):
    def forward():
        return model(x, training=True)
    with tf.GradientTape() as tape:
        logits = forward()
        loss = loss_fn(y, logits)
    grads = tape.gradient(loss, model.trainable_variables)
""",
        ),
    ]

    def wants(self, text: str) -> bool:
        return might_take_gradients(text) and "stop_gradient" in text

    def check(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        reported: set[int] = set()
        unwrap, where = UnwrapStopGradient(), Context.of_analysis(analysis)
        for context in all_contexts(analysis):
            cuts = [cut for cut in cuts_of_kind(analysis, context, STOP) if id(cut.node) not in reported]
            reported.update(id(cut.node) for cut in cuts)
            if not cuts:
                continue
            survivors = [
                source for source in context.sources
                if SourceFlow(analysis, context, frozenset({source}), BOTH).reaches_target()
            ]
            for cut in cuts:
                assert isinstance(cut.node, cst.Call), "a stop is a call of stop_gradient"
                stopped = argument(cut.node, 0, "input")
                rewrite = next(iter(unwrap.rewrite(cut.node, where)), None)
                if stopped is None or rewrite is None:
                    continue
                whole_value = isinstance(stopped, (cst.Name, cst.Attribute, cst.Call, cst.Subscript))
                elsewhere = _kept_elsewhere(analysis, cut.node, context)
                kept_by = elsewhere.gradient if elsewhere is not None else None  # None only with elsewhere
                unsafe = bool(survivors) or not whole_value or elsewhere is not None
                related: list[tuple[cst.CSTNode, str]] = []
                if context.gradient is not None:
                    related.append((context.gradient.node, "the gradient is taken here"))
                yield Report(
                    node=cut.node,
                    message=f"`{call_brief(analysis.code(cut.node), 28)}` cuts the only path from {quoted_list(sorted(cut.sources), 2)} to the loss",
                    detail=(
                        f"`{analysis.code(cut.node)}` cuts the only path from {describe_sources(context, cut.sources)} "
                        f"to the loss, so {'those variables get' if context.gradient else 'the model gets'} no gradient: "
                        "to the tape, everything before it is a constant. Remove it unless that part is meant to stay frozen."
                    ),
                    related=related,
                    replacements=rewrite.replacements,
                    fix_description=rewrite.description,
                    applicability_reason=("" if not unsafe else rewrite.reason if kept_by is None else
                                          f"it also stands on the path of `{analysis.code(kept_by.node)}`, whose "
                                          "sources still get gradients: there it may be a deliberate freeze"),
                    applicability=Applicability.UNSAFE if unsafe else Applicability.SAFE,
                )
        for layer_cut in graph_cuts(analysis, STOP):
            node = layer_cut.cut.node
            if id(node) in reported:
                continue
            reported.add(id(node))
            # a stop_gradient call, or the library function a `Lambda(K.stop_gradient)` applies (no fix to unwrap)
            rewrite = next(iter(unwrap.rewrite(node, where)), None) if isinstance(node, cst.Call) else None
            stop = analysis.code(node) if isinstance(node, cst.Call) else f"Lambda({analysis.code(node)})"
            yield Report(
                node=node,
                message=f"`{call_brief(stop, 28)}` cuts the earlier layers off from the model's output",
                detail=(
                    f"`{stop}`, in a layer of a model that is trained, cuts every path from the "
                    "trainable layers before that layer to the model's output, so they get no gradient and do not "
                    "learn. Remove it unless those layers are meant to stay frozen (then `trainable=False` says so), "
                    "or move it onto the one branch it is meant to stop."
                ),
                **({"replacements": rewrite.replacements, "fix_description": rewrite.description,
                    "applicability": Applicability.UNSAFE, "applicability_reason": _GRAPH_UNSAFE}
                   if rewrite is not None else {}),
            )


# a functional model's stop is shared by whatever comes after it: where it is meant to be is the user's call
_GRAPH_UNSAFE = ("the layers before it start training on every output after it; a stop meant for one branch "
                 "belongs on that branch's input instead")



def _kept_elsewhere(analysis: ModuleAnalysis, stop: cst.CSTNode, reported_in: PathContext) -> PathContext | None:
    """Another gradient whose path the ``stop_gradient`` stands on while some of its sources still get gradients:
    removing the stop would change that gradient too, where it may be a deliberate freeze."""
    for other in all_contexts(analysis):
        if other is reported_in or other.gradient is None or on_path(analysis, other, stop) is None:
            continue
        if any(SourceFlow(analysis, other, frozenset({source}), BOTH).reaches_target() for source in other.sources):
            return other
    return None
