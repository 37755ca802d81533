"""The repair, on programs reduced from public bug reports (fixtures/repair, each citing its source).

The runtime's cause on its own (what the child saw, categorised before any join with the static rules) is
tested on each fixture's recorded run in the fast lane (tests/test_recorded_facts.py), and
tests/runtime/test_recorded_facts_current.py checks with TensorFlow that recordings are current. Here:
- the cause the whole command reports;
- the repair: `gradfix diagnose --fix --apply --unsafe-fixes` on a copy writes a verified fix that a plain
  run shows to give every variable a gradient and to finish its step, and that is exactly NAME.fixed.py;
  where no fix is general (``# no-fix:``), nothing is written and the report says what to decide.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from fixture_cases import repair_cases

from gradfix.runtime.runner import run_step

pytestmark = pytest.mark.tensorflow

CASES = repair_cases()
IDS = [case.id for case in CASES]


PENDING = [pytest.param(case, marks=pytest.mark.xfail(strict=True, reason=f"issue 16, not repaired yet: {case.pending}"))
           if case.pending else case for case in CASES]


@pytest.mark.parametrize("case", PENDING, ids=IDS)
def test_diagnose_repairs_or_explains(case, tmp_path):
    copy = tmp_path / case.program.name
    shutil.copyfile(case.program, copy)
    before = copy.read_bytes()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-m", "gradfix", "diagnose", "--json", "-q", "--fix", "--apply", "--unsafe-fixes",
                           copy.name], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    report = json.loads(done.stdout)
    where = f"exit {done.returncode}\n{done.stderr[-2000:]}"
    assert case.cause in [c["category"] for c in report["diagnose"]["causes"]], where
    written = [p for p in report["fixes"] if p["applied"]]
    if not case.has_fix:
        assert case.no_fix_reason, f"{case.id}.expected needs # fix: or # no-fix:"
        assert copy.read_bytes() == before, "a fix was written where no fix is general"
        assert not written
        assert any(r["note"] for r in report["diagnose"]["repairs"]), "the report must say what the user has to decide"
        return
    assert written, f"no verified fix was written\n{json.dumps(report['diagnose']['repairs'], indent=1)[:3000]}\n{where}"
    for patch in written:
        assert all(fix["verified"] is True for fix in patch["fixes"])
    assert copy.read_text() == case.fixed.read_text(), "the written program differs from the expected NAME.fixed.py"
    # a plain run of what was written: every variable gets a gradient, and the step runs to its update
    facts = run_step(copy.name, cwd=str(tmp_path), timeout=300)
    assert facts.status == "ok", f"{facts.status}: {facts.error}"
    assert facts.variables_without_gradient() == []
    assert not facts.update_problems()
    assert facts.update_completed() or not facts.applies


def test_repair_fixtures_cite_their_source():
    for case in CASES:
        header = case.program.read_text().splitlines()[0]
        assert header.startswith("# Source: http"), f"{case.program.name} does not cite its source"
        assert case.cause, f"{case.id}.expected has no # cause:"
        assert case.has_fix != bool(case.no_fix_reason), f"{case.id}.expected needs exactly one of # fix: and # no-fix:"
        assert not case.pending or case.has_fix, f"{case.id}.expected: # pending: is for a # fix: not made yet"
        assert case.pending or not case.has_fix or case.fixed.exists(), f"{case.id}: a # fix: needs NAME.fixed.py"


@pytest.mark.parametrize("case", [case for case in CASES if case.pending], ids=[case.id for case in CASES if case.pending])
def test_a_pending_fix_written_by_hand_trains(case, tmp_path):
    """Where gradfix does not make the general fix yet, the one a careful engineer wrote (NAME.intended.py) trains."""
    assert case.intended.exists(), f"{case.id} is pending: NAME.intended.py shows the fix"
    copy = tmp_path / case.program.name
    shutil.copyfile(case.intended, copy)
    facts = run_step(copy.name, cwd=str(tmp_path), timeout=300)
    assert facts.status == "ok", f"{facts.status}: {facts.error}"
    assert facts.variables_without_gradient() == []
    assert not facts.update_problems()
