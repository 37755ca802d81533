"""float-dtype: create an integer variable as a float one, so that tapes watch it and it trains."""

from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradfix.categories import NOT_TRAINABLE
from gradfix.model import Applicability
from gradfix.pin import pinned_nodes
from gradfix.static.api import INTEGER_DTYPES
from gradfix.static.bindings import is_false, keyword
from gradfix.static.tree import walk
from gradfix.transforms._operator import Context, CutKind, Example, Operator, Rewrite

REASON = "the variable's dtype becomes float32; code that uses it as an integer (indexing, integer arithmetic) needs a cast"
REASON_ALL = "the variables' dtype becomes float32; code that uses them as integers needs a cast"
DATA_REASON = "; so do the tensors and model inputs that were declared as integers"
# Layer methods that make a weight: their first positional argument is a shape, never an initial value.
WEIGHT_MAKERS = frozenset({"add_weight", "add_variable"})


class FloatDtype(Operator):
    """Creates an integer variable as a float32 one, however it is made: `tf.Variable(3)`,
    `tf.Variable([1, 2])`, `tf.Variable(0, dtype=tf.int32)`, `keras.Variable(0, dtype="int64")`,
    `self.add_weight(..., dtype="int32")` or `self.add_variable(..., dtype=tf.int64)` in a layer's
    `build`, whatever the dtype's spelling (`tf.int32`, `np.int32`, `tf.dtypes.int64`, `"int32"`).
    An integer literal becomes a float literal; an integer dtype becomes `float32` in the same spelling.
    A variable made with `trainable=False` is left alone: whether it is meant to train is its author's call.

    When the run names several integer variables (the cut pinned on several lines), they are made
    float together, since each must train for the step to be repaired. A second rewrite also makes
    the module's integer tensors and inputs float (every `dtype=` given an integer dtype): a float
    variable multiplied with integer data fails, so the data must change with it.

    Unsafe: the variable's dtype changes for every use of it, and integer arithmetic or indexing
    with it breaks or computes something else; the second rewrite changes the data's dtype too.
    """

    name = "float-dtype"
    summary = "Create an integer variable as a float32 variable"
    cuts = (CutKind(NOT_TRAINABLE),)
    explained_by = "GF010"

    VALID = [
        # Already a float variable.
        Example("""
import tensorflow as tf

w = tf.Variable(0.0, dtype=tf.float32)  # cut
"""),
        # A counter made not trainable on purpose.
        Example("""
import tensorflow as tf

step = tf.Variable(0, trainable=False)  # cut
"""),
        # A shape given by position to add_weight is not an initial value.
        Example("""
import keras

class Scale(keras.layers.Layer):
    def build(self, input_shape):
        self.w = self.add_weight((1,), initializer="zeros")  # cut
"""),
    ]

    INVALID = [
        Example("""
import tensorflow as tf

W = tf.Variable([1, -2])  # cut
""", "", """
import tensorflow as tf

W = tf.Variable([1.0, -2.0])  # cut
"""),
        # Two integer variables the run names: one cut, pinned on both lines, repaired at once.
        Example("""
import tensorflow as tf

W = tf.Variable([1, 2])  # cut
b = tf.Variable(1)  # cut
""", "", """
import tensorflow as tf

W = tf.Variable([1.0, 2.0])  # cut
b = tf.Variable(1.0)  # cut
"""),
        Example("""
import tensorflow as tf

offset = tf.Variable(0, dtype=tf.int32)  # cut
""", "", """
import tensorflow as tf

offset = tf.Variable(0, dtype=tf.float32)  # cut
"""),
        Example("""
import keras
import tensorflow as tf

class Scale(keras.layers.Layer):
    def build(self, input_shape):
        self.var = self.add_variable(
            (1,), initializer="zeros", dtype=tf.int32)  # cut
""", "", """
import keras
import tensorflow as tf

class Scale(keras.layers.Layer):
    def build(self, input_shape):
        self.var = self.add_variable(
            (1,), initializer="zeros", dtype=tf.float32)  # cut
"""),
        Example("""
import keras

class Scale(keras.layers.Layer):
    def build(self, input_shape):
        self.var = self.add_weight(shape=(1,), initializer="zeros", dtype='int64')  # cut
""", "", """
import keras

class Scale(keras.layers.Layer):
    def build(self, input_shape):
        self.var = self.add_weight(shape=(1,), initializer="zeros", dtype='float32')  # cut
"""),
    ]

    def pins(self, node: cst.CSTNode, context: Context, op: str) -> bool:
        return isinstance(node, cst.Call) and _trainable_integer_variable(node) is not None

    def rewrite(self, node: cst.CSTNode, context: Context) -> Iterator[Rewrite]:
        if not isinstance(node, cst.Call):
            return
        new = _trainable_integer_variable(node)
        if new is None:
            return
        made = {node: new, **self._run_named(context)}
        if len(made) == 1:
            what, meets, reason = f"`{context.code(node.func)}(...)`", "it meets", REASON
            yield Rewrite(f"Create {what} as a float32 variable", made, Applicability.UNSAFE, reason)
        else:
            what, meets, reason = "the integer variables", "they meet", REASON_ALL
            yield Rewrite("Create the integer variables as float32, so that tapes watch them and they can be trained",
                          made, Applicability.UNSAFE, reason)
        data = integer_data(context.module, exclude=made)
        if data:
            yield Rewrite(f"Create {what}, and the integer tensors and inputs {meets}, as float32", {**made, **data},
                          Applicability.UNSAFE, reason + DATA_REASON)

    def _run_named(self, context: Context) -> dict[cst.CSTNode, cst.Call]:
        """Every integer variable on the lines the run pinned the cut to, made float."""
        return {call: _trainable_integer_variable(call) for call in pinned_nodes(context, self, list(context.cut_lines), "")}


class FloatDtypes(cst.CSTTransformer):
    """Integer literals as floats and integer dtypes as float32, in the expressions it visits."""

    def __init__(self, literals: bool):
        self.literals = literals
        self.changed = 0

    def leave_Integer(self, original, updated):
        if not self.literals:
            return updated
        self.changed += 1
        value = updated.value.replace("_", "")
        return cst.Float(value + ".0" if value.isdigit() else repr(float(int(value, 0))))

    def leave_Attribute(self, original, updated):
        if updated.attr.value in INTEGER_DTYPES:
            self.changed += 1
            return updated.with_changes(attr=cst.Name("float32"))
        return updated

    def leave_SimpleString(self, original, updated):
        if updated.value.strip("'\"") in INTEGER_DTYPES:
            self.changed += 1
            quote = updated.value[0]
            return cst.SimpleString(f"{quote}float32{quote}")
        return updated


def integer_data(module: cst.Module, exclude) -> dict[cst.Call, cst.Call]:
    """Every call of the module (but those in ``exclude``) given an integer ``dtype=``, with it made float32:
    `tf.constant(..., dtype=tf.int32)`, `keras.Input((1,), dtype="int32")`."""
    found = {}
    for call in walk(module, cst.Call):
        if call in exclude:
            continue
        for arg in call.args:
            if arg.keyword is not None and arg.keyword.value == "dtype":
                visitor = FloatDtypes(literals=False)
                value = arg.value.visit(visitor)
                if visitor.changed:
                    found[call] = call.with_changes(args=[a.with_changes(value=value) if a is arg else a for a in call.args])
    return found


def _trainable_integer_variable(call: cst.Call) -> cst.Call | None:
    """``float_variable(call)``, unless the call says ``trainable=False``."""
    return None if is_false(keyword(call, "trainable")) else float_variable(call)


def variable_maker(call: cst.Call) -> bool:
    """`tf.Variable(...)`, `keras.Variable(...)`, `Variable(...)`, `self.add_weight(...)`, `self.add_variable(...)`."""
    func = call.func
    name = func.value if isinstance(func, cst.Name) else func.attr.value if isinstance(func, cst.Attribute) else None
    return name == "Variable" or name in WEIGHT_MAKERS


def float_variable(call: cst.Call) -> cst.Call | None:
    """The variable-making call with its integer dtype or integer initial literal made float; None if neither."""
    if not variable_maker(call):
        return None
    weight = isinstance(call.func, cst.Attribute) and call.func.attr.value in WEIGHT_MAKERS
    typed = any(arg.keyword is not None and arg.keyword.value == "dtype" for arg in call.args)
    changed = False
    args = []
    for position, arg in enumerate(call.args):
        visitor = None
        if arg.keyword is not None and arg.keyword.value == "dtype":
            visitor = FloatDtypes(literals=False)
        elif (not weight and not typed and position == 0 and arg.keyword is None
              and isinstance(arg.value, (cst.Integer, cst.List, cst.Tuple, cst.UnaryOperation))):
            visitor = FloatDtypes(literals=True)
        if visitor is not None:
            arg = arg.with_changes(value=arg.value.visit(visitor))
            changed = changed or bool(visitor.changed)
        args.append(arg)
    return call.with_changes(args=args) if changed else None
