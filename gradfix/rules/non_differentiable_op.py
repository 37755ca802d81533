from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradfix.categories import NON_DIFFERENTIABLE
from gradfix.model import Applicability, Severity
from gradfix.rule import Invalid, Report, Rule
from gradfix.static.analysis import ModuleAnalysis
from gradfix.static.api import ELEMENTWISE, OP_FUNCTIONS
from gradfix.static.gradpath import might_take_gradients, OP, all_contexts, cuts_of_kind, describe_sources
from gradfix.static.losses import fed_losses


class NonDifferentiableOp(Rule):
    """An operation without a gradient lies on the only path from the differentiated variables to
    the gradient target: a comparison (`>`, `==` on tensors), `tf.equal`/`tf.greater`/...,
    `tf.round`, `tf.floor`, `tf.math.ceil`, `tf.sign`, a cast to an integer or boolean dtype,
    `tf.argmax`/`tf.argmin`, or `tf.numpy_function` (or a `tf.py_function` running NumPy code).
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
    float dtype for a cast, TensorFlow ops or `tf.custom_gradient` for NumPy code.

    ## When not to fix
    Only operations on the *only* path are reported: a comparison used as the condition of
    `tf.where` next to a differentiable branch, a mask multiplied into the prediction
    (`pred * tf.cast(pred > 0, tf.float32)`), an `argmax` computed for accuracy outside the loss,
    a rounding inside a straight-through estimator (`x + tf.stop_gradient(tf.round(x) - x)`), and
    operations on labels all leave a gradient and are left alone.
    """

    code = "GF009"
    name = "non-differentiable-op"
    summary = "An operation without a gradient cuts the path from the variables to the loss"
    applicability = Applicability.DISPLAY_ONLY
    categories = (NON_DIFFERENTIABLE,)
    needles = ("GradientTape", "compile(", "Loss)")

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
    ]

    def wants(self, text: str) -> bool:
        return might_take_gradients(text)

    def repairs(self, site) -> Iterator:
        """From the run: a differentiable surrogate for the op that cut the path, at the statement it ran in."""
        yield from repair_non_differentiable(site)

    def check(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        claimed = {id(fed.op) for fed in fed_losses(analysis) if fed.op is not None}
        for context in all_contexts(analysis):
            for cut in cuts_of_kind(analysis, context, OP, exclude=lambda node: id(node) in claimed):
                claimed.add(id(cut.node))
                op = cut.op
                effect = "a gradient of zeros" if op.zero_gradient else "no gradient"
                related = []
                if context.gradient is not None:
                    related.append((context.gradient.node, "the gradient is taken here"))
                yield Report(
                    node=cut.node,
                    message=(
                        f"{op.name} has {effect}, and every path from {describe_sources(context, cut.sources)} to the loss "
                        f"passes through it; use {op.alternative}"
                    ),
                    related=related,
                    severity=Severity.WARNING if op.zero_gradient else None,
                )


# --------------------------------------------------------------------------- repairs from a run

_SIMPLE = (cst.Name, cst.Attribute, cst.Subscript)
_STE_REASON = ("a straight-through estimator: the forward value is unchanged, but the backward pass treats the "
               "operation as the identity, which changes what the model learns from")


def _call_named(statement, names: set[str]) -> list[cst.Call]:
    import libcst.matchers as m

    found = []
    for call in m.findall(statement, m.Call()):
        func = call.func
        name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else None
        if name in names:
            found.append(call)
    return found


def _expr(code: str) -> cst.BaseExpression:
    return cst.parse_expression(code)


def repair_non_differentiable(site) -> Iterator:
    from gradfix.static.names import dotted

    cut = site.cause.cut or {}
    op = cut.get("op", "")
    lines = [line for line in (cut.get("line"), site.cause.site.line if site.cause.site else None) if line]
    tf_name = _tf_alias(site)
    if tf_name is None:
        return
    for line in dict.fromkeys(lines):
        statement = site.statement_at(line)
        if statement is None:
            continue
        for call in _call_named(statement, OP_FUNCTIONS.get(op, set())):
            args = [a for a in call.args if a.keyword is None]
            if not args:
                continue
            value = args[0].value
            code = site.code
            if op == "EagerPyFunc":
                function = dotted(value) or ""
                head, _, name = function.rpartition(".")
                inputs = args[1].value if len(args) > 1 else None
                if name in ELEMENTWISE and isinstance(inputs, (cst.List, cst.Tuple)) and len(inputs.elements) == 1:
                    new = _expr(f"{tf_name}.{ELEMENTWISE[name]}({code(inputs.elements[0].value)})")
                    yield site.candidate("GF009", f"Use `{tf_name}.{ELEMENTWISE[name]}` instead of `{function}` through tf.numpy_function",
                                         Applicability.UNSAFE, site.rewrite({call: new}),
                                         "TensorFlow's op computes in the tensor's dtype, where NumPy may have used another")
                continue
            if op in ("ArgMax", "ArgMin"):
                yield from _argmax_surrogates(site, statement, call, value, tf_name, op)
                continue
            if op == "Cast" or op in ("Greater", "GreaterEqual", "Less", "LessEqual"):
                yield from _threshold_surrogates(site, call, tf_name)
                continue
            if not isinstance(value, _SIMPLE):
                continue
            x = code(value)
            new = _expr(f"{x} + {tf_name}.stop_gradient({code(call)} - {x})")
            yield site.candidate("GF009", f"Keep `{code(call)}` in the forward pass and let the gradient through it "
                                 "(a straight-through estimator)", Applicability.UNSAFE, site.rewrite({call: new}), _STE_REASON)


def _tf_alias(site) -> str | None:
    for node in site.nodes(cst.Import):
        for alias in node.names:
            if site.module.code_for_node(alias.name) == "tensorflow":
                return alias.asname.name.value if alias.asname is not None else "tensorflow"
    return None


def _axis(call: cst.Call, site) -> str:
    for position, arg in enumerate(call.args):
        if (arg.keyword is not None and arg.keyword.value == "axis") or (arg.keyword is None and position == 1):
            return site.code(arg.value)
    return "0"


def _argmax_surrogates(site, statement, call: cst.Call, value, tf_name: str, op: str) -> Iterator:
    """one_hot(argmax(p)) -> softmax(p) kept one-hot in the forward pass; argmax(p) -> a soft-argmax likewise."""
    if not isinstance(value, _SIMPLE):
        return
    p, axis, code = site.code(value), _axis(call, site), site.code
    sign = "" if op == "ArgMax" else "-"
    soft = f"{tf_name}.nn.softmax({sign}{p}, axis={axis})"
    parent = site.parent(site.parent(call)) if isinstance(site.parent(call), cst.Arg) else None
    if isinstance(parent, cst.Call) and _call_named(parent, {"one_hot"}) and parent.args and parent.args[0].value is call:
        hard = code(parent)
        yield site.candidate("GF009", f"Let the gradient through `{hard}` by the softmax it stands for (a straight-through "
                             "estimator: the forward value stays one-hot)", Applicability.UNSAFE,
                             site.rewrite({parent: _expr(f"{soft} + {tf_name}.stop_gradient({hard} - {soft})")}), _STE_REASON)
        yield site.candidate("GF009", f"Use the softmax `{soft}` instead of the one-hot `{hard}`", Applicability.UNSAFE,
                             site.rewrite({parent: _expr(soft)}),
                             "the forward value becomes the probabilities instead of a one-hot vector")
        return
    index = f"{tf_name}.reduce_sum({soft} * {tf_name}.range({tf_name}.shape({p})[{axis}], dtype={p}.dtype), axis={axis})"
    hard = f"{tf_name}.cast({code(call)}, {p}.dtype)"
    outer = site.parent(site.parent(call)) if isinstance(site.parent(call), cst.Arg) else None
    target = call
    if isinstance(outer, cst.Call) and _call_named(outer, {"cast"}) and outer.args and outer.args[0].value is call:
        target, hard = outer, code(outer)  # argmax already cast to a float: keep that cast's dtype
    yield site.candidate("GF009", f"Let the gradient through `{code(call)}` by a soft-argmax (the softmax-weighted index; "
                         "the forward value stays the index)", Applicability.UNSAFE,
                         site.rewrite({target: _expr(f"{index} + {tf_name}.stop_gradient({hard} - {index})")}),
                         _STE_REASON + "; the index is a float")


def _threshold_surrogates(site, call: cst.Call, tf_name: str) -> Iterator:
    """cast(x > t, float) -> x's straight-through step, or a sigmoid of (x - t)."""
    args = [a for a in call.args if a.keyword is None]
    if not args:
        return
    inner = args[0].value
    code = site.code
    if isinstance(inner, cst.Comparison) and len(inner.comparisons) == 1 and isinstance(inner.left, _SIMPLE):
        x, t = code(inner.left), code(inner.comparisons[0].comparator)
        operator = inner.comparisons[0].operator
        sign = "" if isinstance(operator, (cst.GreaterThan, cst.GreaterThanEqual)) else "-"
        hard = code(call)
        yield site.candidate("GF009", f"Keep the step `{hard}` in the forward pass and let the gradient through it "
                             "(a straight-through estimator)", Applicability.UNSAFE,
                             site.rewrite({call: _expr(f"{sign}{x} + {tf_name}.stop_gradient({hard} - {sign}{x})")}), _STE_REASON)
        yield site.candidate("GF009", f"Replace the step `{hard}` by a sigmoid of `{x} - {t}`", Applicability.UNSAFE,
                             site.rewrite({call: _expr(f"{tf_name}.sigmoid({sign}10.0 * ({x} - {t}))")}),
                             "the forward value becomes a smooth step (sharpness 10) instead of 0 or 1")
