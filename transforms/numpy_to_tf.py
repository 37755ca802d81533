"""numpy-to-tf: the computation on the way to the loss stays in TensorFlow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, NamedTuple

import libcst as cst

from gradfix.categories import NON_DIFFERENTIABLE, NUMPY_CONVERSION
from gradfix.lazy import lazy_module
from gradfix.model import Applicability
from gradfix.static.api import ARRAY_METHODS, CONVERSIONS, ELEMENTWISE, NUMPY_FUNCTIONS, PY_FUNCTIONS, REDUCTIONS
from gradfix.static.names import dotted
from gradfix.static.tree import walk
from gradfix.transforms._operator import Context, CutKind, Example, Operator, Rewrite

if TYPE_CHECKING:
    import libcst.matchers as m
else:
    m = lazy_module("libcst.matchers")  # see gradfix.lazy

EQUAL = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))
DTYPE_REASON = "TensorFlow's op computes in the tensor's dtype, where NumPy may have used another"
ARRAYS_REASON = ("TensorFlow computes in the tensor's dtype where NumPy may have used float64, and the values are "
                 "tensors where the code had arrays")
PREDICT_REASON = "; the model now runs on the whole input at once, where predict ran it batch by batch"
TRAINING_REASON = ("; the model now runs in training mode (dropout, batch statistics) on the whole input at once, where "
                   "predict ran it in inference mode, batch by batch")


class NumpyToTf(Operator):
    """Translates NumPy on the way to the loss into TensorFlow: in the statement where the tensor
    left TensorFlow, the statements of its block after it (up to the gradient call) and the
    module's functions and methods they call. `np.*` becomes its TensorFlow twin (`np.mean` ->
    `tf.reduce_mean`, `np.log` -> `tf.math.log`, `np.concatenate` -> `tf.concat`), array methods
    become reductions, `.numpy()`, `.item()` and `float()` are dropped where the value flows on,
    `np.array(t)` keeps the tensor, `tf.constant` of a tensor becomes `tf.convert_to_tensor`, and
    `model.predict(x)` (and `predict_on_batch`) becomes `model(x, training=True)` (or `model(x)` where the gradient is asked
    of a watched input). A `tf.numpy_function(np.f, [x], ...)` of an elementwise NumPy function
    becomes `tf.f(x)`.

    Unsafe: TensorFlow computes in the tensor's dtype where NumPy may have used float64, values
    are tensors where the code had arrays, and `predict` ran the model in inference mode. GF004's
    static fix translates one call at a time with the same table (`numpy_call`).
    """

    name = "numpy-to-tf"
    summary = "NumPy on the way to the loss becomes TensorFlow"
    cuts = (CutKind(NUMPY_CONVERSION), CutKind(NON_DIFFERENTIABLE, frozenset({"EagerPyFunc", "PyFunc"})))
    explained_by = "GF004"

    VALID = [
        # Nothing NumPy to translate.
        Example("""
import tensorflow as tf

loss = tf.reduce_mean(tf.square(pred - y))  # cut
"""),
        # `tf` names something else and TensorFlow has no name here: no op can be written, nothing is rewritten
        Example("""
import numpy as np
from tensorflow import GradientTape

tf = "a label"

def train_step(model, x, y):
    with GradientTape() as tape:
        y_pred = model.predict(x)  # cut
        loss = np.mean(np.square(y - y_pred))
    return tape.gradient(loss, model.trainable_variables)
"""),
    ]

    INVALID = [
        Example("""
import numpy as np
import tensorflow as tf

with tf.GradientTape() as tape:
    pred = model(x, training=True)
    loss = np.mean(np.square(pred.numpy() - y))  # cut
grads = tape.gradient(loss, model.trainable_variables)
""", "", """
import numpy as np
import tensorflow as tf

with tf.GradientTape() as tape:
    pred = model(x, training=True)
    loss = tf.reduce_mean(tf.square(pred - y))  # cut
grads = tape.gradient(loss, model.trainable_variables)
"""),
        # A Keras-only module: `model(x)` needs no name for TensorFlow, and none is imported.
        Example("""
import keras
from tensorflow import GradientTape

def train_step(model, optimizer, x, y):
    with GradientTape() as tape:
        y_pred = model.predict(x)  # cut
        loss = keras.losses.mean_squared_error(y, y_pred)
    return tape.gradient(loss, model.trainable_variables)
""", "", """
import keras
from tensorflow import GradientTape

def train_step(model, optimizer, x, y):
    with GradientTape() as tape:
        y_pred = model(x, training=True)  # cut
        loss = keras.losses.mean_squared_error(y, y_pred)
    return tape.gradient(loss, model.trainable_variables)
"""),
        # No name for TensorFlow, and NumPy to translate: the ops are written under `tf`, imported.
        Example("""
import keras
import numpy as np
from tensorflow import GradientTape

def train_step(model, x, y):
    with GradientTape() as tape:
        y_pred = model.predict(x)  # cut
        loss = np.mean(np.square(y - y_pred))
    return tape.gradient(loss, model.trainable_variables)
""", "", """
import keras
import numpy as np
from tensorflow import GradientTape
import tensorflow as tf

def train_step(model, x, y):
    with GradientTape() as tape:
        y_pred = model(x, training=True)  # cut
        loss = tf.reduce_mean(tf.square(y - y_pred))
    return tape.gradient(loss, model.trainable_variables)
"""),
        # Into a helper the statement calls, and model.predict.
        Example("""
import numpy as np
import tensorflow as tf

def moments(t):
    return np.mean(t, axis=0), np.std(t, axis=0)

@tf.function
def step(x):
    with tf.GradientTape() as tape:
        fake = generator.predict(x)  # cut
        mean, std = moments(fake)
        loss = float(mean.sum()) + std.mean()
    return tape.gradient(loss, generator.trainable_variables)
""", "", """
import numpy as np
import tensorflow as tf

def moments(t):
    return tf.reduce_mean(t, axis=0), tf.math.reduce_std(t, axis=0)

@tf.function
def step(x):
    with tf.GradientTape() as tape:
        fake = generator(x, training=True)  # cut
        mean, std = moments(fake)
        loss = tf.reduce_sum(mean) + tf.reduce_mean(std)
    return tape.gradient(loss, generator.trainable_variables)
"""),
        # Into a method called on self: NumPy over a list of variables.
        Example("""
import numpy as np
import tensorflow as tf

class Trainer:
    def penalty(self, weights):
        return np.sum([np.sum(np.square(w)) for w in weights])

    def step(self, x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(self.model(x) - y)) + self.penalty(self.model.trainable_variables)  # cut
        return tape.gradient(loss, self.model.trainable_variables)
""", "", """
import numpy as np
import tensorflow as tf

class Trainer:
    def penalty(self, weights):
        return tf.reduce_sum([tf.reduce_sum(tf.square(w)) for w in weights])

    def step(self, x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(self.model(x) - y)) + self.penalty(self.model.trainable_variables)  # cut
        return tape.gradient(loss, self.model.trainable_variables)
"""),
        # `model.predict` in the tape; `K.mean` and `keras.ops.mean` are library calls, not array methods.
        Example("""
import keras
import tensorflow as tf
from tensorflow.keras import backend as K

with tf.GradientTape() as tape:
    error = model.predict(x, verbose=0) - y  # cut
    loss_value = K.mean(K.square(error)) + keras.ops.mean(error)
grads = tape.gradient(loss_value, model.trainable_variables)
""", "", """
import keras
import tensorflow as tf
from tensorflow.keras import backend as K

with tf.GradientTape() as tape:
    error = model(x, training=True) - y  # cut
    loss_value = K.mean(K.square(error)) + keras.ops.mean(error)
grads = tape.gradient(loss_value, model.trainable_variables)
"""),
        # Into a method called on another object, which one class of the module alone defines.
        Example("""
import numpy as np
import tensorflow as tf

class Steps:
    def clipped(self, probs):
        return np.clip(np.asarray(probs), 1e-3, 1.0)

steps = Steps()

def loss_fn(labels, probs):
    log_probs = tf.convert_to_tensor(np.log(steps.clipped(probs)))  # cut
    return -tf.reduce_mean(labels * log_probs)
""", "", """
import numpy as np
import tensorflow as tf

class Steps:
    def clipped(self, probs):
        return tf.clip_by_value(probs, 1e-3, 1.0)

steps = Steps()

def loss_fn(labels, probs):
    log_probs = tf.convert_to_tensor(tf.math.log(steps.clipped(probs)))  # cut
    return -tf.reduce_mean(labels * log_probs)
"""),
        Example("""
import numpy as np
import tensorflow as tf

out = tf.numpy_function(np.tanh, [inputs], tf.float32)  # cut
""", "EagerPyFunc", """
import numpy as np
import tensorflow as tf

out = tf.tanh(inputs)  # cut
"""),
    ]

    def pins(self, node: cst.CSTNode, context: Context, op: str) -> bool:
        if op in ("EagerPyFunc", "PyFunc"):
            return isinstance(node, cst.Call) and context.qualname(node.func) in NUMPY_FUNCTIONS | PY_FUNCTIONS
        return isinstance(node, cst.SimpleStatementLine)

    def rewrite(self, node: cst.CSTNode, context: Context) -> Iterator[Rewrite]:
        numpy_names, tf_name = _aliases(context)
        if isinstance(node, cst.Call):
            if tf_name is not None:
                yield from _numpy_function(node, context, tf_name)
            return
        imports = ()
        if tf_name is None:
            # no name for TensorFlow (a Keras-only module): `model.predict(x)` needs none; an op written needs
            # `import tensorflow as tf`, where `tf` names nothing else
            if not context.name_is_free("tf"):
                return
            from libcst.codemod.visitors import ImportItem  # see gradfix.lazy: loaded for a fix that imports only
            tf_name, imports = "tf", (ImportItem("tensorflow", alias="tf"),)
        function = _function_of(node, context)
        scope = _scope_statements(node, context)
        helpers = [f for f in _functions_called(context, scope) if f is not function]
        predicts = any(m.findall(part, m.Call(func=m.Attribute(attr=m.Name("predict") | m.Name("predict_on_batch"))))
                       for part in scope)
        modes = ["inference", "training"] if context.tensor_sources else ["training", "inference"]
        for mode in modes if predicts else modes[:1]:
            transformer = ToTensorFlow(numpy_names, tf_name, mode, modules=set(context.imports.aliases))
            replacements = {part: part.visit(transformer) for part in [*scope, *helpers]}
            if not transformer.changed:
                continue
            training = predicts and mode == "training"
            yield Rewrite(
                "Stay in TensorFlow on the way to the loss: NumPy calls, `.numpy()` and `float()` become TensorFlow ops"
                + (" and `model.predict(x)` becomes `model(x" + (", training=True)`" if training else ")`") if predicts else ""),
                replacements, Applicability.UNSAFE,
                ARRAYS_REASON + (TRAINING_REASON if training else PREDICT_REASON if predicts else ""),
                imports=imports if transformer.wrote_tf else ())


# How many positional arguments each twin in ELEMENTWISE takes as NumPy does: NumPy's next positional
# parameters (`out`, `order`) would become TensorFlow's `name`.
ARITY = {
    **{name: (1, 1) for name in ("square", "sqrt", "exp", "log", "log1p", "expm1", "abs", "absolute", "tanh", "sin",
                                 "cos", "negative", "reciprocal")},
    **{name: (2, 2) for name in ("maximum", "minimum", "power", "add", "subtract", "multiply", "divide", "matmul",
                                 "reshape", "expand_dims")},
    "clip": (3, 3), "where": (3, 3), "transpose": (1, 2), "squeeze": (1, 2), "stack": (1, 2),
}
# Twins whose operands TensorFlow converts to the dtype of the first: a float64 array first fails against a float32 tensor.
FIRST_OPERAND_DTYPE = frozenset({"maximum", "minimum", "power", "add", "subtract", "multiply", "divide", "matmul"})
MATMUL_REASON = "`tf.matmul` needs matrices where `np.matmul` also takes vectors"
DOT_REASON = "`tf.tensordot(a, b, axes=1)` differs from `np.dot` when `b` has more than two dimensions"


class Twin(NamedTuple):
    """``np.<function>(...)`` as TensorFlow: the function (under tf), its arguments, how safe and why not."""

    function: str
    arguments: list[cst.Arg]
    applicability: Applicability
    reason: str = ""


def numpy_call(function: str, args) -> Twin | None:
    """``np.<function>(*args)`` as TensorFlow, when its twin takes these arguments and computes the same values."""
    args = list(args)
    if function in REDUCTIONS:
        arguments = reduction_arguments(args)
        return Twin(REDUCTIONS[function], arguments, Applicability.SAFE) if arguments is not None else None
    if function in ELEMENTWISE and args and all(a.keyword is None and not a.star for a in args):
        low, high = ARITY.get(function, (1, 1))
        if not low <= len(args) <= high or (function == "clip" and any(_is_none(a.value) for a in args)):
            return None
        if function == "matmul":
            return Twin(ELEMENTWISE[function], args, Applicability.UNSAFE, MATMUL_REASON)
        return Twin(ELEMENTWISE[function], args, Applicability.SAFE)
    if function == "dot" and len(args) == 2 and all(a.keyword is None and not a.star for a in args):
        return Twin("tensordot", [*args, cst.Arg(cst.Integer("1"), keyword=cst.Name("axes"), equal=EQUAL)],
                    Applicability.UNSAFE, DOT_REASON)
    if function == "concatenate" and args and not any(a.star for a in args):
        arguments = concat_arguments(args)
        return Twin("concat", arguments, Applicability.SAFE) if arguments is not None else None
    return None


def _is_none(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.Name) and node.value == "None"


def reduction_arguments(args, first: cst.Arg | None = None) -> list[cst.Arg] | None:
    """NumPy reduction arguments as TensorFlow's (input, axis, keepdims), or None if some do not carry over."""
    args = list(args)
    if first is not None:
        args = [first, *args]
    if any(a.star for a in args):
        return None
    positional = [a for a in args if a.keyword is None]
    keywords = [a for a in args if a.keyword is not None]
    if len(positional) > 2 or not positional:
        return None
    if any(k.keyword.value not in {"axis", "keepdims"} for k in keywords):
        return None
    if len(positional) == 2 and any(k.keyword.value == "axis" for k in keywords):
        return None
    return args


def concat_arguments(args) -> list[cst.Arg] | None:
    """``np.concatenate(seq, axis=0)`` as ``tf.concat(seq, axis=0)``: NumPy's default axis made explicit."""
    args = list(args)
    positional = [a for a in args if a.keyword is None]
    keywords = {a.keyword.value for a in args if a.keyword is not None}
    if keywords - {"axis"} or len(positional) > 2:
        return None
    if len(positional) == 1 and "axis" not in keywords:
        args.append(cst.Arg(cst.Integer("0"), keyword=cst.Name("axis"), equal=EQUAL))
    return args


def fix_commas(args: list[cst.Arg]) -> list[cst.Arg]:
    fixed = []
    for index, arg in enumerate(args):
        last = index == len(args) - 1
        if last:
            fixed.append(arg.with_changes(comma=cst.MaybeSentinel.DEFAULT))
        elif arg.comma is cst.MaybeSentinel.DEFAULT:
            fixed.append(arg.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))))
        else:
            fixed.append(arg)
    return fixed


def attribute_chain(dotted_name: str) -> cst.BaseExpression:
    parts = dotted_name.split(".")
    node: cst.BaseExpression = cst.Name(parts[0])
    for part in parts[1:]:
        node = cst.Attribute(value=node, attr=cst.Name(part))
    return node


class ToTensorFlow(cst.CSTTransformer):
    """NumPy calls, conversions and array methods in the nodes it is given, as TensorFlow."""

    def __init__(self, numpy_names: set[str], tf_name: str, predict: str | None, modules: set[str] = frozenset()):
        self.numpy_names = numpy_names
        self.tf = tf_name
        # names bound by imports: `K.mean(x)` and `keras.ops.mean(x)` are library calls, not array methods of K
        self.modules = set(modules) | set(numpy_names) | {tf_name}
        self.predict = predict  # how model.predict(x) is rewritten: "training" or "inference"; None: left alone
        self.changed = 0
        self.wrote_tf = False  # a TensorFlow op written: the module must have a name for TensorFlow

    def _tf(self, dotted_name: str, args) -> cst.Call:
        self.changed += 1
        self.wrote_tf = True
        return cst.Call(func=attribute_chain(f"{self.tf}.{dotted_name}"), args=fix_commas(list(args)))

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        func = updated.func
        # np.<name>(...)
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value in self.numpy_names:
            name = func.attr.value
            translated = numpy_call(name, updated.args)
            if translated is not None:
                return self._tf(translated[0], translated[1])
            positional = [a for a in updated.args if a.keyword is None]
            dtype = [a for a in updated.args if a.keyword is not None and a.keyword.value == "dtype"]
            if name in CONVERSIONS and len(positional) == 1 and len(updated.args) == len(positional) + len(dtype):
                value = positional[0].value
                self.changed += 1
                if isinstance(value, (cst.List, cst.Tuple)):
                    self.wrote_tf = True
                    value = cst.Call(func=attribute_chain(f"{self.tf}.stack"), args=[cst.Arg(value)])
                if dtype:
                    return self._tf("cast", [cst.Arg(value), cst.Arg(dtype[0].value)])
                return value
            return updated
        if isinstance(func, cst.Attribute):
            method = func.attr.value
            receiver = func.value
            if _root_name(receiver) in self.modules:
                return updated
            if method in ("numpy", "item") and not updated.args:
                self.changed += 1
                return receiver
            if method in ARRAY_METHODS:
                args = reduction_arguments(updated.args, cst.Arg(receiver))
                return self._tf(REDUCTIONS[method], args) if args is not None else updated
            if method == "reshape" and updated.args and not any(a.keyword for a in updated.args):
                shape = updated.args[0] if len(updated.args) == 1 else cst.Arg(cst.Tuple([cst.Element(a.value) for a in updated.args]))
                return self._tf("reshape", [cst.Arg(receiver), shape])
            if method == "astype" and len(updated.args) == 1:
                return self._tf("cast", [cst.Arg(receiver), updated.args[0]])
            if method in ("predict", "predict_on_batch") and self.predict and updated.args and updated.args[0].keyword is None:
                self.changed += 1
                args = [updated.args[0].with_changes(comma=cst.MaybeSentinel.DEFAULT)]
                if self.predict == "training":
                    args = [updated.args[0].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))),
                            cst.Arg(cst.Name("True"), keyword=cst.Name("training"), equal=EQUAL)]
                return cst.Call(func=receiver, args=args)
            if isinstance(receiver, cst.Name) and receiver.value == self.tf and method == "constant":
                self.changed += 1
                return updated.with_changes(func=func.with_changes(attr=cst.Name("convert_to_tensor")))
        if isinstance(func, cst.Name) and func.value == "float" and len(updated.args) == 1 and not updated.args[0].keyword:
            self.changed += 1
            return updated.args[0].value
        return updated

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.BaseExpression:
        if updated.attr.value == "T" and not (isinstance(updated.value, cst.Name) and updated.value.value in self.numpy_names):
            return self._tf("transpose", [cst.Arg(updated.value)])
        return updated


def _root_name(node: cst.BaseExpression) -> str | None:
    while isinstance(node, cst.Attribute):
        node = node.value
    return node.value if isinstance(node, cst.Name) else None


def _numpy_function(call: cst.Call, context: Context, tf_name: str) -> Iterator[Rewrite]:
    """``tf.numpy_function(np.f, [x], dtype)`` of an elementwise NumPy function: ``tf.f(x)``."""
    args = [a for a in call.args if a.keyword is None]
    if len(args) < 2:
        return
    function = dotted(args[0].value) or ""
    name = function.rpartition(".")[2]
    inputs = args[1].value
    if name in ELEMENTWISE and isinstance(inputs, (cst.List, cst.Tuple)) and len(inputs.elements) == 1:
        new = cst.parse_expression(f"{tf_name}.{ELEMENTWISE[name]}({context.code(inputs.elements[0].value)})")
        yield Rewrite(f"Use `{tf_name}.{ELEMENTWISE[name]}` instead of `{function}` through tf.numpy_function",
                      {call: new}, Applicability.UNSAFE, DTYPE_REASON)


def _aliases(context: Context) -> tuple[set[str], str | None]:
    numpy_names = {local for local, target in context.imports.aliases.items() if target == "numpy"}
    return numpy_names, context.local_name("tensorflow")


def _function_of(node: cst.CSTNode, context: Context) -> cst.FunctionDef | None:
    return next((a for a in context.ancestors(node) if isinstance(a, cst.FunctionDef)), None)


def _functions_called(context: Context, nodes) -> list[cst.FunctionDef]:
    """Functions of this module called by name, methods of the class around the nodes called on ``self``, and
    methods called on another object that one class of the module alone defines (``steps.compute(x)``), from the
    nodes, and from those, two levels deep."""
    defined = {f.name.value: f for f in walk(context.module, cst.FunctionDef) if _function_of(f, context) is None}
    owner = next((a for node in nodes[:1] for a in context.ancestors(node) if isinstance(a, cst.ClassDef)), None)
    methods = {f.name.value: f for f in owner.body.body if isinstance(f, cst.FunctionDef)} if owner is not None else {}
    by_name: dict[str, list[cst.FunctionDef]] = {}
    for cls in walk(context.module, cst.ClassDef):
        for f in cls.body.body if isinstance(cls.body, cst.IndentedBlock) else ():
            if isinstance(f, cst.FunctionDef):
                by_name.setdefault(f.name.value, []).append(f)
    found: list[cst.FunctionDef] = []
    frontier = list(nodes)
    for _ in range(2):
        calls = [c for node in frontier for c in m.findall(node, m.Call())]
        new = [defined[c.func.value] for c in calls if isinstance(c.func, cst.Name) and c.func.value in defined]
        new += [methods[c.func.attr.value] for c in calls
                if m.matches(c.func, m.Attribute(value=m.Name("self"))) and c.func.attr.value in methods]
        new += [by_name[c.func.attr.value][0] for c in calls
                if m.matches(c.func, m.Attribute(value=m.Name())) and not m.matches(c.func.value, m.Name("self"))
                and len(by_name.get(c.func.attr.value, ())) == 1]
        new = [f for f in dict.fromkeys(new) if all(f is not other for other in found)]
        found.extend(new)
        frontier = new
    return found


def _scope_statements(start: cst.CSTNode, context: Context) -> list[cst.CSTNode]:
    """The statement at the cut and the ones after it in its block, up to the gradient call."""
    parent = context.parent(start)
    body = list(getattr(parent, "body", ()) or ())
    if start not in body:
        return [start]
    chosen = []
    for node in body[body.index(start):]:
        if context.end_line is not None and context.lines_of(node)[0] >= context.end_line:
            break
        chosen.append(node)
    return chosen
