"""Respellings of the repair fixtures: the same program, with the same bug, written another way.

Real code spells the same bug in many ways: ``tf.round``, ``tf.math.round``, ``K.round`` or
``keras.ops.round``; ``tf`` imported as ``T`` or by its full name; ``tf.negative(x)`` or ``-x``; the
buggy expression inline, in a helper function, in a method, in a ``tf.function``, in a ``Layer``'s
``call``. A repair that fits only the fixture's spelling repairs few real programs, so each
:class:`Respelling` here rewrites a fixture (LibCST, formatting and comments kept) in ONE surface
form, and :func:`variants` yields every respelling that applies to a fixture.

A respelling must keep the program's meaning: every spelling in :data:`OPS` names a function with
the same meaning and argument order (Keras 3's ``keras.backend`` lost these functions, so ``K`` is
``tf.keras.backend``, the legacy backend real code still uses); a call whose arguments cannot be
mapped exactly, or an ``argmax`` without an explicit axis (the three APIs differ in the default),
is left as it is. Where a run shows that a respelling of one fixture still changes what gets a
gradient, the pair is listed in :data:`NOT_EQUIVALENT` with the reason, and :func:`variants` leaves
it out.

The break line (``# break:`` in the fixture's ``.expected``) tells the placement respellings which
statement holds the buggy expression.
"""

from __future__ import annotations

import builtins
import pathlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import libcst as cst
import libcst.matchers as m
from fixture_cases import RepairCase, repair_cases
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider

SPELLING, IMPORT, OPERATOR, PLACEMENT = "spelling", "import", "operator", "placement"


# -- the API table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    """One TensorFlow function and its spellings with the same meaning and the same argument order.

    ``params`` are TensorFlow's parameter names; ``backend``/``ops`` are (name, parameter names) in
    ``tf.keras.backend`` and ``keras.ops``, or None where there is no function with the same meaning.
    ``required`` are parameters that must be passed for the spellings to agree (their defaults differ).
    """

    name: str
    tf_paths: tuple[str, ...]  # spellings under ``tf``: "round", "math.round"
    params: tuple[str, ...]
    backend: tuple[str, tuple[str, ...]] | None
    ops: tuple[str, tuple[str, ...]] | None
    required: tuple[str, ...] = ()
    operator: str | None = None  # the infix or prefix operator with the same meaning


def _unary(name: str, *, nn: bool = False, math_only: bool = False, ops_name: str | None = None) -> Op:
    paths = ("math." + name,) if math_only else (name, "math." + name)
    if nn:
        paths += ("nn." + name,)
    return Op(name, paths, ("x",), (name, ("x",)), (ops_name or name, ("x",)))


OPS: tuple[Op, ...] = (
    _unary("round"), _unary("square"), _unary("sqrt"), _unary("exp"), _unary("abs"),
    _unary("tanh", nn=True), _unary("sigmoid", nn=True), _unary("log", math_only=True),
    Op("reduce_mean", ("reduce_mean", "math.reduce_mean"), ("input_tensor", "axis", "keepdims"),
       ("mean", ("x", "axis", "keepdims")), ("mean", ("x", "axis", "keepdims"))),
    Op("reduce_sum", ("reduce_sum", "math.reduce_sum"), ("input_tensor", "axis", "keepdims"),
       ("sum", ("x", "axis", "keepdims")), ("sum", ("x", "axis", "keepdims"))),
    Op("reduce_max", ("reduce_max", "math.reduce_max"), ("input_tensor", "axis", "keepdims"),
       ("max", ("x", "axis", "keepdims")), ("max", ("x", "axis", "keepdims"))),
    # tf.argmax defaults to axis 0, K.argmax to -1, keras.ops.argmax to the flattened tensor
    Op("argmax", ("argmax", "math.argmax"), ("input", "axis"), ("argmax", ("x", "axis")), ("argmax", ("x", "axis")),
       required=("axis",)),
    Op("one_hot", ("one_hot",), ("indices", "depth"), ("one_hot", ("indices", "num_classes")),
       ("one_hot", ("x", "num_classes"))),
    Op("cast", ("cast",), ("x", "dtype"), ("cast", ("x", "dtype")), ("cast", ("x", "dtype"))),
    Op("stop_gradient", ("stop_gradient",), ("input",), ("stop_gradient", ("variables",)),
       ("stop_gradient", ("variable",))),
    Op("softmax", ("nn.softmax", "math.softmax"), ("logits", "axis"), ("softmax", ("x", "axis")),
       ("softmax", ("x", "axis"))),
    Op("greater", ("greater", "math.greater"), ("x", "y"), ("greater", ("x", "y")), ("greater", ("x1", "x2")),
       operator=">"),
    Op("less", ("less", "math.less"), ("x", "y"), ("less", ("x", "y")), ("less", ("x1", "x2")), operator="<"),
    Op("greater_equal", ("greater_equal", "math.greater_equal"), ("x", "y"), ("greater_equal", ("x", "y")),
       ("greater_equal", ("x1", "x2")), operator=">="),
    Op("less_equal", ("less_equal", "math.less_equal"), ("x", "y"), ("less_equal", ("x", "y")),
       ("less_equal", ("x1", "x2")), operator="<="),
    Op("maximum", ("maximum", "math.maximum"), ("x", "y"), ("maximum", ("x", "y")), ("maximum", ("x1", "x2"))),
    Op("minimum", ("minimum", "math.minimum"), ("x", "y"), ("minimum", ("x", "y")), ("minimum", ("x1", "x2"))),
    Op("pow", ("pow", "math.pow"), ("x", "y"), ("pow", ("x", "a")), ("power", ("x1", "x2")), operator="**"),
    Op("ones_like", ("ones_like",), ("input", "dtype"), ("ones_like", ("x", "dtype")), ("ones_like", ("x", "dtype"))),
    Op("zeros_like", ("zeros_like",), ("input", "dtype"), ("zeros_like", ("x", "dtype")),
       ("zeros_like", ("x", "dtype"))),
    Op("clip_by_value", ("clip_by_value",), ("t", "clip_value_min", "clip_value_max"),
       ("clip", ("x", "min_value", "max_value")), ("clip", ("x", "x_min", "x_max"))),
    Op("expand_dims", ("expand_dims",), ("input", "axis"), ("expand_dims", ("x", "axis")),
       ("expand_dims", ("x", "axis")), required=("axis",)),
    # K.ones/K.zeros make variables, not tensors: no backend spelling
    Op("ones", ("ones",), ("shape", "dtype"), None, ("ones", ("shape", "dtype"))),
    Op("zeros", ("zeros",), ("shape", "dtype"), None, ("zeros", ("shape", "dtype"))),
    Op("add", ("add", "math.add"), ("x", "y"), None, ("add", ("x1", "x2")), operator="+"),
    Op("subtract", ("subtract", "math.subtract"), ("x", "y"), None, ("subtract", ("x1", "x2")), operator="-"),
    Op("multiply", ("multiply", "math.multiply"), ("x", "y"), None, ("multiply", ("x1", "x2")), operator="*"),
    Op("divide", ("divide", "math.divide"), ("x", "y"), None, ("divide", ("x1", "x2")), operator="/"),
    Op("negative", ("negative", "math.negative"), ("x",), None, ("negative", ("x",)), operator="-x"),
)

BACKEND_MODULE = "tensorflow.keras"  # `from tensorflow.keras import backend as K`: the legacy backend
BACKEND_ALIAS = "K"


# -- reading a module -----------------------------------------------------------------------------


def dotted(node: cst.BaseExpression) -> str | None:
    """``tf.math.round`` for the attribute chain, None for anything else."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        head = dotted(node.value)
        return f"{head}.{node.attr.value}" if head else None
    return None


def expression(text: str) -> cst.BaseExpression:
    return cst.parse_expression(text)


@dataclass(frozen=True)
class Imports:
    """The names a module binds to the libraries the respellings read and write."""

    tf: str | None  # the name `import tensorflow [as X]` binds
    backend: str | None  # a name bound to tf.keras.backend
    keras: bool  # `import keras`
    bound: frozenset[str]  # every name bound anywhere in the module, to avoid clashes

    @classmethod
    def of(cls, module: cst.Module) -> Imports:
        reader = _ImportsAndNames()
        module.visit(reader)
        return cls(reader.tf, reader.backend, reader.keras, frozenset(reader.names))


class _ImportsAndNames(cst.CSTVisitor):
    """One walk over a module: what it imports, and every name it spells as a name (attribute names,
    keywords and imported module paths are not names; the names imports bind are)."""

    def __init__(self) -> None:
        self.tf: str | None = None
        self.backend: str | None = None
        self.keras = False
        self.names: set[str] = set()

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)
        return False

    def visit_Arg(self, node: cst.Arg) -> bool:
        node.value.visit(self)
        return False

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)

    def visit_Import(self, node: cst.Import) -> bool:
        for alias in node.names:
            name = dotted(alias.name)
            local = alias.asname.name.value if alias.asname else name.split(".")[0]
            self.names.add(local)
            if name == "tensorflow":
                self.tf = local
            elif name == "keras" and local == "keras":
                self.keras = True
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        if isinstance(node.names, cst.ImportStar):
            return False
        module_name = dotted(node.module) if node.module else None
        for alias in node.names:
            local = alias.asname.name.value if alias.asname else alias.name.value
            self.names.add(local)
            if module_name in ("tensorflow.keras", "tensorflow.python.keras") and alias.name.value == "backend":
                self.backend = local
        return False


class _Nodes(cst.CSTVisitor):
    def __init__(self) -> None:
        self.nodes: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.nodes.append(node)
        return True


def _walk(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """The node and every node under it, parents first (one traversal: ``children`` re-walks each subtree)."""
    collector = _Nodes()
    node.visit(collector)
    return iter(collector.nodes)


# -- the respelling ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Respelling:
    """One surface form: ``rewrite(module, break_line)`` returns the respelled module, or None where the
    form does not apply (nothing to respell, or a name it needs is taken)."""

    kind: str
    family: str
    rewrite: Callable[[cst.Module, int | None], cst.Module | None]
    doc: str


@dataclass(frozen=True)
class Variant:
    case: RepairCase
    respelling: Respelling
    source: str

    @property
    def kind(self) -> str:
        return self.respelling.kind

    @property
    def id(self) -> str:
        return f"{self.case.id}[{self.kind}]"


# -- API spelling ------------------------------------------------------------------------------------


def _spelling_of(call: cst.Call, imports: Imports) -> tuple[Op, str] | None:
    """(op, current spelling: "tf", "math", "nn", "backend" or "ops") of a call to a function in the table."""
    name = dotted(call.func)
    if name is None:
        return None
    if imports.tf and name.startswith(imports.tf + "."):
        path = name[len(imports.tf) + 1:]
        for op in OPS:
            if path in op.tf_paths:
                return op, path.split(".")[0] if "." in path else "tf"
        return None
    if imports.backend and name.startswith(imports.backend + "."):
        rest = name[len(imports.backend) + 1:]
        for op in OPS:
            if op.backend and op.backend[0] == rest:
                return op, "backend"
    if imports.keras and name.startswith("keras.ops."):
        rest = name[len("keras.ops."):]
        for op in OPS:
            if op.ops and op.ops[0] == rest:
                return op, "ops"
    return None


def _params_of(op: Op, spelling: str) -> tuple[str, ...]:
    if spelling == "backend":
        return op.backend[1]
    if spelling == "ops":
        return op.ops[1]
    return op.params


def _mapped_args(call: cst.Call, source: tuple[str, ...], target: tuple[str, ...], required: tuple[str, ...],
                 tf_params: tuple[str, ...]) -> list[cst.Arg] | None:
    """The call's arguments for the target spelling (same positions, keywords renamed), or None."""
    given: set[int] = set()
    args = []
    for position, arg in enumerate(call.args):
        if arg.star:
            return None
        if arg.keyword is None:
            if position >= len(target):
                return None
            given.add(position)
            args.append(arg)
            continue
        if arg.keyword.value not in source:
            return None
        index = source.index(arg.keyword.value)
        if index >= len(target):
            return None
        given.add(index)
        args.append(arg.with_changes(keyword=cst.Name(target[index])))
    if any(tf_params.index(name) not in given for name in required):
        return None
    return args


class _Respell(cst.CSTTransformer):
    def __init__(self, imports: Imports, target: str, tf_name: str):
        self.imports = imports
        self.target = target  # "tf", "math", "backend", "ops"
        self.tf_name = tf_name
        self.changed = False

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        found = _spelling_of(updated, self.imports)
        if found is None:
            return updated
        op, spelling = found
        if spelling == self.target:
            return updated
        if self.target == "tf":
            # the top-level name, or the first module that has it (tf.math.log, tf.nn.softmax)
            paths = sorted(op.tf_paths, key=lambda path: "." in path)
            func = f"{self.tf_name}.{paths[0]}"
            if spelling != "tf" and func == dotted(updated.func):
                return updated
        elif self.target == "math":
            func = f"{self.tf_name}.math.{op.name}" if f"math.{op.name}" in op.tf_paths else None
        elif self.target == "backend":
            func = f"{BACKEND_ALIAS}.{op.backend[0]}" if op.backend else None
        else:
            func = f"keras.ops.{op.ops[0]}" if op.ops else None
        if func is None:
            return updated
        target_params = op.params if self.target in ("tf", "math") else _params_of(op, self.target)
        args = _mapped_args(updated, _params_of(op, spelling), target_params, op.required, op.params)
        if args is None:
            return updated
        self.changed = True
        return updated.with_changes(func=expression(func), args=args)


def _respell_api(target: str) -> Callable[[cst.Module, int | None], cst.Module | None]:
    def rewrite(module: cst.Module, _break: int | None) -> cst.Module | None:
        imports = Imports.of(module)
        if imports.tf is None:
            return None
        if target == "backend" and imports.backend is None and BACKEND_ALIAS in imports.bound:
            return None
        if target == "backend" and imports.backend not in (None, BACKEND_ALIAS):
            return None
        transformer = _Respell(imports, target, imports.tf)
        out = module.visit(transformer)
        if not transformer.changed:
            return None
        if target == "backend":
            out = _add_import(out, BACKEND_MODULE, "backend", BACKEND_ALIAS)
        elif target == "ops" and not imports.keras:
            out = _add_import(out, "keras")
        return out

    return rewrite


def _add_import(module: cst.Module, name: str, obj: str | None = None, asname: str | None = None) -> cst.Module:
    context = CodemodContext()
    AddImportsVisitor.add_needed_import(context, name, obj, asname)
    return AddImportsVisitor(context).transform_module(module)


# -- import form -----------------------------------------------------------------------------------


class _Rename(cst.CSTTransformer):
    """Renames every reference to a module-level name (not attribute names, not keywords)."""

    def __init__(self, old: str, new: str):
        self.old, self.new = old, new
        self.skip: set[int] = set()

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self.skip.add(id(node.attr))

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:
            self.skip.add(id(node.keyword))

    def visit_Import(self, node: cst.Import) -> bool:
        return False  # the import is rewritten by the respelling itself

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return False  # `from tensorflow.keras import x` names a module path, not the alias

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
        if original.value == self.old and id(original) not in self.skip:
            return updated.with_changes(value=self.new)
        return updated


def _tf_import_as(new: str | None) -> Callable[[cst.Module, int | None], cst.Module | None]:
    """``import tensorflow as tf`` -> ``import tensorflow as T`` (new="T") or ``import tensorflow`` (new=None)."""

    def rewrite(module: cst.Module, _break: int | None) -> cst.Module | None:
        imports = Imports.of(module)
        local = new or "tensorflow"
        if imports.tf is None or imports.tf == local or local in imports.bound:
            return None

        class Alias(cst.CSTTransformer):
            def leave_ImportAlias(self, original: cst.ImportAlias, updated: cst.ImportAlias) -> cst.ImportAlias:
                if dotted(updated.name) == "tensorflow":
                    return updated.with_changes(asname=cst.AsName(name=cst.Name(new)) if new else None)
                return updated

        return module.visit(Alias()).visit(_Rename(imports.tf, local))

    return rewrite


def _keras_standalone(module: cst.Module, _break: int | None) -> cst.Module | None:
    """``tf.keras.layers.Dense`` -> ``keras.layers.Dense`` with ``import keras`` (Keras 3 is what tf.keras is).

    ``tf.keras.backend`` stays: Keras 3's ``keras.backend`` is not the legacy backend."""
    imports = Imports.of(module)
    if imports.tf is None or ("keras" in imports.bound and not imports.keras):
        return None
    prefix = imports.tf + ".keras."
    changed = False

    class Standalone(cst.CSTTransformer):
        def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.BaseExpression:
            nonlocal changed
            name = dotted(updated)
            if name and name.startswith(prefix) and name.count(".") == 2 and not name.startswith(prefix + "backend"):
                changed = True
                return expression("keras." + name[len(prefix):])
            return updated

        def leave_ImportFrom(self, original: cst.ImportFrom, updated: cst.ImportFrom) -> cst.ImportFrom:
            nonlocal changed
            name = dotted(updated.module) if updated.module else None
            if name and name.startswith("tensorflow.keras.") and not name.startswith("tensorflow.keras.backend"):
                changed = True
                return updated.with_changes(module=expression(name[len("tensorflow."):]))
            return updated

    out = module.visit(Standalone())
    if not changed:
        return None
    return out if imports.keras else _add_import(out, "keras")


def _qualified_keras_names(module: cst.Module, _break: int | None) -> cst.Module | None:
    """``from tensorflow.keras.layers import Dense`` + ``Dense(8)`` -> ``tf.keras.layers.Dense(8)``."""
    imports = Imports.of(module)
    if imports.tf is None:
        return None
    qualified: dict[str, str] = {}
    for node in module.body:
        for small in node.body if isinstance(node, cst.SimpleStatementLine) else ():
            if isinstance(small, cst.ImportFrom) and small.module and not isinstance(small.names, cst.ImportStar):
                name = dotted(small.module)
                if name and name.startswith("tensorflow.keras.") and all(a.asname is None for a in small.names):
                    for alias in small.names:
                        qualified[alias.name.value] = f"{imports.tf}.{name[len('tensorflow.'):]}.{alias.name.value}"
    if not qualified:
        return None

    class Drop(cst.CSTTransformer):
        def leave_SimpleStatementLine(self, original, updated):
            kept = [s for s in updated.body if not (isinstance(s, cst.ImportFrom) and s.module
                                                     and (dotted(s.module) or "").startswith("tensorflow.keras."))]
            if len(kept) == len(updated.body):
                return updated
            return updated.with_changes(body=kept) if kept else cst.RemoveFromParent()

    out = module.visit(Drop())
    for name, path in qualified.items():
        out = out.visit(_Qualify(name, path))
    return out


class _Qualify(_Rename):
    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        if original.value == self.old and id(original) not in self.skip:
            return expression(self.new)
        return updated


def _from_tensorflow_math(module: cst.Module, _break: int | None) -> cst.Module | None:
    """``tf.math.log(x)``/``tf.round(x)`` -> ``math.log(x)``/``math.round(x)`` with ``from tensorflow import math``."""
    imports = Imports.of(module)
    if imports.tf is None or "math" in imports.bound:
        return None
    changed = False

    class FromMath(cst.CSTTransformer):
        def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
            nonlocal changed
            found = _spelling_of(updated, imports)
            if found is None or found[1] not in ("tf", "math") or f"math.{found[0].name}" not in found[0].tf_paths:
                return updated
            changed = True
            return updated.with_changes(func=expression(f"math.{found[0].name}"))

    out = module.visit(FromMath())
    return _add_import(out, "tensorflow", "math") if changed else None


# -- operators and calls ----------------------------------------------------------------------------

_ATOMS = (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.Integer, cst.Float, cst.SimpleString)
_BINARY = {"+": cst.Add, "-": cst.Subtract, "*": cst.Multiply, "/": cst.Divide, "**": cst.Power}
_COMPARE = {">": cst.GreaterThan, "<": cst.LessThan, ">=": cst.GreaterThanEqual, "<=": cst.LessThanEqual}


def _operand(node: cst.BaseExpression) -> cst.BaseExpression:
    if isinstance(node, _ATOMS) or node.lpar:
        return node
    return node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def _parenthesized(node: cst.BaseExpression) -> cst.BaseExpression:
    return node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def _calls_to_operators(module: cst.Module, _break: int | None) -> cst.Module | None:
    """``tf.subtract(a, b)`` -> ``(a - b)``, ``tf.greater(a, b)`` -> ``(a > b)``, ``tf.negative(a)`` -> ``(-a)``."""
    imports = Imports.of(module)
    changed = False

    class Operators(cst.CSTTransformer):
        def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
            nonlocal changed
            found = _spelling_of(updated, imports)
            if found is None or found[0].operator is None:
                return updated
            op = found[0]
            args = updated.args
            if any(a.keyword or a.star for a in args) or len(args) != len(op.params):
                return updated
            changed = True
            values = [_operand(a.value) for a in args]
            if op.operator == "-x":
                return _parenthesized(cst.UnaryOperation(cst.Minus(), values[0]))
            if op.operator in _COMPARE:
                return _parenthesized(cst.Comparison(values[0], [cst.ComparisonTarget(
                    _COMPARE[op.operator](), values[1])]))
            return _parenthesized(cst.BinaryOperation(values[0], _BINARY[op.operator](), values[1]))

    out = module.visit(Operators())
    return out if changed else None


def _literal(node: cst.BaseExpression) -> bool:
    return isinstance(node, (cst.Integer, cst.Float, cst.List, cst.Tuple, cst.SimpleString, cst.Dict, cst.Set))


class _OperatorsToCalls(cst.CSTTransformer):
    """Operators inside the chosen statements -> ``tf`` calls (not where an operand is a literal
    container or both are numbers: those are Python arithmetic, not tensor ops)."""

    NAMES = {cst.Add: "add", cst.Subtract: "subtract", cst.Multiply: "multiply", cst.Divide: "divide",
             cst.Power: "pow"}
    COMPARE = {cst.GreaterThan: "greater", cst.LessThan: "less", cst.GreaterThanEqual: "greater_equal",
               cst.LessThanEqual: "less_equal"}

    def __init__(self, tf: str, inside: Callable[[cst.CSTNode], bool]):
        self.tf = tf
        self.inside = inside
        self.depth = 0
        self.changed = False

    def visit_BaseSmallStatement(self, node) -> None:
        if self.inside(node):
            self.depth += 1

    def leave_BaseSmallStatement(self, original, updated):
        if self.inside(original):
            self.depth -= 1
        return updated

    def visit_Lambda(self, node) -> bool:
        return False

    def _call(self, name: str, *values: cst.BaseExpression) -> cst.Call:
        self.changed = True
        return cst.Call(expression(f"{self.tf}.{name}"), [cst.Arg(_strip(v)) for v in values])

    def leave_BinaryOperation(self, original, updated) -> cst.BaseExpression:
        name = self.NAMES.get(type(updated.operator))
        if not self.depth or name is None or _literal(updated.left) and _literal(updated.right) \
                or any(isinstance(v, (cst.List, cst.Tuple, cst.SimpleString)) for v in (updated.left, updated.right)):
            return updated
        return self._call(name, updated.left, updated.right).with_changes(lpar=updated.lpar, rpar=updated.rpar)

    def leave_UnaryOperation(self, original, updated) -> cst.BaseExpression:
        if not self.depth or not isinstance(updated.operator, cst.Minus) or _literal(updated.expression):
            return updated
        return self._call("negative", updated.expression).with_changes(lpar=updated.lpar, rpar=updated.rpar)

    def leave_Comparison(self, original, updated) -> cst.BaseExpression:
        if not self.depth or len(updated.comparisons) != 1:
            return updated
        target = updated.comparisons[0]
        name = self.COMPARE.get(type(target.operator))
        if name is None or _literal(updated.left) and _literal(target.comparator):
            return updated
        return self._call(name, updated.left, target.comparator).with_changes(lpar=updated.lpar, rpar=updated.rpar)


# each statement keeps its own small-statement hooks
for _kind in ("Assign", "AugAssign", "AnnAssign", "Return", "Expr"):
    setattr(_OperatorsToCalls, f"visit_{_kind}", _OperatorsToCalls.visit_BaseSmallStatement)
    setattr(_OperatorsToCalls, f"leave_{_kind}", _OperatorsToCalls.leave_BaseSmallStatement)


def _strip(node: cst.BaseExpression) -> cst.BaseExpression:
    return node.with_changes(lpar=[], rpar=[]) if node.lpar and not isinstance(node, cst.Tuple) else node


def _operators_to_calls(module: cst.Module, break_line: int | None) -> cst.Module | None:
    """``a - b`` -> ``tf.subtract(a, b)``, ``-a`` -> ``tf.negative(a)`` in the break statement and in the
    statements a ``GradientTape`` records."""
    imports = Imports.of(module)
    if imports.tf is None:
        return None
    wrapper = MetadataWrapper(module)
    positions = wrapper.resolve(PositionProvider)
    parents = wrapper.resolve(ParentNodeProvider)
    break_statement = _statement_at(wrapper.module, positions, break_line)

    def under_tape(node: cst.CSTNode) -> bool:
        while node in parents:
            node = parents[node]
            if isinstance(node, cst.With) and any(
                    "GradientTape" in (dotted(i.item.func) or "") for i in node.items if isinstance(i.item, cst.Call)):
                return True
        return False

    def inside(node: cst.CSTNode) -> bool:
        line = parents.get(node)
        return line is break_statement or under_tape(node)

    transformer = _OperatorsToCalls(imports.tf, inside)
    out = wrapper.module.visit(transformer)
    return out if transformer.changed else None


# -- where the buggy expression sits ------------------------------------------------------------------


def _statement_at(module: cst.Module, positions, line: int | None) -> cst.SimpleStatementLine | None:
    if line is None:
        return None
    for node in _walk(module):
        if isinstance(node, cst.SimpleStatementLine) and positions[node].start.line == line:
            return node
    return None


def _buggy_expression(statement: cst.SimpleStatementLine) -> tuple[cst.BaseExpression, tuple[str, ...]] | None:
    """The expression the statement computes, and the names its enclosing lambda binds if the expression
    is a lambda's body (``Lambda(lambda q: tf.argmax(q, 2))``: the body sits in the lambda)."""
    if len(statement.body) != 1:
        return None
    small = statement.body[0]
    value = getattr(small, "value", None)
    if not isinstance(small, (cst.Assign, cst.AnnAssign, cst.AugAssign, cst.Return, cst.Expr)) or value is None:
        return None
    lambdas = [n for n in _walk(value) if isinstance(n, cst.Lambda)]
    if len(lambdas) == 1:
        if not _plain_parameters(lambdas[0].params):
            return None
        return lambdas[0].body, tuple(p.name.value for p in lambdas[0].params.params)
    return value, ()


def _plain_parameters(params: cst.Parameters) -> bool:
    """Only positional-or-keyword parameters (no ``*``, ``**``, keyword-only or positional-only ones)."""
    return not (isinstance(params.star_arg, (cst.Param, cst.ParamStar)) or params.kwonly_params
                or params.star_kwarg or params.posonly_params)


_BUILTINS = frozenset(dir(builtins))


def _free_names(expr: cst.BaseExpression, skip: set[str]) -> list[str]:
    """Names the expression reads that a helper must take as parameters, in order of first reading."""
    bound_inside: set[str] = set()
    for node in _walk(expr):
        if isinstance(node, cst.Lambda):
            bound_inside |= {p.name.value for p in node.params.params}
        elif isinstance(node, cst.CompFor):
            bound_inside |= {n.value for n in _walk(node.target) if isinstance(n, cst.Name)}
    not_read: set[int] = set()
    for node in _walk(expr):
        if isinstance(node, cst.Attribute):
            not_read.add(id(node.attr))
        elif isinstance(node, cst.Arg) and node.keyword is not None:
            not_read.add(id(node.keyword))
        elif isinstance(node, cst.Param):
            not_read.add(id(node.name))
    names: list[str] = []
    for node in _walk(expr):
        if isinstance(node, cst.Name) and id(node) not in not_read and node.value not in names \
                and node.value not in bound_inside and node.value not in skip and node.value not in _BUILTINS:
            names.append(node.value)
    return names


def _unsafe_to_move(expr: cst.BaseExpression) -> bool:
    return any(isinstance(n, (cst.Yield, cst.Await, cst.NamedExpr)) or (isinstance(n, cst.Name) and n.value == "super")
               for n in _walk(expr))


def _helper_name(statement: cst.SimpleStatementLine, taken: frozenset[str]) -> str:
    small = statement.body[0]
    stem = "value"
    if isinstance(small, cst.Assign):
        target = small.targets[0].target
        names = [n.value for n in _walk(target) if isinstance(n, cst.Name)]
        stem = names[-1] if names else stem
    elif isinstance(small, (cst.AnnAssign, cst.AugAssign)):
        names = [n.value for n in _walk(small.target) if isinstance(n, cst.Name)]
        stem = names[-1] if names else stem
    name = f"compute_{stem}".lower()
    while name in taken:
        name += "_"
    return name


class _Replace(cst.CSTTransformer):
    def __init__(self, old: cst.CSTNode, new: cst.CSTNode):
        self.old, self.new = old, new

    def on_leave(self, original, updated):
        return self.new if original is self.old else updated


def _module_imports(module: cst.Module) -> set[str]:
    names: set[str] = set()
    for statement in module.body:
        for small in statement.body if isinstance(statement, cst.SimpleStatementLine) else ():
            if isinstance(small, cst.Import):
                names |= {a.asname.name.value if a.asname else dotted(a.name).split(".")[0] for a in small.names}
            elif isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
                names |= {a.asname.name.value if a.asname else a.name.value for a in small.names}
    return names


def _extract(where: str) -> Callable[[cst.Module, int | None], cst.Module | None]:
    """The break statement's expression moved into a module-level helper function (``function``), the same
    helper under ``@tf.function`` (``tf-function``), or a method (``method``: of the enclosing class if the
    statement is in a method, else of a small module-level object)."""

    def rewrite(module: cst.Module, break_line: int | None) -> cst.Module | None:
        imports = Imports.of(module)
        wrapper = MetadataWrapper(module)
        positions = wrapper.resolve(PositionProvider)
        parents = wrapper.resolve(ParentNodeProvider)
        tree = wrapper.module
        statement = _statement_at(tree, positions, break_line)
        if statement is None or imports.tf is None:
            return None
        found = _buggy_expression(statement)
        if found is None or _unsafe_to_move(found[0]):
            return None
        expr, lambda_params = found
        chain = [statement]
        while chain[-1] in parents:
            chain.append(parents[chain[-1]])
        top = next(n for n in chain if parents.get(n) is tree)
        functions = [n for n in chain if isinstance(n, cst.FunctionDef)]
        method_of = None
        if functions and functions[0].params.params and functions[0].params.params[0].name.value == "self":
            body = parents.get(functions[0])
            method_of = parents.get(body) if isinstance(body, cst.IndentedBlock) else None
            if not isinstance(method_of, cst.ClassDef):
                method_of = None
        # functions, classes and modules the module defines are read as globals, as the original reads them
        constants = _module_imports(tree) | {n.name.value for n in tree.body if isinstance(n, (cst.FunctionDef, cst.ClassDef))}
        params = [*lambda_params, *(n for n in _free_names(expr, constants) if n not in lambda_params)]
        name = _helper_name(statement, imports.bound)
        returned = cst.SimpleStatementLine([cst.Return(_strip(expr))])
        if where == "method":
            if method_of is not None:
                method_params = ["self", *(p for p in params if p != "self")]
                helper = _function(name, method_params, returned)
                call = cst.Call(expression(f"self.{name}"), [cst.Arg(cst.Name(p)) for p in method_params[1:]])
                at = next(i for i, item in enumerate(method_of.body.body) if item is functions[0])
                rebuilt = method_of.visit(_Replace(expr, call))
                body = list(rebuilt.body.body)
                body.insert(at + 1, helper.with_changes(leading_lines=[cst.EmptyLine(indent=False)]))
                return tree.visit(_Replace(method_of, rebuilt.with_changes(body=rebuilt.body.with_changes(body=body))))
            if {"steps", "Steps"} & imports.bound:
                return None
            added = [cst.ClassDef(cst.Name("Steps"), cst.IndentedBlock([_function(name, ["self", *params], returned)])),
                     cst.parse_statement("steps = Steps()")]
            call = cst.Call(expression(f"steps.{name}"), [cst.Arg(cst.Name(p)) for p in params])
        else:
            decorators = [cst.Decorator(expression(f"{imports.tf}.function"))] if where == "tf-function" else []
            added = [_function(name, params, returned).with_changes(decorators=decorators)]
            call = cst.Call(cst.Name(name), [cst.Arg(cst.Name(p)) for p in params])
        index = next(i for i, node in enumerate(tree.body) if node is top)
        tree = tree.visit(_Replace(expr, call))
        return _insert_before(tree, index, added)

    return rewrite


def _function(name: str, params: list[str], body: cst.BaseStatement) -> cst.FunctionDef:
    return cst.FunctionDef(cst.Name(name), cst.Parameters([cst.Param(cst.Name(p)) for p in params]),
                           cst.IndentedBlock([body]))


def _insert_before(tree: cst.Module, index: int, added: list[cst.BaseStatement]) -> cst.Module:
    """Top-level statements inserted before the index-th one, with blank lines as a formatter would put."""
    blank = [cst.EmptyLine(), cst.EmptyLine()]
    after = tree.body[index]
    comments = [line for line in after.leading_lines if line.comment]
    first = added[0].with_changes(leading_lines=blank)
    rest = [node.with_changes(leading_lines=blank) if isinstance(node, (cst.FunctionDef, cst.ClassDef)) else node
            for node in added[1:]]
    if isinstance(added[-1], (cst.FunctionDef, cst.ClassDef)):
        after = after.with_changes(leading_lines=[*blank, *comments])
    else:
        after = after.with_changes(leading_lines=[cst.EmptyLine(), *comments])
    return tree.with_changes(body=[*tree.body[:index], first, *rest, after, *tree.body[index + 1:]])


def _inline_helpers(module: cst.Module, _break: int | None) -> cst.Module | None:
    """A module-level function whose body is one ``return EXPR``, called with positional arguments, written
    inline at each call (``f(x)`` -> ``(x ** 2)``); the function itself is removed when nothing else reads it.
    Helpers that call helpers are inlined too (a few rounds)."""
    out = None
    for _ in range(4):
        once = _inline_once(out or module)
        if once is None:
            break
        out = once
    return out


def _inline_once(module: cst.Module) -> cst.Module | None:
    singles: dict[str, cst.FunctionDef] = {}
    for node in module.body:
        if isinstance(node, cst.FunctionDef) and not node.decorators and len(node.body.body) == 1 \
                and m.matches(node.body.body[0], m.SimpleStatementLine(body=[m.Return(value=m.DoNotCare())])) \
                and node.body.body[0].body[0].value is not None:
            if _plain_parameters(node.params) and all(p.default is None for p in node.params.params):
                singles[node.name.value] = node
    inlined: set[str] = set()

    class Inline(cst.CSTTransformer):
        def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
            if not isinstance(updated.func, cst.Name) or updated.func.value not in singles:
                return updated
            function = singles[updated.func.value]
            names = [p.name.value for p in function.params.params]
            if len(updated.args) != len(names) or any(a.keyword or a.star for a in updated.args):
                return updated
            body = function.body.body[0].body[0].value
            free = _free_names(body, set())
            if any(n not in names and n in _locals_of(function) for n in free):
                return updated
            out = body
            for name, arg in zip(names, updated.args):
                out = out.visit(_Substitute(name, arg.value))
            inlined.add(function.name.value)
            return _parenthesized(_strip(out)) if not isinstance(out, _ATOMS) else out

    out = module.visit(Inline())
    if not inlined:
        return None

    class Drop(cst.CSTTransformer):
        def leave_FunctionDef(self, original, updated):
            if original.name.value in inlined and _reads(out, original.name.value) == 0:
                return cst.RemoveFromParent()
            return updated

    return out.visit(Drop())


def _locals_of(function: cst.FunctionDef) -> set[str]:
    return {p.name.value for p in function.params.params}


def _reads(module: cst.Module, name: str) -> int:
    """How many times the module reads a name (the def's own name is not a read)."""
    defs = {id(n.name) for n in _walk(module) if isinstance(n, cst.FunctionDef)}
    return sum(1 for n in _walk(module) if isinstance(n, cst.Name) and n.value == name and id(n) not in defs)


class _Substitute(_Rename):
    """A parameter replaced by the argument's expression (parenthesised unless it is an atom)."""

    def __init__(self, old: str, value: cst.BaseExpression):
        super().__init__(old, old)
        self.value = value

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        if original.value == self.old and id(original) not in self.skip:
            return _operand(self.value)
        return updated


def _lambda_as_layer(module: cst.Module, _break: int | None) -> cst.Module | None:
    """``Lambda(fn)`` / ``Lambda(lambda q: BODY)`` -> an instance of a ``Layer`` subclass whose ``call`` does the same."""
    imports = Imports.of(module)
    if imports.tf is None:
        return None
    lambda_names = {"Lambda", f"{imports.tf}.keras.layers.Lambda", "keras.layers.Lambda", "layers.Lambda"}
    classes: list[cst.ClassDef] = []
    taken = set(imports.bound)

    class Replace(cst.CSTTransformer):
        def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
            if dotted(updated.func) not in lambda_names or not updated.args or updated.args[0].keyword:
                return updated
            if any(a.keyword and a.keyword.value not in ("output_shape", "name") for a in updated.args[1:]) \
                    or any(a.keyword is None for a in updated.args[1:]):
                return updated
            function = updated.args[0].value
            if isinstance(function, cst.Lambda):
                params = function.params.params
                if len(params) != 1 or params[0].default or not _plain_parameters(function.params):
                    return updated
                body = cst.SimpleStatementLine([cst.Return(_strip(function.body))])
                parameter = params[0].name.value
                stem = "Lambda"
            else:
                body = cst.SimpleStatementLine([cst.Return(cst.Call(function, [cst.Arg(cst.Name("inputs"))]))])
                parameter = "inputs"
                stem = (dotted(function) or "Lambda").split(".")[-1]
            name = "".join(part[:1].upper() + part[1:] for part in stem.split("_")) + "Layer"
            while name in taken:
                name += "_"
            taken.add(name)
            call = _function("call", ["self", parameter], body)
            classes.append(cst.ClassDef(cst.Name(name), cst.IndentedBlock([call]),
                                        bases=[cst.Arg(expression(f"{imports.tf}.keras.layers.Layer"))]))
            name_arg = [a for a in updated.args[1:] if a.keyword and a.keyword.value == "name"]
            return cst.Call(cst.Name(name), [a.with_changes(comma=cst.MaybeSentinel.DEFAULT) for a in name_arg])

    out = module.visit(Replace())
    if not classes:
        return None
    # the classes go before the first top-level statement that uses them
    index = next(i for i, node in enumerate(out.body) if any(
        isinstance(n, cst.Name) and n.value in {c.name.value for c in classes} for n in _walk(node)))
    return _insert_before(out, index, classes)


def _layer_as_lambda(module: cst.Module, _break: int | None) -> cst.Module | None:
    """A ``Layer`` subclass with nothing but a ``call(self, inputs)`` that reads nothing of ``self`` ->
    the same body as a function, and ``Lambda(function)`` where the class was instantiated."""
    imports = Imports.of(module)
    if imports.tf is None:
        return None
    layer_bases = {f"{imports.tf}.keras.layers.Layer", "keras.layers.Layer", "Layer"}
    functions: dict[str, cst.FunctionDef] = {}
    for node in module.body:
        if not (isinstance(node, cst.ClassDef) and len(node.bases) == 1 and dotted(node.bases[0].value) in layer_bases
                and len(node.body.body) == 1 and isinstance(node.body.body[0], cst.FunctionDef)):
            continue
        call = node.body.body[0]
        params = [p.name.value for p in call.params.params]
        if call.name.value != "call" or call.decorators or len(params) != 2 or not _plain_parameters(call.params):
            continue
        if any(isinstance(n, cst.Name) and n.value == params[0] for n in _walk(call.body)):
            continue
        name = "".join(f"_{c.lower()}" if c.isupper() else c for c in node.name.value).lstrip("_")
        if name in imports.bound:
            continue
        functions[node.name.value] = call.with_changes(
            name=cst.Name(name), params=call.params.with_changes(params=call.params.params[1:]),
            leading_lines=node.leading_lines)
    if not functions:
        return None
    lambda_layer = f"{imports.tf}.keras.layers.Lambda"
    top = {id(node) for node in module.body}
    replaced = False

    class Replace(cst.CSTTransformer):
        def leave_ClassDef(self, original, updated):
            if original.name.value in functions and id(original) in top:
                return functions[original.name.value]
            return updated

        def leave_Call(self, original, updated):
            nonlocal replaced
            if isinstance(updated.func, cst.Name) and updated.func.value in functions and not updated.args:
                replaced = True
                return cst.Call(expression(lambda_layer), [cst.Arg(cst.Name(functions[updated.func.value].name.value))])
            return updated

    out = module.visit(Replace())
    return out if replaced else None


def _loss_function_as_class(module: cst.Module, _break: int | None) -> cst.Module | None:
    """A loss function handed to ``compile(loss=fn)`` -> a ``keras.losses.Loss`` subclass whose ``call`` calls it
    (``compile(loss=FnLoss())``): the loss is then reduced by Keras, which leaves a scalar as it is."""
    imports = Imports.of(module)
    if imports.tf is None:
        return None
    defined = {n.name.value for n in module.body if isinstance(n, cst.FunctionDef)}
    classes: list[cst.ClassDef] = []

    class Replace(cst.CSTTransformer):
        def leave_Arg(self, original, updated):
            if updated.keyword is None or updated.keyword.value != "loss" or not isinstance(updated.value, cst.Name) \
                    or updated.value.value not in defined:
                return updated
            function = updated.value.value
            name = "".join(part[:1].upper() + part[1:] for part in function.split("_")) + "Loss"
            if name in imports.bound:
                return updated
            body = cst.parse_statement(f"return {function}(y_true, y_pred)")
            classes.append(cst.ClassDef(cst.Name(name), cst.IndentedBlock([_function("call", ["self", "y_true", "y_pred"],
                                                                                       body)]),
                                        bases=[cst.Arg(expression(f"{imports.tf}.keras.losses.Loss"))]))
            return updated.with_changes(value=cst.Call(cst.Name(name)))

    out = module.visit(Replace())
    if not classes:
        return None
    index = next(i for i, node in enumerate(out.body) if any(
        isinstance(n, cst.Name) and n.value in {c.name.value for c in classes} for n in _walk(node)))
    return _insert_before(out, index, classes)


_MODEL_CLASSES = ("Model", "Sequential", "keras.Model", "keras.Sequential", "keras.models.Model",
                  "keras.models.Sequential")

_TRAIN_STEP = """
def train_step(self, data):
    x, y = data
    with {tf}.GradientTape() as tape:
        y_pred = self(x, training=True)
        loss = self.compute_loss(x=x, y=y, y_pred=y_pred)
    gradients = tape.gradient(loss, self.trainable_variables)
    self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
    return {{"loss": loss}}
"""


def _fit_as_train_step(module: cst.Module, _break: int | None) -> cst.Module | None:
    """A model trained with ``fit`` made from a subclass of its class that writes out ``train_step`` (the step
    Keras runs by default: forward pass and ``compute_loss`` under a tape, the optimizer's update)."""
    imports = Imports.of(module)
    if imports.tf is None or "TrainStepModel" in imports.bound:
        return None
    fitted = {dotted(n.func.value) for n in _walk(module) if isinstance(n, cst.Call)
              and isinstance(n.func, cst.Attribute) and n.func.attr.value == "fit"}
    classes = {name for name in _MODEL_CLASSES} | {f"{imports.tf}.{name}" for name in _MODEL_CLASSES if "." in name}
    for index, node in enumerate(module.body):
        if not m.matches(node, m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(target=m.Name())],
                                                                     value=m.Call())])):
            continue
        assign = node.body[0]
        base = dotted(assign.value.func)
        if assign.targets[0].target.value not in fitted or base not in classes:
            continue
        step = cst.parse_statement(_TRAIN_STEP.format(tf=imports.tf)).with_changes(leading_lines=[])
        subclass = cst.ClassDef(cst.Name("TrainStepModel"), cst.IndentedBlock([step]),
                                bases=[cst.Arg(assign.value.func)])
        renamed = node.with_changes(body=[assign.with_changes(value=assign.value.with_changes(
            func=cst.Name("TrainStepModel")))])
        out = module.with_changes(body=[*module.body[:index], renamed, *module.body[index + 1:]])
        return _insert_before(out, index, [subclass])
    return None


def _is_tf_function(decorator: cst.Decorator, tf: str) -> bool:
    target = decorator.decorator.func if isinstance(decorator.decorator, cst.Call) else decorator.decorator
    return dotted(target) == f"{tf}.function"


def _records_a_tape(function: cst.FunctionDef) -> bool:
    return any(isinstance(n, cst.Call) and (dotted(n.func) or "").endswith("GradientTape") for n in _walk(function))


def _step_tf_function(add: bool) -> Callable[[cst.Module, int | None], cst.Module | None]:
    """The function that records a tape compiled with ``@tf.function`` (add) or run eagerly (remove the decorator)."""

    def rewrite(module: cst.Module, _break: int | None) -> cst.Module | None:
        imports = Imports.of(module)
        if imports.tf is None:
            return None
        changed = False

        class Decorate(cst.CSTTransformer):
            def leave_FunctionDef(self, original, updated):
                nonlocal changed
                if not _records_a_tape(original):
                    return updated
                compiled = [d for d in updated.decorators if _is_tf_function(d, imports.tf)]
                if add and not compiled and not updated.decorators:
                    changed = True
                    return updated.with_changes(decorators=[cst.Decorator(expression(f"{imports.tf}.function"))])
                if not add and compiled:
                    changed = True
                    return updated.with_changes(decorators=[d for d in updated.decorators if d not in compiled])
                return updated

        out = module.visit(Decorate())
        return out if changed else None

    return rewrite


def _assigned_names(node: cst.CSTNode) -> list[str]:
    """Names a statement binds (assignments, loop and with targets, imports), not inside nested scopes."""
    names: list[str] = []

    def targets(target: cst.CSTNode) -> None:
        if isinstance(target, cst.Name):
            names.append(target.value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                targets(element.value)
        elif isinstance(target, cst.StarredElement):
            targets(target.value)

    def visit(n: cst.CSTNode) -> None:
        if isinstance(n, (cst.FunctionDef, cst.ClassDef, cst.Lambda, cst.ListComp, cst.SetComp, cst.DictComp,
                          cst.GeneratorExp)):
            if isinstance(n, (cst.FunctionDef, cst.ClassDef)):
                names.append(n.name.value)
            return
        if isinstance(n, cst.AssignTarget):
            targets(n.target)
        elif isinstance(n, (cst.AugAssign, cst.AnnAssign)):
            targets(n.target)
        elif isinstance(n, (cst.For,)):
            targets(n.target)
        elif isinstance(n, cst.AsName):
            targets(n.name)
        elif isinstance(n, cst.NamedExpr):
            targets(n.target)
        for child in n.children:
            visit(child)

    visit(node)
    return list(dict.fromkeys(names))


def _loop_in_main(module: cst.Module, _break: int | None) -> cst.Module | None:
    """The top-level loop that trains moved into ``def main():`` (its names declared ``global``, so that every
    name keeps its meaning) and ``main()`` called in its place."""
    if "main" in Imports.of(module).bound:
        return None
    index = next((i for i, node in enumerate(module.body) if isinstance(node, (cst.For, cst.While)) and any(
        isinstance(n, cst.Call) and (dotted(n.func) or "").endswith(("GradientTape", ".fit", "train_step"))
        for n in _walk(node))), None)
    if index is None:
        return None
    loop = module.body[index]
    names = _assigned_names(loop)
    body = [cst.SimpleStatementLine([cst.Global([cst.NameItem(cst.Name(n)) for n in names])])] if names else []
    body.append(loop.with_changes(leading_lines=[]))
    main = cst.FunctionDef(cst.Name("main"), cst.Parameters(), cst.IndentedBlock(body),
                           leading_lines=[*loop.leading_lines, cst.EmptyLine(), cst.EmptyLine()])
    call = cst.parse_statement("main()").with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])
    return module.with_changes(body=[*module.body[:index], main, call, *module.body[index + 1:]])


# -- the catalogue ----------------------------------------------------------------------------------

RESPELLINGS: tuple[Respelling, ...] = (
    Respelling("spelling:tf", SPELLING, _respell_api("tf"), "tf.math.x / tf.nn.x / K.x / keras.ops.x -> tf.x"),
    Respelling("spelling:tf.math", SPELLING, _respell_api("math"), "tf.x -> tf.math.x"),
    Respelling("spelling:K", SPELLING, _respell_api("backend"),
               "tf.x -> K.x with `from tensorflow.keras import backend as K`"),
    Respelling("spelling:keras.ops", SPELLING, _respell_api("ops"), "tf.x -> keras.ops.x with `import keras`"),
    Respelling("import:as-T", IMPORT, _tf_import_as("T"), "import tensorflow as T"),
    Respelling("import:plain", IMPORT, _tf_import_as(None), "import tensorflow; tensorflow.x"),
    Respelling("import:from-math", IMPORT, _from_tensorflow_math, "from tensorflow import math; math.x"),
    Respelling("import:keras", IMPORT, _keras_standalone, "tf.keras.layers.X -> keras.layers.X with `import keras`"),
    Respelling("import:qualified", IMPORT, _qualified_keras_names,
               "from tensorflow.keras.layers import Dense -> tf.keras.layers.Dense"),
    Respelling("operator:infix", OPERATOR, _calls_to_operators, "tf.subtract(a, b) -> a - b, tf.greater -> >"),
    Respelling("operator:calls", OPERATOR, _operators_to_calls, "a - b -> tf.subtract(a, b), -a -> tf.negative(a)"),
    Respelling("placement:function", PLACEMENT, _extract("function"), "the buggy expression in a helper function"),
    Respelling("placement:method", PLACEMENT, _extract("method"), "the buggy expression in a method"),
    Respelling("placement:tf.function", PLACEMENT, _extract("tf-function"),
               "the buggy expression in a helper compiled with tf.function"),
    Respelling("placement:inline", PLACEMENT, _inline_helpers, "one-line helpers written inline"),
    Respelling("placement:Layer.call", PLACEMENT, _lambda_as_layer, "a Lambda layer as a Layer subclass's call"),
    Respelling("placement:Lambda", PLACEMENT, _layer_as_lambda, "a stateless Layer subclass as a Lambda layer"),
    Respelling("placement:compiled-loss-class", PLACEMENT, _loss_function_as_class,
               "a loss function given to compile() as a keras.losses.Loss subclass"),
    Respelling("placement:train_step", PLACEMENT, _fit_as_train_step,
               "a model trained with fit() written with its own train_step"),
    Respelling("placement:step-tf.function", PLACEMENT, _step_tf_function(True),
               "the function that records the tape compiled with tf.function"),
    Respelling("placement:step-eager", PLACEMENT, _step_tf_function(False), "the tf.function step run eagerly"),
    Respelling("placement:main", PLACEMENT, _loop_in_main, "the training loop inside def main()"),
)

KINDS = tuple(r.kind for r in RESPELLINGS)

# (fixture, kind) pairs whose respelling a run showed NOT to keep the bug, and why: left out of variants().
NOT_EQUIVALENT: dict[tuple[str, str], str] = {}


def respell(case: RepairCase, respelling: Respelling, module: cst.Module | None = None) -> str | None:
    """The case's program in the respelling's form, or None where the form does not apply."""
    source = case.program.read_text()
    out = respelling.rewrite(module or cst.parse_module(source), case.break_line)
    if out is None or out.code == source:
        return None
    return out.code


def variants(cases: list[RepairCase] | None = None, *, include_not_equivalent: bool = False) -> list[Variant]:
    """Every respelling that applies to each case, in a fixed order (case, then catalogue)."""
    out = []
    for case in repair_cases() if cases is None else cases:
        out.extend(variant for variant in _variants_of(case)
                   if include_not_equivalent or (case.id, variant.kind) not in NOT_EQUIVALENT)
    return out


_made: dict[tuple[pathlib.Path, str], list[Variant]] = {}


def _variants_of(case: RepairCase) -> list[Variant]:
    """The case's variants, made once per text of its program in a process: pytest imports every test module
    that asks for them while it collects, and making them is most of the collection's time."""
    text = case.program.read_text()
    key = (case.program, text)
    if key not in _made:
        module = cst.parse_module(text)
        _made[key] = [Variant(case, respelling, source) for respelling in RESPELLINGS
                      for source in [respell(case, respelling, module)] if source is not None]
    return _made[key]


def fixable_cases() -> list[RepairCase]:
    """The repair fixtures whose bug has a general fix (``# fix:``)."""
    return [case for case in repair_cases() if case.has_fix]
