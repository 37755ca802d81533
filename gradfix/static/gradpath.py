"""The path from a gradient's sources to its target, and what cuts it.

A :class:`PathContext` is one place where a gradient is taken: a
``tape.gradient(target, sources)`` call (the region is the tape block), or a
Keras loss function ``(y_true, y_pred)`` (the region is the function body and
``y_pred`` is the source: it carries the variables). Which values carry the
sources is followed along the analysis' reaching definitions: an expression
carries them when it reads a source or a name whose reaching definition does.

A *cut* is an operation through which no gradient flows: ``tf.stop_gradient``
(kind ``"stop"``) or a non-differentiable operation (kind ``"op"``). A source
is *cut* when it reaches the target with the cuts of one kind ignored and no
longer reaches it with them in place; the cuts on its way are then what the
rules report. Module functions called on the path are followed with the
parameters that the arguments carrying the sources fill as their sources.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Callable, Iterator

import libcst as cst

from gradfix.static.analysis import (
    GradientCall,
    ModuleAnalysis,
    Statement,
    argument,
    attribute_values,
    attributes_assigned,
    children,
    statement_values,
)
from gradfix.static.api import (
    ARGMAX,
    ARGSORT,
    CASTS,
    COMPARISON_CALLS,
    CUSTOM_GRADIENT,
    NOT_FORWARD,
    NOT_FORWARD_WORDS,
    NUMPY_FUNCTIONS,
    PY_FUNCTIONS,
    ROUNDING,
    SIGN,
    STOP_GRADIENT,
    integer_dtype,
    short_name,
)
from gradfix.static.bindings import values_of
from gradfix.static.names import copied_iterable, dotted
from gradfix.static.sources import resolve_sources
from gradfix.static.tree import walk

STOP = "stop"
OP = "op"
BOTH = frozenset({STOP, OP})


@dataclass(frozen=True)
class Op:
    """A non-differentiable operation: what it is called and what to use instead."""

    node: cst.CSTNode
    name: str
    alternative: str
    inputs: tuple[cst.CSTNode, ...]
    zero_gradient: bool = False  # tf.sign: a gradient of zeros rather than None


STEP_ALTERNATIVE = "a smooth step such as `tf.sigmoid(k * (x - threshold))`"
ARGMAX_ALTERNATIVE = "the probabilities or logits themselves, or `tf.nn.softmax(logits)` where a soft choice is needed"
ROUND_ALTERNATIVE = "the value itself, or a straight-through estimator `x + tf.stop_gradient(tf.round(x) - x)`"
SIGN_ALTERNATIVE = "`tf.tanh(k * x)`, or a straight-through estimator `x + tf.stop_gradient(tf.sign(x) - x)`"
CAST_ALTERNATIVE = "a float dtype (`tf.float32`), or a straight-through estimator where integers are needed"
ARGSORT_ALTERNATIVE = "a differentiable ranking surrogate (a pairwise loss on score differences, or a soft rank)"
NUMPY_ALTERNATIVE = "the same computation in TensorFlow ops, or `tf.py_function` over TensorFlow ops, or a `tf.custom_gradient`"


def float_cast(analysis: ModuleAnalysis, node: cst.CSTNode) -> cst.BaseExpression | None:
    """The operand of ``tf.cast(x, <float dtype>)``, else None."""
    if isinstance(node, cst.Call) and analysis.qualname(node.func) in CASTS:
        dtype = argument(node, 1, "dtype")
        if dtype is not None and not integer_dtype(analysis, dtype):
            return argument(node, 0, "x")
    return None


def nondifferentiable(analysis: ModuleAnalysis, node: cst.CSTNode) -> Op | None:
    """The non-differentiable operation ``node`` is, if it is one."""
    if isinstance(node, cst.Comparison):
        if not all(isinstance(c.operator, (cst.LessThan, cst.GreaterThan, cst.LessThanEqual, cst.GreaterThanEqual, cst.Equal, cst.NotEqual)) for c in node.comparisons):
            return None
        operator = analysis.code(node.comparisons[0].operator)
        inputs = (node.left,) + tuple(c.comparator for c in node.comparisons)
        return Op(node, f"the comparison `{operator}`", STEP_ALTERNATIVE, inputs)
    if not isinstance(node, cst.Call):
        return None
    name = analysis.qualname(node.func)
    if name is None:
        compared = _one_comparison(analysis, node.func)
        if compared is None:
            return None
        return Op(node, f"`{analysis.code(node.func)}` (a comparison)", STEP_ALTERNATIVE, tuple(a.value for a in node.args))
    short = short_name(name)
    first = argument(node, 0, "input") or argument(node, 0, "x")
    if name in ARGSORT:
        values = argument(node, 0, "values")
        return Op(node, f"`{short}`", ARGSORT_ALTERNATIVE, (values,) if values is not None else ())
    if name in ARGMAX:
        return Op(node, f"`{short}`", ARGMAX_ALTERNATIVE, (first,) if first is not None else ())
    if name in ROUNDING:
        return Op(node, f"`{short}`", ROUND_ALTERNATIVE, (first,) if first is not None else ())
    if name in SIGN:
        return Op(node, f"`{short}`", SIGN_ALTERNATIVE, (first,) if first is not None else (), zero_gradient=True)
    if name in COMPARISON_CALLS:
        return Op(node, f"`{short}`", STEP_ALTERNATIVE, tuple(a.value for a in node.args))
    if name in CASTS:
        dtype = argument(node, 1, "dtype")
        if dtype is not None and integer_dtype(analysis, dtype):
            return Op(node, f"`{analysis.code(node)}` (a cast to {analysis.code(dtype)})", CAST_ALTERNATIVE, (first,) if first is not None else ())
        return None
    if name in NUMPY_FUNCTIONS or (name in PY_FUNCTIONS and _calls_numpy(analysis, argument(node, 0, "func"))):
        numpy_input = argument(node, 1, "inp")
        return Op(node, f"`{short}` (NumPy code)", NUMPY_ALTERNATIVE, (numpy_input,) if numpy_input is not None else ())
    return None


def _one_comparison(analysis: ModuleAnalysis, func: cst.BaseExpression) -> str | None:
    """For a name bound only to comparison functions (``compare = K.greater_equal if err else K.less``): the first
    of them."""
    if not isinstance(func, cst.Name):
        return None
    values = values_of(analysis, func)
    if not values:
        return None
    chosen: list[str] = []
    for value in values:
        options = [value.body, value.orelse] if isinstance(value, cst.IfExp) else [value]
        for option in options:
            name = analysis.qualname(option)
            if name not in COMPARISON_CALLS:
                return None
            chosen.append(name)
    return chosen[0]


def _calls_numpy(analysis: ModuleAnalysis, func: cst.BaseExpression | None) -> bool:
    body: cst.CSTNode | None = None
    if isinstance(func, cst.Lambda):
        body = func
    elif isinstance(func, cst.Name):
        body = analysis.function_named(func.value)
    if body is None:
        return False
    for call in analysis.calls(body):
        if isinstance(call.func, cst.Attribute) and call.func.attr.value == "numpy":
            return True
        if (analysis.qualname(call.func) or "").startswith("numpy."):
            return True
    return False


def is_stop_gradient(analysis: ModuleAnalysis, node: cst.CSTNode) -> bool:
    return isinstance(node, cst.Call) and analysis.qualname(node.func) in STOP_GRADIENT


# --- contexts ------------------------------------------------------------------------------------


@dataclass
class PathContext:
    """One place a gradient is taken."""

    scope: cst.FunctionDef | cst.Module
    region: cst.CSTNode  # only what lies inside it is reported
    sources: frozenset[str]  # dotted names whose variables the gradient is asked for (a Keras loss: its prediction)
    targets: list[tuple[cst.BaseExpression, Statement]]  # the gradient target, with the statement it is read at
    gradient: GradientCall | None = None
    parent: "PathContext | None" = None
    depth: int = 0
    models: frozenset[str] = frozenset()  # the sources that are a model's or layer's variables (not variables themselves)

    @property
    def tape_block(self) -> cst.With | None:
        """The ``with`` block of the tape the gradient is asked of, when it lies in the context's own scope."""
        tape = self.gradient.tape if self.gradient is not None else None
        if tape is None or tape.scope is not self.scope or not isinstance(tape.node, cst.With):
            return None
        return tape.node


def tape_contexts(analysis: ModuleAnalysis) -> Iterator[PathContext]:
    for gradient in analysis.gradient_calls:
        if gradient.tape is None or gradient.target is None or gradient.sources is None:
            continue
        at = analysis.statement_index(gradient.node)
        if at is None:
            continue
        resolved = resolve_sources(analysis, gradient.sources, gradient.scope, at, partial=True) or ()
        sources = frozenset(s.name for s in resolved)
        if not sources:
            continue
        models = frozenset(s.name for s in resolved if not s.is_variable)
        yield PathContext(gradient.scope, gradient.tape.node, sources, [(gradient.target, at)], gradient, models=models)


def loss_function_contexts(analysis: ModuleAnalysis) -> Iterator[PathContext]:
    """Keras losses written as functions: passed as ``loss=`` to ``compile``, or the ``call`` of a ``keras.losses.Loss``."""
    for function, prediction in keras_loss_functions(analysis):
        if isinstance(function, cst.Lambda):
            context = lambda_context(analysis, function, frozenset({prediction}))
        else:
            context = function_context(analysis, function, frozenset({prediction}))
        if context is not None:
            yield context


def keras_loss_functions(analysis: ModuleAnalysis) -> list[tuple[cst.FunctionDef | cst.Lambda, str]]:
    """Each Keras loss written as a function or lambda, with the name its prediction (``y_pred``) has in it."""
    found: list[tuple[cst.FunctionDef | cst.Lambda, str]] = []
    seen: set[int] = set()
    for function in _loss_functions(analysis):
        if id(function) in seen:
            continue
        seen.add(id(function))
        params = [p.name.value for p in function.params.params]
        if isinstance(function, cst.FunctionDef) and analysis.enclosing_class(function) is not None and params and params[0] == "self":
            params = params[1:]
        if len(params) >= 2:
            found.append((function, params[1]))
    return found


def _loss_functions(analysis: ModuleAnalysis) -> Iterator[cst.FunctionDef | cst.Lambda]:
    for call in analysis.calls() if "compile(" in analysis.text else ():
        if not (isinstance(call.func, cst.Attribute) and call.func.attr.value == "compile"):
            continue
        for arg in call.args:
            if arg.keyword is None or arg.keyword.value != "loss":
                continue
            values = [arg.value]
            if isinstance(arg.value, (cst.List, cst.Tuple)):
                values = [e.value for e in arg.value.elements]
            elif isinstance(arg.value, cst.Dict):
                values = [e.value for e in arg.value.elements if isinstance(e, cst.DictElement)]
            for value in values:
                yield from _loss_callables(analysis, value)
    for function in analysis.functions:
        klass = analysis.enclosing_class(function)
        if function.name.value == "call" and klass is not None and any(
            (analysis.qualname(base.value) or "").startswith("keras.losses.") for base in klass.bases
        ):
            yield function


def _loss_callables(analysis: ModuleAnalysis, value: cst.BaseExpression, depth: int = 0) -> Iterator[cst.FunctionDef | cst.Lambda]:
    """The functions a ``loss=`` value names: a function, a lambda, or what a factory ``make_loss()`` returns."""
    if isinstance(value, cst.Lambda):
        yield value
    elif isinstance(value, cst.Name) and analysis.qualname(value) is None:
        function = analysis.function_named(value.value)
        if function is not None:
            yield function
    elif isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and depth < 2:
        factory = analysis.function_named(value.func.value)
        if factory is None or analysis.qualname(value.func) is not None:
            return
        nested = {f.name.value: f for f in factory.body.body if isinstance(f, cst.FunctionDef)}
        for returned in _returns(factory):
            made = returned.value
            if isinstance(made, cst.Name) and made.value in nested:
                yield nested[made.value]
            elif made is not None:
                yield from _loss_callables(analysis, made, depth + 1)


def lambda_context(analysis: ModuleAnalysis, function: cst.Lambda, sources: frozenset[str],
                   parent: PathContext | None = None) -> PathContext | None:
    """A lambda's body is its one return value; names it does not bind are read where it is written."""
    at = analysis.statement_index(function)
    if at is None:
        return None
    depth = parent.depth + 1 if parent is not None else 0
    return PathContext(analysis.scope_of(function), function, sources, [(function.body, at)], None, parent, depth)


def function_context(analysis: ModuleAnalysis, function: cst.FunctionDef, sources: frozenset[str], parent: PathContext | None = None) -> PathContext | None:
    targets = []
    for node in _returns(function):
        at = analysis.statement_index(node)
        if at is not None and node.value is not None:
            targets.append((node.value, at))
    if not targets:
        return None
    depth = parent.depth + 1 if parent is not None else 0
    return PathContext(function, function, sources, targets, None, parent, depth)


def _returns(function: cst.FunctionDef) -> list[cst.Return]:
    found: list[cst.Return] = []
    stack: list[cst.CSTNode] = [function.body]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Return):
            found.append(node)
        if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            continue
        stack.extend(children(node))
    return found


def might_take_gradients(text: str) -> bool:
    """Whether a file can hold a context at all: a tape, a ``compile(loss=...)`` or a ``keras.losses.Loss`` subclass."""
    return "GradientTape" in text or _has_loss_function(text)


def _has_loss_function(text: str) -> bool:
    return ("compile(" in text and "loss" in text) or "Loss)" in text


def all_contexts(analysis: ModuleAnalysis) -> list[PathContext]:
    """Every tape gradient and every Keras loss function of the module (computed once per analysis)."""
    return analysis.derived(_all_contexts)


def _all_contexts(analysis: ModuleAnalysis) -> list[PathContext]:
    found: list[PathContext] = []
    if "GradientTape" in analysis.text:
        found += tape_contexts(analysis)
    if _has_loss_function(analysis.text):
        found += loss_function_contexts(analysis)
    return found


# --- what carries the sources --------------------------------------------------------------------


class SourceFlow:
    """Whether expressions of one context carry some of its sources (depend on them), with given cuts in place.

    Besides the reaching definitions of names and the calls of module functions:

    * a value the tape did not record carries nothing: where the context's tape block lies in its own
      scope, a definition of that scope outside the block does not carry, unless it only refers to
      variables (``params = [w]``, ``w = model.layers[0].kernel``); the sources themselves still carry;
    * a method that does not run the forward pass on the tape (``model.predict(x)``: ``NOT_FORWARD``)
      returns a value that carries nothing; with ``through_predict``, ``predict`` (and ``predict_on_batch``)
      carries what its model carries, as the forward pass it would be if it were the model's call: what
      a ``predict`` on the path cuts (:data:`PREDICT_METHODS`);
    * with ``runs_models`` (by default: some of the sources are a model's variables), a call that plausibly
      runs a model or layer the code cannot tell (``forward(x)`` for a parameter, ``self.net(h)`` for an
      attribute no method assigns: :func:`runs_model`) carries the sources, whatever its arguments;
    * a dotted name (``self.pred``) carries where an assignment of it that reaches the read
      (:meth:`ModuleAnalysis.attribute_definitions`) assigns a value that carries.
    """

    def __init__(self, analysis: ModuleAnalysis, context: PathContext, sources: frozenset[str], cuts: frozenset[str],
                 runs_models: bool | None = None, through_predict: bool = False):
        self.analysis = analysis
        self.context = context
        self.sources = sources
        self.cuts = cuts
        self.runs_models = bool(sources & context.models) if runs_models is None else runs_models
        self.through_predict = through_predict
        self._definitions: dict[int, bool] = {}
        self._attributes: dict[tuple[int, str], bool] = {}
        self._calls: dict[tuple[int, frozenset[str]], bool] = {}

    def is_cut(self, node: cst.CSTNode) -> bool:
        if STOP in self.cuts and is_stop_gradient(self.analysis, node):
            return True
        return OP in self.cuts and nondifferentiable(self.analysis, node) is not None

    def reaches_target(self) -> bool:
        self._in_source_order()
        return any(self.carries(target, at) for target, at in self.context.targets)

    def _in_source_order(self) -> None:
        """Settle each definition after those before it: asked later, a definition then never recurses
        through the chain of earlier ones, however long the function (no recursion limit)."""
        for statement in self.analysis.statements(self.context.scope):
            for name in sorted(statement.assigned):
                self.definition(statement, name)
            for name in sorted(attributes_assigned(statement.node)):
                self._attribute_definition(statement, name)

    def is_source(self, name: str) -> bool:
        """Whether the dotted name is one of the sources or a part of one (``self.encoder`` of ``self``)."""
        return self._is_source(name)

    def _is_source(self, name: str) -> bool:
        return any(name == source or name.startswith(source + ".") for source in self.sources)

    def carries(self, node: cst.CSTNode, at: Statement) -> bool:
        if self.is_cut(node):
            return False
        if isinstance(node, cst.Name):
            if self._is_source(node.value):
                return self._source_name(node.value, at)
            return self.name(node.value, at)
        if isinstance(node, cst.Attribute):
            if node.attr.value in _STATIC_FACTS:
                return False
            name = dotted(node)
            if name is not None and (self._is_source(name) or self.attribute(name, at)):
                return True
            return self.carries(node.value, at)
        if isinstance(node, cst.Lambda):
            return self.carries(node.body, at)  # what it closes over, as in tf.cond's branches
        if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            return False
        if isinstance(node, cst.Call):
            # a method of the module's own (a class's `predict` written with TensorFlow ops) is followed, whatever its name
            summary = self._module_function_call(node, at)
            if summary is not None:
                return summary
            if not_forward(node) and not (self.through_predict and is_predict(node)) and self.analysis.callee(node) is None:
                return False
            if self.runs_models and runs_model(self.analysis, node, self.context):
                return True
            if _named_as_no_layer(node.func):
                # `self.loss_fn(y, pred)`: a loss, metric or optimizer on a model holds none of its trainable
                # variables; what it computes carries what its arguments carry
                return any(self.carries(arg.value, at) for arg in node.args)
        for child in children(node):
            if isinstance(child, cst.Arg):
                child = child.value
            if isinstance(child, cst.CSTNode) and self.carries(child, at):
                return True
        return False

    def _source_name(self, name: str, at: Statement) -> bool:
        """A source carries itself where it is made; an assignment of it from itself (``y_pred = f(y_pred)``) is
        followed, unless it is made before the tape opens (``x = tf.convert_to_tensor(x)``): what the tape is
        asked the gradient for is the value it then holds."""
        definitions = self.analysis.reaching_definitions(name, at, self.context.scope)
        if not definitions:
            return True
        block = self.context.tape_block
        return any(name not in d.read or (block is not None and d.node is not block and block not in d.enclosing)
                   or self.definition(d, name) for d in definitions)

    def name(self, name: str, at: Statement) -> bool:
        scope = self.context.scope
        return any(self.definition(d, name) for d in self.analysis.reaching_definitions(name, at, scope))

    def definition(self, statement: Statement, name: str) -> bool:
        key = statement.index
        if key in self._definitions:
            return self._definitions[key]
        self._definitions[key] = False  # a loop in the definitions adds nothing
        values = statement_values(statement.node)
        result = self._recorded(statement, values) and any(self.carries(value, statement) for value in values)
        self._definitions[key] = result
        return result

    def attribute(self, name: str, at: Statement) -> bool:
        """Whether the dotted name ``name`` read at ``at`` holds a value assigned to it there that carries."""
        definitions = self.analysis.attribute_definitions(name, at, self.context.scope)
        return any(self._attribute_definition(d, name) for d in definitions)

    def _attribute_definition(self, statement: Statement, name: str) -> bool:
        key = (statement.index, name)
        if key in self._attributes:
            return self._attributes[key]
        self._attributes[key] = False
        values = attribute_values(statement.node, name)
        result = self._recorded(statement, values) and any(self.carries(value, statement) for value in values)
        self._attributes[key] = result
        return result

    def _recorded(self, statement: Statement, values: list[cst.CSTNode]) -> bool:
        """Whether the tape records what ``statement`` computes: it lies in the tape block (or the context has
        no tape block in its scope), or its values only refer to variables."""
        block = self.context.tape_block
        if block is None or statement.node is block or block in statement.enclosing:
            return True
        return all(_refers(value) for value in values)

    def _module_function_call(self, call: cst.Call, at: Statement) -> bool | None:
        """For ``f(...)`` with ``f`` a function of this module: whether an argument carrying the sources reaches its return."""
        if self.context.depth >= 3:
            return None
        callee = self.analysis.callee(call)
        if callee is None:
            return self._lambda_call(call, at)
        function, bound = callee
        sources = called_sources(function, call, lambda e: self.carries(e, at), bound)
        if sources is None:
            return None
        sources |= closed_over(self.analysis, function, self.context.scope, self.sources)
        if is_custom_gradient(self.analysis, function):
            return bool(sources)  # its gradient is the one written beside it, whatever its body computes
        return self._reaches_through(function, sources, function_context)

    def _lambda_call(self, call: cst.Call, at: Statement) -> bool | None:
        """For ``f(...)`` with ``f`` a name bound only to a lambda (``hard = lambda t: tf.round(t)``): whether an
        argument carrying the sources reaches its body."""
        function = called_lambda(self.analysis, call)
        if function is None:
            return None
        sources = called_sources(function, call, lambda e: self.carries(e, at))
        if sources is None:
            return None
        return self._reaches_through(function, sources, lambda_context)

    def _reaches_through(self, function: cst.FunctionDef | cst.Lambda, sources: frozenset[str],
                         context_of: Callable[..., "PathContext | None"]) -> bool:
        """Whether ``sources``, given to ``function``'s parameters, reach its result; once per function and sources
        (False while it is being worked out, for a function that calls itself)."""
        key = (id(function), sources)
        if key not in self._calls:
            self._calls[key] = False
            inner = context_of(self.analysis, function, sources, self.context)
            self._calls[key] = inner is not None and SourceFlow(
                self.analysis, inner, sources, self.cuts, self.runs_models, self.through_predict).reaches_target()
        return self._calls[key]


# A tensor's shape and dtype: facts about it, with no gradient to its values.
_STATIC_FACTS = frozenset({"shape", "dtype"})


def called_lambda(analysis: ModuleAnalysis, call: cst.Call) -> cst.Lambda | None:
    """The lambda ``call`` runs: its function is a name of the program bound to that lambda and nothing else."""
    if not isinstance(call.func, cst.Name) or analysis.qualname(call.func) is not None:
        return None
    if analysis.function_named(call.func.value) is not None:
        return None
    values = values_of(analysis, call.func)
    if not values or len(values) != 1 or not isinstance(values[0], cst.Lambda):
        return None
    return values[0]


def not_forward(call: cst.Call) -> bool:
    """``model.predict(x)`` and the like: methods that do not run the forward pass on the tape (``NOT_FORWARD``)."""
    return isinstance(call.func, cst.Attribute) and call.func.attr.value in NOT_FORWARD


# The methods that run a model's forward pass outside the tape and hand back NumPy.
PREDICT_METHODS = frozenset({"predict", "predict_on_batch"})


def is_predict(call: cst.Call) -> bool:
    """``model.predict(x)``, ``model.predict_on_batch(x)``."""
    return isinstance(call.func, cst.Attribute) and call.func.attr.value in PREDICT_METHODS


def own_method(analysis: ModuleAnalysis, name: str) -> bool:
    """Whether a class of the module defines a method ``name`` (its own ``predict``, written with TensorFlow ops)."""
    return name in analysis.derived(_method_names)


def _method_names(analysis: ModuleAnalysis) -> frozenset[str]:
    return frozenset(member.name.value for klass in walk(analysis.module, cst.ClassDef)
                     for member in klass.body.body if isinstance(member, cst.FunctionDef))


def runs_model(analysis: ModuleAnalysis, call: cst.Call, context: PathContext) -> bool:
    """A call that plausibly runs a model or layer whose variables the code cannot tell: ``forward(x)``,
    ``self.net(h)``, for a callable that is neither a function of the module, nor imported, nor a builtin,
    nor one of the context's sources, nor bound by the code in sight (``head = Dense(1)``, ``self.dense =
    Dense(1)``: those are what they are bound to), nor named as a loss, metric or optimizer (``loss_fn``)."""
    func = call.func
    chain = dotted(func)
    if chain is None or analysis.qualname(func) is not None:
        return False
    if any(chain == source or chain.startswith(source + ".") for source in context.sources):
        return False
    scope = context.scope
    if any(word in chain.split(".")[-1].lower() for word in NOT_FORWARD_WORDS):
        return False
    if isinstance(func, cst.Name):
        if func.value in _BUILTINS or analysis.function_named(func.value) is not None:
            return False
        return not any(func.value in s.assigned for where in {scope, analysis.module} for s in analysis.statements(where))
    return chain.split(".")[0] == "self" and chain not in _self_attributes(analysis, call)


def _self_attributes(analysis: ModuleAnalysis, node: cst.CSTNode) -> frozenset[str]:
    """The ``self.<name>`` chains the methods of the class around ``node`` assign."""
    klass = analysis.enclosing_class(node)
    if klass is None:
        return frozenset()
    found = analysis.derived(_assigned_self_attributes)
    if klass not in found:
        found[klass] = frozenset(
            name for method in klass.body.body if isinstance(method, cst.FunctionDef)
            for statement in analysis.statements(method) for name in attributes_assigned(statement.node)
        )
    return found[klass]


def _assigned_self_attributes(analysis: ModuleAnalysis) -> dict[cst.ClassDef, frozenset[str]]:
    return {}


_BUILTINS = frozenset(dir(builtins))


def _named_as_no_layer(func: cst.BaseExpression) -> bool:
    """``self.loss_fn``, ``self.compiled_loss``, ``self.compute_loss``: an attribute named as a loss, metric,
    tracker or optimizer (``NOT_FORWARD_WORDS``), which is no layer."""
    return isinstance(func, cst.Attribute) and any(word in func.attr.value.lower() for word in NOT_FORWARD_WORDS)


def _refers(value: cst.CSTNode) -> bool:
    """Whether a value only refers to existing objects (``w``, ``model.layers[0].kernel``, ``[w, b]``,
    ``list(model.trainable_variables)``) rather than computing something."""
    copied = copied_iterable(value) if isinstance(value, cst.BaseExpression) else None
    if copied is not None:
        return _refers(copied)
    if isinstance(value, (cst.Name, cst.Attribute)):
        return dotted(value) is not None or (isinstance(value, cst.Attribute) and _refers(value.value))
    if isinstance(value, cst.Subscript):
        return _refers(value.value)
    if isinstance(value, (cst.List, cst.Tuple)):
        return all(_refers(element.value) for element in value.elements)
    return False


def closed_over(analysis: ModuleAnalysis, function: cst.FunctionDef, scope: cst.FunctionDef | cst.Module, sources: frozenset[str]) -> frozenset[str]:
    """The sources a closure defined in ``scope`` reads from it (those it does not bind itself)."""
    if function is scope or analysis.scope_of(function) is not scope or scope is analysis.module:
        return frozenset()
    bound = {p.name.value for p in function.params.params}
    for statement in analysis.statements(function):
        bound |= statement.assigned
    return frozenset(source for source in sources if source.split(".")[0] not in bound)


def is_custom_gradient(analysis: ModuleAnalysis, function: cst.FunctionDef) -> bool:
    """``@tf.custom_gradient``: the function states its own gradient (a straight-through estimator, say)."""
    return any(
        analysis.qualname(d.decorator.func if isinstance(d.decorator, cst.Call) else d.decorator) in CUSTOM_GRADIENT
        for d in function.decorators
    )


def runs_as_numpy(analysis: ModuleAnalysis, function: cst.FunctionDef) -> bool:
    """``@tf.numpy_function(Tout=...)`` (or ``tf.py_func``): the function's body runs as NumPy code by design
    and the tape records nothing inside it, so no NumPy call there is on a recorded path."""
    return any(
        analysis.qualname(d.decorator.func if isinstance(d.decorator, cst.Call) else d.decorator) in NUMPY_FUNCTIONS
        for d in function.decorators
    )


def called_sources(function: cst.FunctionDef | cst.Lambda, call: cst.Call, carries: Callable[[cst.BaseExpression], bool], bound: int = 0) -> frozenset[str] | None:
    """The parameters of ``function`` that ``call`` fills with arguments carrying the sources (None when unmappable);
    ``bound`` leading parameters are filled without the call (``self``)."""
    params = [p.name.value for p in function.params.params][bound:]
    sources: set[str] = set()
    position = 0
    for arg in call.args:
        if arg.star:
            return None
        if arg.keyword is not None:
            name = arg.keyword.value
        elif position < len(params):
            name = params[position]
            position += 1
        else:
            return None
        if carries(arg.value):
            sources.add(name)
    return frozenset(sources)


# --- what cuts the path --------------------------------------------------------------------------


@dataclass
class Cut:
    """A cut on the only path from some sources to the target, in the context it was found in."""

    node: cst.CSTNode
    context: PathContext
    sources: frozenset[str]
    op: Op | None = None


def cuts_of_kind(analysis: ModuleAnalysis, context: PathContext, kind: str, exclude: Callable[[cst.CSTNode], bool] = lambda n: False) -> list[Cut]:
    """The cuts of ``kind`` that, for some source, cut every path from that source to the target.

    A source counts when it reaches the target with cuts of ``kind`` ignored, and
    no longer does with every cut in place; the cuts reported are those whose
    input still carries the source (the first cut on each path).
    """
    return _cuts_of_kind(analysis, context, kind, exclude)


def _cuts_of_kind(analysis: ModuleAnalysis, context: PathContext, kind: str, exclude: Callable[[cst.CSTNode], bool]) -> list[Cut]:
    other = (BOTH - {kind})
    found: dict[int, Cut] = {}
    for source in sorted(context.sources):
        sources = frozenset({source})
        if not SourceFlow(analysis, context, sources, frozenset(other)).reaches_target():
            continue
        blocked = SourceFlow(analysis, context, sources, BOTH)
        if blocked.reaches_target():
            continue
        for cut in _frontier(analysis, context, sources, kind, blocked):
            if not exclude(cut.node):
                found.setdefault(id(cut.node), cut)
    return list(found.values())


def predict_cuts(analysis: ModuleAnalysis, context: PathContext) -> list[Cut]:
    """The ``model.predict(x)`` calls in a tape that, for some source, cut every path from it to the target: read
    as the model's own call they would carry the source to the target, and as they are (NumPy, made outside
    the tape's record) nothing does. The source is the model's variables, or a watched input ``x``. A ``predict`` beside a forward pass that reaches the target (a network's
    own targets, computed without a gradient on purpose) cuts nothing."""
    if context.gradient is None:
        return []
    found: dict[int, Cut] = {}
    for source in sorted(context.sources):
        sources = frozenset({source})
        if SourceFlow(analysis, context, sources, BOTH).reaches_target():
            continue
        through = SourceFlow(analysis, context, sources, BOTH, through_predict=True)
        if not through.reaches_target():
            continue
        for value, at, where, flow in path_values(analysis, context, through):
            for node in walk_expression(value):
                if (isinstance(node, cst.Call) and is_predict(node) and isinstance(node.func, cst.Attribute)
                        and not own_method(analysis, node.func.attr.value)
                        and (flow.is_source(dotted(node.func.value) or "") or any(flow.carries(a.value, at) for a in node.args))):
                    found.setdefault(id(node), Cut(node, where, sources))
    return list(found.values())


def path_statements(analysis: ModuleAnalysis, context: PathContext) -> list[tuple[cst.CSTNode, Statement]]:
    """The expressions whose values can flow into the target: assigned values of its backward slice, and the target."""
    pairs: list[tuple[cst.CSTNode, Statement]] = []
    seen: set[int] = set()
    for target, at in context.targets:
        slice_ = analysis.backward_slice(target, context.scope) if analysis.statement_index(target) is not None else []
        for statement in slice_:
            if statement.index in seen:
                continue
            seen.add(statement.index)
            for value in statement_values(statement.node):
                pairs.append((value, statement))
        pairs.append((target, at))
    return [(node, at) for node, at in pairs if analysis.is_inside(node, context.region)]


def path_values(analysis: ModuleAnalysis, context: PathContext, flow: SourceFlow) -> Iterator[tuple[cst.CSTNode, Statement, PathContext, SourceFlow]]:
    """The path's expressions, and those of module functions called on it with arguments carrying the sources (sources: those parameters)."""
    for value, at in path_statements(analysis, context):
        yield value, at, context, flow
        if context.depth >= 3:
            continue
        for node in walk_expression(value):
            if not isinstance(node, cst.Call):
                continue
            callee = analysis.callee(node)
            if callee is None:
                yield from _lambda_path_values(analysis, context, flow, node, at)
                continue
            function, bound = callee
            if function is context.scope or is_custom_gradient(analysis, function) or runs_as_numpy(analysis, function):
                continue
            inner_sources = called_sources(function, node, lambda e: flow.carries(e, at), bound)
            if inner_sources is not None:
                inner_sources |= closed_over(analysis, function, context.scope, flow.sources)
            if not inner_sources:
                continue
            inner = function_context(analysis, function, inner_sources, context)
            if inner is None:
                continue
            yield from path_values(analysis, inner, SourceFlow(analysis, inner, inner_sources, flow.cuts, flow.runs_models,
                                                               flow.through_predict))


def _lambda_path_values(analysis: ModuleAnalysis, context: PathContext, flow: SourceFlow, call: cst.Call,
                        at: Statement) -> Iterator[tuple[cst.CSTNode, Statement, PathContext, SourceFlow]]:
    """The body of a lambda bound to a name that the path calls with arguments carrying the sources."""
    function = called_lambda(analysis, call)
    if function is None:
        return
    inner_sources = called_sources(function, call, lambda e: flow.carries(e, at))
    inner = lambda_context(analysis, function, inner_sources, context) if inner_sources else None
    if inner is not None and inner_sources:
        yield from path_values(analysis, inner, SourceFlow(analysis, inner, inner_sources, flow.cuts, flow.runs_models,
                                                           flow.through_predict))


def _frontier(analysis: ModuleAnalysis, context: PathContext, sources: frozenset[str], kind: str, blocked: SourceFlow) -> Iterator[Cut]:
    for value, at, where, flow in path_values(analysis, context, blocked):
        for node in walk_expression(value):
            if kind == STOP and isinstance(node, cst.Call) and is_stop_gradient(analysis, node):
                stopped = argument(node, 0, "input")
                if stopped is not None and flow.carries(stopped, at) and not _inside_stop(analysis, node, value):
                    yield Cut(node, where, sources)
            elif kind == OP:
                op = nondifferentiable(analysis, node)
                if op is not None and any(flow.carries(i, at) for i in op.inputs) and not _inside_stop(analysis, node, value):
                    yield Cut(node, where, sources, op)


def walk_expression(root: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Every node of an expression, outermost first, without entering lambdas or nested definitions."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (cst.Lambda, cst.FunctionDef, cst.ClassDef)):
            continue
        stack.extend(reversed(children(node)))


def _inside_stop(analysis: ModuleAnalysis, node: cst.CSTNode, within: cst.CSTNode) -> bool:
    for ancestor in analysis.ancestors(node):
        if ancestor is within:
            return is_stop_gradient(analysis, ancestor)
        if is_stop_gradient(analysis, ancestor):
            return True
    return False


def on_path(analysis: ModuleAnalysis, context: PathContext, node: cst.CSTNode) -> Statement | None:
    """The statement at which ``node`` lies on the context's path (its value can flow into the target), if it does."""
    for value, at in path_statements(analysis, context):
        if analysis.is_inside(node, value):
            return at
    return None


def describe_sources(context: PathContext, sources: frozenset[str]) -> str:
    """``the variables of `model` `` for a tape; ``the prediction `y_pred` `` for a Keras loss function."""
    names = ", ".join(f"`{source}`" for source in sorted(sources))
    if context.gradient is None:
        return f"the prediction {names}"
    return f"the variables of {names}"
