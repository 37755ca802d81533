"""The detector names the category and the rule for each way of training; fixes are verified by a re-run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from interpreter import COLUMNS, PYTHON

from gradfix import categories as cat
from gradfix.diagnose import diagnose

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "fixtures" / "runtime"
SEED = ROOT / "fixtures" / "seed"

pytestmark = pytest.mark.tensorflow

# fixture -> (category, rule, break line, variables without gradient)
CASES = {
    "custom_loop_stop_gradient.py": (cat.STOP_GRADIENT, "GF002", 14, {"sequential/dense/kernel", "sequential/dense/bias"}),
    "fit_custom_loss.py": (cat.LOSS_IGNORES_PREDICTION, "GF003", 11, {"sequential/dense_1/kernel", "sequential/dense_1/bias"}),
    "train_on_batch_argmax.py": (cat.NON_DIFFERENTIABLE, "GF009", 12, None),
    "tf_function_round.py": (cat.NON_DIFFERENTIABLE, "GF009", 12, None),
    "custom_train_step_unused_layer.py": (cat.NEVER_USED, "GF011", 9, {"classifier/dense_1/kernel", "classifier/dense_1/bias"}),
    "gan_wrong_tape.py": (cat.WRONG_TAPE, "GF012", 20, {"sequential/dense/kernel", "sequential/dense/bias"}),
    "module_numpy.py": (cat.NUMPY_CONVERSION, "GF004", 22, {"w", "b"}),
    "outside_tape.py": (cat.OUTSIDE_TAPE, "GF001", 10, None),
    "missing_watch.py": (cat.MISSING_WATCH, "GF007", 6, None),
    "variable_rebound.py": (cat.VARIABLE_REBOUND, "GF005", None, {"w", "b"}),
    "non_trainable_source.py": (cat.NOT_TRAINABLE, "GF006", 16, None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_category_rule_and_grouping(run_fixture, name):
    category, rule, line, variables = CASES[name]
    facts = run_fixture(name)
    assert facts.status == "ok", facts.error
    result = diagnose(facts)
    assert result.exit_code == 1
    # variables that share a cause are one finding
    assert [c.category for c in result.causes] == [category]
    finding = result.findings[0]
    assert finding.rule == rule
    assert finding.evidence.value == "runtime"
    if variables is not None:
        assert set(finding.variables) == variables
    if line is not None:
        assert result.causes[0].site.line == line
    assert finding.explanation.count(".") >= 2


def test_clean_program_has_no_finding(run_fixture):
    facts = run_fixture("example3.py", SEED)
    result = diagnose(facts)
    assert result.exit_code == 0 and not result.findings


def test_runtime_fact_without_static_finding_is_its_own_finding(run_fixture, tmp_path):
    # the same cut as custom_loop_stop_gradient.py, hidden from the static rules behind an alias
    source = (RUNTIME / "custom_loop_stop_gradient.py").read_text()
    source = source.replace("features = tf.stop_gradient(features)", "features = cut(features)")
    source = source.replace("import tensorflow as tf\n", "import tensorflow as tf\n\ncut = getattr(tf, 'stop_' + 'gradient')\n")
    (tmp_path / "hidden_cut.py").write_text(source)
    facts = run_fixture("hidden_cut.py", tmp_path)
    result = diagnose(facts)
    # no static rule sees the alias, but the run saw the op that cut the path: StopGradient
    assert [c.category for c in result.causes] == [cat.STOP_GRADIENT]
    assert result.causes[0].basis == "run" and result.causes[0].cut["op"] == "StopGradient"
    finding = result.findings[0]
    assert finding.rule == "GF002" and finding.fix is None and finding.evidence.value == "runtime"
    assert set(finding.variables) == {"sequential/dense/kernel", "sequential/dense/bias"}
    assert "cut(features)" in result.causes[0].site.code


def _cli(*args, cwd):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "gradfix", "diagnose", "--python", PYTHON, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_cli_seed_example1_fix_is_verified_and_applied(tmp_path):
    work = tmp_path / "seed"
    shutil.copytree(SEED, work)
    before = (work / "example1.py").read_text()
    done = _cli("example1.py", "--quiet", "--fix", "--unsafe-fixes", cwd=work)
    assert done.returncode == 1, done.stderr
    out = done.stdout
    assert "sequential/dense_1/kernel" in out and "sequential/dense_1/bias" in out
    assert ("built at example1.py:5:5\n" if COLUMNS else "built at example1.py:5\n") in out
    assert "break: example1.py:17" in out
    assert "+++ b/example1.py" in out
    assert "fix (unsafe, verified)" in out and "why it is unsafe" in out
    assert "sequential/dense_1/kernel: None -> gradient" in out
    # --fix alone writes nothing
    assert (work / "example1.py").read_text() == before
    done = _cli("example1.py", "--quiet", "--apply", "--unsafe-fixes", "--json", cwd=work)
    data = json.loads(done.stdout)
    assert data["findings"][0]["fix"]["verified"] is True and data["findings"][0]["evidence"] == "verified"
    assert (work / "example1.py").read_text() == (SEED / "example1.fixed.py").read_text()
    again = _cli("example1.py", "--quiet", cwd=work)
    assert again.returncode == 0, again.stdout + again.stderr


def test_cli_could_not_diagnose_exits_2():
    done = _cli("faults/crash_before_gradient.py", "--quiet", cwd=RUNTIME)
    assert done.returncode == 2
    assert "crashed before its first gradient" in done.stderr
    assert "load_data" in done.stderr and "FileNotFoundError" in done.stderr


def test_cli_passes_arguments_after_dashdash():
    done = _cli("faults/exits_early.py", "--quiet", "--", "only-one-arg", cwd=RUNTIME)
    assert done.returncode == 2 and "exited before its first gradient" in done.stderr and "exit code 3" in done.stderr
