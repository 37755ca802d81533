"""``gradfix check`` on the programs of public bug reports (``fixtures/repair``), as their reporters wrote them.

Each fixture's ``.expected`` says, in ``# static:``, what the static check reports there (rule and line, each
finding judged true by hand) or that it reports nothing and why. The run (``gradfix diagnose``) finds every one
of these bugs; this is the measure of how many an editor, a pre-commit hook or CI finds without running anything:

    python -m pytest tests/test_static_on_reports.py -q -rA
"""

from __future__ import annotations

import pytest
from fixture_cases import RepairCase, repair_cases

from gradfix import engine
from gradfix.source import read_source

CASES = repair_cases()


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_the_static_check_reports_what_the_fixture_says(case: RepairCase):
    assert case.static is not None, f"{case.id}.expected has no '# static:' line"
    found = sorted({(finding.rule, finding.span.start_line)
                    for finding in engine.analyze(read_source(str(case.program)), engine.select_rules())})
    assert found == case.static

