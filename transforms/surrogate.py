"""surrogate: a differentiable stand-in for an op without a gradient."""

from __future__ import annotations

import re
from typing import Callable, Iterator, Mapping

import libcst as cst

from gradfix.categories import NON_DIFFERENTIABLE
from gradfix.edits import ReplaceNodes
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
    - a comparison cast to a float (by a cast, by `where(c, 1.0, 0.0)`, or by tf.keras.backend's
      mean, which casts booleans itself), called by any name the function bound to a comparison: the
      straight-through estimator on the operand that carries the gradient, then a smooth step
      `sigmoid(10.0 * (a - b))`;
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
        # A choice between two tensors by a comparison: the comparison is a condition, not a value.
        Example("""
import tensorflow as tf

loss = tf.where(err > 1.0, err - 0.5, 0.5 * err * err)  # cut
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
        # The replaced cast is an operand: the stand-in keeps its meaning in parentheses.
        Example("""
from keras import backend as K

def binarize(d):
    x1, x2 = d
    return x1 * K.cast(K.random_uniform(shape=K.shape(x2)) <= x2, 'float32')  # cut
""", "LessEqual", """
from keras import backend as K

def binarize(d):
    x1, x2 = d
    return x1 * (x2 + K.stop_gradient(K.cast(K.random_uniform(shape=K.shape(x2)) <= x2, 'float32') - x2))  # cut
"""),
        Example("""
import tensorflow as tf

def loss(y_true, y_pred):
    tresholded_pred = tf.where(y_pred >= 0.5, 1.0, 0.0)  # cut
    return tf.reduce_mean(tf.square(y_true - tresholded_pred), axis=-1)
""", "GreaterEqual", """
import tensorflow as tf

def loss(y_true, y_pred):
    tresholded_pred = y_pred + tf.stop_gradient(tf.where(y_pred >= 0.5, 1.0, 0.0) - y_pred)  # cut
    return tf.reduce_mean(tf.square(y_true - tresholded_pred), axis=-1)
"""),
        Example("""
from tensorflow.keras import backend as K

def custom_metric(y_true, y_pred, strick=1, err=1):
    diff = K.abs(y_true - y_pred)
    bound = 1. if strick else 2.
    comp_func = K.greater_equal if err else K.less
    return K.mean(comp_func(diff, bound))  # cut
""", "GreaterEqual", """
from tensorflow.keras import backend as K

def custom_metric(y_true, y_pred, strick=1, err=1):
    diff = K.abs(y_true - y_pred)
    bound = 1. if strick else 2.
    comp_func = K.greater_equal if err else K.less
    return K.mean(diff + K.stop_gradient(K.cast(comp_func(diff, bound), diff.dtype) - diff))  # cut
"""),
        # A value that draws random numbers is evaluated once: repeating it would change the forward value.
        Example("""
import tensorflow as tf

def sample(x):
    return tf.floor(x + tf.random.uniform(tf.shape(x), 0, 1))  # cut
""", "Floor", """
import tensorflow as tf

def sample(x):
    floor_input = x + tf.random.uniform(tf.shape(x), 0, 1)
    return floor_input + tf.stop_gradient(tf.floor(floor_input) - floor_input)  # cut
"""),
        Example("""
import tensorflow as tf

sample = tf.keras.layers.Lambda(lambda x: tf.round(x + tf.random.normal(tf.shape(x))))  # cut
""", "Round", """
import tensorflow as tf

sample = tf.keras.layers.Lambda(lambda x: (round_input := x + tf.random.normal(tf.shape(x))) + tf.stop_gradient(tf.round(round_input) - round_input))  # cut
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
            if not (_repeatable(left, context) and _repeatable(right, context)):
                return  # `a / b` beside `a // b` would draw or call twice: no stand-in keeps the forward value
            x, hard, place = f"{atom(left, context)} / {atom(right, context)}", context.code(node), _in_place(node)
        else:
            value = argument(node, 0, "x") if isinstance(node, cst.Call) else None
            if value is None:
                return
            x, hard, place = _once(node, value, context, f"{op.lower()}_input")
        yield _ste(place(f"{x} + {family.stop_gradient(f'{hard} - {x}')}"), family,
                   f"Keep `{context.code(node)}` in the forward pass and let the gradient through it (a straight-through "
                   "estimator)")

    def _integer_cast(self, node: cst.Call, family: Family, context: Context) -> Iterator[Rewrite]:
        value = argument(node, 0, "x")
        if value is None:
            return
        wrapper = _float_cast_of(node, context)
        if wrapper is not None:  # cast back to a float already: tf.cast(tf.cast(p, tf.int32), tf.float32)
            x, hard, place = _once(wrapper, value, context, "cast_input")
            yield _ste(place(f"{x} + {family.stop_gradient(f'{hard} - {x}')}"), family,
                       f"Keep `{context.code(wrapper)}` in the forward pass and let the gradient through it (a "
                       "straight-through estimator)")
            return
        x, hard, place = _once(node, value, context, "cast_input")
        yield _ste(place(f"{x} + {family.stop_gradient(family.cast(hard, f'{x}.dtype') + f' - {x}')}"), family,
                   f"Keep `{context.code(node)}` in the forward pass, as a float, and let the gradient through it (a "
                   "straight-through estimator)", STE_REASON + "; the value keeps its float dtype where the code had integers")

    def _comparison(self, node, op: str, family: Family, context: Context) -> Iterator[Rewrite]:
        left, right = _operands(node)
        wrapper = _float_cast_of(node, context)
        meant = wrapper is None and _meant(node, context)
        if left is None or right is None or (wrapper is None and not meant):
            return  # a bare boolean (a condition, a mask) carries no gradient to stand in for
        carrier, carrier_is_left = (right, False) if _constant_like(left, context) else (left, True)
        if meant:  # the mean casts the boolean itself: the stand-in is the comparison, cast as the mean would
            wrapper = node
        x, hard, place = _once(wrapper, carrier, context, "compared")
        if meant:
            hard = family.cast(hard, f"{x}.dtype")
        rising = (op in RISING) == carrier_is_left or op not in RISING | FALLING
        ste = f"{x} + {family.stop_gradient(f'{hard} - {x}')}" if rising else f"-{x} + {family.stop_gradient(f'{hard} + {x}')}"
        hard = context.code(wrapper)
        yield _ste(place(ste), family,
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
        one_hot = context.called_argument(node)
        if one_hot is not None and one_hot[1] in (0, "indices") and context.qualname(one_hot[0].func) in ONE_HOT:
            outer = one_hot[0]
            p, hard, place = _once(outer, value, context, "scores")
            soft = family.softmax(p if op == "ArgMax" else f"-{p}", axis)
            yield _ste(place(f"{soft} + {family.stop_gradient(f'{hard} - {soft}')}"), family,
                       f"Let the gradient through `{context.code(outer)}` by the softmax it stands for (a straight-through "
                       "estimator: the forward value stays one-hot)")
            if _repeatable(value, context):
                soft = family.softmax(atom(value, context) if op == "ArgMax" else f"-{atom(value, context)}", axis)
                yield Rewrite(f"Use the softmax `{soft}` instead of the one-hot `{context.code(outer)}`",
                              {outer: expression(soft)}, Applicability.UNSAFE,
                              "the forward value becomes the probabilities instead of a one-hot vector", family.imports)
            return
        wrapper = _float_cast_of(node, context)
        target = wrapper if wrapper is not None else node
        p, hard, place = _once(target, value, context, "scores")
        soft = family.softmax(p if op == "ArgMax" else f"-{p}", axis)
        if wrapper is None:
            hard = family.cast(hard, f"{p}.dtype")
        index = family.soft_index(p, soft, axis)
        yield _ste(place(f"{index} + {family.stop_gradient(f'{hard} - {index}')}"), family,
                   f"Let the gradient through `{context.code(node)}` by a soft-argmax (the softmax-weighted index; the "
                   "forward value stays the index)", STE_REASON + "; the index is a float")


def _ste(replacements: Mapping[cst.CSTNode, object], family: Family, description: str,
         reason: str = STE_REASON) -> Rewrite:
    return Rewrite(description, replacements, Applicability.UNSAFE, reason, family.imports)


Place = Callable[[str], Mapping[cst.CSTNode, object]]

# Calls whose every evaluation draws anew: a surrogate that repeated one would change the forward value.
_DRAWS = ("random", "uniform", "normal", "dropout", "shuffle", "sample", "multinomial", "categorical", "bernoulli",
          "noise")
_LIBRARIES = frozenset({"tensorflow", "keras", "numpy", "tf_keras"})
# Between the node and its statement, where a value bound by a statement before it would be evaluated at the
# wrong time, or not in the scope the expression sees.
_OWN_EVALUATION = (cst.Lambda, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp, cst.IfExp,
                   cst.BooleanOperation)


def _repeatable(node: cst.BaseExpression, context: Context) -> bool:
    """May the expression be evaluated again for the same value? Not when it draws random numbers, nor when it
    calls what the analysis cannot see into (a layer, a user's function, a method), which may draw or update state."""
    for call in _calls(node):
        qualname = context.qualname(call.func) or ""
        if qualname.split(".")[0] not in _LIBRARIES or any(word in qualname.lower() for word in _DRAWS):
            return False
    return True


def _calls(node: cst.CSTNode) -> Iterator[cst.Call]:
    if isinstance(node, cst.Call):
        yield node
    for child in node.children:
        yield from _calls(child)


def _in_place(target: cst.CSTNode) -> Place:
    return lambda code: {target: expression(code)}


def _once(target: cst.CSTNode, carrier: cst.BaseExpression, context: Context, base: str) -> tuple[str, str, Place]:
    """The carrier's code to repeat in a surrogate of ``target``, the target's code, and where the surrogate goes.

    A carrier that must be evaluated once (``x + tf.random.uniform(...)``) is bound to a fresh name: by a statement
    just before the target's, or where no statement can hold it (a lambda, a comprehension, a branch) by an
    assignment expression at its first use, which Python evaluates first."""
    if _repeatable(carrier, context):
        return atom(carrier, context), context.code(target), _in_place(target)
    name = context.fresh_name(base)
    hard = context.module.code_for_node(target.deep_replace(carrier, cst.Name(name))).strip()
    statement = context.statement_of(target)
    between = []
    for ancestor in context.ancestors(target):
        if ancestor is statement:
            break
        between.append(ancestor)
    if isinstance(statement, cst.SimpleStatementLine) and not any(isinstance(a, _OWN_EVALUATION) for a in between):
        bound = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(name))],
                                                    carrier.with_changes(lpar=[], rpar=[]))])

        def before(code: str) -> Mapping[cst.CSTNode, object]:
            changed = statement.visit(ReplaceNodes({target: expression(code)}))
            return {statement: cst.FlattenSentinel([bound, changed])}

        return name, hard, before

    def first_use(code: str) -> Mapping[cst.CSTNode, object]:
        return {target: expression(re.sub(rf"\b{name}\b", f"({name} := {context.code(carrier)})", code, count=1))}

    return name, hard, first_use


def _operands(node) -> tuple[cst.BaseExpression | None, cst.BaseExpression | None]:
    if isinstance(node, cst.Comparison):
        return node.left, node.comparisons[0].comparator
    return argument(node, 0, "x"), argument(node, 1, "y")


# `where(c, 1.0, 0.0)` is a cast of the condition to a float, spelled as a choice.
_WHERE = frozenset({"tensorflow.where", "keras.ops.where", "keras.backend.switch"})
# Means that cast a boolean to a float themselves (tf.keras.backend.mean does).
_MEANS_OF_BOOLEANS = frozenset({"keras.backend.mean"})


def _float_cast_of(node: cst.CSTNode, context: Context) -> cst.Call | None:
    """The cast to a float that ``node`` is the value of (``tf.cast(a > b, tf.float32)``,
    ``tf.where(a > b, 1.0, 0.0)``), if it is one."""
    called = context.called_argument(node)
    if called is None:
        return None
    call, position = called
    if position in (0, "x") and float_cast(call, context):
        return call
    if position in (0, "condition") and context.qualname(call.func) in _WHERE and _ones_and_zeros(call):
        return call
    return None


def _ones_and_zeros(call: cst.Call) -> bool:
    def number(node, value):
        return isinstance(node, (cst.Integer, cst.Float)) and float(node.value) == value

    return number(argument(call, 1, "x"), 1.0) and number(argument(call, 2, "y"), 0.0)


def _meant(node: cst.CSTNode, context: Context) -> bool:
    """Is the comparison the argument of a mean that casts its booleans to floats (``K.mean(a >= b)``)?"""
    called = context.called_argument(node)
    return called is not None and called[1] in (0, "x") and context.qualname(called[0].func) in _MEANS_OF_BOOLEANS


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
