"""The runtime detector names the same rule as the static analysis for the same bug (issue 4).

Each buggy fixture is run for real with `gradfix diagnose --json -q` (one child run per test); the
rules of the findings it reports must include one of the codes in the fixture's .expected file.
A fixture whose bug takes no gradient away says so in its .expected (``# runtime: <reason>``):
then the run must see every gradient flowing and exit 0. A module target is stated there too
(``# target: pkg.train:main``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from fixture_cases import buggy_cases

pytestmark = pytest.mark.tensorflow

CASES = buggy_cases()


def _diagnose(case) -> tuple[subprocess.CompletedProcess, dict | None]:
    target, cwd = case.run_target()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-m", "gradfix", "diagnose", "--json", "-q", target],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    try:
        return done, json.loads(done.stdout)
    except ValueError:
        return done, None


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_runtime_names_the_expected_rule(case):
    expected = {code for _, code in case.expected()}
    assert expected, f"{case.expected_path} lists no finding"
    done, report = _diagnose(case)
    where = f"{case.id}: exit {done.returncode}\nstdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}"
    assert report is not None, where
    rules = [finding["rule"] for finding in report["findings"]]
    reason = case.runtime_reason()
    if reason is not None:
        # the bug is real but takes no gradient away: the run must see every gradient flowing
        assert done.returncode == 0, where
        assert report["diagnose"]["status"] == "ok", where
        assert report["diagnose"]["gradients"] and all(report["diagnose"]["gradients"].values()), where
        assert not rules, where
        return
    assert done.returncode == 1, where
    assert set(rules) & expected, f"{case.id}: the run names {rules or 'nothing'}, the static analysis {sorted(expected)}\n{where}"
    # every rule the run names is a real rule, not the catch-all for a break it could not explain
    assert "GF000" not in rules, where


def test_fixture_cases_directives(tmp_path):
    """The .expected directives: comments for the rule lines, read by their accessors."""
    from fixture_cases import FixtureCase

    package = tmp_path / "pkg"
    package.mkdir()
    program = package / "train.py"
    program.write_text("def main():\n    pass\n")
    program.with_suffix(".expected").write_text(
        "# target: pkg.train:main\n# runtime: each model trains on the other's loss\n3 GF012  # a comment\n")
    case = FixtureCase(program)
    assert case.expected() == [(3, "GF012")]
    assert case.run_target() == ("pkg.train:main", tmp_path)
    assert case.runtime_reason() == "each model trains on the other's loss"
    plain = tmp_path / "plain.py"
    plain.write_text("")
    plain.with_suffix(".expected").write_text("1 GF001\n")
    assert FixtureCase(plain).run_target() == ("plain.py", tmp_path)
    assert FixtureCase(plain).runtime_reason() is None
