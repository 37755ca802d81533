"""Joining runtime facts with static findings, without running TensorFlow: synthetic facts."""

from __future__ import annotations

import textwrap

from gradfix import categories as cat
from gradfix.diagnose import COMPATIBLE, diagnose
from gradfix.runtime.facts import RunFacts

NUMPY_STEP = textwrap.dedent('''\
    import numpy as np
    import tensorflow as tf

    model = tf.keras.Sequential([tf.keras.Input(shape=(3,)), tf.keras.layers.Dense(1)])
    optimizer = tf.keras.optimizers.SGD(0.1)


    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            pred = model(x)
            loss = np.mean(np.square(pred - y))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
    ''')


def _crash(path, line, *, user=True, error="NotImplementedError"):
    frames = [
        {"file": str(path), "line": 20, "function": "<module>", "code": "train_step(x, y)", "user": True},
        {"file": str(path), "line": line, "function": "train_step", "code": "", "user": user},
    ]
    data = {"status": "crashed", "error": {"type": error, "message": "Cannot convert a symbolic tf.Tensor to a numpy array",
                                          "traceback": "...", "frames": frames}}
    return RunFacts.from_dict(data)


def test_crash_through_a_finding_reports_it(tmp_path):
    program = tmp_path / "step.py"
    program.write_text(NUMPY_STEP)
    result = diagnose(_crash(program, 12))
    assert result.exit_code == 1
    assert result.crash_findings and {f.rule for f in result.crash_findings} == {"GF004"}
    assert all(f.span.start_line == 12 and f.evidence.value == "static" for f in result.crash_findings)
    assert "crashed" in result.crash_findings[0].explanation
    assert not result.causes


def test_crash_elsewhere_cannot_be_diagnosed(tmp_path):
    program = tmp_path / "step.py"
    program.write_text(NUMPY_STEP)
    # a crash on a line without a finding, and one whose frame is library code: nothing to say
    assert diagnose(_crash(program, 11)).exit_code == 2
    assert diagnose(_crash(program, 12, user=False)).exit_code == 2


def test_compatibility_covers_every_category():
    for category in cat.ALL:
        assert category in COMPATIBLE[category] or category == cat.UNKNOWN
    # facts that rule a cause out are never overridden by a static guess
    assert COMPATIBLE[cat.NOT_TRAINABLE] == {cat.NOT_TRAINABLE}
    assert COMPATIBLE[cat.VARIABLE_REBOUND] == {cat.VARIABLE_REBOUND}
    assert cat.NEVER_USED not in COMPATIBLE[cat.LOSS_IGNORES_PREDICTION]


def test_cli_reports_the_crash_finding(tmp_path, monkeypatch):
    import json

    from click.testing import CliRunner

    import gradfix.diagnose_cli as cli

    program = tmp_path / "step.py"
    program.write_text(NUMPY_STEP)
    import gradfix.diagnose as engine

    monkeypatch.setattr(engine, "run_step", lambda *args, **kwargs: _crash(program, 12))
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(cli.diagnose, ["step.py", "-q"])
    assert done.exit_code == 1
    assert "crashed before its first gradient" in done.output
    assert "step.py:12:" in done.output and "GF004" in done.output
    done = CliRunner().invoke(cli.diagnose, ["step.py", "-q", "--json"])
    assert done.exit_code == 1
    report = json.loads(done.stdout)
    assert report["diagnose"]["status"] == "crashed" and {f["rule"] for f in report["findings"]} == {"GF004"}
