"""Each look-alike of ``fix_safety_cases`` gets the fix label it must: a safe fix only where the analysis
proves what the fix assumes."""

from __future__ import annotations

import pytest

from fix_safety_cases import CASES, CLEAN, NO_FIX, Case
from gradfix.engine import analyze
from gradfix.registry import rule_by_code
from gradfix.source import SourceFile


def _labels(case: Case) -> list[str]:
    findings = analyze(SourceFile("case.py", case.code.lstrip("\n"), "utf-8"), [rule_by_code(case.rule)()])
    return [f.fix.applicability.value if f.fix is not None else NO_FIX for f in findings if f.rule == case.rule]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_fix_is_labelled_as_its_proof_allows(case):
    labels = _labels(case)
    if case.expect == CLEAN:
        assert labels == [], f"{case.rule} reported it: {labels}"
    else:
        assert labels and set(labels) == {case.expect}, f"expected {case.expect}, got {labels}"
