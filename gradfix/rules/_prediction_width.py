"""What GF008's fix assumes of the prediction it passes to the loss instead of an ``argmax`` of it.

``argmax(p, axis=-1)`` into a sparse cross-entropy becomes ``p``: the loss then reads classes on the last
axis, which is what the argmax took them from only when its axis is ``-1`` (``tf.argmax``'s default axis is
0, NumPy's and ``keras.ops``' flatten, and ``axis=1`` is the last only for a prediction of rank 2).
``one_hot(argmax(p, -1), depth)`` becomes ``p``, of the same shape only when ``p`` has ``depth`` classes:
shown where ``p`` is the output of a ``Dense`` layer (the last of a ``Sequential`` model, or the layer a
subclassed model's ``call`` returns) whose units are ``depth`` (the same literal, constant, or expression
of the same function).
"""

from __future__ import annotations

import libcst as cst

from gradfix.static.analysis import ModuleAnalysis, argument
from gradfix.static.api import ARGMAX, ONE_HOT
from gradfix.static.bindings import bindings, self_attribute_values
from gradfix.static.names import dotted

DENSE = ("Dense",)
SEQUENTIAL = ("Sequential",)


def caveat(analysis: ModuleAnalysis, op: cst.CSTNode, replacement: cst.BaseExpression) -> str:
    """Why passing ``replacement`` for ``op``'s result is not proven to fit the loss ("" when it is)."""
    if not isinstance(op, cst.Call) or (analysis.qualname(op.func) or "") not in ARGMAX:
        return ""  # a rounding or a threshold: the same shape as its input
    axis = argument(op, 1, "axis")
    shown = analysis.code(replacement)
    if axis is None or analysis.code(axis).replace(" ", "") != "-1":
        spelled = "no axis" if axis is None else f"`axis={analysis.code(axis)}`"
        return (f"the `argmax` has {spelled}, so the fix assumes that `{shown}` holds the classes on its last axis, "
                "which gradfix cannot check")
    one_hot = next((a for a in analysis.ancestors(op) if isinstance(a, cst.Call)
                    and (analysis.qualname(a.func) or "") in ONE_HOT), None)
    if one_hot is None:
        return ""
    depth = argument(one_hot, 1, "depth") or argument(one_hot, 1, "num_classes")
    if depth is None or not _same_width(analysis, depth, _units(analysis, replacement)):
        return (f"the one-hot rows have {analysis.code(depth) if depth is not None else 'their own'} columns and the "
                f"fix assumes `{shown}` has as many classes, which gradfix cannot check")
    return ""


def _units(analysis: ModuleAnalysis, prediction: cst.BaseExpression, depth: int = 3) -> cst.BaseExpression | None:
    """The units of the Dense layer whose output ``prediction`` is, when that can be seen."""
    if depth < 0:
        return None
    if isinstance(prediction, cst.Name):
        found = bindings(analysis, prediction.value, prediction)
        if len(found) != 1 or found[0].kind != "value" or found[0].value is None:
            return None
        return _units(analysis, found[0].value, depth - 1)
    if not isinstance(prediction, cst.Call):
        return None
    called = prediction.func
    if dotted(called) == "self":  # a subclassed model called on itself: what its `call` returns
        owner = analysis.enclosing_class(prediction)
        method = _method(owner, "call") if owner is not None else None
        returned = _single_return(method) if method is not None else None
        return _units(analysis, returned, depth - 1) if returned is not None else None
    return _layer_units(analysis, _maker(analysis, called))


def _maker(analysis: ModuleAnalysis, called: cst.BaseExpression) -> cst.Call | None:
    """The call that made the model or layer ``called`` names (``model``, ``self.out``), when there is one."""
    if isinstance(called, cst.Call):
        return called
    chain = dotted(called)
    if chain is None:
        return None
    if isinstance(called, cst.Name):
        found = bindings(analysis, chain, called)
        values = [b.value for b in found if b.kind == "value"]
        return values[0] if len(found) == 1 and len(values) == 1 and isinstance(values[0], cst.Call) else None
    if chain.startswith("self.") and chain.count(".") == 1:
        owner = analysis.enclosing_class(called)
        stored = self_attribute_values(analysis, owner, chain[5:]) if owner is not None else []
        return stored[0] if len(stored) == 1 and isinstance(stored[0], cst.Call) else None
    return None


def _layer_units(analysis: ModuleAnalysis, made: cst.Call | None) -> cst.BaseExpression | None:
    if made is None:
        return None
    name = (analysis.qualname(made.func) or "").rsplit(".", 1)[-1]
    if name in DENSE:
        return argument(made, 0, "units")
    if name in SEQUENTIAL:
        layers = argument(made, 0, "layers")
        if isinstance(layers, (cst.List, cst.Tuple)) and layers.elements:
            last = layers.elements[-1].value
            return _layer_units(analysis, last) if isinstance(last, cst.Call) else None
    return None


def _same_width(analysis: ModuleAnalysis, depth: cst.BaseExpression, units: cst.BaseExpression | None) -> bool:
    if units is None:
        return False
    a, b = _value(analysis, depth), _value(analysis, units)
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if isinstance(a, cst.CSTNode) and isinstance(b, cst.CSTNode):
        # the same expression of the same function (a parameter both are made from)
        return analysis.code(a) == analysis.code(b) and analysis.scope_of(a) is analysis.scope_of(b)
    return False


def _value(analysis: ModuleAnalysis, node: cst.BaseExpression, depth: int = 3):
    """An integer, when ``node`` is one or a name bound only to one; else the expression it stands for
    (``self.k`` followed to the one value its class gives it)."""
    if isinstance(node, cst.Integer):
        return int(node.value)
    if depth < 0:
        return node
    if isinstance(node, cst.Name):
        found = bindings(analysis, node.value, node)
        if len(found) == 1 and found[0].kind == "value" and isinstance(found[0].value, cst.Integer):
            return int(found[0].value.value)
        return node
    chain = dotted(node)
    if chain is not None and chain.startswith("self.") and chain.count(".") == 1:
        owner = analysis.enclosing_class(node)
        values = self_attribute_values(analysis, owner, chain[5:]) if owner is not None else []
        if len(values) == 1:
            return _value(analysis, values[0], depth - 1)
    return node


def _method(owner: cst.ClassDef, name: str) -> cst.FunctionDef | None:
    return next((s for s in owner.body.body if isinstance(s, cst.FunctionDef) and s.name.value == name), None)


def _single_return(function: cst.FunctionDef) -> cst.BaseExpression | None:
    returns = [small for line in function.body.body if isinstance(line, cst.SimpleStatementLine)
               for small in line.body if isinstance(small, cst.Return)]
    return returns[0].value if len(returns) == 1 else None
