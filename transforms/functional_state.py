"""functional-state: use a state update's new value as a tensor, and a stateful metric's loss of the same name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import libcst as cst

from gradfix.categories import STATE_UPDATE
from gradfix.lazy import lazy_module
from gradfix.model import Applicability
from gradfix.static.api import ASSIGN_METHODS, LOSS_ARGUMENTS, METRIC_LOSS
from gradfix.static.names import dotted
from gradfix.transforms._operator import Context, CutKind, Example, Operator, Rewrite

if TYPE_CHECKING:
    import libcst.matchers as m
else:
    m = lazy_module("libcst.matchers")  # see gradfix.lazy

STATE_REASON = "the gradient now reaches what the stored value was computed from, which changes training"
HELPER_REASON = "; the helper's call is replaced by its update, spelled out"
METRIC_REASON = "the loss is the batch's own value, where the metric averaged every batch since it was reset"


class FunctionalState(Operator):
    """Repairs a state update on the path to the loss: `v.assign(expr)` (or `assign_add`,
    `assign_sub`) followed by reads of `v` becomes `new_v = expr; v.assign(new_v)` and the reads
    read `new_v`, so the gradient flows through the tensor (an update made by a helper whose one
    statement it is, `smooth(self, mse)`, is spelled out where the helper is called); a stateful Keras metric called as a loss
    (`mse = keras.metrics.MeanSquaredError()` ... `mse(y, p)`, also held on `self`) becomes the loss
    of the same name (`keras.losses.MeanSquaredError()(y, p)`, keeping `from_logits` and the like).

    Unsafe: the state is still stored, but training now reaches what it was computed from; a metric
    averages every batch since its reset where the loss is the batch's own value.
    """

    name = "functional-state"
    summary = "Use a state update's new value as a tensor; call the loss of a metric used as a loss"
    cuts = (CutKind(STATE_UPDATE),)
    explained_by = "GF013"

    VALID = [
        # An assign of a constant (a counter), not read back in the block.
        Example("""
def call(self, x):
    y = self.dense(x)  # cut
    return y
"""),
    ]

    INVALID = [
        Example("""
import keras

class Memory(keras.layers.Layer):
    def call(self, inputs):
        write = self.controller(inputs)
        self.memory.assign(0.9 * self.memory + 0.1 * write)  # cut
        return inputs * self.memory
""", "", """
import keras

class Memory(keras.layers.Layer):
    def call(self, inputs):
        write = self.controller(inputs)
        new_memory = 0.9 * self.memory + 0.1 * write
        self.memory.assign(new_memory)  # cut
        return inputs * new_memory
"""),
        Example("""
import tensorflow as tf

mse = tf.keras.metrics.MeanSquaredError()
with tf.GradientTape() as tape:
    loss = mse(y, model(x, training=True))  # cut
""", "", """
import tensorflow as tf

mse = tf.keras.metrics.MeanSquaredError()
with tf.GradientTape() as tape:
    loss = tf.keras.losses.MeanSquaredError()(y, model(x, training=True))  # cut
"""),
    ]

    def pins(self, node: cst.CSTNode, context: Context, op: str) -> bool:
        if isinstance(node, cst.SimpleStatementLine):
            return update_call(node) is not None or _helper_update(node, context) is not None
        return isinstance(node, cst.Call) and _metric_constructor(node, context) is not None

    def rewrite(self, node: cst.CSTNode, context: Context) -> Iterator[Rewrite]:
        if isinstance(node, cst.SimpleStatementLine):
            update = update_call(node) or _helper_update(node, context)
            if update is None:
                return
            owner = update.func.value
            body = list(getattr(context.parent(node), "body", ()) or ())
            later = body[body.index(node) + 1:] if node in body else []
            if not any(not n.visit(ReplaceReads(owner, "_")).deep_equals(n) for n in later):
                return  # nothing reads the state back here
            base = "new_" + (owner.attr.value if isinstance(owner, cst.Attribute) else getattr(owner, "value", "value"))
            name, number = base, 2
            while not context.name_is_free(name):
                name, number = f"{base}_{number}", number + 1
            inlined = f" (the update `{context.through.function.name.value}` made)" if update_call(node) is None else ""
            yield Rewrite(f"Use the new value of `{context.code(owner)}` as a tensor, and store it too{inlined}",
                          functional_value(node, update, later, name), Applicability.UNSAFE,
                          STATE_REASON + (HELPER_REASON if inlined else ""))
        elif isinstance(node, cst.Call):
            constructor = _metric_constructor(node, context)
            replacement = metric_as_loss(constructor, node) if constructor is not None else None
            if replacement is not None:
                yield Rewrite(f"Call the loss `{context.code(replacement.func)}` instead of the metric `{context.code(node.func)}`",
                              {node: replacement}, Applicability.UNSAFE, METRIC_REASON)


def _helper_update(statement: cst.CSTNode, context: Context) -> cst.Call | None:
    """``update(self, x)`` on a line of its own, calling a helper whose one statement is ``v.assign(expr)`` (or returns
    it): that update, as the caller spells it."""
    through = context.through
    if through is None or not m.matches(statement, m.SimpleStatementLine([m.Expr()])) or statement.body[0].value is not through.call:
        return None
    inner = through.lone_statement()
    if isinstance(inner, (cst.Expr, cst.Return)) and inner.value is not None:
        update = update_call(cst.SimpleStatementLine([cst.Expr(inner.value)]))
        if update is not None:
            return through.substituted(update)
    return None


def _metric_constructor(call: cst.Call, context: Context) -> cst.Call | None:
    """The Keras metric ``call.func`` (a name, or an attribute of ``self``) was bound to, if it has a loss twin."""
    name = dotted(call.func)
    if name is None or not (isinstance(call.func, cst.Name) or name.startswith("self.")):
        return None
    from gradfix.static.tree import walk

    for assign in walk(context.module, cst.Assign):
        if (len(assign.targets) == 1 and dotted(assign.targets[0].target) == name and isinstance(assign.value, cst.Call)):
            qualname = context.qualname(assign.value.func) or ""
            head, _, metric = qualname.rpartition(".")
            if head.endswith("keras.metrics") and metric in METRIC_LOSS:
                return assign.value
    return None


def update_call(statement: cst.CSTNode) -> cst.Call | None:
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    expression = statement.body[0]
    if not isinstance(expression, cst.Expr) or not isinstance(expression.value, cst.Call):
        return None
    call = expression.value
    if not isinstance(call.func, cst.Attribute) or call.func.attr.value not in ASSIGN_METHODS:
        return None
    if len(call.args) != 1 or call.args[0].keyword is not None:
        return None
    return call


class ReplaceReads(cst.CSTTransformer):
    def __init__(self, owner: cst.BaseExpression, name: str):
        self.owner, self.name = owner, name

    def leave_Attribute(self, original, updated):
        return cst.Name(self.name) if original.deep_equals(self.owner) else updated

    def leave_Name(self, original, updated):
        return cst.Name(self.name) if original.deep_equals(self.owner) else updated


def functional_value(statement, update: cst.Call, later: list, name: str) -> dict:
    """`v.assign(e)`, then reads of `v`: bind the new value to a name, store it, and read the name."""
    owner = update.func.value
    old = cst.Module([]).code_for_node(owner)
    new = cst.Module([]).code_for_node(update.args[0].value)
    value = cst.parse_expression(ASSIGN_METHODS[update.func.attr.value].format(old=old, new=new))
    bind = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(name))], value)], leading_lines=statement.leading_lines)
    store = statement.with_changes(
        leading_lines=(),
        body=[cst.Expr(update.with_changes(func=update.func.with_changes(attr=cst.Name("assign")),
                                           args=[update.args[0].with_changes(value=cst.Name(name))]))])
    replacements: dict = {statement: cst.FlattenSentinel([bind, store])}
    for node in later:
        replaced = node.visit(ReplaceReads(owner, name))
        if not replaced.deep_equals(node):
            replacements[node] = replaced
    return replacements


def metric_as_loss(constructor: cst.Call, call: cst.Call) -> cst.Call | None:
    """`metric(y, p)` as `keras.losses.<Loss>(<the metric's loss arguments>)(y, p)`."""
    func = constructor.func
    if not isinstance(func, cst.Attribute) or not isinstance(func.value, cst.Attribute):
        return None
    loss = METRIC_LOSS.get(func.attr.value)
    if loss is None:
        return None
    losses = func.value.with_changes(attr=cst.Name("losses"))
    arguments = [a for a in constructor.args if a.keyword is not None and a.keyword.value in LOSS_ARGUMENTS]
    if arguments:
        arguments[-1] = arguments[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return call.with_changes(func=cst.Call(func=cst.Attribute(value=losses, attr=cst.Name(loss)), args=arguments))


