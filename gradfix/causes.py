"""Why each variable lost its gradient, named from what the run saw TensorFlow do.

The child reports, for a lost variable, the op that cut the path (its type, its output dtype,
whether TensorFlow registers a gradient for it), a tensor that left TensorFlow through NumPy,
a value stored with ``assign`` and read back, where the target was computed and whether a tape
was recording then, and whether the target depends on anything the tape watched. The category
comes from those facts first; the statement's text is only a last hint, and says so
(``Cause.basis``); "unknown" stays unknown when nothing fits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gradfix import categories as cat
from gradfix.runtime.facts import Expression, GradientCall, Site, SourceFact

RUN = "run"  # named from what TensorFlow did
LINE_TEXT = "line text"  # guessed from the break statement's text
STATIC = "static analysis"  # named by a static rule the run confirmed

_NON_DIFF_TEXT = re.compile(
    r"\b(argmax|argmin|round|rint|sign|floor|ceil|equal|not_equal|greater|greater_equal|less|less_equal|"
    r"top_k|unique|py_function|numpy_function|py_func|histogram_fixed_width|bincount|searchsorted|"
    r"logical_and|logical_or|logical_not|cast|astype|int32|int64|bool)\b|[<>]=?|==|!="
)
_NUMPY_TEXT = re.compile(r"\.numpy\(\)|\bnp\.|\bnumpy\.|\bfloat\(|\.item\(\)|\.tolist\(\)")

# TensorFlow op types and the Python spelling a reader knows them by.
OP_SPELLING = {
    "ArgMax": "argmax", "ArgMin": "argmin", "Round": "round", "Rint": "rint", "Floor": "floor", "Ceil": "ceil",
    "Sign": "sign", "Greater": "a comparison (>)", "GreaterEqual": "a comparison (>=)", "Less": "a comparison (<)",
    "LessEqual": "a comparison (<=)", "Equal": "a comparison (==)", "NotEqual": "a comparison (!=)",
    "TopKV2": "argsort or top_k", "Unique": "unique", "EagerPyFunc": "tf.numpy_function / tf.py_function",
    "PyFunc": "tf.numpy_function", "Cast": "a cast", "OneHot": "one_hot", "StopGradient": "tf.stop_gradient",
    "Bincount": "bincount", "HistogramFixedWidth": "histogram", "SearchSorted": "searchsorted",
}


@dataclass
class Cause:
    """Why some variables got no gradient: one category at one place, shared by all of them."""

    category: str
    site: Site | None  # where the path breaks (or where the variable should have been read)
    call: GradientCall | None
    variables: list[SourceFact] = field(default_factory=list)
    detail: str = ""  # one sentence of what the run saw
    last_connected: dict | None = None
    cut: dict | None = None  # the run's fact at the break: the op, the conversion or the assign
    basis: str = RUN
    # set on a cause seen from a caller (gradfix.lift): the site inside the helper function it was found in
    lifted_from: Site | None = None

    @property
    def key(self):
        site = self.site
        return (self.category, site.file if site else "", site.line if site else 0)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(v.key for v in self.variables)

    @property
    def expression(self) -> Expression | None:
        """The user's expression the run saw cut the path (``K.argmax(x)``, ``a > b``, ``t.numpy()``), if it knows one."""
        return Expression.from_cut(self.cut)


def is_float(dtype: str) -> bool:
    return bool(dtype) and ("float" in dtype or "complex" in dtype or dtype in ("half", "double"))


def _site(fact: dict | None, function: str = "") -> Site | None:
    if not fact or not fact.get("line"):
        return None
    code = fact.get("code") or ""
    if not code and fact.get("file"):
        import linecache

        code = linecache.getline(fact["file"], fact["line"]).strip()
    callers = tuple(s for s in (Site.from_dict(c) for c in fact.get("callers") or ()) if s is not None)
    return Site(file=fact.get("file", ""), line=fact["line"], function=fact.get("function", function) or function, code=code,
                callers=callers)


def op_words(cut: dict) -> str:
    op = cut.get("op", "")
    if op == "Cast" and cut.get("dst_dtype"):
        return f"a cast to {cut['dst_dtype']}"
    return OP_SPELLING.get(op, f"the op {op}")


def categorise(source: SourceFact, call) -> Cause:
    where = call.where if isinstance(call, GradientCall) else getattr(call, "site", None)
    gcall = call if isinstance(call, GradientCall) else None
    frontier = source.frontier
    last = frontier.last_connected if frontier is not None else None

    def cause(category, site, detail, cut=None, basis=RUN):
        return Cause(category, site, gcall, [source], detail, last, cut, basis)

    if source.rebound_next_step:
        return cause(cat.VARIABLE_REBOUND, where,
                     "after this step it is a plain tensor: the program assigned the result of arithmetic to its name")
    if gcall is not None and gcall.target_not_tensor:
        kinds = ", ".join(dict.fromkeys(gcall.target_not_tensor))
        site = frontier.break_site if frontier is not None and frontier.break_site is not None else where
        return cause(cat.NUMPY_CONVERSION, site,
                     f"the gradient's target is a {kinds}, not a tensor: the loss was computed outside TensorFlow")
    if source.kind != "variable":
        if not source.watched:
            if source.feeds_target is False:
                return cause(cat.TARGET_INDEPENDENT, where,
                             "the target is not computed from this tensor at all, so watching it would still give None")
            return cause(cat.MISSING_WATCH, where, "it is a plain tensor, not a variable, and the tape was never told to watch it")
    elif source.trainable is False or not is_float(source.dtype):
        what = "a non-trainable variable" if source.trainable is False else f"a {source.dtype} variable"
        return cause(cat.NOT_TRAINABLE, where, f"it is {what}; tapes only watch trainable floating-point variables")
    elif source.watched is False:
        read_here = source.read_by_this_tape if source.read_by_this_tape is not None else source.read == "in-tape"
        origin = gcall.target_origin if gcall is not None else None
        if origin and origin.get("before_window") and not read_here:
            return cause(cat.OUTSIDE_TAPE, _site(origin, where.function if where else ""),
                         f"the target `{origin.get('name')}` was computed here, before the tape started recording; "
                         "the tape was handed a finished tensor", cut=origin)
        if source.other_tape_has_gradient or source.read_by_other_tape:
            return cause(cat.WRONG_TAPE, where,
                         "it was read while another tape was recording, and that tape has the gradient; this tape never saw it")
        if gcall is not None and not gcall.watch_accessed_variables and read_here:
            return cause(cat.MISSING_WATCH, where, "it was read while the tape was recording, but the tape was opened with "
                         "watch_accessed_variables=False and never told to watch it")
        if source.read == "outside-tape" and source.read_outside_at is not None:
            return cause(cat.OUTSIDE_TAPE, source.read_outside_at,
                         "it was read while no tape was recording, so the tape has no record of it")
        built = source.layer.built_at if source.layer and source.layer.built_at else source.created_at
        return cause(cat.NEVER_USED, built,
                     "it was never read during the step: the layer that owns it was not called on the way to the loss")
    return _categorise_watched(source, gcall, where, cause)


def _categorise_watched(source: SourceFact, gcall: GradientCall | None, where, cause) -> Cause:
    """A watched source with a None gradient: find what cut the path between it and the target."""
    frontier = source.frontier
    origin = gcall.target_origin if gcall is not None else None
    brk = frontier.break_site if frontier is not None else None
    if origin and origin.get("recording") is False and (brk is None or frontier is None or frontier.break_recording is False):
        site = _site(origin, where.function if where else "")
        in_call = where is not None and site is not None and site.line == where.line and site.file == where.file
        detail = ("the target is computed in the gradient call's own arguments, after the tape stopped recording"
                  if in_call else "the target was computed after the tape stopped recording")
        return cause(cat.OUTSIDE_TAPE, site or where, detail, cut=origin)
    if source.read == "outside-tape" and source.read_outside_at is not None and brk is None:
        return cause(cat.OUTSIDE_TAPE, source.read_outside_at,
                     "the tape watches it, but it was only read while no tape was recording, so the tape has no record of the loss")
    if frontier is None:
        return _unexplained(source, gcall, where, cause)
    if brk is not None and frontier.break_recording is False:
        return cause(cat.OUTSIDE_TAPE, brk, _reads(frontier) + ", but no tape was recording when it ran")
    cut = frontier.cut
    if cut is not None:
        site = _site(cut) or brk
        kind = cut.get("kind")
        if kind == "numpy-conversion":
            return cause(cat.NUMPY_CONVERSION, site, f"{cut.get('how', 'a conversion')} turns a tensor that depends on it into NumPy", cut)
        if kind == "state-update":
            return cause(cat.STATE_UPDATE, site, _assign_words(cut), cut)
        if kind == "stop-gradient":
            return cause(cat.STOP_GRADIENT, site, "tf.stop_gradient takes a tensor that depends on it and returns a constant", cut)
        if cut.get("recording") is False:
            return cause(cat.OUTSIDE_TAPE, site, f"{op_words(cut)} ran on a tensor that depends on it while no tape was recording", cut)
        detail = f"{op_words(cut)} takes a tensor that depends on it and returns one that does not"
        if cut.get("op") == "Cast" or not all(is_float(d) for d in cut.get("output_dtypes", ())):
            detail += f" (its output is {', '.join(cut.get('output_dtypes') or ['not floating point'])})"
        elif cut.get("no_registered_gradient"):
            detail += " (TensorFlow registers no gradient for it)"
        else:
            detail += " (its gradient is None or zero everywhere)"
        layer = cut.get("layer")
        if layer:
            detail += f", inside {layer.get('class')} `{layer.get('name')}`"
        return cause(cat.NON_DIFFERENTIABLE, site, detail, cut)
    if frontier.conversion is not None:
        conv = frontier.conversion
        return cause(cat.NUMPY_CONVERSION, _site(conv) or brk,
                     f"{conv.get('how', 'a conversion')} turns a tensor that depends on it into NumPy", conv)
    if frontier.assign is not None:
        return cause(cat.STATE_UPDATE, _site(frontier.assign) or brk, _assign_words(frontier.assign), frontier.assign)
    if gcall is not None and gcall.target_depends_on_watched is False and frontier.connected_tensors == 0:
        return cause(cat.TARGET_INDEPENDENT, where, "the target depends on nothing the tape watched: it is a constant for this tape")
    if brk is not None:
        code = frontier.break_code
        outputs = frontier.break_outputs
        if "stop_gradient" in code:
            category = cat.STOP_GRADIENT
        elif any(o.get("type") in ("ndarray", "float", "float32", "float64") for o in outputs) or _NUMPY_TEXT.search(code):
            category = cat.NUMPY_CONVERSION
        elif _NON_DIFF_TEXT.search(code) or any(not is_float(o.get("dtype", "")) for o in outputs if o.get("type") != "ndarray"):
            category = cat.NON_DIFFERENTIABLE
        elif frontier.output_is_target:
            return cause(cat.LOSS_IGNORES_PREDICTION, brk, _reads(frontier) + ", but the loss it computes does not")
        else:
            return cause(cat.UNKNOWN, brk, _reads(frontier) + ", but its result no longer does")
        return cause(category, brk, _reads(frontier) + ", but its result no longer does", basis=LINE_TEXT)
    if frontier.last_connected:
        last = frontier.last_connected
        site = Site(file=last.get("file", ""), line=last.get("line"), function=last.get("function", ""), code=last.get("code", ""))
        if site.line is None and site.file:
            site = function_site(site)
        if not frontier.last_connected_read:
            if last.get("function") in ("call", "__call__"):
                return cause(cat.NEVER_USED, site,
                             f"`{last.get('name')}`, the last tensor that depends on it, is computed in `{last.get('function')}` "
                             "and never read again: that output of the model never reaches the loss")
            return cause(cat.LOSS_IGNORES_PREDICTION, site,
                         f"`{last.get('name')}`, the last tensor that depends on it, is never read on the way to the loss")
        return cause(cat.UNKNOWN, site, f"`{last.get('name')}` depends on it but the loss does not")
    return _unexplained(source, gcall, where, cause)


def _unexplained(source: SourceFact, gcall, where, cause) -> Cause:
    built = source.layer.built_at if source.layer and source.layer.built_at else source.created_at
    if gcall is not None and gcall.target_depends_on_watched is False:
        return cause(cat.TARGET_INDEPENDENT, where, "the target depends on nothing the tape watched: it is a constant for this tape")
    if source.read == "in-tape" and gcall is not None and gcall.target_depends_on_watched:
        # read while recording, and no op on the way to the loss took it in and dropped it: its layer's
        # output is computed and then left unused
        return cause(cat.NEVER_USED, built or where,
                     "its layer was called while the tape was recording, but no op the loss is computed from "
                     "uses its output")
    if source.read == "in-tape":
        return cause(cat.UNKNOWN, where or built,
                     "it was read while the tape was recording, but nothing the loss is computed from depends on it")
    return cause(cat.NEVER_USED, built, "it was read during the step, but nothing the loss is computed from depends on it")


def function_site(site: Site) -> Site:
    """A value bound on entry to a function (a loss's ``y_pred``): point at the function's ``def``."""
    import ast

    try:
        with open(site.file, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
        tree = ast.parse(text)
    except (OSError, SyntaxError, ValueError):
        return site
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == site.function:
            code = text.splitlines()[node.lineno - 1].strip()
            return Site(file=site.file, line=node.lineno, function=node.name, code=code, end_line=node.end_lineno)
    return site


def _reads(frontier) -> str:
    read = ", ".join(f"`{n}`" for n in frontier.reads_connected) or "a connected tensor"
    return f"this statement reads {read}, which still depends on it"


def _assign_words(fact: dict) -> str:
    metric = fact.get("metric")
    if metric:
        return (f"the stateful metric {metric} is used as the loss: it stores the batch's value into its variables "
                f"with {fact.get('method', 'assign')} and returns what it reads back, which has no gradient")
    return (f"a value that depends on it is stored into `{fact.get('variable')}` with {fact.get('method', 'assign')}; "
            "what is read back from a variable has no gradient to what was stored")


def group_causes(facts) -> list[Cause]:
    grouped: dict[tuple, Cause] = {}
    for call, source in facts.variables_without_gradient():
        found = categorise(source, call)
        if found.key in grouped:
            grouped[found.key].variables.append(source)
        else:
            grouped[found.key] = found
    return list(grouped.values())
