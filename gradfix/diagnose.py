"""From a run's facts to findings: categorise each lost gradient, group, join with the static rules, fix, verify.

    facts (runtime) ──categorise──▶ causes ──join with static findings──▶ findings ──fix──▶ patches ──verify (re-run)
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Sequence

from gradfix import categories as cat
from gradfix.model import Evidence, Finding, Fix, RelatedSpan, Severity, Span
from gradfix.runtime.facts import GradientCall, RunFacts, Site, SourceFact
from gradfix.runtime.runner import DEFAULT_TIMEOUT, run_step

# The rule that explains each category when no static finding was there to confirm.
CATEGORY_RULE = {
    cat.OUTSIDE_TAPE: "GF001",
    cat.STOP_GRADIENT: "GF002",
    cat.LOSS_IGNORES_PREDICTION: "GF003",
    cat.NUMPY_CONVERSION: "GF004",
    cat.VARIABLE_REBOUND: "GF005",
    cat.MISSING_WATCH: "GF007",
    cat.NON_DIFFERENTIABLE: "GF009",
    cat.NOT_TRAINABLE: "GF010",
    cat.NEVER_USED: "GF011",
    cat.WRONG_TAPE: "GF012",
    cat.UNKNOWN: "GF000",
}
UNKNOWN_RULE_NAME = "gradient-path-broken"

_NON_DIFF = re.compile(
    r"\b(argmax|argmin|round|rint|sign|floor|ceil|equal|not_equal|greater|greater_equal|less|less_equal|"
    r"top_k|unique|py_function|numpy_function|py_func|histogram_fixed_width|bincount|searchsorted|"
    r"logical_and|logical_or|logical_not|cast|astype|int32|int64|bool)\b|[<>]=?|==|!="
)
_NUMPY = re.compile(r"\.numpy\(\)|\bnp\.|\bnumpy\.|\bfloat\(|\.item\(\)|\.tolist\(\)")


@dataclass
class Cause:
    """Why some variables got no gradient: one category at one place, shared by all of them."""

    category: str
    site: Site | None  # where the path breaks (or where the variable should have been read)
    call: GradientCall | None
    variables: list[SourceFact] = field(default_factory=list)
    detail: str = ""  # one sentence of what the run saw
    last_connected: dict | None = None

    @property
    def key(self):
        site = self.site
        return (self.category, site.file if site else "", site.line if site else 0)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(v.path for v in self.variables)


@dataclass
class Diagnosis:
    facts: RunFacts
    causes: list[Cause] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # one per cause, same order
    static_findings: dict[str, list[Finding]] = field(default_factory=dict)  # file -> all static findings
    confirmed: list[list[Finding]] = field(default_factory=list)  # per cause: the static findings the run confirmed
    # the program crashed before its first gradient, and its traceback passes through lines where the
    # static rules found a cause of missing gradients (np.mean on a symbolic tensor in a tf.function)
    crash_findings: list[Finding] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if not self.facts.diagnosed:
            return 1 if self.crash_findings else 2
        return 1 if self.causes else 0


# --------------------------------------------------------------------------- categorising

def categorise(source: SourceFact, call) -> Cause:
    where = call.where if isinstance(call, GradientCall) else getattr(call, "site", None)
    gcall = call if isinstance(call, GradientCall) else None
    frontier = source.frontier
    if source.rebound_next_step:
        return Cause(cat.VARIABLE_REBOUND, where, gcall, [source],
                     "after this step it is a plain tensor: the program assigned the result of arithmetic to its name")
    if gcall is not None and gcall.target_not_tensor:
        # np.mean(...) of the prediction as the loss: TensorFlow cannot differentiate a NumPy value at all
        kinds = ", ".join(dict.fromkeys(gcall.target_not_tensor))
        site = frontier.break_site if frontier is not None and frontier.break_site is not None else where
        reads = frontier.reads_connected if frontier is not None else ()
        detail = f"the gradient's target is a {kinds}, not a tensor: the loss was computed outside TensorFlow"
        if reads:
            detail += "; " + ", ".join(f"`{n}`" for n in reads) + " still depended on it before this statement"
        return Cause(cat.NUMPY_CONVERSION, site, gcall, [source], detail, frontier.last_connected if frontier else None)
    if source.kind != "variable":
        return Cause(cat.MISSING_WATCH, where, gcall, [source],
                     "it is a plain tensor, not a variable, and the tape was never told to watch it")
    if source.trainable is False or not _is_float(source.dtype):
        what = "a non-trainable variable" if source.trainable is False else f"a {source.dtype} variable"
        return Cause(cat.NOT_TRAINABLE, where, gcall, [source], f"it is {what}; tapes only watch trainable floating-point variables")
    read_in_this_tape = source.read_by_this_tape if source.read_by_this_tape is not None else source.read == "in-tape"
    if source.watched is False:
        if source.other_tape_has_gradient or source.read_by_other_tape:
            return Cause(cat.WRONG_TAPE, where, gcall, [source],
                         "it was read while another tape was recording, and that tape has the gradient; this tape never saw it")
        if gcall is not None and not gcall.watch_accessed_variables and read_in_this_tape:
            return Cause(cat.MISSING_WATCH, where, gcall, [source],
                         "it was read while the tape was recording, but the tape was opened with "
                         "watch_accessed_variables=False and never told to watch it")
        if source.read == "outside-tape" and source.read_outside_at is not None:
            return Cause(cat.OUTSIDE_TAPE, source.read_outside_at, gcall, [source],
                         "it was read while no tape was recording, so the tape has no record of it")
        built = source.layer.built_at if source.layer and source.layer.built_at else source.created_at
        return Cause(cat.NEVER_USED, built, gcall, [source],
                     "it was never read during the step: the layer that owns it was not called on the way to the loss")
    if source.read == "outside-tape" and source.read_outside_at is not None and (frontier is None or frontier.break_site is None):
        # watched (tape.watch(w)), yet only ever read while no tape was recording
        return Cause(cat.OUTSIDE_TAPE, source.read_outside_at, gcall, [source],
                     "the tape watches it, but it was only read while no tape was recording, so the tape has no record of the loss")
    if frontier is not None and frontier.break_site is not None:
        code = frontier.break_code
        outputs = frontier.break_outputs
        if frontier.break_recording is False:
            category = cat.OUTSIDE_TAPE
        elif "stop_gradient" in code:
            category = cat.STOP_GRADIENT
        elif any(o.get("type") in ("ndarray", "float", "float32", "float64") for o in outputs) or _NUMPY.search(code):
            category = cat.NUMPY_CONVERSION
        elif _NON_DIFF.search(code) or any(not _is_float(o.get("dtype", "")) for o in outputs if o.get("type") != "ndarray"):
            category = cat.NON_DIFFERENTIABLE
        elif frontier.output_is_target:
            category = cat.LOSS_IGNORES_PREDICTION
        else:
            category = cat.UNKNOWN
        read = ", ".join(f"`{n}`" for n in frontier.reads_connected) or "a connected tensor"
        detail = f"this statement reads {read}, which still depends on it, but its result no longer does"
        return Cause(category, frontier.break_site, gcall, [source], detail, frontier.last_connected)
    if frontier is not None and frontier.last_connected:
        last = frontier.last_connected
        site = Site(file=last.get("file", ""), line=last.get("line"), function=last.get("function", ""), code=last.get("code", ""))
        if site.line is None and site.file:
            site = _function_site(site)
        if not frontier.last_connected_read:
            return Cause(cat.LOSS_IGNORES_PREDICTION, site, gcall, [source],
                         f"`{last.get('name')}`, the last tensor that depends on it, is never read on the way to the loss", last)
        return Cause(cat.UNKNOWN, site, gcall, [source], f"`{last.get('name')}` depends on it but the loss does not", last)
    built = source.layer.built_at if source.layer and source.layer.built_at else source.created_at
    if source.read == "in-tape":
        # Read while the tape recorded, yet no value the step's own code bound depends on it: the cut
        # is inside an expression (tf.stop_gradient(model(x))) or in library code. The run cannot name it;
        # a static finding by the gradient call can (see COMPATIBLE).
        return Cause(cat.UNKNOWN, where or built, gcall, [source],
                     "it was read while the tape was recording, but nothing the loss is computed from depends on it")
    return Cause(cat.NEVER_USED, built, gcall, [source],
                 "it was read during the step, but nothing the loss is computed from depends on it")


def _function_site(site: Site) -> Site:
    """A value bound on entry to a function: point at the function's `def`."""
    try:
        with open(site.file, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return site
    for start, end, name in _Functions(text).named(site.function):
        line = text.splitlines()[start - 1].strip() if start - 1 < len(text.splitlines()) else ""
        return Site(file=site.file, line=start, function=name, code=line, end_line=end)
    return site


def _is_float(dtype: str) -> bool:
    return bool(dtype) and ("float" in dtype or "complex" in dtype or dtype in ("half", "double"))


def group_causes(facts: RunFacts) -> list[Cause]:
    grouped: dict[tuple, Cause] = {}
    for call, source in facts.variables_without_gradient():
        cause = categorise(source, call)
        key = cause.key
        if key in grouped:
            grouped[key].variables.append(source)
        else:
            grouped[key] = cause
    return list(grouped.values())


# --------------------------------------------------------------------------- joining with static findings

def _rules_by_code():
    from gradfix.registry import all_rules

    return {rule.code: rule for rule in all_rules()}


class _Functions:
    """Line ranges of the functions of a file, for "same function" and "function called here"."""

    def __init__(self, text: str):
        self.ranges: list[tuple[int, int, str]] = []
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            return
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.ranges.append((node.lineno, node.end_lineno or node.lineno, node.name))

    def innermost(self, line: int) -> tuple[int, int, str] | None:
        best = None
        for start, end, name in self.ranges:
            if start <= line <= end and (best is None or start >= best[0]):
                best = (start, end, name)
        return best

    def named(self, name: str):
        return [r for r in self.ranges if r[2] == name]


def _static_findings(path: str, cache: dict[str, list[Finding]]) -> list[Finding]:
    if path in cache:
        return cache[path]
    from gradfix.engine import analyze
    from gradfix.source import SourceError, read_source

    try:
        cache[path] = analyze(read_source(path)) if os.path.isfile(path) else []
    except SourceError:
        cache[path] = []
    return cache[path]


def _near(finding: Finding, cause: Cause, functions: _Functions) -> int | None:
    """A distance (smaller is nearer) when the finding is in the cause's place, else None."""
    sites = [s for s in (cause.site, cause.call.where if cause.call else None) if s is not None and s.line]
    for variable in cause.variables:
        if variable.layer and variable.layer.built_at:
            sites.append(variable.layer.built_at)
    best = None
    for site in sites:
        if os.path.abspath(site.file) != os.path.abspath(finding.span.path):
            continue
        line = site.line
        end = site.end_line or line
        if finding.span.start_line <= end and finding.span.end_line >= line:
            distance = 0
        else:
            here = functions.innermost(line)
            there = functions.innermost(finding.span.start_line)
            distance = None
            if here is not None and here == there:
                distance = abs(finding.span.start_line - line)
            elif here is None and there is None:
                distance = 1000 + abs(finding.span.start_line - line)
            elif there is not None and re.search(r"\b%s\s*\(" % re.escape(there[2]), site.code or ""):
                distance = 1 + abs(finding.span.start_line - there[0])  # in a function called at the break
            if distance is None:
                continue
        best = distance if best is None else min(best, distance)
    return best


# What the run saw (the category it guessed) and the categories of static rules that can explain the
# same facts. The guess is made from one statement's text; a static finding there (or by the gradient
# call) that names a compatible cause is the better name: `1 - accuracy(y, probs)` is a cut the run sees
# at that line, the rule knows the metric has no gradient. An exact category is preferred when both are near.
_CUT = frozenset({cat.LOSS_IGNORES_PREDICTION, cat.STOP_GRADIENT, cat.NUMPY_CONVERSION, cat.NON_DIFFERENTIABLE, cat.WRONG_TAPE})
COMPATIBLE = {
    cat.LOSS_IGNORES_PREDICTION: _CUT,
    cat.STOP_GRADIENT: _CUT,
    cat.NUMPY_CONVERSION: _CUT,
    cat.NON_DIFFERENTIABLE: _CUT,
    cat.UNKNOWN: _CUT | {cat.OUTSIDE_TAPE, cat.NEVER_USED, cat.MISSING_WATCH},
    cat.OUTSIDE_TAPE: frozenset({cat.OUTSIDE_TAPE, cat.WRONG_TAPE}),
    cat.NEVER_USED: frozenset({cat.NEVER_USED, cat.WRONG_TAPE}),
    cat.WRONG_TAPE: frozenset({cat.WRONG_TAPE}),
    cat.MISSING_WATCH: frozenset({cat.MISSING_WATCH}),
    cat.NOT_TRAINABLE: frozenset({cat.NOT_TRAINABLE}),
    cat.VARIABLE_REBOUND: frozenset({cat.VARIABLE_REBOUND}),
}
# A compatible (not exact) finding counts as this much farther away than an exact one.
_COMPATIBLE_PENALTY = 50


def confirm(cause: Cause, static: list[Finding], functions: _Functions, rules) -> list[Finding]:
    compatible = COMPATIBLE.get(cause.category, frozenset({cause.category}))
    candidates = []
    for finding in static:
        rule = rules.get(finding.rule)
        categories = set(getattr(rule, "categories", ())) if rule is not None else set()
        if not categories & compatible:
            continue
        distance = _near(finding, cause, functions)
        if distance is None:
            continue
        exact = cause.category in categories
        candidates.append((distance + (0 if exact else _COMPATIBLE_PENALTY), finding.span.start_line, finding))
    if not candidates:
        return []
    candidates.sort(key=lambda item: (item[0], item[1]))
    best_distance, _, best = candidates[0]
    # the same rule close by explains the same cut (np.square(pred.numpy()), w and b rebound on two lines)
    return [f for d, _, f in candidates if f.rule == best.rule and d <= best_distance + 5]


def _recategorise(cause: Cause, finding: Finding, rules) -> None:
    """A static finding of a compatible category names the cause: take its category and place."""
    rule = rules.get(finding.rule)
    categories = tuple(getattr(rule, "categories", ())) if rule is not None else ()
    if not categories or cause.category in categories:
        return
    cause.category = categories[0]
    code = ""
    try:
        with open(finding.span.path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
        code = lines[finding.span.start_line - 1].strip() if 0 < finding.span.start_line <= len(lines) else ""
    except OSError:
        pass
    function = cause.site.function if cause.site is not None else ""
    cause.site = Site(file=finding.span.path, line=finding.span.start_line, function=function, code=code,
                      column=finding.span.start_column, end_line=finding.span.end_line)


def crash_findings(facts: RunFacts, cache: dict[str, list[Finding]] | None = None) -> list[Finding]:
    """Static findings on the lines of a crash's traceback (the program's own frames), innermost first."""
    if facts.status != "crashed" or facts.error is None:
        return []
    cache = {} if cache is None else cache
    raw_frames = list((facts.raw.get("error") or {}).get("frames") or ())
    frames = []
    for index, site in enumerate(facts.error.frames):
        user = raw_frames[index].get("user", True) if index < len(raw_frames) and isinstance(raw_frames[index], dict) else True
        if user and site.file and site.line and os.path.isfile(site.file):
            frames.append(site)
    found: list[Finding] = []
    seen = set()
    for site in reversed(frames):  # the innermost frame is the nearest to the cause
        for finding in _static_findings(site.file, cache):
            if os.path.abspath(finding.span.path) != os.path.abspath(site.file):
                continue
            if not finding.span.start_line <= site.line <= finding.span.end_line:
                continue
            key = (finding.rule, finding.span.path, finding.span.start_line, finding.span.start_column)
            if key in seen:
                continue
            seen.add(key)
            where = site.where()
            found.append(finding.replace(explanation=(
                f"The program crashed at {where} before its first gradient ({facts.error.type}), and this line is where "
                f"gradfix found the cause statically: {finding.message} "
                "The run could not confirm it, since no gradient was computed; fix it and run `gradfix diagnose` again.")))
    return found


def diagnose(facts: RunFacts) -> Diagnosis:
    result = Diagnosis(facts)
    if not facts.diagnosed:
        result.crash_findings = crash_findings(facts, result.static_findings)
        return result
    result.causes = group_causes(facts)
    rules = _rules_by_code()
    function_maps: dict[str, _Functions] = {}
    for cause in result.causes:
        files = []
        for site in (cause.site, cause.call.where if cause.call else None):
            if site is not None and site.file and site.file not in files:
                files.append(site.file)
        for variable in cause.variables:
            if variable.layer and variable.layer.built_at and variable.layer.built_at.file not in files:
                files.append(variable.layer.built_at.file)
        static = []
        for path in files:
            static.extend(_static_findings(path, result.static_findings))
            if path not in function_maps:
                try:
                    with open(path, encoding="utf-8", errors="replace") as handle:
                        function_maps[path] = _Functions(handle.read())
                except OSError:
                    function_maps[path] = _Functions("")
        confirmed: list[Finding] = []
        for path in files:
            confirmed = confirm(cause, [f for f in static if f.span.path == path], function_maps[path], rules)
            if confirmed:
                break
        if confirmed:
            _recategorise(cause, confirmed[0], rules)
        result.findings.append(_finding(cause, confirmed[0] if confirmed else None, rules))
        result.confirmed.append(confirmed)
    _merge_same_finding(result)
    return result


def _merge_same_finding(result: Diagnosis) -> None:
    """Causes the static analysis names as one (two layers cut at one `tf.stop_gradient`) are one finding."""
    merged: dict[tuple, int] = {}
    causes, findings, confirmed = [], [], []
    for cause, finding, static in zip(result.causes, result.findings, result.confirmed):
        key = None
        if static:
            key = (cause.category, finding.rule, os.path.abspath(finding.span.path), finding.span.start_line,
                   finding.span.start_column, id(cause.call) if cause.call is not None else None)
        if key is not None and key in merged:
            index = merged[key]
            causes[index].variables.extend(cause.variables)
            paths = causes[index].paths
            findings[index] = findings[index].replace(
                variables=paths, explanation=explanation(causes[index]),
                related=tuple(findings[index].related) + tuple(r for r in finding.related if r not in findings[index].related))
            continue
        if key is not None:
            merged[key] = len(causes)
        causes.append(cause)
        findings.append(finding)
        confirmed.append(static)
    result.causes, result.findings, result.confirmed = causes, findings, confirmed


# --------------------------------------------------------------------------- findings

def _span(site: Site | None, fallback: Site | None = None) -> Span:
    site = site if site is not None and site.line else fallback
    if site is None or not site.line:
        return Span("<unknown>", 1, 1, 1, 1)
    end_line = site.end_line or site.line
    return Span(site.file, site.line, site.column or 1, end_line, (site.column or 1) + max(1, len(site.code or "")))


def variable_summary(source: SourceFact) -> str:
    text = f"{source.path} {source.shape_text()} {source.dtype}"
    if source.layer is not None:
        built = source.layer.built_at.where() if source.layer.built_at else "?"
        text += f" of {source.layer.cls} `{source.layer.name}` built at {built}"
    elif source.created_at is not None and source.created_at.line:
        made = f"`{source.created_at.code.strip()}` " if source.created_at.code else ""
        text += f" created by {made}at {source.created_at.where()}"
    return text


def explanation(cause: Cause) -> str:
    n = len(cause.variables)
    these = "this variable" if n == 1 else f"these {n} variables"
    site = cause.site.where() if cause.site else "an unknown place"
    base = {
        cat.LOSS_IGNORES_PREDICTION: f"The loss at {site} is computed without the model's final prediction, so nothing connects {these} to it. "
        "TensorFlow can only differentiate what the loss was actually computed from. Compute the loss from the prediction.",
        cat.OUTSIDE_TAPE: f"{these.capitalize()} were read at {site} while no GradientTape was recording. "
        "A tape only records the operations run inside its `with` block, so the gradient call has no path back to them. "
        "Move the forward pass and the loss inside the tape.",
        cat.STOP_GRADIENT: f"`tf.stop_gradient` at {site} cuts the path from {these} to the loss. "
        "Everything before it is treated as a constant. Remove it unless that part is meant to stay frozen.",
        cat.NON_DIFFERENTIABLE: f"The statement at {site} passes the values through an operation that has no gradient "
        "(argmax, round, comparisons, casts to integers). The tape cannot differentiate through it, so {these} get None. "
        "Use the probabilities or logits themselves, or a differentiable surrogate.",
        cat.NUMPY_CONVERSION: f"At {site} the values leave TensorFlow through NumPy (`.numpy()`, `np.*`, `float()`). "
        "The tape does not record NumPy, so the loss is computed from a constant. Use the TensorFlow operations instead.",
        cat.VARIABLE_REBOUND: f"After the step, the name of {these} is bound to a plain tensor (`w = w - lr * g`) instead of being updated in place. "
        "The next step's tape does not watch a plain tensor, so its gradient is None. Use `w.assign_sub(lr * g)`.",
        cat.MISSING_WATCH: (f"The tape at {site} was opened with `watch_accessed_variables=False` and never told to watch {these}, "
        "so it kept no record of them. Call `tape.watch(...)` on them at the start of the block, or let the tape watch what it reads."
        if any(v.is_variable for v in cause.variables) else
        "The gradient is asked for a plain tensor, not a variable. "
        "A tape only watches trainable variables on its own; tensors need `tape.watch(x)` at the start of the block."),
        cat.NOT_TRAINABLE: f"{these.capitalize()} are not trainable (or not floating point), so no tape watches them and their gradient is None. "
        "If freezing is intended, leave them out of the sources (`model.trainable_variables`).",
        cat.NEVER_USED: f"{these.capitalize()} were never read on the way to the loss: their layer was built but not called in the step. "
        "Call the layer in the forward pass, remove it, or leave its variables out of the ones you train.",
        cat.WRONG_TAPE: f"The gradient at {site} is asked of a tape that did not record {these}; another tape did. "
        "Ask the tape that recorded the loss, for the model that loss trains.",
        cat.UNKNOWN: f"The path from {these} to the loss breaks at {site}, for a reason gradfix could not name. {cause.detail}.",
    }[cause.category]
    return base.replace("{these}", these)


def _finding(cause: Cause, confirmed: Finding | None, rules) -> Finding:
    paths = cause.paths
    names = ", ".join(paths[:4]) + (f" and {len(paths) - 4} more" if len(paths) > 4 else "")
    related = []
    if cause.call is not None and cause.call.where is not None:
        related.append(RelatedSpan(_span(cause.call.where), f"the gradient call: {cause.call.where.code}"))
    layers_seen = set()
    for variable in cause.variables:
        if variable.layer and variable.layer.built_at and variable.layer.built_at.line:
            key = (variable.layer.built_at.file, variable.layer.built_at.line, variable.layer.built_at.column)
            if key not in layers_seen:
                layers_seen.add(key)
                related.append(RelatedSpan(_span(variable.layer.built_at), f"{variable.layer.cls} `{variable.layer.name}` built here"))
    severity = Severity.WARNING if cause.category == cat.NOT_TRAINABLE else Severity.ERROR
    text = explanation(cause)
    if confirmed is not None:
        return confirmed.replace(
            evidence=Evidence.RUNTIME,
            variables=paths,
            explanation=text,
            related=tuple(confirmed.related) + tuple(related),
        )
    code = CATEGORY_RULE.get(cause.category, "GF000")
    rule = rules.get(code)
    name = rule.name if rule is not None else UNKNOWN_RULE_NAME
    message = f"{names}: no gradient; {cat.DESCRIPTIONS[cause.category]} ({cause.detail})"
    return Finding(
        rule=code,
        name=name,
        message=message,
        span=_span(cause.site, cause.call.where if cause.call else None),
        severity=severity,
        evidence=Evidence.RUNTIME,
        related=tuple(related),
        fix=None,
        variables=paths,
        explanation=text,
    )


# --------------------------------------------------------------------------- fixing and verifying

@dataclass
class FilePatch:
    path: str
    old_text: str
    new_text: str
    diff: str
    fixes: list[Fix]
    source: object = None  # the SourceFile, for writing


@dataclass
class Verification:
    ran: bool
    status: str = ""
    before: dict[str, bool] = field(default_factory=dict)  # path -> got a gradient
    after: dict[str, bool] = field(default_factory=dict)
    verified: dict[int, bool] = field(default_factory=dict)  # finding index -> verified
    still_failing: dict[int, list[str]] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)  # variables that had a gradient before and not after
    reason: str = ""


def propose_fixes(diagnosis: Diagnosis, include_unsafe: bool = False) -> list[FilePatch]:
    from gradfix.engine import fix_source
    from gradfix.patch import make_diff
    from gradfix.source import SourceError, read_source

    by_file: dict[str, list[Finding]] = {}
    for confirmed in diagnosis.confirmed:
        for finding in confirmed:
            if finding.fix is not None:
                by_file.setdefault(finding.span.path, []).append(finding)
    patches = []
    for path, findings in by_file.items():
        try:
            source = read_source(path)
        except SourceError:
            continue
        outcome = fix_source(source, only=findings, include_unsafe=include_unsafe)
        applied = list(outcome.applied)
        text = outcome.new_text
        # fix_source matches findings by (rule, line): a second finding of the same rule on the
        # same line (np.square(pred.numpy())) is left; take it in further rounds.
        lines = {f.span.start_line for f in findings}
        rules = {f.rule for f in findings}
        remaining = outcome.remaining
        for _ in range(4):
            more = [f for f in remaining if f.rule in rules and f.fix is not None
                    and any(abs(f.span.start_line - line) <= 2 for line in lines)]
            if not more:
                break
            current = type(source)(source.path, text, source.encoding)
            again = fix_source(current, only=more, include_unsafe=include_unsafe)
            if not again.changed:
                break
            applied.extend(again.applied)
            text, remaining = again.new_text, again.remaining
        if text == source.text:
            continue
        patches.append(FilePatch(path, source.text, text, make_diff(path, source.text, text), applied, source))
    return patches


_COPY_IGNORE = shutil.ignore_patterns(".git", ".hg", ".svn", "__pycache__", ".venv", "venv", "env", "node_modules",
                                      ".mypy_cache", ".pytest_cache", ".tox", "*.pyc")


def program_root(target: str, cwd: str) -> str:
    """The folder that holds the program: copied whole for verification."""
    from gradfix.runtime.bootstrap import resolve_target

    kind, spec, _ = resolve_target(os.path.join(cwd, target) if not os.path.isabs(target) and _looks_like_file(target) else target)
    if kind == "file":
        return os.path.dirname(os.path.abspath(spec))
    return os.path.abspath(cwd)


def _looks_like_file(target: str) -> bool:
    head = target.split(":", 1)[0]
    return head.endswith(".py") or os.sep in head


def verify(
    diagnosis: Diagnosis,
    patches: Sequence[FilePatch],
    target: str,
    args: Sequence[str] = (),
    python: str = sys.executable,
    timeout: float = DEFAULT_TIMEOUT,
    steps: int = 1,
    cwd: str | None = None,
) -> Verification:
    """Re-run the step on a patched copy of the program's folder; never touches the user's files."""
    cwd = os.path.abspath(cwd or os.getcwd())
    before = diagnosis.facts.gradient_status()
    root = program_root(target, cwd)
    outside = [p.path for p in patches if not os.path.abspath(p.path).startswith(root + os.sep)]
    if outside:
        return Verification(False, before=before, reason=f"{', '.join(outside)} lies outside {root}, which is what gets copied")
    with tempfile.TemporaryDirectory(prefix="gradfix-verify-") as scratch:
        copy = os.path.join(scratch, os.path.basename(root) or "program")
        shutil.copytree(root, copy, ignore=_COPY_IGNORE, symlinks=True)
        for patch in patches:
            relative = os.path.relpath(os.path.abspath(patch.path), root)
            with open(os.path.join(copy, relative), "w", encoding=getattr(patch.source, "encoding", "utf-8"), newline="") as out:
                out.write(patch.new_text)
        new_cwd = os.path.join(copy, os.path.relpath(cwd, root)) if cwd.startswith(root) else copy
        new_target = target
        if _looks_like_file(target):
            head, sep, tail = target.partition(":") if not os.path.exists(target) else (target, "", "")
            absolute = os.path.abspath(os.path.join(cwd, head))
            new_target = os.path.join(copy, os.path.relpath(absolute, root)) + (sep + tail if sep else "")
        env = dict(os.environ)
        if cwd.startswith(root):
            env["PYTHONPATH"] = os.pathsep.join([new_cwd] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        facts = run_step(new_target, args=args, python=python, timeout=timeout, steps=steps, cwd=new_cwd, env=env)
    result = Verification(True, status=facts.status, before=before)
    if not facts.diagnosed:
        result.reason = f"the patched program did not get to a gradient ({facts.status})"
        return result
    after = {_strip(p, copy): ok for p, ok in facts.gradient_status().items()}
    result.after = after
    result.lost = sorted(p for p, ok in before.items() if ok and after.get(p) is False)
    for index, finding in enumerate(diagnosis.findings):
        if not finding.variables:
            continue
        category = diagnosis.causes[index].category if index < len(diagnosis.causes) else ""
        # a non-trainable variable is fixed by no longer asking for its gradient
        failing = [p for p in finding.variables
                   if after.get(p) is not True and not (category == cat.NOT_TRAINABLE and p not in after)]
        result.still_failing[index] = failing
        result.verified[index] = not failing and not result.lost
    return result


def _strip(path: str, copy: str) -> str:
    return path


def mark_verified(diagnosis: Diagnosis, verification: Verification, patches: Sequence[FilePatch] = ()) -> list[Finding]:
    """The findings with their fixes' verdicts filled in (only fixes that were part of the patches)."""
    applied = {(os.path.abspath(p.path), fix.rule) for p in patches for fix in p.fixes}
    findings = []
    for index, finding in enumerate(diagnosis.findings):
        in_patch = (os.path.abspath(finding.span.path), finding.rule) in applied
        if finding.fix is not None and in_patch and verification.ran and index in verification.verified:
            ok = verification.verified[index]
            finding = finding.replace(fix=_with_verified(finding.fix, ok), evidence=Evidence.VERIFIED if ok else finding.evidence)
        findings.append(finding)
    return findings


def _with_verified(fix: Fix, ok: bool) -> Fix:
    import dataclasses

    return dataclasses.replace(fix, verified=ok)
