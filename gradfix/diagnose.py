"""From a run's facts to findings: the causes (gradfix.causes), joined with the static rules; the entry point.

    facts (runtime) ──causes──▶ join with static findings ──▶ findings ──repair (gradfix.repair)──▶ verified patches
"""

from __future__ import annotations

import ast
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Sequence

from gradfix import categories as cat
from gradfix.causes import RUN, STATIC, Cause, group_causes
from gradfix.causes import is_float as _is_float
from gradfix.messages import LIMIT, brief, headline, plural, sentence, variables_summary
from gradfix.model import Evidence, Finding, RelatedSpan, Severity, Span
from gradfix.runtime.facts import RunFacts, Site, SourceFact
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
    cat.STATE_UPDATE: "GF013",
    cat.TARGET_INDEPENDENT: "GF014",
    cat.UNKNOWN: "GF000",
}
UNKNOWN_RULE_NAME = "gradient-path-broken"


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
    # with diagnose_target(fix=True): per finding, the fixes tried; the verified patches that may be
    # written; the verification of their merge when there are several; what was left out and why
    repairs: list = field(default_factory=list)
    patches: list = field(default_factory=list)
    verification: object = None
    left_out: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if not self.facts.diagnosed:
            return 1 if self.crash_findings else 2
        return 1 if self.causes else 0


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


def findings_in(path: str, cache: dict[str, list[Finding]]) -> list[Finding]:
    """The static findings of the file at ``path`` (none for a file that cannot be read), kept in ``cache``."""
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
    best: int | None = None
    for site in sites:
        if os.path.abspath(site.file) != os.path.abspath(finding.span.path) or site.line is None:
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
    cat.STATE_UPDATE: frozenset({cat.STATE_UPDATE}),
    cat.TARGET_INDEPENDENT: frozenset({cat.TARGET_INDEPENDENT, cat.LOSS_IGNORES_PREDICTION}),
    cat.OUTSIDE_TAPE: frozenset({cat.OUTSIDE_TAPE, cat.WRONG_TAPE}),
    cat.NEVER_USED: frozenset({cat.NEVER_USED, cat.WRONG_TAPE}),
    cat.WRONG_TAPE: frozenset({cat.WRONG_TAPE}),
    cat.MISSING_WATCH: frozenset({cat.MISSING_WATCH}),
    cat.NOT_TRAINABLE: frozenset({cat.NOT_TRAINABLE}),
    cat.VARIABLE_REBOUND: frozenset({cat.VARIABLE_REBOUND}),
}
# Causes where the run knows only that the path ends (no op, conversion or update cut it): a compatible
# static finding may name them better (a loss asked of the wrong tape leaves its own loss unread).
REFINABLE = frozenset({cat.UNKNOWN, cat.TARGET_INDEPENDENT, cat.LOSS_IGNORES_PREDICTION, cat.NEVER_USED})
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
    if cause.basis == RUN and cause.category not in REFINABLE:
        return  # what TensorFlow did outranks the shape of the source
    cause.category = categories[0]
    cause.basis = STATIC
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
        for finding in findings_in(site.file, cache):
            if os.path.abspath(finding.span.path) != os.path.abspath(site.file):
                continue
            if site.line is None or not finding.span.start_line <= site.line <= finding.span.end_line:
                continue
            key = (finding.rule, finding.span.path, finding.span.start_line, finding.span.start_column)
            if key in seen:
                continue
            seen.add(key)
            where = site.where()
            found.append(finding.replace(explanation=(
                f"The program crashed at {where} before its first gradient ({facts.error.type}), and this line is where "
                f"gradfix found the cause statically: {finding.message}. "
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
            static.extend(findings_in(path, result.static_findings))
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
        if confirmed and cause.basis == RUN and cause.category not in REFINABLE:
            # the run named the cause: only a static finding of that very cause confirms it
            confirmed = [f for f in confirmed if cause.category in getattr(rules.get(f.rule), "categories", ())]
        if confirmed:
            _recategorise(cause, confirmed[0], rules)
        result.findings.append(_finding(cause, confirmed[0] if confirmed else None, rules))
        result.confirmed.append(confirmed)
    _merge_same_finding(result)
    return result


def _merge_same_finding(result: Diagnosis) -> None:
    """Causes the static analysis names as one (two layers cut at one `tf.stop_gradient`) are one finding."""
    merged: dict[tuple, int] = {}
    causes: list[Cause] = []
    findings: list[Finding] = []
    confirmed: list[list[Finding]] = []
    for cause, finding, static in zip(result.causes, result.findings, result.confirmed):
        key = None
        if static:
            key = (cause.category, finding.rule, os.path.abspath(finding.span.path), finding.span.start_line,
                   finding.span.start_column, id(cause.call) if cause.call is not None else None)
        if key is not None and key in merged:
            index = merged[key]
            causes[index].variables.extend(cause.variables)
            paths = causes[index].keys
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
    text = f"{source.key} {source.shape_text()} {source.dtype}"
    if source.layer is not None:
        built = source.layer.built_at.where() if source.layer.built_at else "?"
        text += f" of {source.layer.cls} `{source.layer.name}` built at {built}"
    elif source.created_at is not None and source.created_at.line:
        made = f"`{source.created_at.code.strip()}` " if source.created_at.code else ""
        text += f" created by {made}at {source.created_at.where()}"
    return text


def cause_variables(cause: Cause) -> str:
    """The variables of a cause in one line: themselves when one or two, else how many, in how many layers."""
    return variables_summary(cause.keys, _layers(cause))


def _layers(cause: Cause) -> list[str | None] | None:
    """The layer of each variable: its Keras path less its last part (``vae/encoder/conv2d`` for
    ``vae/encoder/conv2d/kernel``), which names nested layers where the run's layer may be the whole model;
    the run's layer for variables without a path."""
    if any("/" in key for key in cause.keys):
        return None
    layers = [v.layer.name if v.layer is not None and v.layer.name else None for v in cause.variables]
    return layers if any(layers) else None


def runtime_headline(cause: Cause, rule_name: str) -> str:
    """The first line of a run's finding: how many variables get no gradient, and why in a few words."""
    n = len(cause.variables)
    if n == 1:
        who, verb = f"`{brief(cause.keys[0], 36)}`", "gets"
    else:
        named = _layers(cause) or [key.rsplit("/", 1)[0] if "/" in key else None for key in cause.keys]
        layers = {layer for layer in named if layer}
        who = plural(n, "variable") + (f" in {plural(len(layers), 'layer')}" if len(layers) > 1 else "")
        verb = "get"
    for candidate in (f"{who} {verb} no gradient: {cat.DESCRIPTIONS[cause.category]}",
                      f"{who} {verb} no gradient ({rule_name})"):
        if len(sentence(candidate)) <= LIMIT:
            return sentence(candidate)
    return headline(f"{who} {verb} no gradient")


def explanation(cause: Cause) -> str:
    """What happened, in the run's own words first, then why it loses the gradient and what to do."""
    n = len(cause.variables)
    these = "this variable" if n == 1 else f"these {n} variables"
    they_were = "it was" if n == 1 else "they were"
    site = cause.site.where() if cause.site else "an unknown place"
    integer = any(v.is_variable and v.trainable is not False and not _is_float(v.dtype) for v in cause.variables)
    base = {
        cat.LOSS_IGNORES_PREDICTION: f"The loss is computed without the model's final prediction, so nothing connects {these} to it. "
        "TensorFlow can only differentiate what the loss was actually computed from. Compute the loss from the prediction.",
        cat.OUTSIDE_TAPE: "A tape only records the operations run inside its `with` block, so the gradient call has no path back "
        f"to {these}. Move the forward pass and the loss inside the tape.",
        cat.STOP_GRADIENT: f"Everything before `tf.stop_gradient` is a constant to the tape, so {these} get None. "
        "Remove it unless that part is meant to stay frozen.",
        cat.NON_DIFFERENTIABLE: f"The tape cannot differentiate through that operation, so {these} get None. "
        "Compute the loss from the probabilities or logits themselves, or use a differentiable surrogate.",
        cat.NUMPY_CONVERSION: "The tape does not record NumPy, so what is computed from it is a constant. "
        "Stay in TensorFlow (`tf.reduce_mean` for `np.mean`, no `.numpy()`, `model(x)` for `model.predict(x)`).",
        cat.STATE_UPDATE: "A variable's value is state, not part of the computation that produced it: the tape does not "
        "differentiate through `assign`. Use the value itself (`y = v + x`), or a loss function instead of a stateful metric.",
        cat.VARIABLE_REBOUND: f"After the step, the name of {these} is bound to a plain tensor (`w = w - lr * g`) instead of being "
        "updated in place. The next step's tape does not watch a plain tensor, so its gradient is None. Use `w.assign_sub(lr * g)`.",
        cat.MISSING_WATCH: (f"The tape was opened with `watch_accessed_variables=False` and never told to watch {these}, "
        "so it kept no record of them. Call `tape.watch(...)` on them at the start of the block, or let the tape watch what it reads."
        if any(v.is_variable for v in cause.variables) else
        "The gradient is asked for a plain tensor, not a variable. "
        "A tape only watches trainable variables on its own; tensors need `tape.watch(x)` at the start of the block."),
        cat.NOT_TRAINABLE: (f"{these.capitalize()} {'has' if n == 1 else 'have'} an integer dtype, and a tape only watches floating-point "
        "variables. Create it as a float (`tf.Variable(1.0)`, `dtype=\"float32\"`)."
        if integer else
        f"{these.capitalize()} {'is' if n == 1 else 'are'} not trainable, so no tape watches {'it' if n == 1 else 'them'}. "
        "If freezing is intended, leave them out of the sources (`model.trainable_variables`)."),
        cat.NEVER_USED: f"{they_were.capitalize()} never read on the way to the loss: the layer or model that owns "
        f"{'it' if n == 1 else 'them'} was not called in the step. Decide whether it should be called in the forward pass, "
        "removed, or left out of the variables you train; gradfix cannot tell which you meant.",
        cat.WRONG_TAPE: f"The gradient is asked of a tape that did not record {these}; another tape did. "
        "Ask the tape that recorded the loss, for the model that loss trains.",
        cat.TARGET_INDEPENDENT: "The value differentiated does not depend on anything the tape watched, so every gradient is None "
        "and `tape.watch` would not change that. Decide what it should be computed from; gradfix cannot guess it.",
        cat.UNKNOWN: f"The path from {these} to the loss breaks at {site}, for a reason gradfix could not name.",
    }[cause.category]
    saw = f"At {site}: {cause.detail}." if cause.detail else ""
    saw += cut_words(cause)
    if cause.basis != RUN and cause.category != cat.UNKNOWN:
        saw += f" (The cause is named from the {cause.basis}, not from what the run saw.)"
    return (saw + " " + base).strip()


def cut_words(cause: Cause) -> str:
    """" The path breaks at `K.argmax(x)` (train.py:14:12-14:25)." when the run pinned the cut to an expression."""
    expression = cause.expression
    if expression is None or not expression.text.strip():
        return ""
    text = " ".join(expression.text.split())
    if expression.exact:
        return f" The path breaks at `{text}` ({expression.where()})."
    return f" The path breaks on the line `{text}` ({expression.where()}; this Python gives lines, not columns)."


def _finding(cause: Cause, confirmed: Finding | None, rules) -> Finding:
    paths = cause.keys
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
    return Finding(
        rule=code,
        name=name,
        message=runtime_headline(cause, name),  # the variables, what the run saw and what to do: in its explanation
        span=_span(cause.site, cause.call.where if cause.call else None),
        severity=severity,
        evidence=Evidence.RUNTIME,
        related=tuple(related),
        fix=None,
        variables=paths,
        explanation=text,
    )


# --------------------------------------------------------------------------- the one entry point

def _run_in_sandbox(target: str, *, cwd: str, **options) -> RunFacts:
    """The run in a scratch copy of the program's folder, its facts naming the project's own files."""
    import json

    from gradfix.repair import program_root
    from gradfix.runtime.sandbox import sandbox_copy

    root = program_root(target, cwd)
    if not (cwd + os.sep).startswith(root + os.sep):
        root = cwd
    with sandbox_copy(root) as sandbox:
        copy = sandbox.path
        inner = os.path.join(copy, os.path.relpath(cwd, root))
        head, sep, tail = target.partition(":")
        if os.path.isabs(head) and (head + os.sep).startswith(root + os.sep):
            target = os.path.join(copy, os.path.relpath(head, root)) + sep + tail
        facts = run_step(target, cwd=inner, env=sandbox.environment(), **options)
    raw = json.loads(json.dumps(facts.raw).replace(json.dumps(copy)[1:-1], json.dumps(root)[1:-1]))
    common = {name: getattr(facts, name) for name in ("target", "args", "python", "returncode", "elapsed", "output_tail",
                                                       "start", "start_reason")}
    moved = RunFacts.from_dict(raw, **common) if raw else facts
    if not raw:
        return facts
    moved.status, moved.error = facts.status, moved.error or facts.error
    return moved


def diagnose_target(
    target: str,
    args: Sequence[str] = (),
    *,
    python: str = sys.executable,
    timeout: float = DEFAULT_TIMEOUT,
    steps: int = 1,
    cwd: str | None = None,
    fix: bool = False,
    unsafe_fixes: bool = False,
    quiet: bool = True,
    cancel=None,
    progress=None,
    sandbox: bool = False,
) -> Diagnosis:
    """Run TARGET's first step, explain every lost gradient and, with ``fix``, repair and verify.

    The front ends (command line, language server, review page) all call this. ``cancel`` is a
    ``threading.Event``: once set, the child is stopped and the diagnosis reports status "cancelled".
    ``progress`` is called with a short line before each run. The findings carry their fixes,
    whose ``verified`` says what the re-run showed; ``patches`` holds only verified fixes
    (unsafe ones only with ``unsafe_fixes``), the ones that may be written. With ``sandbox`` the
    program runs in a scratch copy of its folder (gradfix.runtime.sandbox), and what it saw is
    mapped back to the project's files; the verification re-runs always run in copies.
    """
    from gradfix.repair import Run, best_fix, patches_to_write, repair
    from gradfix.rounds import further_rounds

    cwd = os.path.abspath(cwd or os.getcwd())
    if progress is not None:
        progress(f"running {target} until its first gradient")
    run = _run_in_sandbox if sandbox else run_step
    facts = run(target, args=args, python=python, timeout=timeout, steps=steps, cwd=cwd, quiet=quiet, cancel=cancel)
    result = diagnose(facts)
    if not fix or not result.causes or (cancel is not None and cancel.is_set()):
        return result
    rerun = Run(target, tuple(args), python, timeout, steps, cwd)
    result.repairs = repair(result, rerun, cancel=cancel, progress=progress)
    further_rounds(result, result.repairs, rerun, cancel=cancel, progress=progress)
    findings = []
    for found, finding in zip(result.repairs, result.findings):
        chosen = best_fix(found)
        if chosen is not None:
            finding = finding.replace(fix=chosen, evidence=Evidence.VERIFIED if chosen.verified else finding.evidence)
        elif finding.fix is not None:
            finding = finding.replace(fix=None)  # a static fix the run did not confirm is not offered here
        findings.append(finding)
    result.findings = findings
    result.patches, result.verification, result.left_out = patches_to_write(result, result.repairs, unsafe_fixes, rerun)
    return result
