"""watch: ``tape.watch(x)`` for a tensor source the tape never watched."""

from __future__ import annotations

from typing import Callable, Iterator

import libcst as cst

from gradfix.categories import MISSING_WATCH
from gradfix.model import Applicability
from gradfix.static.api import FRESH_TENSOR_MAKERS, TENSOR_CONVERTERS, VARIABLE_MAKERS
from gradfix.static.tree import walk
from gradfix.transforms._operator import Context, CutKind, Example, Operator, Rewrite
from gradfix.transforms._unread import lone_binding, reads

REASON = "`{name}` is not shown to be a tensor everywhere it is bound; `tape.watch` raises on a NumPy array or a list"
_TENSOR_OPS = frozenset({"tensorflow.add", "tensorflow.subtract", "tensorflow.multiply", "tensorflow.concat",
                         "tensorflow.stack", "tensorflow.reshape", "tensorflow.identity"})


class Watch(Operator):
    """Adds `tape.watch(x)` for each plain name the gradient is asked of and the tape was never told to
    watch, as the first statement of the tape's block (after the statement of the block that binds
    `x`, when one does), whatever the tape's spelling and wherever the gradient call sits: in a
    helper called with the tape (`grad_of(tape, y, x)`), the tape and `x` are the caller's.

    The run pins the gradient call. Safe where every binding of `x` in its scope is necessarily a
    tensor: made by `tf.constant`, `tf.zeros`, `tf.random.*` and the like, a TensorFlow op, or
    arithmetic with such a tensor (`alpha * real + (1 - alpha) * fake` with a random `alpha`);
    unsafe otherwise, since `tape.watch` raises on what is not a tensor.
    """

    name = "watch"
    summary = "Watch the tensor the gradient is asked of"
    cuts = (CutKind(MISSING_WATCH),)
    explained_by = "GF007"

    VALID = [
        # already watched
        Example("""
import tensorflow as tf

x = tf.zeros((2, 2))
with tf.GradientTape() as tape:
    tape.watch(x)
    y = model(x)
g = tape.gradient(y, x)  # cut
"""),
    ]

    INVALID = [
        Example("""
import tensorflow as tf

x0 = tf.Variable(0.0)
x = x0 + tf.constant(3.0)
with tf.GradientTape() as tape:
    z = x + 4.0
g = tape.gradient(z, x)  # cut
""", "", """
import tensorflow as tf

x0 = tf.Variable(0.0)
x = x0 + tf.constant(3.0)
with tf.GradientTape() as tape:
    tape.watch(x)
    z = x + 4.0
g = tape.gradient(z, x)  # cut
"""),
        # a WGAN-GP penalty: the interpolation is made inside the block, so the watch follows it
        Example("""
import tensorflow as tf

def gradient_penalty(critic, real, fake):
    alpha = tf.random.uniform([real.shape[0], 1, 1, 1])
    with tf.GradientTape() as gp_tape:
        interpolated = alpha * real + (1 - alpha) * fake
        score = critic(interpolated, training=True)
    grads = gp_tape.gradient(score, [interpolated])[0]  # cut
    return tf.reduce_mean((tf.norm(grads, axis=1) - 1.0) ** 2)
""", "", """
import tensorflow as tf

def gradient_penalty(critic, real, fake):
    alpha = tf.random.uniform([real.shape[0], 1, 1, 1])
    with tf.GradientTape() as gp_tape:
        interpolated = alpha * real + (1 - alpha) * fake
        gp_tape.watch(interpolated)
        score = critic(interpolated, training=True)
    grads = gp_tape.gradient(score, [interpolated])[0]  # cut
    return tf.reduce_mean((tf.norm(grads, axis=1) - 1.0) ** 2)
"""),
    ]

    def pins(self, node: cst.CSTNode, context: Context, op: str) -> bool:
        return _gradient_call(node) or (context.through is not None and node is context.through.call)

    def rewrite(self, node: cst.CSTNode, context: Context) -> Iterator[Rewrite]:
        if not self.pins(node, context, ""):
            return
        if _gradient_call(node):
            tape, sources = node.func.value, node.args[1].value
        else:  # a helper asks for the gradient: its tape and sources, as the caller passes them
            inner = context.through.gradient_call(context.lines_of)
            if inner is None or not _gradient_call(inner):
                return
            tape, sources = context.through.in_caller(inner.func.value), context.through.in_caller(inner.args[1].value)
            if not isinstance(tape, cst.Name) or sources is None:
                return
        tape_name = tape.value
        scope = next((a for a in context.ancestors(node) if isinstance(a, (cst.FunctionDef, cst.Module))), None)
        call_line = context.lines_of(node)[0]
        blocks = [w for w in walk(scope, cst.With) if context.lines_of(w)[0] < call_line and _binds(w, tape_name)
                  and isinstance(w.body, cst.IndentedBlock)]
        if not blocks:
            return
        block = blocks[-1]
        names = [e.value for e in sources.elements] if isinstance(sources, (cst.List, cst.Tuple)) else [sources]
        names = [n for n in names if isinstance(n, cst.Name) and not _watched(scope, tape_name, n.value, context)]
        if not names:
            return
        def bound(statement):
            binding = lone_binding(statement)
            return {binding[0]} if binding is not None else set()

        watched = with_watches(block, tape_name, [cst.Name(n.value) for n in names], [n.value for n in names], bound)
        if watched is None:
            return
        unproven = [n.value for n in names if not _tensor_name(n.value, scope, context, 3)]
        listed = ", ".join(f"`{n.value}`" for n in names)
        applicability = Applicability.UNSAFE if unproven else Applicability.SAFE
        reason = REASON.format(name=unproven[0]) if unproven else ""
        yield Rewrite(f"Watch {listed} at the start of the tape block",
                      {block: watched}, applicability, reason)


def _gradient_call(node: cst.CSTNode) -> bool:
    return (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == "gradient"
            and isinstance(node.func.value, cst.Name) and len(node.args) >= 2)


def with_watches(block: cst.With, tape: str, watched: list[cst.BaseExpression], names: list[str],
                 bound: Callable[[cst.BaseStatement], set[str]]) -> cst.With | None:
    """The tape's ``with`` with ``tape.watch(...)`` first in its body, or right after the statement of the body that
    binds one of ``names`` (``bound`` tells what a statement binds); None when that statement is not a simple one."""
    body = block.body
    if not isinstance(body, cst.IndentedBlock):
        return None
    position = 0
    for index, statement in enumerate(body.body):
        if bound(statement) & set(names):
            if not isinstance(statement, cst.SimpleStatementLine):
                return None
            position = index + 1
    watches = [cst.SimpleStatementLine([cst.Expr(cst.Call(cst.Attribute(cst.Name(tape), cst.Name("watch")),
                                                           [cst.Arg(expression)]))]) for expression in watched]
    return block.with_changes(body=body.with_changes(body=[*body.body[:position], *watches, *body.body[position:]]))


def _binds(block: cst.With, name: str) -> bool:
    return any(item.asname is not None and isinstance(item.asname.name, cst.Name) and item.asname.name.value == name
               for item in block.items)


def _watched(scope: cst.CSTNode, tape: str, name: str, context: Context) -> bool:
    return any(isinstance(c.func, cst.Attribute) and c.func.attr.value == "watch" and isinstance(c.func.value, cst.Name)
               and c.func.value.value == tape and c.args and reads(c.args[0].value, name, context)
               for c in walk(scope, cst.Call))


def _tensor_name(name: str, scope: cst.CSTNode, context: Context, depth: int) -> bool:
    """Every binding of ``name`` in ``scope`` is necessarily a tensor (and there is one)."""
    values = []
    for statement in walk(scope, (cst.SimpleStatementLine, cst.For, cst.FunctionDef)):
        if isinstance(statement, cst.FunctionDef):
            if statement is not scope and any(p.name.value == name for p in statement.params.params) and scope is context.module:
                continue
            if statement is scope and any(p.name.value == name for p in statement.params.params):
                return False
            continue
        if isinstance(statement, cst.For):
            if any(n.value == name for n in walk(statement.target, cst.Name)):
                return False
            continue
        binding = lone_binding(statement)
        if binding is not None and binding[0] == name:
            if not _steps_itself(binding[1], name):
                values.append(binding[1])
        elif any(isinstance(t, cst.AssignTarget) and any(n.value == name for n in walk(t, cst.Name))
                 for t in walk(statement, cst.AssignTarget)):
            return False
    return bool(values) and all(_tensor(value, scope, context, depth) for value in values)


def _tensor(value: cst.BaseExpression, scope: cst.CSTNode, context: Context, depth: int) -> bool:
    if depth < 0:
        return False
    if isinstance(value, cst.Call):
        qualname = context.qualname(value.func) or ""
        if qualname in VARIABLE_MAKERS:
            return False
        return (qualname in FRESH_TENSOR_MAKERS or qualname in TENSOR_CONVERTERS or qualname in _TENSOR_OPS
                or qualname.startswith(("tensorflow.random.", "tensorflow.math.")))
    if isinstance(value, cst.BinaryOperation):
        # a TensorFlow tensor takes the operator from a number, a variable or a NumPy array: one tensor operand suffices
        return any(_tensor(side, scope, context, depth - 1) for side in (value.left, value.right))
    if isinstance(value, cst.Name):
        return _tensor_name(value.value, scope, context, depth - 1)
    return False


def _steps_itself(value: cst.BaseExpression, name: str) -> bool:
    """``x = x - lr * g``: arithmetic on the name's own tensor keeps it a tensor, so it adds nothing to the proof."""
    return isinstance(value, cst.BinaryOperation) and any(
        isinstance(side, cst.Name) and side.value == name for side in (value.left, value.right))
