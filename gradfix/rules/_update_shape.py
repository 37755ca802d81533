"""Whether GF005's in-place update keeps the variable's shape and dtype, as ``assign`` requires.

``w.assign(v)``, ``w.assign_sub(e)`` and ``w.assign_add(e)`` raise unless the value has the variable's
shape exactly (no broadcasting) and a dtype it converts to. The rebinding they replace, ``w = w - e``,
kept the variable's shape only where every operand broadcasts into it. This module sorts the operands
of an update's elementwise arithmetic into three kinds: ``SAME`` (the variable itself, its gradient,
an elementwise function of those), ``SCALAR`` (a number, a name bound only to numbers, a parameter whose
default is a number) and ``UNKNOWN``; a value made of ``SAME`` and ``SCALAR`` operands alone, with one
``SAME`` at least, has the variable's shape and dtype (TensorFlow's arithmetic refuses to mix dtypes and
converts numbers), whatever path reached the statement.
"""

from __future__ import annotations

import libcst as cst

from gradfix.static.analysis import ModuleAnalysis
from gradfix.static.bindings import bindings, self_attribute_values
from gradfix.static.names import dotted

SAME, SCALAR, UNKNOWN = "same", "scalar", "unknown"

# TensorFlow functions whose result has the broadcast shape and the dtype of their tensor arguments.
ELEMENTWISE = frozenset(f"tensorflow.{name}" for name in (
    "clip_by_value", "maximum", "minimum", "abs", "math.abs", "sign", "math.sign", "sqrt", "math.sqrt",
    "square", "math.square", "exp", "math.exp", "math.log", "tanh", "math.tanh", "sigmoid", "math.sigmoid",
    "nn.relu", "add", "math.add", "subtract", "math.subtract", "multiply", "math.multiply", "divide",
    "math.divide", "negative", "math.negative", "identity", "stop_gradient", "zeros_like", "ones_like",
    "where",
))
# Reductions over every axis: a number.
WHOLE_REDUCTIONS = frozenset(f"tensorflow.{name}" for name in (
    "reduce_mean", "reduce_sum", "reduce_max", "reduce_min", "math.reduce_mean", "math.reduce_sum",
    "math.reduce_max", "math.reduce_min", "norm", "linalg.norm",
))
# Arithmetic that works elementwise (``@`` does not).
ELEMENTWISE_OPERATORS = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.Power, cst.FloorDivide, cst.Modulo)
DEPTH = 4


class UpdateShape:
    """The kinds of the operands of values meant for the variable ``chain`` where ``at`` updates it."""

    def __init__(self, analysis: ModuleAnalysis, chain: str, at: cst.CSTNode):
        self.analysis = analysis
        self.chain = chain
        self.at = at

    def kinds(self, value: cst.BaseExpression, depth: int = DEPTH, at: cst.CSTNode | None = None) -> frozenset[str]:
        """The kinds of ``value``'s operands, its names read where ``at`` (by default the update) reads them."""
        at = self.at if at is None else at
        if depth < 0:
            return frozenset({UNKNOWN})
        if dotted(value) == self.chain:
            return frozenset({SAME})
        if isinstance(value, (cst.Integer, cst.Float)):
            return frozenset({SCALAR})
        if isinstance(value, cst.UnaryOperation) and isinstance(value.operator, (cst.Minus, cst.Plus)):
            return self.kinds(value.expression, depth, at)
        if isinstance(value, cst.BinaryOperation):
            if not isinstance(value.operator, ELEMENTWISE_OPERATORS):
                return frozenset({UNKNOWN})
            return self.kinds(value.left, depth, at) | self.kinds(value.right, depth, at)
        if isinstance(value, cst.Call):
            if self._gradient_of_chain(value):
                return frozenset({SAME})
            qualname = self.analysis.qualname(value.func) or ""
            if qualname in WHOLE_REDUCTIONS and len(value.args) == 1 and value.args[0].keyword is None:
                return frozenset({SCALAR})
            if qualname in ELEMENTWISE:
                arguments = [arg.value for arg in value.args if arg.keyword is None or arg.keyword.value != "name"]
                if not arguments or any(arg.star for arg in value.args):
                    return frozenset({UNKNOWN})
                return frozenset().union(*(self.kinds(a, depth, at) for a in arguments))
            return frozenset({UNKNOWN})
        if isinstance(value, cst.Subscript):
            return frozenset({SAME}) if self._gradient_element(value, at) else frozenset({UNKNOWN})
        if isinstance(value, cst.Name):
            return self._name(value, depth, at)
        if isinstance(value, cst.Attribute) and (dotted(value) or "").startswith("self."):
            return self._attribute(value, depth)
        return frozenset({UNKNOWN})

    def keeps_shape(self, value: cst.BaseExpression) -> bool:
        """Whether ``value`` has the variable's shape and dtype on every path."""
        found = self.kinds(value)
        return SAME in found and UNKNOWN not in found

    def doubtful(self, value: cst.BaseExpression) -> list[cst.BaseExpression]:
        """The operands of ``value``'s elementwise arithmetic whose shape is not shown (what makes it unproven)."""
        if UNKNOWN not in self.kinds(value):
            return []
        if isinstance(value, cst.UnaryOperation):
            return self.doubtful(value.expression)
        if isinstance(value, cst.BinaryOperation) and isinstance(value.operator, ELEMENTWISE_OPERATORS):
            return self.doubtful(value.left) + self.doubtful(value.right)
        if (isinstance(value, cst.Call) and (self.analysis.qualname(value.func) or "") in ELEMENTWISE
                and not any(arg.star for arg in value.args)):
            return [part for arg in value.args for part in self.doubtful(arg.value)] or [value]
        return [value]

    def has_own_shape(self, value: cst.BaseExpression) -> bool:
        """Whether ``value`` is at least as large as the variable (an operand of it is of the variable's shape):
        then ``assign_sub(value)`` fails only where ``w - value`` would have changed the variable's shape."""
        return SAME in self.kinds(value)

    # --- names ----------------------------------------------------------------------------------
    def _name(self, name: cst.Name, depth: int, at: cst.CSTNode) -> frozenset[str]:
        found = bindings(self.analysis, name.value, at)
        if not found:
            return frozenset({UNKNOWN})
        kinds: set[str] = set()
        for binding in found:
            if binding.kind == "value" and binding.value is not None:
                kinds |= self.kinds(binding.value, depth - 1, binding.statement)
            elif binding.kind == "unpacked" and binding.value is not None:
                kinds.add(SAME if self._unpacked_gradient(binding.statement, name.value) else UNKNOWN)
            elif binding.kind == "param" and binding.param is not None and binding.param.default is not None:
                kinds |= {SCALAR} if isinstance(binding.param.default, (cst.Integer, cst.Float)) else {UNKNOWN}
            else:
                kinds.add(UNKNOWN)
        return frozenset(kinds)

    def _attribute(self, attribute: cst.Attribute, depth: int) -> frozenset[str]:
        owner = self.analysis.enclosing_class(attribute)
        values = self_attribute_values(self.analysis, owner, attribute.attr.value) if owner is not None else []
        if not values:
            return frozenset({UNKNOWN})
        kinds: set[str] = set()
        for value in values:
            kinds |= self.kinds(value, depth - 1, value)
        # an attribute of the variable's own shape is another tensor kept beside it; only numbers are proven here
        return frozenset(kinds) if kinds <= {SCALAR} else frozenset({UNKNOWN})

    # --- gradients ------------------------------------------------------------------------------
    def _gradient_call(self, node: cst.CSTNode):
        return next((g for g in self.analysis.gradient_calls if g.node is node and g.helper is None), None)

    def _gradient_of_chain(self, call: cst.Call) -> bool:
        """``tape.gradient(loss, w)``: a tensor of the variable's shape."""
        gradient = self._gradient_call(call)
        return gradient is not None and gradient.sources is not None and dotted(gradient.sources) == self.chain

    def _position_in_sources(self, call: cst.CSTNode) -> int | None:
        gradient = self._gradient_call(call)
        if gradient is None or not isinstance(gradient.sources, (cst.List, cst.Tuple)):
            return None
        elements = gradient.sources.elements
        if any(isinstance(e, cst.StarredElement) for e in elements):
            return None
        positions = [i for i, e in enumerate(elements) if dotted(e.value) == self.chain]
        return positions[0] if len(positions) == 1 else None

    def _unpacked_gradient(self, statement: cst.CSTNode, name: str) -> bool:
        """``dw, db = tape.gradient(loss, [w, b])``: ``dw`` is the gradient of ``w``."""
        if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
            return False
        assign = statement.body[0]
        if not isinstance(assign, cst.Assign) or len(assign.targets) != 1:
            return False
        target = assign.targets[0].target
        position = self._position_in_sources(assign.value)
        if position is None or not isinstance(target, (cst.Tuple, cst.List)):
            return False
        names = [dotted(e.value) if not isinstance(e, cst.StarredElement) else None for e in target.elements]
        return None not in names and position < len(names) and names[position] == name

    def _gradient_element(self, subscript: cst.Subscript, at: cst.CSTNode) -> bool:
        """``grads[0]`` where ``grads = tape.gradient(loss, [w, b])``."""
        if not isinstance(subscript.value, cst.Name) or len(subscript.slice) != 1:
            return False
        index = subscript.slice[0].slice
        if not isinstance(index, cst.Index) or not isinstance(index.value, cst.Integer):
            return False
        found = bindings(self.analysis, subscript.value.value, at)
        if len(found) != 1 or found[0].kind != "value" or found[0].value is None:
            return False
        return self._position_in_sources(found[0].value) == int(index.value.value)
