"""Properties of `gradfix check` and `gradfix fix` over generated training programs.

Each example is a whole, runnable TensorFlow program (see program_generator.py) with zero or
one known bug shape in it. The static lane needs no TensorFlow: gradfix never crashes on a
program, every fix it offers compiles, fixing is stable, a clean program has no error finding,
and a finding on a buggy program names the rule of the bug that was put in. The TensorFlow lane
runs the fixed program in a child and checks that every variable now gets a gradient.

``GRADFIX_PROPERTY_EXAMPLES`` (default 100) is how many programs each static test generates,
spread over its parameters; ``GRADFIX_PROPERTY_TF_EXAMPLES`` (default 4) how many fixed programs
the TensorFlow lane runs. Runs are derandomized, so a failure shows again on the next run.
``pytest -s`` prints how often the check found each injected bug.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import json
import math
import os
import pathlib
import tempfile

import libcst as cst
import pytest
from click.testing import CliRunner
from fixture_cases import assert_every_trainable_variable_gets_a_gradient
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st
from program_generator import BASELINES, BUGS, MATCHING_RULES, SURFACES, Program, programs, render

from gradfix.cli import main
from gradfix.edits import apply_edits
from gradfix.emit.text import make_console, render_finding
from gradfix.engine import analyze, applicable, fix_source
from gradfix.model import Finding, Severity
from gradfix.source import SourceFile

EXAMPLES = int(os.environ.get("GRADFIX_PROPERTY_EXAMPLES", "100"))
TF_EXAMPLES = int(os.environ.get("GRADFIX_PROPERTY_TF_EXAMPLES", "4"))


def _settings(examples: int):
    return settings(
        max_examples=max(1, examples),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )


def _share(parameters: int) -> int:
    """Each parameter's part of the static lane's examples."""
    return math.ceil(EXAMPLES / parameters)


# label -> counts of what the check made of the programs generated with that bug (or none)
STATS: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


@pytest.fixture(scope="module", autouse=True)
def _summary():
    yield
    if not STATS:
        return
    print("\n\ngenerated programs: what `gradfix check` found (per bug shape and variant)")
    print("named: programs with a finding of the bug's rule; fix: programs `fix --unsafe-fixes` changed;")
    print("other: programs with a finding of another rule (for clean programs: an error finding)")
    print(f"{'bug shape / variant':58} {'programs':>8} {'named':>6} {'fix':>5} {'other':>6}  rules seen")
    for label in sorted(STATS):
        counts = STATS[label]
        rules = ", ".join(f"{rule} {n}" for rule, n in sorted(counts.items()) if rule.startswith("GF"))
        print(f"{label:58} {counts['programs']:8} {counts['named']:6} {counts['fixed']:5} {counts['other']:6}  {rules}")


def _source(text: str, name: str = "train.py") -> SourceFile:
    return SourceFile(name, text, "utf-8")


def _compiles(text: str, what: str) -> None:
    cst.parse_module(text)
    compile(text, what, "exec", dont_inherit=True)


def _check_cli(text: str) -> list[Finding]:
    """`gradfix check --format json` on the program as a file: found or clean, never an error; its findings.

    The text report of the same findings is rendered as well (the JSON keeps it to one analysis per program).
    """
    with tempfile.TemporaryDirectory(prefix="gradfix-generated-") as folder:
        path = pathlib.Path(folder, "train.py")
        path.write_text(text, encoding="utf-8")
        result = CliRunner().invoke(main, ["check", "--format", "json", "--jobs", "1", str(path)])
    assert result.exit_code in (0, 1), f"exit {result.exit_code}: {result.output}\n{result.exception!r}"
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    document = json.loads(result.stdout)
    assert document["errors"] == [] and document["exit_code"] == result.exit_code, document
    findings = [Finding.from_dict(data) for data in document["findings"]]
    console = make_console(io.StringIO(), color=False)
    lines = text.splitlines()
    for finding in findings:
        render_finding(console, finding, lines)
    return findings


def _fixes_hold(text: str, findings: list[Finding]) -> str:
    """Every fix on offer compiles alone; `fix --apply` (safe, then with unsafe fixes) compiles, and a second round changes nothing.

    Returns the text `fix --apply --unsafe-fixes` makes."""
    for finding in findings:
        if finding.fix is not None:
            _compiles(apply_edits(text, finding.fix.edits), f"{finding.rule} fix")
    fixed = text
    for include_unsafe in (False, True):
        # `fix` starts from these same findings: with none of them applicable it changes nothing
        if not any(applicable(f.fix, include_unsafe) for f in findings):
            continue
        outcome = fix_source(_source(text), include_unsafe=include_unsafe)
        _compiles(outcome.new_text, "fixed program")
        again = fix_source(_source(outcome.new_text), include_unsafe=include_unsafe)
        assert again.new_text == outcome.new_text, (
            f"a second fix round (unsafe={include_unsafe}) changed the program again: "
            + ", ".join(f.rule for f in again.applied)
        )
        fixed = outcome.new_text
    return fixed


def _record(program: Program, findings, fixed_text: str, text: str) -> None:
    counts = STATS[program.label]
    counts["programs"] += 1
    rules = {f.rule for f in findings}
    for rule in rules:
        counts[rule] += 1
    if program.bug:
        counts["named"] += bool(rules & MATCHING_RULES[program.bug])
        counts["other"] += bool(rules - MATCHING_RULES[program.bug])
    else:
        counts["other"] += any(f.severity is Severity.ERROR for f in findings)
    counts["fixed"] += fixed_text != text


@pytest.mark.parametrize("bug", [None, *BUGS], ids=lambda b: b or "clean")
@_settings(_share(len(BUGS) + 1))
@given(data=st.data())
def test_check_and_fix_hold_on_generated_programs(bug, data):
    """Never an internal error; fixes compile and are stable; a buggy program's findings name its cause."""
    program = data.draw(programs(bug=bug), label="program")
    text = render(program)
    note(f"{program.label}\n{text}")
    _compiles(text, "generated program")
    findings = _check_cli(text)
    fixed = _fixes_hold(text, findings)
    _record(program, findings, fixed, text)
    if program.bug:
        # any finding on a program with one bug in it must be about that bug
        assert {f.rule for f in findings} <= MATCHING_RULES[program.bug], [
            (f.rule, f.span.start_line, f.message) for f in findings
        ]
    elif not _known_false(program):
        # every surface feature at once; the single features known to draw a false finding are xfailed below
        _no_error_finding(findings)


# Surface shapes on which a clean program draws an error finding, by rule (none known today).
FALSE_FINDINGS: dict[str, str] = {}


def _known_false(program: Program) -> bool:
    """Whether a clean program has a feature of a shape listed in FALSE_FINDINGS."""
    changed = {
        name for name, surface in SURFACES.items() if name in FALSE_FINDINGS and _has_feature(program, surface)
    }
    return bool(changed)


def _has_feature(program: Program, surface: Program) -> bool:
    """Whether ``program`` has the one feature by which ``surface`` differs from its kind's baseline."""
    base = BASELINES[surface.kind]
    if program.kind != surface.kind:
        return False
    fields = [f.name for f in dataclasses.fields(Program) if getattr(surface, f.name) != getattr(base, f.name)]
    return all(getattr(program, name) == getattr(surface, name) for name in fields)


def _surface_params():
    for name, surface in SURFACES.items():
        marks = ()
        if name in FALSE_FINDINGS:
            marks = (pytest.mark.xfail(strict=True, reason=FALSE_FINDINGS[name]),)
        yield pytest.param(name, surface, id=name, marks=marks)


def _no_error_finding(findings) -> None:
    errors = [(f.rule, f.span.start_line, f.message) for f in findings if f.severity is Severity.ERROR]
    assert errors == [], errors


@pytest.mark.parametrize("name, surface", list(_surface_params()))
@_settings(_share(len(SURFACES)))
@given(data=st.data())
def test_clean_program_has_no_error_finding(name, surface, data):
    """One surface feature changed from a plain program; only names and sizes drawn."""
    program = data.draw(programs(bug=None, surface=surface), label="program")
    text = render(program)
    note(text)
    _no_error_finding(analyze(_source(text)))


# -- the TensorFlow lane ----------------------------------------------------------------------------


@st.composite
def _fixable(draw):
    program = draw(programs(bug=draw(st.sampled_from(BUGS))))
    text = render(program)
    outcome = fix_source(_source(text), include_unsafe=True)
    assume(outcome.changed)
    return program, text, outcome.new_text


@pytest.mark.tensorflow
@_settings(TF_EXAMPLES)
@given(_fixable())
def test_fixed_generated_program_gives_every_trainable_variable_a_gradient(drawn):
    program, text, fixed = drawn
    note(f"{program.label}\n--- buggy\n{text}--- fixed\n{fixed}")
    with tempfile.TemporaryDirectory(prefix="gradfix-generated-") as folder:
        path = pathlib.Path(folder, "train.py")
        path.write_text(fixed, encoding="utf-8")
        assert_every_trainable_variable_gets_a_gradient(path)


@_settings(_share(4))
@given(first=programs(), second=programs())
def test_two_programs_in_one_module_have_the_same_findings_by_region_and_whole(first, second):
    """Regions share helpers and rebound names here: analysed apart, they must find what the whole module finds."""
    text = render(first) + "\n\n" + render(second)
    note(text)
    source = SourceFile(path="joined.py", text=text, encoding="utf-8")

    def comparable(findings):
        return sorted(repr((f.rule, f.span, f.message, f.fix)) for f in findings)

    assert comparable(analyze(source)) == comparable(analyze(source, by_region=False))
