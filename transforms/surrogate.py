"""surrogate: a differentiable stand-in for an op without a gradient."""

from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradfix.categories import NON_DIFFERENTIABLE
from gradfix.model import Applicability
from gradfix.static.api import ONE_HOT
from gradfix.transforms._operator import Context, CutKind, Example, Operator, Rewrite
from gradfix.transforms._spelling import (
    COMPARISONS,
    FALLING,
    RISING,
    Family,
    argument,
    atom,
    expression,
    family_of,
    float_cast,
    integer_cast,
    op_type,
)

STE_REASON = ("a straight-through estimator: the forward value is unchanged, but the backward pass treats the "
              "operation as the identity, which changes what the model learns from")
SHARPNESS = "10.0"
_STEPS = frozenset({"Round", "Rint", "Floor", "Ceil", "Sign", "FloorDiv"})
_ARGMAX = frozenset({"ArgMax", "ArgMin"})
# Where argmax looks when no axis is given, by family; keras.ops flattens the tensor, which no surrogate keeps.
_DEFAULT_AXIS = {"tf": "0", "backend": "-1"}


class Surrogate(Operator):
    """Replaces an op without a gradient by a differentiable stand-in, spelled in the family of the
    original (`tf.`, `tf.math.`, `K.`/`tf.keras.backend.`, `keras.ops.`; TensorFlow, imported if
    need be, for Python operators and builtins):

    - round, rint, floor, ceil, sign, `//`, a cast to an integer: the straight-through estimator
      `x + stop_gradient(hard(x) - x)` (a cast cast back to `x`'s dtype);
    - a comparison cast to a float: the straight-through estimator on the operand that carries the
      gradient, then a smooth step `sigmoid(10.0 * (a - b))`;
    - `one_hot(argmax(p))`: the straight-through softmax, then the softmax itself;
    - `argmax(p)` as a value: the soft-argmax (the softmax-weighted index) as a straight-through
      estimator.

    Every rewrite is unsafe: each changes what the model learns from (and a smooth step or a
    softmax the forward value too), so the runtime repair verifies it by a re-run before it is
    offered, and a static rule shows it only as a suggestion.
    """

    name = "surrogate"
    summary = "A differentiable surrogate for an op without a gradient"
    cuts = (CutKind(NON_DIFFERENTIABLE, _STEPS | _ARGMAX | COMPARISONS | {"Cast"}),)
    explained_by = "GF009"

    VALID = [
        # A comparison used as a condition: nothing to carry a gradient, nothing to rewrite.
        Example("""
import tensorflow as tf

loss = tf.where(err > 1.0, tf.abs(err), tf.square(err))  # cut
""", "Greater"),
        # A cast to a float dtype has a gradient.
        Example("""
import tensorflow as tf

y = tf.cast(scores, tf.float32)  # cut
""", "Cast"),
        # keras.ops.argmax without an axis flattens the tensor: no index along an axis to stand in for.
        Example("""
import keras

chosen = keras.ops.argmax(logits)  # cut
""", "ArgMax"),
    ]

    INVALID = [
        Example("""
import tensorflow as tf

rounded = tf.round(probs)  # cut
""", "Round", """
import tensorflow as tf

rounded = probs + tf.stop_gradient(tf.round(probs) - probs)  # cut
"""),
        Example("""
from tensorflow.keras import backend as K

counts = K.round(K.sum(y_pred, axis=-1))  # cut
""", "Round", """
from tensorflow.keras import backend as K

counts = K.sum(y_pred, axis=-1) + K.stop_gradient(K.round(K.sum(y_pred, axis=-1)) - K.sum(y_pred, axis=-1))  # cut
"""),
        Example("""
import numpy as np

def bucket(x):
    return x // 2.0  # cut
""", "FloorDiv", """
import numpy as np
import tensorflow as tf

def bucket(x):
    return x / 2.0 + tf.stop_gradient(x // 2.0 - x / 2.0)  # cut
"""),
        Example("""
from tensorflow.keras import backend as K

mask = K.cast(K.random_uniform(K.shape(p)) < p, "float32")  # cut
""", "Less", """
from tensorflow.keras import backend as K

mask = p + K.stop_gradient(K.cast(K.random_uniform(K.shape(p)) < p, "float32") - p)  # cut
"""),
        Example("""
import keras

hits = keras.ops.cast(keras.ops.greater(scores, 0.5), "float32")  # cut
""", "Greater", """
import keras

hits = scores + keras.ops.stop_gradient(keras.ops.cast(keras.ops.greater(scores, 0.5), "float32") - scores)  # cut
"""),
        Example("""
import tensorflow as tf

levels = tf.cast(x * 255.0, tf.int32)  # cut
""", "Cast", """
import tensorflow as tf

levels = (x * 255.0) + tf.stop_gradient(tf.cast(tf.cast(x * 255.0, tf.int32), (x * 255.0).dtype) - (x * 255.0))  # cut
"""),
        Example("""
import tensorflow as tf

counts = tf.cast(tf.cast(probs * 10.0, tf.int32), tf.float32)  # cut
""", "Cast", """
import tensorflow as tf

counts = (probs * 10.0) + tf.stop_gradient(tf.cast(tf.cast(probs * 10.0, tf.int32), tf.float32) - (probs * 10.0))  # cut
"""),
        Example("""
from tensorflow.keras import backend as K
from tensorflow.keras.layers import Lambda

decode = Lambda(lambda x: K.one_hot(K.argmax(x), 4))  # cut
""", "ArgMax", """
from tensorflow.keras import backend as K
from tensorflow.keras.layers import Lambda

decode = Lambda(lambda x: K.softmax(x, axis=-1) + K.stop_gradient(K.one_hot(K.argmax(x), 4) - K.softmax(x, axis=-1)))  # cut
"""),
        Example("""
import tensorflow as tf

chosen = tf.cast(tf.math.argmax(q, 2), tf.float32)  # cut
""", "ArgMax", """
import tensorflow as tf

chosen = tf.reduce_sum(tf.nn.softmax(q, axis=2) * tf.range(tf.shape(q)[2], dtype=q.dtype), axis=2) + tf.stop_gradient(tf.cast(tf.math.argmax(q, 2), tf.float32) - tf.reduce_sum(tf.nn.softmax(q, axis=2) * tf.range(tf.shape(q)[2], dtype=q.dtype), axis=2))  # cut
"""),
    ]

    def pins(self, node: cst.CSTNode, context: Context, op: str) -> bool:
        return op_type(node, context) == op and (op != "Cast" or integer_cast(node, context))

    def rewrite(self, node: cst.CSTNode, context: Context) -> Iterator[Rewrite]:
        op = op_type(node, context)
        family = family_of(node, context)
        if op is None or family is None:
            return
        if op in _STEPS:
            yield from self._step(node, op, family, context)
        elif op == "Cast" and integer_cast(node, context):
            yield from self._integer_cast(node, family, context)
        elif op in COMPARISONS:
            yield from self._comparison(node, op, family, context)
        elif op in _ARGMAX:
            yield from self._argmax(node, op, family, context)

    # --- the shapes --------------------------------------------------------------------------------
    def _step(self, node, op: str, family: Family, context: Context) -> Iterator[Rewrite]:
        if op == "FloorDiv":
            left, right = (node.left, node.right) if isinstance(node, cst.BinaryOperation) else (
                argument(node, 0, "x"), argument(node, 1, "y"))
            if left is None or right is None:
                return
            x = f"{atom(left, context)} / {atom(right, context)}"
        else:
            value = argument(node, 0, "x") if isinstance(node, cst.Call) else None
            if value is None:
                return
            x = atom(value, context)
        hard = context.code(node)
        yield _ste(node, f"{x} + {family.stop_gradient(f'{hard} - {x}')}", family,
                   f"Keep `{hard}` in the forward pass and let the gradient through it (a straight-through estimator)")

    def _integer_cast(self, node: cst.Call, family: Family, context: Context) -> Iterator[Rewrite]:
        value = argument(node, 0, "x")
        if value is None:
            return
        x = atom(value, context)
        wrapper = _float_cast_of(node, context)
        if wrapper is not None:  # cast back to a float already: tf.cast(tf.cast(p, tf.int32), tf.float32)
            hard = context.code(wrapper)
            yield _ste(wrapper, f"{x} + {family.stop_gradient(f'{hard} - {x}')}", family,
                       f"Keep `{hard}` in the forward pass and let the gradient through it (a straight-through estimator)")
            return
        hard = context.code(node)
        yield _ste(node, f"{x} + {family.stop_gradient(family.cast(hard, f'{x}.dtype') + f' - {x}')}", family,
                   f"Keep `{hard}` in the forward pass, as a float, and let the gradient through it (a straight-through "
                   "estimator)", STE_REASON + "; the value keeps its float dtype where the code had integers")

    def _comparison(self, node, op: str, family: Family, context: Context) -> Iterator[Rewrite]:
        left, right = _operands(node)
        wrapper = _float_cast_of(node, context)
        if left is None or right is None or wrapper is None:
            return  # a bare boolean (a condition, a mask) carries no gradient to stand in for
        carrier, carrier_is_left = (right, False) if _constant_like(left, context) else (left, True)
        x = atom(carrier, context)
        rising = (op in RISING) == carrier_is_left or op not in RISING | FALLING
        hard = context.code(wrapper)
        ste = f"{x} + {family.stop_gradient(f'{hard} - {x}')}" if rising else f"-{x} + {family.stop_gradient(f'{hard} + {x}')}"
        yield _ste(wrapper, ste, family,
                   f"Keep the step `{hard}` in the forward pass and let the gradient through it (a straight-through estimator)")
        if op in RISING | FALLING:
            high, low = (left, right) if op in RISING else (right, left)
            smooth = family.sigmoid(f"{SHARPNESS} * ({context.code(high)} - {atom(low, context)})")
            yield Rewrite(f"Replace the step `{hard}` by a sigmoid of `{context.code(high)} - {atom(low, context)}`",
                          {wrapper: expression(smooth)}, Applicability.UNSAFE,
                          f"the forward value becomes a smooth step (sharpness {SHARPNESS}) instead of 0 or 1", family.imports)

    def _argmax(self, node: cst.Call, op: str, family: Family, context: Context) -> Iterator[Rewrite]:
        value = argument(node, 0, "x") if isinstance(node, cst.Call) else None
        axis_node = argument(node, 1, "axis")
        axis = context.code(axis_node) if axis_node is not None else _DEFAULT_AXIS.get(family.kind)
        if value is None or axis is None:
            return
        p = atom(value, context)
        soft = family.softmax(p if op == "ArgMax" else f"-{p}", axis)
        one_hot = context.called_argument(node)
        if one_hot is not None and one_hot[1] in (0, "indices") and context.qualname(one_hot[0].func) in ONE_HOT:
            outer = one_hot[0]
            hard = context.code(outer)
            yield _ste(outer, f"{soft} + {family.stop_gradient(f'{hard} - {soft}')}", family,
                       f"Let the gradient through `{hard}` by the softmax it stands for (a straight-through estimator: "
                       "the forward value stays one-hot)")
            yield Rewrite(f"Use the softmax `{soft}` instead of the one-hot `{hard}`", {outer: expression(soft)},
                          Applicability.UNSAFE, "the forward value becomes the probabilities instead of a one-hot vector",
                          family.imports)
            return
        wrapper = _float_cast_of(node, context)
        target = wrapper if wrapper is not None else node
        hard = context.code(wrapper) if wrapper is not None else family.cast(context.code(node), f"{p}.dtype")
        index = family.soft_index(p, soft, axis)
        yield _ste(target, f"{index} + {family.stop_gradient(f'{hard} - {index}')}", family,
                   f"Let the gradient through `{context.code(node)}` by a soft-argmax (the softmax-weighted index; the "
                   "forward value stays the index)", STE_REASON + "; the index is a float")


def _ste(node: cst.CSTNode, code: str, family: Family, description: str, reason: str = STE_REASON) -> Rewrite:
    return Rewrite(description, {node: expression(code)}, Applicability.UNSAFE, reason, family.imports)


def _operands(node) -> tuple[cst.BaseExpression | None, cst.BaseExpression | None]:
    if isinstance(node, cst.Comparison):
        return node.left, node.comparisons[0].comparator
    return argument(node, 0, "x"), argument(node, 1, "y")


def _float_cast_of(node: cst.CSTNode, context: Context) -> cst.Call | None:
    """The cast to a float that ``node`` is the value of (``tf.cast(a > b, tf.float32)``), if it is one."""
    called = context.called_argument(node)
    if called is not None and called[1] in (0, "x") and float_cast(called[0], context):
        return called[0]
    return None


def _constant_like(node: cst.BaseExpression, context: Context) -> bool:
    """A side of a comparison that carries no gradient: a number, or a fresh random or constant tensor."""
    if isinstance(node, (cst.Integer, cst.Float)):
        return True
    if isinstance(node, cst.UnaryOperation):
        return _constant_like(node.expression, context)
    if isinstance(node, cst.Call):
        name = (context.qualname(node.func) or "") + "." + (context.code(node.func))
        return any(word in name for word in ("random", "uniform", "normal", "constant", "zeros", "ones", "fill"))
    return False
