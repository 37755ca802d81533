"""Keras models built from layers, and the layers on them through which no gradient flows.

A model built with the functional API (``Model(inputs, outputs)``) or as a ``Sequential`` is trained as a
whole: ``fit`` (or ``train_on_batch``, or a tape asked for the model's variables) differentiates the loss of
its outputs with respect to every trainable layer. A layer whose computation the program writes itself, a
``Lambda``'s function or a custom layer's ``call``, is read as a call of that function; when every path
from its input to its result passes through an operation without a gradient (an ``argmax``, a rounding, a
comparison, an integer cast, NumPy code), the trainable layers before it on every path to the outputs get
no gradient. Those operations, inside the layer's function, are what :func:`graph_cuts` finds.

Besides, :func:`minimize_contexts` reads ``optimizer.minimize(loss_fn, var_list=[...])`` with ``loss_fn`` a
function of the program as a gradient taken of that function's result, for the variables listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import libcst as cst

from gradfix.static.analysis import ModuleAnalysis, Statement, argument
from gradfix.static.api import (
    CASTS,
    KERAS_MODELS,
    LAYER_BASES,
    NOT_LAYERS,
    SEQUENTIAL,
    WEIGHTLESS_LAYER_PREFIXES,
    WEIGHTLESS_LAYER_SUFFIXES,
    WEIGHTLESS_LAYERS,
    integer_dtype,
    short_name,
)
from gradfix.static.bindings import bindings, values_of
from gradfix.static.gradpath import (
    BOTH,
    OP,
    STOP,
    Cut,
    Op,
    PathContext,
    SourceFlow,
    all_contexts,
    called_sources,
    cuts_of_kind,
    function_context,
    is_custom_gradient,
    is_stop_gradient,
    lambda_context,
    nondifferentiable,
    path_statements,
    walk_expression,
)
from gradfix.static.names import canonical, dotted
from gradfix.static.sources import resolve_sources
from gradfix.static.tree import children

LAMBDA_LAYERS = frozenset({"keras.layers.Lambda", "keras.layers.core.Lambda"})
# What a model is trained by, called on it.
TRAINING_METHODS = frozenset({"fit", "train_on_batch", "fit_generator"})


@dataclass(frozen=True)
class LayerCode:
    """What a layer computes, as the program writes it: a function (a ``Lambda``'s, or a custom layer's
    ``call`` with ``bound`` leading parameters the application does not fill), or one library op
    (``Lambda(K.argmax)``), given as the op when it has no gradient and as None when it has one."""

    function: cst.FunctionDef | cst.Lambda | None = None
    bound: int = 0
    op: Op | None = None
    stop: cst.BaseExpression | None = None  # ``Lambda(K.stop_gradient)``: the library function, which stops all


def layer_code(analysis: ModuleAnalysis, layer: cst.BaseExpression) -> LayerCode | None:
    """What the layer that ``layer`` makes or names computes, if the program shows it."""
    known = analysis.derived(_layer_codes)
    if id(layer) not in known:
        known[id(layer)] = None  # a name bound to itself adds nothing
        known[id(layer)] = _layer_code(analysis, layer, 0)
    return known[id(layer)]


def _layer_codes(analysis: ModuleAnalysis) -> dict[int, LayerCode | None]:
    return {}


def _layer_code(analysis: ModuleAnalysis, layer: cst.BaseExpression, depth: int) -> LayerCode | None:
    if depth > 2:
        return None
    if isinstance(layer, cst.Name):
        values = values_of(analysis, layer)
        return _layer_code(analysis, values[0], depth + 1) if values is not None and len(values) == 1 else None
    if not isinstance(layer, cst.Call):
        return None
    name = keras_name(analysis, layer.func)
    if name in LAMBDA_LAYERS:
        return _lambda_layer(analysis, layer)
    if isinstance(layer.func, cst.Name) and name is None:
        klass = _module_class(analysis, layer.func.value)
        if klass is not None:
            call = _layer_call_method(analysis, klass)
            return LayerCode(call, 1) if call is not None else None
        factory = analysis.function_named(layer.func.value)
        if factory is not None:
            made = [r.value for r in walk_returns(factory) if r.value is not None]
            if len(made) == 1:
                return _layer_code(analysis, made[0], depth + 1)
    return None


# The Keras modules whose classes ``from <module> import *`` brings in.
_STAR_MODULES = ("keras.layers", "keras.models")


def keras_name(analysis: ModuleAnalysis, func: cst.BaseExpression) -> str | None:
    """What ``func`` names: its imported name, or, for a capitalised name the module neither binds nor imports by
    name, the class of that name from a Keras module it imports with ``*`` (``from keras.layers import *``)."""
    name = analysis.qualname(func)
    if name is not None or not isinstance(func, cst.Name) or not func.value[:1].isupper():
        return name
    starred = analysis.derived(_star_modules)
    if not starred or bindings(analysis, func.value, func) or _module_class(analysis, func.value) is not None:
        return None
    module = "keras.models" if func.value in ("Model", "Sequential") else "keras.layers"
    return f"{module}.{func.value}" if module in starred else None


def _star_modules(analysis: ModuleAnalysis) -> frozenset[str]:
    found = set()
    for node in analysis.walk(None, cst.ImportFrom):
        if isinstance(node.names, cst.ImportStar) and node.module is not None and not node.relative:
            module = canonical(analysis.code(node.module))
            if module in _STAR_MODULES:
                found.add(module)
    return frozenset(found)


def _lambda_layer(analysis: ModuleAnalysis, layer: cst.Call) -> LayerCode | None:
    function = argument(layer, 0, "function")
    if isinstance(function, cst.Lambda):
        return LayerCode(function)
    if not isinstance(function, cst.Name) and not isinstance(function, cst.Attribute):
        return None
    if isinstance(function, cst.Name) and analysis.qualname(function) is None:
        defined = analysis.function_named(function.value)
        if defined is not None:
            return None if is_custom_gradient(analysis, defined) else LayerCode(defined)
        values = values_of(analysis, function)
        return LayerCode(values[0]) if values is not None and len(values) == 1 and isinstance(values[0], cst.Lambda) else None
    return _library_op(analysis, layer, function)


def _library_op(analysis: ModuleAnalysis, layer: cst.Call, function: cst.BaseExpression) -> LayerCode | None:
    """``Lambda(K.argmax, arguments={"axis": -1})``: the library function read as a call of it on the layer's input,
    with the ``arguments`` the layer passes it."""
    name = analysis.qualname(function)
    if name is None:
        return None
    keywords = argument(layer, 99, "arguments")
    passed: list[cst.Arg] = [cst.Arg(cst.Name("inputs"))]
    if isinstance(keywords, cst.Dict):
        for element in keywords.elements:
            if isinstance(element, cst.DictElement) and isinstance(element.key, cst.SimpleString):
                key = element.key.evaluated_value
                if isinstance(key, str):
                    passed.append(cst.Arg(element.value, keyword=cst.Name(key)))
    if name in CASTS:
        dtype = next((a.value for a in passed if a.keyword is not None and a.keyword.value == "dtype"), None)
        if dtype is None or not integer_dtype(analysis, dtype):
            return LayerCode()
    applied = cst.Call(function, tuple(passed))
    if is_stop_gradient(analysis, applied):
        return LayerCode(stop=function)
    op = nondifferentiable(analysis, applied)
    if op is None:
        return LayerCode()
    return LayerCode(op=Op(function, f"`{short_name(name)}`", op.alternative, (), op.zero_gradient))


def _module_class(analysis: ModuleAnalysis, name: str) -> cst.ClassDef | None:
    for klass in analysis.module.body:
        if isinstance(klass, cst.ClassDef) and klass.name.value == name:
            return klass
    return None


def _is_layer_class(analysis: ModuleAnalysis, klass: cst.ClassDef) -> bool:
    return any((analysis.qualname(base.value) or "") in LAYER_BASES for base in klass.bases)


def _layer_call_method(analysis: ModuleAnalysis, klass: cst.ClassDef) -> cst.FunctionDef | None:
    if not _is_layer_class(analysis, klass):
        return None
    for member in klass.body.body:
        if isinstance(member, cst.FunctionDef) and member.name.value == "call":
            return member
    return None


def walk_returns(function: cst.FunctionDef) -> Iterator[cst.Return]:
    """The ``return`` statements of ``function`` itself, not of the functions and classes inside it."""
    stack: list[cst.CSTNode] = [function.body]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Return):
            yield node
        if not isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            stack.extend(children(node))


def weighted(analysis: ModuleAnalysis, layer: cst.BaseExpression, depth: int = 0) -> bool:
    """Whether ``layer`` makes or names a layer or model with trainable variables: a Keras layer that has them
    (``Dense``, ``LSTM``, ...), a model, a custom layer or model of the program that makes weights or
    weighted layers, or a parameter (a model handed in)."""
    if depth > 2:
        return False
    if isinstance(layer, cst.Name):
        found = bindings(analysis, layer.value, layer)
        if found and all(b.kind == "param" for b in found):
            return True
        values = values_of(analysis, layer)
        return bool(values) and any(weighted(analysis, value, depth + 1) for value in values or ())
    if not isinstance(layer, cst.Call):
        return False
    name = keras_name(analysis, layer.func) or ""
    if name in KERAS_MODELS:
        return True
    if name.startswith("keras.layers."):
        last = name.rsplit(".", 1)[-1]
        return not (not last[:1].isupper() or last in WEIGHTLESS_LAYERS or last in NOT_LAYERS or last == "Input"
                    or last.startswith(WEIGHTLESS_LAYER_PREFIXES) or last.endswith(WEIGHTLESS_LAYER_SUFFIXES))
    if isinstance(layer.func, cst.Name) and not name:
        klass = _module_class(analysis, layer.func.value)
        if klass is not None and _is_layer_class(analysis, klass):
            return any(weighted(analysis, call, depth + 1) or _makes_weight(call)
                       for call in analysis.calls(klass) if call is not layer)
    return False


def _makes_weight(call: cst.Call) -> bool:
    return isinstance(call.func, cst.Attribute) and call.func.attr.value == "add_weight"


# --- the layers' own cuts ------------------------------------------------------------------------


def _inner_sources(analysis: ModuleAnalysis, code: LayerCode, application: cst.Call,
                   carries: Callable[[cst.BaseExpression], bool]) -> tuple[frozenset[str], cst.FunctionDef | cst.Lambda] | None:
    """The names in the layer's function that the application's inputs carrying the sources fill: its parameters,
    or, for a list of inputs the function unpacks first (``x1, x2 = inputs``), the names unpacked from them."""
    function = code.function
    if function is None:
        return None
    sources = called_sources(function, application, carries, code.bound)
    if sources is None:
        return None
    first = application.args[0].value if application.args else None
    unpacked = _unpacked_parameter(function, code.bound)
    if isinstance(first, (cst.List, cst.Tuple)) and unpacked is not None and len(unpacked[1]) == len(first.elements):
        parameter, names = unpacked
        if parameter in sources:
            sources = (sources - {parameter}) | {n for n, e in zip(names, first.elements) if carries(e.value)}
    return frozenset(sources), function


def _unpacked_parameter(function: cst.FunctionDef | cst.Lambda, bound: int) -> tuple[str, list[str]] | None:
    """``x1, x2 = inputs`` as the first statement of a function whose first input parameter is ``inputs``."""
    if not isinstance(function, cst.FunctionDef) or not isinstance(function.body, cst.IndentedBlock):
        return None
    params = [p.name.value for p in function.params.params][bound:]
    body = function.body.body
    if not params or not body or not isinstance(body[0], cst.SimpleStatementLine) or len(body[0].body) != 1:
        return None
    assign = body[0].body[0]
    if not (isinstance(assign, cst.Assign) and len(assign.targets) == 1 and isinstance(assign.value, cst.Name)
            and assign.value.value == params[0] and isinstance(assign.targets[0].target, (cst.Tuple, cst.List))):
        return None
    names = [e.value.value for e in assign.targets[0].target.elements if isinstance(e.value, cst.Name)]
    if len(names) != len(assign.targets[0].target.elements):
        return None
    return params[0], names


def _inner_context(analysis: ModuleAnalysis, function: cst.FunctionDef | cst.Lambda, sources: frozenset[str],
                   parent: PathContext | None) -> PathContext | None:
    if isinstance(function, cst.Lambda):
        return lambda_context(analysis, function, sources, parent)
    return function_context(analysis, function, sources, parent)


def layer_cuts(analysis: ModuleAnalysis, code: LayerCode, sources: frozenset[str],
               parent: PathContext | None = None, kind: str = OP) -> list[Cut]:
    """The cuts of ``kind`` (operations without a gradient, or ``stop_gradient``) inside a layer that cut every
    path from the inputs ``sources`` name to its result."""
    if code.op is not None:
        return [Cut(code.op.node, parent, sources, code.op)] if parent is not None and kind == OP else []
    if code.stop is not None:
        return [Cut(code.stop, parent, sources)] if parent is not None and kind == STOP else []
    if code.function is None or not sources:
        return []
    inner = _inner_context(analysis, code.function, sources, parent)
    return cuts_of_kind(analysis, inner, kind) if inner is not None else []


def _first_input(code: LayerCode) -> frozenset[str]:
    if code.function is None:
        return frozenset()
    params = [p.name.value for p in code.function.params.params][code.bound:]
    return frozenset(params[:1])


# --- models and their training -------------------------------------------------------------------


class GraphFlow(SourceFlow):
    """Whether a value of a functional model's graph carries one trainable layer's output (``source``, a layer
    application), reading each layer application whose code the program shows as a call of that code."""

    def __init__(self, analysis: ModuleAnalysis, context: PathContext, source: cst.Call, cuts: frozenset[str]):
        super().__init__(analysis, context, frozenset(), cuts, runs_models=False)
        self.source = source

    def carries(self, node: cst.CSTNode, at: Statement) -> bool:
        if node is self.source:
            return True
        if isinstance(node, cst.Call) and isinstance(node.func, (cst.Call, cst.Name)):
            code = layer_code(self.analysis, node.func)
            if code is not None:
                return self._through_layer(code, node, at)
        return super().carries(node, at)

    def _through_layer(self, code: LayerCode, application: cst.Call, at: Statement) -> bool:
        if code.function is None:
            if code.op is not None and OP in self.cuts or code.stop is not None and STOP in self.cuts:
                return False
            return any(self.carries(arg.value, at) for arg in application.args)
        found = _inner_sources(self.analysis, code, application, lambda e: self.carries(e, at))
        if found is None:
            return any(self.carries(arg.value, at) for arg in application.args)
        sources, function = found
        if not sources:
            return False
        return self._reaches_through(function, sources, _inner_context)


@dataclass
class TrainedModel:
    """A model the program builds and trains: where it is built, and the expression of its outputs (functional)
    or its layers in order (``Sequential``)."""

    call: cst.Call
    scope: cst.FunctionDef | cst.Module
    outputs: cst.BaseExpression | None
    layers: list[cst.BaseExpression]


def trained_models(analysis: ModuleAnalysis) -> list[TrainedModel]:
    return analysis.derived(_trained_models)


def _trained_models(analysis: ModuleAnalysis) -> list[TrainedModel]:
    found: list[TrainedModel] = []
    for call in analysis.calls():
        name = keras_name(analysis, call.func)
        if name not in KERAS_MODELS:
            continue
        bound = _bound_name(analysis, call)
        scope = analysis.scope_of(call)
        if bound is not None:
            trained = _trained(analysis, bound, scope)
        else:
            trained = isinstance(analysis.parent(call), cst.Return) and _result_trained(analysis, scope)
        if not trained:
            continue
        if name in SEQUENTIAL:
            listed = argument(call, 0, "layers")
            layers = [e.value for e in listed.elements] if isinstance(listed, (cst.List, cst.Tuple)) else []
            layers += _added_layers(analysis, bound, scope) if bound is not None else []
            found.append(TrainedModel(call, scope, None, layers))
        else:
            outputs = argument(call, 1, "outputs")
            if outputs is not None:
                found.append(TrainedModel(call, scope, outputs, []))
    return found


def _bound_name(analysis: ModuleAnalysis, call: cst.Call) -> str | None:
    parent = analysis.parent(call)
    if isinstance(parent, cst.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0].target, cst.Name):
        return parent.targets[0].target.value
    return None


def _added_layers(analysis: ModuleAnalysis, model: str, scope: cst.FunctionDef | cst.Module) -> list[cst.BaseExpression]:
    added = []
    for call in analysis.calls(scope):
        if (isinstance(call.func, cst.Attribute) and call.func.attr.value == "add" and dotted(call.func.value) == model
                and analysis.scope_of(call) is scope):
            layer = argument(call, 0, "layer")
            if layer is not None:
                added.append(layer)
    return added


def _trained(analysis: ModuleAnalysis, model: str, scope: cst.FunctionDef | cst.Module, depth: int = 0) -> bool:
    """Whether the model bound to ``model`` in ``scope`` is trained: ``fit``/``train_on_batch`` on it there (or in
    the module, for a model of the module), a tape gradient asked for its variables, or, for a model a function
    builds and returns, the same for the name a caller binds its result to."""
    for call in analysis.calls(scope):
        if (isinstance(call.func, cst.Attribute) and call.func.attr.value in TRAINING_METHODS
                and dotted(call.func.value) == model):
            return True
    if scope is analysis.module and any(model in context.sources for context in all_contexts(analysis)
                                        if context.gradient is not None):
        return True
    if isinstance(scope, cst.FunctionDef) and depth == 0:
        returned = [r.value for r in walk_returns(scope)]
        if any(isinstance(value, cst.Name) and value.value == model for value in returned):
            return _result_trained(analysis, scope)
    return False


def _result_trained(analysis: ModuleAnalysis, function: cst.FunctionDef | cst.Module) -> bool:
    """Whether a caller of the module function ``function`` binds its result to a name of a model it trains."""
    if not isinstance(function, cst.FunctionDef) or analysis.scope_of(function) is not analysis.module:
        return False
    for call in analysis.calls():
        if isinstance(call.func, cst.Name) and call.func.value == function.name.value:
            caller = _bound_name(analysis, call)
            if caller is not None and _trained(analysis, caller, analysis.scope_of(call), 1):
                return True
    return False


@dataclass(frozen=True)
class LayerCut:
    """A cut inside a layer of a trained model, and whether that layer gives the model's output itself (nothing
    after it reads what it computes, such as an ``Embedding`` reading an ``argmax``'s indices)."""

    cut: Cut
    final: bool


def graph_cuts(analysis: ModuleAnalysis, kind: str = OP) -> list[LayerCut]:
    """The cuts of ``kind`` (operations without a gradient, or ``stop_gradient``), inside the layers of trained
    models, that cut every path from some trainable layer to the model's outputs."""
    found: dict[int, LayerCut] = {}
    for model in trained_models(analysis):
        cuts = (_sequential_cuts(analysis, model, kind) if model.outputs is None
                else _functional_cuts(analysis, model, kind))
        for cut in cuts:
            found.setdefault(id(cut.cut.node), cut)
    return list(found.values())


def _model_context(analysis: ModuleAnalysis, model: TrainedModel) -> PathContext | None:
    at = analysis.statement_index(model.call)
    if at is None:
        return None
    outputs = model.outputs if model.outputs is not None else model.call
    return PathContext(model.scope, model.scope, frozenset(), [(outputs, at)])


def _sequential_cuts(analysis: ModuleAnalysis, model: TrainedModel, kind: str) -> list[LayerCut]:
    """In a ``Sequential`` every layer is on the only path: a layer that cuts its input cuts the trainable layers
    before it (back to the previous such layer)."""
    context = _model_context(analysis, model)
    if context is None:
        return []
    found: list[LayerCut] = []
    trainable_before = False
    for layer in model.layers:
        code = layer_code(analysis, layer)
        cuts = layer_cuts(analysis, code, _first_input(code), context, kind) if code is not None else []
        if cuts and trainable_before:
            found.extend(LayerCut(cut, layer is model.layers[-1]) for cut in cuts)
        if cuts:
            trainable_before = False
        trainable_before = trainable_before or weighted(analysis, layer)
    return found


def _functional_cuts(analysis: ModuleAnalysis, model: TrainedModel, kind: str) -> list[LayerCut]:
    context = _model_context(analysis, model)
    if context is None or model.outputs is None:
        return []
    if not _may_cut(analysis, context, kind):
        return []
    outputs = _output_values(analysis, model.outputs)
    found: list[LayerCut] = []
    for application in _trainable_applications(analysis, context):
        if not GraphFlow(analysis, context, application, BOTH - {kind}).reaches_target():
            continue
        blocked = GraphFlow(analysis, context, application, BOTH)
        if blocked.reaches_target():
            continue
        found.extend(LayerCut(cut, any(application is output for output in outputs))
                     for cut, application in _graph_frontier(analysis, context, blocked, kind))
    return found


def _may_cut(analysis: ModuleAnalysis, context: PathContext, kind: str) -> bool:
    """Whether the graph holds what ``_graph_frontier`` can name as a cut: a layer whose code the program shows, or
    an operation of ``kind`` written in the graph itself. A graph of library layers alone (most models) has none,
    and its flows from every trainable layer need not be followed."""
    for value, _ in path_statements(analysis, context):
        for node in walk_expression(value):
            if isinstance(node, cst.Call) and isinstance(node.func, (cst.Call, cst.Name)) \
                    and layer_code(analysis, node.func) is not None:
                return True
            if is_stop_gradient(analysis, node) if kind == STOP else nondifferentiable(analysis, node) is not None:
                return True
    return False


def _output_values(analysis: ModuleAnalysis, outputs: cst.BaseExpression) -> list[cst.BaseExpression]:
    """The expressions the model's outputs are: the elements of a list, and what a name holding one was assigned."""
    listed = [e.value for e in outputs.elements] if isinstance(outputs, (cst.List, cst.Tuple)) else [outputs]
    found = []
    for value in listed:
        assigned = values_of(analysis, value) if isinstance(value, cst.Name) else None
        found.extend(assigned if assigned is not None and len(assigned) == 1 else [value])
    return found


def _trainable_applications(analysis: ModuleAnalysis, context: PathContext) -> Iterator[cst.Call]:
    for value, _ in path_statements(analysis, context):
        for node in walk_expression(value):
            if isinstance(node, cst.Call) and isinstance(node.func, (cst.Call, cst.Name)) and weighted(analysis, node.func):
                yield node


def _graph_frontier(analysis: ModuleAnalysis, context: PathContext, blocked: GraphFlow,
                    kind: str) -> Iterator[tuple[Cut, cst.Call]]:
    """The cuts whose input still carries the source with every cut in place (the first on each path), with the
    layer application (or operation) they lie in."""
    for value, at in path_statements(analysis, context):
        for node in walk_expression(value):
            if not isinstance(node, cst.Call):
                continue
            code = layer_code(analysis, node.func) if isinstance(node.func, (cst.Call, cst.Name)) else None
            if code is not None:
                found = _inner_sources(analysis, code, node, lambda e: blocked.carries(e, at))
                if code.op is not None or code.stop is not None:
                    if any(blocked.carries(arg.value, at) for arg in node.args):
                        yield from ((cut, node) for cut in layer_cuts(analysis, code, frozenset(), context, kind))
                elif found is not None and found[0]:
                    yield from ((cut, node) for cut in layer_cuts(analysis, code, found[0], context, kind))
                continue
            if kind == STOP:
                if is_stop_gradient(analysis, node) and any(blocked.carries(arg.value, at) for arg in node.args):
                    yield Cut(node, context, frozenset()), node
                continue
            op = nondifferentiable(analysis, node)
            if op is not None and any(blocked.carries(i, at) for i in op.inputs):
                yield Cut(node, context, frozenset(), op), node


# --- optimizer.minimize(loss_fn) ------------------------------------------------------------------


def minimize_contexts(analysis: ModuleAnalysis) -> list[PathContext]:
    """``optimizer.minimize(loss_fn, var_list=[...])`` with ``loss_fn`` a function or lambda of the program: the
    gradient of its result, for the variables listed."""
    return analysis.derived(_minimize_contexts)


def _minimize_contexts(analysis: ModuleAnalysis) -> list[PathContext]:
    found: list[PathContext] = []
    if "minimize(" not in analysis.text:
        return found
    for call in analysis.calls():
        if not (isinstance(call.func, cst.Attribute) and call.func.attr.value == "minimize"):
            continue
        loss, var_list = argument(call, 0, "loss"), argument(call, 1, "var_list")
        at = analysis.statement_index(call)
        if loss is None or var_list is None or at is None:
            continue
        resolved = resolve_sources(analysis, var_list, analysis.scope_of(call), at, partial=True) or ()
        sources = frozenset(s.name for s in resolved)
        if not sources:
            continue
        if isinstance(loss, cst.Lambda):
            context = lambda_context(analysis, loss, sources)
        elif isinstance(loss, cst.Name) and analysis.qualname(loss) is None and analysis.function_named(loss.value):
            function = analysis.function_named(loss.value)
            context = function_context(analysis, function, sources) if function is not None else None
        else:
            context = None
        if context is not None:
            found.append(context)
    return found
