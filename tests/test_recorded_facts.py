"""What the repair makes of each repair fixture's recorded run (NAME.facts.json), without TensorFlow.

The run was recorded once (``python -m gradfix.runtime.record_facts fixtures/repair``); these tests read it:
the expression the run pinned the cut to is the one ``# cut:`` names, its range holds that very text, the
repair side finds it as a LibCST node (by its exact range, and by its line and the op's spelling as on
Python 3.10), and the candidate fixes made from the facts start with the one the recording made.
``tests/runtime/test_recorded_facts_current.py`` checks, with TensorFlow, that the recordings are current, and
``tests/runtime/test_repair.py`` runs every fixture for real through ``diagnose --fix``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import libcst as cst
import pytest
from fixture_cases import repair_cases

from gradfix.causes import RUN, group_causes
from gradfix.pinned import spellings, spells
from gradfix.repair_site import RepairSite
from gradfix.runtime.record_facts import first_candidates, load
from gradfix.source import read_source

CASES = repair_cases()
RECORDED = [case for case in CASES if case.facts.exists()]
PINNED = [case for case in RECORDED if case.cut]


def _cause(case):
    facts, _ = load(case.facts)
    named = [c for c in group_causes(facts) if c.category == case.cause]
    assert named, f"the recorded run names no {case.cause}"
    return named[0]


def _text_at(path: Path, expression) -> str:
    lines = path.read_text(encoding="utf-8").splitlines(True)
    first, last = lines[expression.line - 1], lines[expression.end_line - 1]
    if expression.line == expression.end_line:
        return first[expression.column - 1:expression.end_column - 1]
    return "".join([first[expression.column - 1:], *lines[expression.line:expression.end_line - 1],
                    last[:expression.end_column - 1]])


def test_every_repair_fixture_has_its_run_recorded():
    missing = [case.id for case in CASES if not case.facts.exists()]
    assert not missing, ("record them with `python -m gradfix.runtime.record_facts fixtures/repair NAME...`: "
                         + ", ".join(missing))


@pytest.mark.parametrize("case", RECORDED, ids=[case.id for case in RECORDED])
def test_the_recorded_run_names_the_cause(case):
    """The runtime's verdict on its own, before any join with the static rules: what the child saw, categorised."""
    facts, _ = load(case.facts)
    assert facts.status == "ok", f"{facts.status}: {facts.error}"
    causes = group_causes(facts)
    assert causes, "the run saw every gradient flowing"
    assert case.cause in [c.category for c in causes], [(c.category, c.detail) for c in causes]
    named = [c for c in causes if c.category == case.cause]
    assert all(c.basis == RUN for c in named), "the cause must come from what TensorFlow did, not from the line's text"
    assert all(c.site is not None and c.site.line for c in named)


@pytest.mark.parametrize("case", RECORDED, ids=[case.id for case in RECORDED])
def test_a_pinned_cut_is_named_in_the_expected_file(case):
    """A recorded run that pins its cause to an expression says which in ``# cut:``: none goes unchecked."""
    expression = _cause(case).expression
    if expression is not None and expression.exact:
        assert case.cut, f"{case.id}.expected needs `# cut: {expression.text}`"
    else:
        assert not case.cut, f"the recorded run pins no expression, but {case.id}.expected names `{case.cut}`"


@pytest.mark.parametrize("case", PINNED, ids=[case.id for case in PINNED])
def test_the_run_pins_the_cut_to_the_expected_expression(case):
    cause = _cause(case)
    expression = cause.expression
    assert expression.text == case.cut
    assert Path(expression.file) == case.program
    assert _text_at(case.program, expression) == case.cut, "the range must hold the text the run reports"
    site = RepairSite(cause, read_source(str(case.program)))
    node = site.pinned_node()
    assert node is not None and site.code(node) == case.cut
    statement = site.cut_statement()
    assert statement is not None and site.lines_of(statement)[0] <= expression.line <= site.lines_of(statement)[1]


@pytest.mark.parametrize("case", PINNED, ids=[case.id for case in PINNED])
def test_a_line_only_range_finds_the_same_node_by_the_ops_spelling(case):
    """Python 3.10 gives the line, not the columns: the op's spelling on that line names the same node."""
    cause = _cause(case)
    cut = dict(cause.cut)
    cut["span"] = dict(cut["span"], column=None, end_column=None, exact=False)
    line_only = dataclasses.replace(cause, cut=cut)
    assert not line_only.expression.exact
    exact = RepairSite(cause, read_source(str(case.program)))
    site = RepairSite(line_only, read_source(str(case.program)))
    node = site.pinned_node()
    line = cut["span"]["line"]
    names, operators = spellings(cut)
    spelled = [n for n in site.nodes(cst.BaseExpression) if site.lines_of(n)[0] == line and spells(n, names, operators)]
    pinned = exact.pinned_node()
    aliased = isinstance(pinned, cst.Call) and isinstance(pinned.func, cst.Name) and pinned.func.value not in names
    if cut.get("metric") or len(spelled) > 1 or (aliased and not spelled):
        # a stateful metric's update is spelled by the program's own name for the metric; a line with two
        # argsorts does not say which one ran first; a call through a name the function bound to the op
        # (`comp_func(diff, bound)`) does not spell it: the line alone must not guess
        assert node is None
        return
    assert node is not None, f"no expression on line {line} spells {cut.get('op') or cut.get('how')}"
    assert site.lines_of(node) == exact.lines_of(exact.pinned_node()) and site.code(node) == case.cut


@pytest.mark.parametrize("case", RECORDED, ids=[case.id for case in RECORDED])
def test_candidates_from_the_recorded_facts_start_with_the_recorded_first(case):
    facts, data = load(case.facts)
    again = first_candidates(facts, case.program.parent)
    assert again == data["first_candidates"]
    if case.has_fix:
        assert any(first is not None for first in again), "a fixture with a general fix gets a candidate"


@pytest.mark.parametrize("case", PINNED[:3], ids=[case.id for case in PINNED[:3]])
def test_a_range_that_names_no_expression_pins_nothing(case):
    """The text has changed since the run (the range is one column off): no node, rather than a wrong one."""
    cause = _cause(case)
    span = cause.cut["span"]
    moved = dataclasses.replace(cause, cut=dict(cause.cut, span=dict(span, column=span["column"] + 1,
                                                                      end_column=span["end_column"] + 1)))
    assert RepairSite(moved, read_source(str(case.program))).pinned_node() is None


@pytest.mark.parametrize("exact", [True, False], ids=["exact", "line-only"])
def test_the_report_says_which_expression_was_cut(exact):
    """Text and JSON name the expression; a line-only range (Python 3.10) says it is the line."""
    from gradfix.diagnose import diagnose
    from gradfix.report import diagnose_document, validate

    case = next(case for case in PINNED if case.id == "round_probabilities_custom_loop")
    facts, _ = load(case.facts)
    diagnosis = diagnose(facts)
    index = next(i for i, c in enumerate(diagnosis.causes) if c.category == case.cause)
    cause = diagnosis.causes[index]
    if not exact:
        cause.cut = dict(cause.cut, span=dict(cause.cut["span"], column=None, end_column=None, exact=False,
                                              text=case.program.read_text().splitlines()[cause.expression.line - 1].strip()))
    document = diagnose_document(diagnosis, cwd=str(case.program.parent))
    validate(document)
    reported = document["diagnose"]["causes"][index]["expression"]
    line = case.program.read_text().splitlines()[reported["span"]["start_line"] - 1]
    span = reported["span"]
    assert span["path"] == case.program.name and reported["exact"] is exact
    assert line[span["start_column"] - 1:span["end_column"] - 1] == (case.cut if exact else line.strip())
    from gradfix.diagnose import explanation

    words = explanation(cause)
    if exact:
        assert f"The path breaks at `{case.cut}` (" in words, words
        assert f":{span['start_line']}:{span['start_column']}-{span['end_line']}:{span['end_column']})" in words, words
    else:
        assert f"The path breaks on the line `{line.strip()}` (" in words and "lines, not columns" in words


@pytest.mark.parametrize("case", RECORDED, ids=[case.id for case in RECORDED])
def test_the_cut_statement_is_the_one_at_the_cut_line(case):
    """Repairs that looked the break up by its line (``statement_at(cut line)``) find the same statement
    through the pinned expression: the fixes they make do not change."""
    cause = _cause(case)
    site = RepairSite(cause, read_source(str(case.program)))
    line = (cause.cut or {}).get("line") or (cause.site.line if cause.site is not None else None)
    by_line = site.statement_at(line) if line else None
    assert site.cut_statement() is by_line
