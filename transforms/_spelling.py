"""How the program spells an op, and how a repair spells its own code in the same family.

One op has many spellings: ``tf.round``, ``tf.math.round``, ``K.round`` (``tf.keras.backend``),
``keras.ops.round``, a name imported from any of them, a Python operator (``a > b``, ``x // 2``).
``op_type`` names the TensorFlow op a node makes, from the API table in gradfix.static.api, so a
run's op type pins the node whatever its spelling; ``Family`` writes new code the way the original
was written (a ``K.`` expression gets ``K.stop_gradient``), or with TensorFlow, imported if need be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

from gradfix.static.api import ARGMAX, CASTS, COMPARISON_CALLS, INTEGER_DTYPES, ROUNDING, SIGN, STOP_GRADIENT
from gradfix.static.names import dotted
from gradfix.transforms._operator import Context, dotted_prefix

if TYPE_CHECKING:
    from libcst.codemod.visitors import ImportItem

# TensorFlow op types by the bare name of the function that makes them.
_OP_OF_NAME = {
    "round": "Round", "rint": "Rint", "floor": "Floor", "ceil": "Ceil", "sign": "Sign", "argmax": "ArgMax",
    "argmin": "ArgMin", "cast": "Cast", "equal": "Equal", "not_equal": "NotEqual", "greater": "Greater",
    "greater_equal": "GreaterEqual", "less": "Less", "less_equal": "LessEqual", "stop_gradient": "StopGradient",
    "floordiv": "FloorDiv", "floor_div": "FloorDiv", "floor_divide": "FloorDiv",
}
_FLOOR_DIV_CALLS = frozenset({"tensorflow.math.floordiv", "tensorflow.floordiv", "tensorflow.math.floor_div",
                              "keras.ops.floor_divide"})
_CALLS = ARGMAX | ROUNDING | SIGN | COMPARISON_CALLS | CASTS | STOP_GRADIENT | _FLOOR_DIV_CALLS
_OPERATORS = {
    cst.GreaterThan: "Greater", cst.GreaterThanEqual: "GreaterEqual", cst.LessThan: "Less",
    cst.LessThanEqual: "LessEqual", cst.Equal: "Equal", cst.NotEqual: "NotEqual",
}
# Python builtins a tensor answers with an op.
_BUILTINS = {"round": "Round"}
COMPARISONS = frozenset(_OPERATORS.values())
# Comparisons that grow with their left operand (`a > b`); the others (`a < b`) with their right one.
RISING = frozenset({"Greater", "GreaterEqual"})
FALLING = frozenset({"Less", "LessEqual"})


def op_type(node: cst.CSTNode, context: Context) -> str | None:
    """The TensorFlow op ``node`` makes, if it is one the API table knows has no gradient (or a stop_gradient)."""
    if isinstance(node, cst.Comparison) and len(node.comparisons) == 1:
        return _OPERATORS.get(type(node.comparisons[0].operator))
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.FloorDivide):
        return "FloorDiv"
    if not isinstance(node, cst.Call):
        return None
    name = context.qualname(node.func)
    if name is None:
        bare = dotted(node.func)
        if bare in _BUILTINS:
            return _BUILTINS[bare]
        return _local_alias_op(node, context)
    if name not in _CALLS:
        return None
    return _OP_OF_NAME.get(name.rsplit(".", 1)[-1])


def _local_alias_op(call: cst.Call, context: Context) -> str | None:
    """The op of a call through a name the function bound to API functions (``f = K.greater_equal if e else K.less``).

    Every value the name is given must be a function of the table; where they make different ops, the run's op
    picks one (a static rule, which has no run, gets None)."""
    if not isinstance(call.func, cst.Name):
        return None
    scope = next((a for a in context.ancestors(call) if isinstance(a, cst.FunctionDef)), None)
    if scope is None:
        return None
    ops = set()
    for assign in _walk(scope.body, cst.Assign):
        if not any(isinstance(t.target, cst.Name) and t.target.value == call.func.value for t in assign.targets):
            continue
        values = [assign.value.body, assign.value.orelse] if isinstance(assign.value, cst.IfExp) else [assign.value]
        for value in values:
            name = context.qualname(value)
            if name is None or name not in _CALLS:
                return None
            ops.add(_OP_OF_NAME.get(name.rsplit(".", 1)[-1]))
    if len(ops) == 1:
        return ops.pop()
    run_op = context.cut.get("op") if context.cut else None
    return run_op if run_op in ops else None


def _walk(root, kind):
    from gradfix.static.tree import walk

    return walk(root, kind)


def argument(call: cst.Call, position: int, keyword: str) -> cst.BaseExpression | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == keyword:
            return arg.value
    positional = [a for a in call.args if a.keyword is None and not a.star]
    return positional[position].value if position < len(positional) else None


def dtype_word(node: cst.BaseExpression | None, context: Context) -> str | None:
    """``int32`` for ``tf.int32``, ``'int32'`` or ``np.int32``; None when it is not a dtype name."""
    if node is None:
        return None
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    if isinstance(node, cst.Call):  # K.floatx()
        node = node.func
    name = context.qualname(node) or dotted(node)
    return name.rsplit(".", 1)[-1] if name else None


def integer_cast(call: cst.CSTNode, context: Context) -> bool:
    if not isinstance(call, cst.Call) or op_type(call, context) != "Cast":
        return False
    word = dtype_word(argument(call, 1, "dtype"), context)
    return word in INTEGER_DTYPES or word in {"bool", "int"}


def float_cast(call: cst.CSTNode, context: Context) -> bool:
    if not isinstance(call, cst.Call) or op_type(call, context) != "Cast":
        return False
    word = dtype_word(argument(call, 1, "dtype"), context)
    return word is not None and ("float" in word or word in {"half", "double", "floatx"})


@dataclass(frozen=True)
class Family:
    """The spelling family new code is written in, and the expression that reaches its module."""

    kind: str  # "tf", "backend" (tf.keras.backend) or "ops" (keras.ops)
    module: str  # ``tf``, ``K``, ``tf.keras.backend``, ``keras.ops``, ``ops``
    imports: tuple[ImportItem, ...] = ()

    def call(self, function: str, *args: str) -> str:
        return f"{self.module}.{function}({', '.join(args)})"

    def stop_gradient(self, value: str) -> str:
        return self.call("stop_gradient", value)

    def sigmoid(self, value: str) -> str:
        return self.call("sigmoid", value)

    def softmax(self, value: str, axis: str) -> str:
        return self.call("nn.softmax" if self.kind == "tf" else "softmax", value, f"axis={axis}")

    def cast(self, value: str, dtype: str) -> str:
        return self.call("cast", value, dtype)

    def soft_index(self, probabilities: str, soft: str, axis: str) -> str:
        """The softmax-weighted index along ``axis``: a differentiable stand-in for argmax."""
        if self.kind == "tf":
            positions = f"{self.module}.range({self.module}.shape({probabilities})[{axis}], dtype={probabilities}.dtype)"
            return f"{self.module}.reduce_sum({soft} * {positions}, axis={axis})"
        positions = f"({self.call('cumsum', self.call('ones_like', probabilities), f'axis={axis}')} - 1.0)"
        return self.call("sum", f"{soft} * {positions}", f"axis={axis}")


def family_of(node: cst.CSTNode, context: Context) -> Family | None:
    """The family of the call at ``node``; for an operator, a builtin or a bare imported name, that of the
    nearest call around it in the statement, else TensorFlow (imported if need be). None when TensorFlow is
    needed and the name ``tf`` is taken by something else."""
    own = _spelled_family(node, context)
    if own is not None:
        return own
    for ancestor in context.ancestors(node):
        if isinstance(ancestor, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            break
        around = _spelled_family(ancestor, context)
        if around is not None:
            return around
    return tensorflow(context)


def _spelled_family(node: cst.CSTNode, context: Context) -> Family | None:
    if not isinstance(node, cst.Call):
        return None
    name = context.qualname(node.func) or ""
    prefix = dotted_prefix(node.func)
    if prefix is None:
        return None
    if name.startswith("keras.backend."):
        return Family("backend", prefix)
    if name.startswith("keras.ops."):
        return Family("ops", prefix)
    if name.startswith("tensorflow.") and context.imports.aliases.get(prefix.split(".")[0]) == "tensorflow":
        return Family("tf", prefix.split(".")[0])
    return None


def tensorflow(context: Context) -> Family | None:
    local = context.local_name("tensorflow")
    if local is not None:
        return Family("tf", local)
    if context.name_is_free("tf"):
        from libcst.codemod.visitors import ImportItem  # see gradfix.lazy: loaded for a fix that imports only
        return Family("tf", "tf", (ImportItem("tensorflow", alias="tf"),))
    return None


def expression(code: str) -> cst.BaseExpression:
    return cst.parse_expression(code)


_ATOMS = (cst.Name, cst.Attribute, cst.Subscript, cst.Call, cst.Integer, cst.Float)


def atom(node: cst.BaseExpression, context: Context) -> str:
    """The node's code, in parentheses unless it binds tighter than any operator around it."""
    code = context.code(node)
    return code if isinstance(node, _ATOMS) or node.lpar else f"({code})"
