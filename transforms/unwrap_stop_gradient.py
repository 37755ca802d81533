"""unwrap-stop-gradient: remove the stop_gradient that cuts the path."""

from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradfix.categories import STOP_GRADIENT
from gradfix.model import Applicability
from gradfix.transforms._operator import Context, CutKind, Example, Operator, Rewrite
from gradfix.transforms._spelling import argument, op_type

REASON = "everything before it trains now; if that part was meant to stay frozen, this is not the fix"


class UnwrapStopGradient(Operator):
    """Removes the `stop_gradient` that cut the path, whatever its spelling (`tf.stop_gradient`,
    `K.stop_gradient`, `keras.ops.stop_gradient`, `tf.keras.backend.stop_gradient`, a name imported
    from any of them), keeping its argument; a line `x = tf.stop_gradient(x)` is removed whole.

    Unsafe: what was stopped trains from now on, which is wrong where the stop was a deliberate
    freeze next to the path that lost its gradient. GF002 calls it safe where its analysis shows
    the stop on the only path of every source.
    """

    name = "unwrap-stop-gradient"
    summary = "Remove the stop_gradient that cuts the only path to the loss"
    cuts = (CutKind(STOP_GRADIENT),)
    explained_by = "GF002"

    VALID = [
        # Not a stop_gradient at all.
        Example("""
import tensorflow as tf

logits = tf.identity(model(x))  # cut
"""),
    ]

    INVALID = [
        Example("""
import tensorflow as tf

logits = tf.stop_gradient(model(x, training=True))  # cut
""", "StopGradient", """
import tensorflow as tf

logits = model(x, training=True)  # cut
"""),
        Example("""
from tensorflow.keras import backend as K
from tensorflow.keras.layers import Lambda

x = Lambda(lambda t: K.stop_gradient(t))(x)  # cut
""", "StopGradient", """
from tensorflow.keras import backend as K
from tensorflow.keras.layers import Lambda

x = Lambda(lambda t: t)(x)  # cut
"""),
        Example("""
import keras

def features(x):
    h = encoder(x)
    h = keras.ops.stop_gradient(h)  # cut
    return h
""", "StopGradient", """
import keras

def features(x):
    h = encoder(x)
    return h
"""),
        Example("""
from tensorflow import stop_gradient as freeze

out = head(freeze(trunk(x)))  # cut
""", "StopGradient", """
from tensorflow import stop_gradient as freeze

out = head(trunk(x))  # cut
"""),
    ]

    def pins(self, node: cst.CSTNode, context: Context, op: str) -> bool:
        return op_type(node, context) == "StopGradient"

    def rewrite(self, node: cst.CSTNode, context: Context) -> Iterator[Rewrite]:
        if not self.pins(node, context, "StopGradient") or len(node.args) != 1:
            return
        stopped = argument(node, 0, "input")
        if stopped is None:
            return
        description = f"Remove `{context.code(node.func)}` around `{context.code(stopped)}`"
        line = _self_assignment(node, stopped, context)
        replacements = {line: cst.RemoveFromParent()} if line is not None else {node: _in_place(node, stopped, context)}
        yield Rewrite(description, replacements, Applicability.UNSAFE, REASON)


def _self_assignment(call: cst.Call, stopped: cst.BaseExpression, context: Context) -> cst.SimpleStatementLine | None:
    """The line ``x = tf.stop_gradient(x)``, which is removed rather than left as ``x = x``."""
    assign = context.parent(call)
    line = context.parent(assign) if isinstance(assign, cst.Assign) else None
    if (isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1 and len(assign.targets) == 1
            and isinstance(stopped, cst.Name) and isinstance(assign.targets[0].target, cst.Name)
            and assign.targets[0].target.value == stopped.value):
        return line
    return None


_ATOMS = (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.Integer, cst.Float, cst.SimpleString, cst.List, cst.Tuple)


def _in_place(call: cst.Call, value: cst.BaseExpression, context: Context) -> cst.BaseExpression:
    """``value`` ready to stand where the call stood: in parentheses where an operator around it binds tighter."""
    if isinstance(value, _ATOMS) or value.lpar or isinstance(context.parent(call), (cst.Arg, cst.Assign, cst.Return,
                                                                                    cst.Expr, cst.Lambda)):
        return value
    return value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])

