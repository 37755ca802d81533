"""Losses and metrics fed a non-differentiable version of the prediction.

Shared by GF008 (which reports and fixes them) and GF009 (which must not report
the same operation again): :func:`fed_losses` finds each cross-entropy or metric
on a gradient path whose ``y_pred`` is an ``argmax``, a rounding, a threshold or
an integer cast of a tensor that depends on the variables.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from gradfix.static.analysis import ModuleAnalysis, Statement, argument, assigned_value
from gradfix.static.api import (
    ACCURACY_FUNCTIONS,
    ARGMAX,
    BINARY,
    CASTS,
    CATEGORICAL,
    COMPARISON_CALLS,
    KERAS_LOSS_CLASSES,
    KERAS_LOSS_FUNCTIONS,
    METRIC,
    METRIC_LOSS,
    ONE_HOT,
    ROUNDING,
    SPARSE,
    TF_NN_LOSSES,
    integer_dtype,
    short_name,
)
from gradfix.static.gradpath import (
    STOP,
    PathContext,
    SourceFlow,
    all_contexts,
    float_cast,
    path_values,
    walk_expression,
)
from gradfix.static.names import dotted

# What to do instead, for a loss or metric fed a non-differentiable prediction that gradfix cannot fix itself.
INSTEAD = {
    SPARSE: "pass the probabilities (or the logits, with `from_logits=True`) of shape (batch, classes), not class ids",
    CATEGORICAL: "pass the probabilities (or the logits, with `from_logits=True`), not one-hot or integer predictions",
    BINARY: "pass the probabilities (or the logits, with `from_logits=True`), not 0/1 or integer values",
    METRIC: "train on a differentiable loss (a cross-entropy on the probabilities or logits) and keep the metric for reporting",
}


@dataclass
class FedLoss:
    """A loss (or metric) call on a gradient path whose prediction is made non-differentiable."""

    call: cst.Call
    kind: str  # sparse, categorical, binary, metric
    y_pred: cst.BaseExpression  # the argument as written
    op: cst.CSTNode | None  # the argmax/round/threshold/cast it reads, when there is one
    op_name: str
    replacement: cst.BaseExpression | None  # what to pass instead, when the fix is certain
    context: PathContext


def loss_kind(analysis: ModuleAnalysis, call: cst.Call, at: Statement, context: PathContext) -> tuple[str, cst.BaseExpression | None] | None:
    """The kind of loss ``call`` is and its prediction argument, if it is a cross-entropy or a metric."""
    name = analysis.qualname(call.func) or ""
    if name in TF_NN_LOSSES:
        return TF_NN_LOSSES[name], argument(call, 1, "logits")
    if name.startswith(("keras.losses.", "keras.ops.", "keras.metrics.")):
        short = name.rsplit(".", 1)[-1]
        if short in KERAS_LOSS_FUNCTIONS and not name.startswith("keras.metrics."):
            keyword = "output" if name.startswith("keras.ops.") else "y_pred"
            return KERAS_LOSS_FUNCTIONS[short], argument(call, 1, keyword)
        if short in ACCURACY_FUNCTIONS and name.startswith("keras.metrics."):
            return METRIC, argument(call, 1, "y_pred")
    made = _constructor(analysis, call.func, at, context)
    if made is not None:
        class_name = analysis.qualname(made.func) or ""
        short = class_name.rsplit(".", 1)[-1]
        if class_name.startswith("keras.losses.") and short in KERAS_LOSS_CLASSES:
            return KERAS_LOSS_CLASSES[short], argument(call, 1, "y_pred")
        if class_name.startswith("keras.metrics."):
            return METRIC, argument(call, 1, "y_pred")
    return None


def _constructor(analysis: ModuleAnalysis, func: cst.BaseExpression, at: Statement, context: PathContext) -> cst.Call | None:
    """The ``SomeLoss(...)`` call that made the object ``func`` names, when it can be found."""
    if isinstance(func, cst.Call):
        return func
    if isinstance(func, cst.Name):
        definitions = analysis.reaching_definitions(func.value, at, context.scope)
        if not definitions and context.scope is not analysis.module:
            definitions = [s for s in analysis.statements(analysis.module) if func.value in s.assigned]
        values = [assigned_value(d.node, func.value) for d in definitions]
        if len(values) == 1 and isinstance(values[0], cst.Call):
            return values[0]
        return None
    name = dotted(func)
    if name is not None and name.startswith("self.") and name.count(".") == 1:
        klass = analysis.enclosing_class(func)
        if klass is None:
            return None
        found = [
            small.value
            for small in analysis.walk(klass, cst.Assign)
            for target in small.targets
            if dotted(target.target) == name and isinstance(small.value, cst.Call)
        ]
        return found[0] if len(found) == 1 else None
    return None


def _follow(analysis: ModuleAnalysis, expression: cst.BaseExpression, at: Statement, context: PathContext) -> tuple[cst.BaseExpression, Statement, bool]:
    """Through float casts and single plain assignments, to the expression that made the value."""
    followed = False
    for _ in range(4):
        inner = float_cast(analysis, expression)
        if inner is not None:
            expression = inner
            continue
        if isinstance(expression, cst.Name):
            definitions = analysis.reaching_definitions(expression.value, at, context.scope)
            if len(definitions) == 1:
                value = assigned_value(definitions[0].node, expression.value)
                if value is not None:
                    expression, at, followed = value, definitions[0], True
                    continue
        break
    return expression, at, followed


def _prediction_op(analysis: ModuleAnalysis, expression: cst.BaseExpression) -> tuple[cst.CSTNode, str, cst.BaseExpression, str] | None:
    """(op node, op name, its input, shape) for argmax, one_hot(argmax), round, threshold, integer cast."""
    if not isinstance(expression, (cst.Call, cst.Comparison)):
        return None
    if isinstance(expression, cst.Comparison):
        if len(expression.comparisons) == 1 and isinstance(expression.comparisons[0].operator, (cst.GreaterThan, cst.GreaterThanEqual)):
            return expression, "a threshold", expression.left, "threshold"
        return None
    name = analysis.qualname(expression.func) or ""
    first = argument(expression, 0, "input") or argument(expression, 0, "x")
    if first is None:
        return None
    if name in ONE_HOT:
        inner = first
        cast = float_cast(analysis, inner)
        inner = cast if cast is not None else inner
        if isinstance(inner, cst.Call) and analysis.qualname(inner.func) in ARGMAX and _last_axis(analysis, inner):
            source = argument(inner, 0, "input") or argument(inner, 0, "x")
            if source is not None:
                return inner, "`one_hot(argmax(...))`", source, "same"
        return None
    if name in ARGMAX:
        return expression, f"`{short_name(name)}`", first, "labels"
    if name in ROUNDING and name.rsplit(".", 1)[-1] in ("round", "rint"):
        return expression, f"`{short_name(name)}`", first, "same"
    if name in COMPARISON_CALLS and name.rsplit(".", 1)[-1] in ("greater", "greater_equal"):
        return expression, f"`{short_name(name)}`", first, "threshold"
    if name in CASTS and integer_dtype(analysis, argument(expression, 1, "dtype")):
        return expression, "an integer cast", first, "cast"
    return None


def _helper_prediction_op(analysis: ModuleAnalysis, expression: cst.BaseExpression) -> tuple[cst.CSTNode, str, cst.BaseExpression, str] | None:
    """The same for a call of a function of the module that only returns such an operation of a parameter
    (``def hard(p): return tf.argmax(p, -1)``): its input is the argument the call passes."""
    if not isinstance(expression, cst.Call):
        return None
    callee = analysis.callee(expression)
    if callee is None:
        return None
    function, bound = callee
    body = function.body.body if isinstance(function.body, cst.IndentedBlock) else ()
    if len(body) != 1 or not isinstance(body[0], cst.SimpleStatementLine) or not isinstance(body[0].body[0], cst.Return):
        return None
    returned = body[0].body[0].value
    described = _prediction_op(analysis, returned) if returned is not None else None
    if described is None or not isinstance(described[2], cst.Name):
        return None
    params = [p.name.value for p in function.params.params][bound:]
    if described[2].value not in params:
        return None
    source = argument(expression, params.index(described[2].value), described[2].value)
    if source is None:
        return None
    return described[0], described[1], source, described[3]  # the operation itself, so that GF009 leaves it to GF008


def _last_axis(analysis: ModuleAnalysis, call: cst.Call) -> bool:
    axis = argument(call, 1, "axis")
    return axis is None or analysis.code(axis) in ("-1", "1")


def _fixable(kind: str, shape: str) -> bool:
    if shape == "same":
        return kind in (SPARSE, CATEGORICAL, BINARY)
    if shape == "labels":
        return kind == SPARSE
    if shape == "threshold":
        return kind == BINARY
    return False


def _still_valid(analysis: ModuleAnalysis, replacement: cst.BaseExpression, made_at: Statement, used_at: Statement, context: PathContext) -> bool:
    """Whether ``replacement``, read where it was made, has the same value where the loss reads it."""
    name = dotted(replacement) if isinstance(replacement, (cst.Name, cst.Attribute)) else None
    if name is None:
        return False
    head = name.split(".")[0]
    before = [d.index for d in analysis.reaching_definitions(head, made_at, context.scope)]
    after = [d.index for d in analysis.reaching_definitions(head, used_at, context.scope)]
    return before == after


def fed_losses(analysis: ModuleAnalysis) -> list[FedLoss]:
    """Computed once per analysis: GF008 reports them and GF009 leaves their operations alone."""
    return analysis.derived(_fed_losses)


def _fed_losses(analysis: ModuleAnalysis) -> list[FedLoss]:
    found: list[FedLoss] = []
    seen: set[int] = set()
    for top in all_contexts(analysis):
        live = SourceFlow(analysis, top, top.sources, frozenset({STOP}))
        for value, at, context, flow in path_values(analysis, top, live):
            for node in walk_expression(value):
                if not isinstance(node, cst.Call) or id(node) in seen:
                    continue
                kind = loss_kind(analysis, node, at, context)
                if kind is None:
                    continue
                loss_kind_, y_pred = kind
                if y_pred is None:
                    continue
                seen.add(id(node))
                made, made_at, followed = _follow(analysis, y_pred, at, context)
                described = _prediction_op(analysis, made) or _helper_prediction_op(analysis, made)
                if described is None:
                    if loss_kind_ == METRIC and flow.carries(y_pred, at):
                        found.append(FedLoss(node, METRIC, y_pred, None, "", None, context))
                    continue
                op, op_name, source, shape = described
                if not flow.carries(source, made_at):
                    continue
                replacement = None
                if _fixable(loss_kind_, shape) and (not followed or _still_valid(analysis, source, made_at, at, context)):
                    replacement = source
                found.append(FedLoss(node, loss_kind_, y_pred, op, op_name, replacement, context))
    return found


@dataclass
class MetricAsLoss:
    """A stateful Keras metric object called where its value is the loss: GF013's finding, and no other rule's."""

    call: cst.Call  # ``mse(y, p)``, or ``mse.result()``
    name: str  # ``mse`` or ``self.mse``
    constructor: cst.Call  # the ``keras.metrics.MeanSquaredError()`` that made it
    fed_by: cst.Call | None = None  # for ``result()``: the ``mse.update_state(y, p)`` before it, whose arguments it reads

    def as_called(self) -> cst.Call:
        """The metric called on what it was given: ``mse(y, p)`` itself, or ``result()`` with the arguments of the
        ``update_state`` it reads back."""
        return self.call if self.fed_by is None else self.call.with_changes(args=self.fed_by.args)


def metrics_used_as_losses(analysis: ModuleAnalysis) -> list[MetricAsLoss]:
    """The calls of a Keras metric object with a loss of the same meaning (``keras.metrics.MeanSquaredError()``)
    whose value a function returns or a gradient is asked of, in the statement that calls it."""
    # GF008 and GF013 both ask; a module's metrics are found once
    return analysis.derived(_metrics_used_as_losses)


def _metrics_used_as_losses(analysis: ModuleAnalysis) -> list[MetricAsLoss]:
    metrics = _metric_objects(analysis)
    if not metrics:
        return []
    found = []
    for function in [*analysis.functions, analysis.module]:
        # what the function (or script) hands on: its return value, or the target of a gradient it asks for
        targets = {g.target.value for g in analysis.gradient_calls if g.scope is function and isinstance(g.target, cst.Name)}
        used = (_returned_names(analysis, function) if isinstance(function, cst.FunctionDef) else set()) | targets
        for call in analysis.walk(function, cst.Call):
            if not (isinstance(call.func, cst.Name) or _on_self(call.func)):
                continue
            if function is analysis.module and analysis.scope_of(call) is not function:
                continue  # its own function's turn
            name = dotted(call.func)
            assert name is not None, "a name or self.attr, as matched"
            constructor = metrics.get((name, analysis.enclosing_class(call) if name.startswith("self.") else None))
            if constructor is None or _tracker(analysis, constructor):
                continue
            if _hands_on(analysis, call, used):
                found.append(MetricAsLoss(call, name, constructor))
        # `mse.update_state(y, p)` then `loss = mse.result()`: the value read back is the loss
        for call in analysis.walk(function, cst.Call):
            if call.args or not (isinstance(call.func, cst.Attribute) and call.func.attr.value == "result"):
                continue
            if function is analysis.module and analysis.scope_of(call) is not function:
                continue
            name = dotted(call.func.value)
            if name is None:
                continue
            constructor = metrics.get((name, analysis.enclosing_class(call) if name.startswith("self.") else None))
            fed_by = _last_update(analysis, function, name, call)
            # only a gradient's target: a step's logs return `result()` by design
            if constructor is not None and fed_by is not None and _assigns(analysis, call) & targets:
                found.append(MetricAsLoss(call, name, constructor, fed_by))
    return found


def _on_self(node: cst.CSTNode) -> bool:
    """``self.<name>``."""
    return isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.value.value == "self"


# metrics that average what they are given (``loss_tracker = keras.metrics.Mean()``): their result() read back as
# the loss is the value last given to update_state
TRACKERS = frozenset({"Mean", "Sum"})


def _tracker(analysis: ModuleAnalysis, constructor: cst.Call) -> bool:
    return (analysis.qualname(constructor.func) or "").rpartition(".")[2] in TRACKERS


def tracked_value(analysis: ModuleAnalysis, used: MetricAsLoss) -> cst.BaseExpression | None:
    """For a tracker's ``result()`` used as the loss, the value its ``update_state`` was given."""
    if used.fed_by is None or not _tracker(analysis, used.constructor):
        return None
    return used.fed_by.args[0].value


def _hands_on(analysis: ModuleAnalysis, call: cst.Call, used: set[str]) -> bool:
    """Whether the statement of ``call`` binds a name its function hands on, or returns."""
    return bool(_assigns(analysis, call) & used or next(analysis.walk(analysis.statement_of(call), cst.Return), None))


def _assigns(analysis: ModuleAnalysis, call: cst.Call) -> set[str]:
    return {t.target.value for t in analysis.walk(analysis.statement_of(call), cst.AssignTarget)
            if isinstance(t.target, cst.Name)}


def _last_update(analysis: ModuleAnalysis, function: cst.CSTNode, name: str, before: cst.Call) -> cst.Call | None:
    """The last ``name.update_state(...)`` of the function before ``before``, with no ``reset_state`` after it."""
    position = analysis.order_of(before)
    last: cst.Call | None = None
    for call in analysis.walk(function, cst.Call):
        if not (isinstance(call.func, cst.Attribute) and call.func.attr.value in ("update_state", "reset_state")):
            continue
        if dotted(call.func.value) != name or analysis.scope_of(call) is not analysis.scope_of(before):
            continue
        if analysis.order_of(call) >= position:
            continue
        if last is None or analysis.order_of(call) > analysis.order_of(last):
            last = call
    if last is None or not last.args or not isinstance(last.func, cst.Attribute) or last.func.attr.value != "update_state":
        return None
    return last


def _metric_objects(analysis: ModuleAnalysis) -> dict[tuple[str, cst.ClassDef | None], cst.Call]:
    """Names bound (at module level or in a function) to a Keras metric with a loss of the same meaning, and
    ``self`` attributes bound to one, with the class they belong to."""
    found: dict[tuple[str, cst.ClassDef | None], cst.Call] = {}
    # the model's index of assignments, not a matcher's visit of the whole module
    for assign in analysis.walk(None, cst.Assign):
        if not (isinstance(assign.value, cst.Call) and len(assign.targets) == 1
                and (isinstance(assign.targets[0].target, cst.Name) or _on_self(assign.targets[0].target))):
            continue
        qualname = analysis.qualname(assign.value.func) or ""
        head, _, metric = qualname.rpartition(".")
        if head.endswith("keras.metrics") and (metric in METRIC_LOSS or metric in TRACKERS):
            name = dotted(assign.targets[0].target)
            assert name is not None, "a name or self.attr, as matched"
            found[(name, analysis.enclosing_class(assign) if name.startswith("self.") else None)] = assign.value
    return found


def _returned_names(analysis: ModuleAnalysis, function: cst.FunctionDef) -> set[str]:
    return {n.value for r in analysis.walk(function, cst.Return) for n in analysis.walk(r, cst.Name)}
