"""use-prediction: the loss reads a tensor the final prediction is computed from; it reads the prediction."""

from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradfix.categories import LOSS_IGNORES_PREDICTION
from gradfix.model import Applicability
from gradfix.static.names import dotted
from gradfix.static.tapeflow import rename_reads
from gradfix.transforms._operator import Context, CutKind, Example, Operator, Rewrite
from gradfix.transforms._unread import (
    LOSS_NAME,
    backward_slice,
    gradient_target,
    lone_binding,
    read_names,
    reads,
    statements_between,
    unread,
)

REASON = ("the loss is computed from another tensor: if `{intermediate}` was meant (a penalty on a hidden "
          "layer beside the prediction), this is not the fix")


class UsePrediction(Operator):
    """Computes the loss from the final prediction where it reads a tensor the prediction is made from:
    with `prediction = head(hidden)` bound in the tape and never read, the statements after it that
    the gradient's target is computed from read `prediction` instead of `hidden`.

    The run pins the statement that binds the prediction: the last tensor that depends on the
    variables without a gradient, never read on the way to the loss. A value named like a loss is
    the add-unused-loss-term operator's. Unsafe: the loss is computed from another tensor.
    """

    name = "use-prediction"
    summary = "Compute the loss from the final prediction instead of a tensor it is made from"
    cuts = (CutKind(LOSS_IGNORES_PREDICTION),)
    explained_by = "GF003"

    VALID = [
        # the prediction is read (returned), so the loss leaving it out may be meant
        Example("""
import tensorflow as tf

def pretrain_step(x, target):
    with tf.GradientTape() as tape:
        hidden = tf.nn.relu(x @ w1 + b1)
        predictions = hidden @ w2 + b2  # cut
        loss = tf.reduce_mean(tf.square(target - hidden))
    grads = tape.gradient(loss, [w1, b1])
    return loss, predictions
"""),
        # named like a loss: the add-unused-loss-term operator's
        Example("""
import tensorflow as tf

def train_step(x):
    with tf.GradientTape() as tape:
        h = encoder(x)
        reconstruction_loss = mse(x, decoder(h))  # cut
        total_loss = kl(h)
    return tape.gradient(total_loss, model.trainable_weights)
"""),
    ]

    INVALID = [
        Example("""
import tensorflow as tf

def train_step(x, y):
    with tf.GradientTape() as tape:
        hidden1 = tf.nn.relu(x @ w1 + b1)
        predictions = hidden1 @ w2 + b2  # cut
        loss = tf.reduce_mean(tf.square(y - hidden1))
    grads = tape.gradient(loss, [w1, b1, w2, b2])
    for g, v in zip(grads, [w1, b1, w2, b2]):
        v.assign_sub(0.01 * g)
    return loss
""", "", """
import tensorflow as tf

def train_step(x, y):
    with tf.GradientTape() as tape:
        hidden1 = tf.nn.relu(x @ w1 + b1)
        predictions = hidden1 @ w2 + b2  # cut
        loss = tf.reduce_mean(tf.square(y - predictions))
    grads = tape.gradient(loss, [w1, b1, w2, b2])
    for g, v in zip(grads, [w1, b1, w2, b2]):
        v.assign_sub(0.01 * g)
    return loss
"""),
        Example("""
import keras
import tensorflow as tf

class Net(keras.Model):
    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            features = self.backbone(x, training=True)
            logits = self.classifier(features, training=True)  # cut
            loss = self.compiled_loss(y, features)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return {"loss": loss}
""", "", """
import keras
import tensorflow as tf

class Net(keras.Model):
    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            features = self.backbone(x, training=True)
            logits = self.classifier(features, training=True)  # cut
            loss = self.compiled_loss(y, logits)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return {"loss": loss}
"""),
        # the loss reads one of the predicting model's own layers, run again beside the prediction
        Example("""
import tensorflow as tf

def train_step(model, optimizer, x, y):
    with tf.GradientTape() as tape:
        logits = model(x, training=True)  # cut
        hidden = model.layers[0](x)
        loss = tf.reduce_mean(tf.square(hidden - y))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""", "", """
import tensorflow as tf

def train_step(model, optimizer, x, y):
    with tf.GradientTape() as tape:
        logits = model(x, training=True)  # cut
        hidden = model.layers[0](x)
        loss = tf.reduce_mean(tf.square(logits - y))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
"""),
    ]

    def pins(self, node: cst.CSTNode, context: Context, op: str) -> bool:
        binding = lone_binding(node)
        return binding is not None and LOSS_NAME.search(binding[0]) is None

    def rewrite(self, node: cst.CSTNode, context: Context) -> Iterator[Rewrite]:
        if not self.pins(node, context, ""):
            return
        prediction = unread(node, context)
        if prediction is None:
            return
        gradient = gradient_target(prediction, context)
        if gradient is None:
            return
        call, target = gradient
        after = statements_between(prediction.function, context.lines_of(node)[1], context.lines_of(call)[0], context)
        flow = backward_slice(after, target, context)
        for intermediate in sorted(read_names(prediction.value, context) | _own_layer_outputs(prediction.value, flow)):
            loss_statements = [s for s in flow if reads(s, intermediate, context)]
            if not loss_statements:
                continue
            description = f"Compute the loss from the final prediction `{prediction.name}` instead of `{intermediate}`"
            yield Rewrite(description, {s: rename_reads(s, intermediate, prediction.name) for s in loss_statements},
                          Applicability.UNSAFE, REASON.format(intermediate=intermediate))


def _own_layer_outputs(prediction: cst.BaseExpression, flow: list[cst.SimpleStatementLine]) -> set[str]:
    """Names the loss's statements bind from one of the predicting model's own layers (`model.layers[0](x)`,
    `model.get_layer("hidden")(x)` beside `logits = model(x)`): an intermediate output as well, though the
    prediction's expression does not read it."""
    if not isinstance(prediction, cst.Call) or (model := dotted(prediction.func)) is None:
        return set()
    names = set()
    for statement in flow:
        binding = lone_binding(statement)
        if binding is None or not isinstance(binding[1], cst.Call):
            continue
        layer = binding[1].func
        if (isinstance(layer, cst.Subscript) and dotted(layer.value) == f"{model}.layers"
                or isinstance(layer, cst.Call) and dotted(layer.func) == f"{model}.get_layer"):
            names.add(binding[0])
    return names
