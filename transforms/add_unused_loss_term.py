"""add-unused-loss-term: a loss term computed in the tape and never read is added to the total."""

from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradfix.categories import LOSS_IGNORES_PREDICTION
from gradfix.model import Applicability
from gradfix.transforms._operator import Context, CutKind, Example, Operator, Rewrite
from gradfix.transforms._unread import (
    LOSS_NAME,
    backward_slice,
    gradient_target,
    last_binding,
    lone_binding,
    statements_between,
    unread,
)

REASON = ("it changes the objective: `{term}` was computed and never read; if leaving it out of `{total}` "
          "was meant, this is not the fix")

_TIGHT = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.FloorDivide, cst.Modulo, cst.Power, cst.MatrixMultiply)


class AddUnusedLossTerm(Operator):
    """Adds a loss term the step computed and never read to the value it differentiates:
    `total_loss = kl_loss` becomes `total_loss = kl_loss + reconstruction_loss` when
    `reconstruction_loss` is bound in the tape, named like a loss (loss, cost, penalty), read by
    nothing after it, and the total is bound in the same tape after it.

    The run pins the statement: the last tensor that depends on the variables without a gradient is
    that term, never read on the way to the loss. Unsafe: the program optimises another objective.
    """

    name = "add-unused-loss-term"
    summary = "Add the loss term the step computed and never read to the total it differentiates"
    cuts = (CutKind(LOSS_IGNORES_PREDICTION),)
    explained_by = "GF003"

    VALID = [
        # the term is read (logged), so it is not the one left out
        Example("""
import tensorflow as tf

def train_step(x):
    with tf.GradientTape() as tape:
        reconstruction_loss = tf.reduce_mean(tf.square(x - decoder(encoder(x))))  # cut
        kl_loss = tf.reduce_mean(encoder.losses)
        total_loss = kl_loss
    tracker.update_state(reconstruction_loss)
    return tape.gradient(total_loss, model.trainable_weights)
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
        value = lone_binding(total)[1]
        assign = total.body[0]
        summed = cst.BinaryOperation(_operand(value), cst.Add(), cst.Name(term.name))
        description = f"Add the unread loss term `{term.name}` to `{target}`"
        yield Rewrite(description, {total: total.with_changes(body=[assign.with_changes(value=summed)])},
                      Applicability.UNSAFE, REASON.format(term=term.name, total=target))


def _operand(value: cst.BaseExpression) -> cst.BaseExpression:
    """``value`` as the left operand of ``+``: in parentheses where it binds more loosely."""
    if value.lpar or isinstance(value, (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.Integer, cst.Float)):
        return value
    if isinstance(value, cst.UnaryOperation) and not isinstance(value.operator, cst.Not):
        return value
    if isinstance(value, cst.BinaryOperation) and isinstance(value.operator, _TIGHT):
        return value
    return value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
