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


def _as_notebook(tmp_path, case: Case) -> str:
    """The case's ``# In[n]:`` cells as a notebook, as Jupyter saves one."""
    import json
    import re

    cells = [part.strip("\n") + "\n" for part in re.split(r"^# In\[\d*\]:\n", case.code.lstrip("\n"), flags=re.M)]
    path = tmp_path / f"{case.id}.ipynb"
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                                            "source": cell.splitlines(keepends=True)} for cell in cells if cell.strip()],
                                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("case", [c for c in CASES if "# In[" in c.code], ids=lambda c: c.id)
def test_a_notebook_of_the_cells_is_labelled_alike(case, tmp_path):
    from gradfix.notebook import read_notebook

    findings = analyze(read_notebook(_as_notebook(tmp_path, case)).source(), [rule_by_code(case.rule)()])
    labels = [f.fix.applicability.value if f.fix is not None else NO_FIX for f in findings if f.rule == case.rule]
    assert labels == _labels(case)
