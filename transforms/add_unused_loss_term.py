"""add-unused-loss-term: a loss term computed in the tape and never read is added to the total."""

from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradfix.categories import LOSS_IGNORES_PREDICTION
from gradfix.model import Applicability
from gradfix.transforms._operator import Context, CutKind, Example, Operator, Rewrite
from gradfix.transforms._unread import (
    LOSS_NAME,
    Unread,
    backward_slice,
    gradient_target,
    last_binding,
    lone_binding,
    models_called,
    statements_between,
    unread,
)

REASON = ("it changes the objective: `{term}` was computed and {read}; if leaving it out of `{total}` "
          "was meant, this is not the fix")

_TIGHT = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.FloorDivide, cst.Modulo, cst.Power, cst.MatrixMultiply)


class AddUnusedLossTerm(Operator):
    """Adds a loss term the step computed and never read to the value it differentiates:
    `total_loss = kl_loss` becomes `total_loss = kl_loss + reconstruction_loss` when
    `reconstruction_loss` is bound in the tape, named like a loss (loss, cost, penalty), read by
    nothing after it, and the total is bound in the same tape after it. A term read after it only to be
    logged (a metric's `update_state`, `print`, a summary, the step's returned logs) is left out all the
    same; it is repaired when it runs a model or layer that nothing the total is computed from runs (the
    VAE whose `total_loss = kl_loss` leaves the decoder untrained), not when it is kept apart to be watched.

    The run pins the statement: the last tensor that depends on the variables without a gradient is
    that term, never read on the way to the loss. Unsafe: the program optimises another objective.
    """

    name = "add-unused-loss-term"
    summary = "Add the loss term the step computed and never read to the total it differentiates"
    cuts = (CutKind(LOSS_IGNORES_PREDICTION),)
    explained_by = "GF003"

    VALID = [
        # logged, and the model it runs feeds the total too: a term kept apart to be watched
        Example("""
import tensorflow as tf

def train_step(x, y):
    with tf.GradientTape() as tape:
        prediction = model(x)
        mse_loss = tf.reduce_mean(tf.square(y - prediction))  # cut
        ce_loss = loss_fn(y, prediction)
        total_loss = ce_loss
    tracker.update_state(mse_loss)
    return tape.gradient(total_loss, model.trainable_weights)
"""),
        # read by a second gradient of a persistent tape: differentiated on its own
        Example("""
import tensorflow as tf

def train_step(x):
    with tf.GradientTape(persistent=True) as tape:
        reconstruction_loss = tf.reduce_mean(tf.square(x - decoder(encoder(x))))  # cut
        kl_loss = tf.reduce_mean(encoder.losses)
        total_loss = kl_loss
    decoder_grads = tape.gradient(reconstruction_loss, decoder.trainable_weights)
    return tape.gradient(total_loss, encoder.trainable_weights), decoder_grads
"""),
        # not named like a loss: a prediction the loss does not use is another operator's
        Example("""
import tensorflow as tf

def train_step(x, y):
    with tf.GradientTape() as tape:
        hidden = encoder(x)
        prediction = head(hidden)  # cut
        loss = tf.reduce_mean(tf.square(y - hidden))
    return tape.gradient(loss, model.trainable_weights)
"""),
        # computed after the tape closed: adding it would not be recorded
        Example("""
import tensorflow as tf

def train_step(x):
    with tf.GradientTape() as tape:
        total_loss = kl(encoder(x))
    reconstruction_loss = mse(x, decoder(encoder(x)))  # cut
    return tape.gradient(total_loss, model.trainable_weights)
"""),
    ]

    INVALID = [
        # logged only: the decoder, which nothing in the total runs, gets no gradient
        Example("""
import tensorflow as tf

def train_step(x):
    with tf.GradientTape() as tape:
        reconstruction_loss = tf.reduce_mean(tf.square(x - decoder(encoder(x))))  # cut
        kl_loss = tf.reduce_mean(encoder.losses)
        total_loss = kl_loss
    tracker.update_state(reconstruction_loss)
    return tape.gradient(total_loss, model.trainable_weights)
""", "", """
import tensorflow as tf

def train_step(x):
    with tf.GradientTape() as tape:
        reconstruction_loss = tf.reduce_mean(tf.square(x - decoder(encoder(x))))  # cut
        kl_loss = tf.reduce_mean(encoder.losses)
        total_loss = kl_loss + reconstruction_loss
    tracker.update_state(reconstruction_loss)
    return tape.gradient(total_loss, model.trainable_weights)
"""),
        Example("""
import keras
from keras import ops
import tensorflow as tf

class VAE(keras.Model):
    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = ops.mean(ops.sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2)))  # cut
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            total_loss = kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        return {"loss": total_loss}
""", "", """
import keras
from keras import ops
import tensorflow as tf

class VAE(keras.Model):
    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = ops.mean(ops.sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2)))  # cut
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            total_loss = kl_loss + reconstruction_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        return {"loss": total_loss}
"""),
        # the total is an expression of lower precedence than +: it is kept whole
        Example("""
import tensorflow as tf

def step(x, y, warm):
    with tf.GradientTape(persistent=True) as g:
        style_cost = tf.reduce_sum(gram(x) - gram(y))  # cut
        content_cost = tf.reduce_sum(tf.square(x - y))
        loss = content_cost if warm else 2.0 * content_cost
    return g.gradient(loss, [image])
""", "", """
import tensorflow as tf

def step(x, y, warm):
    with tf.GradientTape(persistent=True) as g:
        style_cost = tf.reduce_sum(gram(x) - gram(y))  # cut
        content_cost = tf.reduce_sum(tf.square(x - y))
        loss = (content_cost if warm else 2.0 * content_cost) + style_cost
    return g.gradient(loss, [image])
"""),
    ]

    def pins(self, node: cst.CSTNode, context: Context, op: str) -> bool:
        binding = lone_binding(node)
        return binding is not None and LOSS_NAME.search(binding[0]) is not None

    def rewrite(self, node: cst.CSTNode, context: Context) -> Iterator[Rewrite]:
        if not self.pins(node, context, ""):
            return
        term = unread(node, context)
        if term is None:
            return
        gradient = gradient_target(term, context)
        if gradient is None:
            return
        call, target = gradient
        first, last = context.lines_of(term.tape)
        inside = statements_between(term.function, context.lines_of(node)[1], min(last + 1, context.lines_of(call)[0]), context)
        total = last_binding(inside, target)
        if total is None or not backward_slice(inside, target, context):
            return
        if term.logged and not _left_out_model(term, call, target, context):
            return  # logged, and whatever it runs feeds the total too: a term kept apart to be watched
        value = lone_binding(total)[1]
        assign = total.body[0]
        summed = cst.BinaryOperation(_operand(value), cst.Add(), cst.Name(term.name))
        description = f"Add the {'logged' if term.logged else 'unread'} loss term `{term.name}` to `{target}`"
        yield Rewrite(description, {total: total.with_changes(body=[assign.with_changes(value=summed)])},
                      Applicability.UNSAFE,
                      REASON.format(term=term.name, total=target, read="only logged" if term.logged else "never read"))


def _left_out_model(term: Unread, call: cst.Call, target: str, context: Context) -> bool:
    """Whether the term runs a model or layer that nothing the total is computed from runs: its variables then
    get no gradient, whatever the logs show."""
    first, term_line = context.lines_of(term.tape)[0], context.lines_of(term.statement)[0]
    up_to_term = statements_between(term.function, first - 1, term_line + 1, context)
    up_to_call = [s for s in statements_between(term.function, first - 1, context.lines_of(call)[0], context)
                  if s is not term.statement]
    term_models = models_called(backward_slice(up_to_term, term.name, context), context)
    return bool(term_models - models_called(backward_slice(up_to_call, target, context), context))


def _operand(value: cst.BaseExpression) -> cst.BaseExpression:
    """``value`` as the left operand of ``+``: in parentheses where it binds more loosely."""
    if value.lpar or isinstance(value, (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.Integer, cst.Float)):
        return value
    if isinstance(value, cst.UnaryOperation) and not isinstance(value.operator, cst.Not):
        return value
    if isinstance(value, cst.BinaryOperation) and isinstance(value.operator, _TIGHT):
        return value
    return value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
