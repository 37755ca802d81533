"""What the run keys its facts by, what it says when its own instrumentation changes the outcome, and where it runs."""

from __future__ import annotations

import textwrap

import pytest

from gradfix.causes import group_causes
from gradfix.diagnose import diagnose_target
from gradfix.runtime.runner import run_step

pytestmark = pytest.mark.tensorflow

TWO_UNNAMED = textwrap.dedent("""\
    import tensorflow as tf

    used = tf.Variable(1.0)
    unused = tf.Variable(2.0)
    x = tf.constant(3.0)
    optimizer = tf.keras.optimizers.SGD(0.1)
    with tf.GradientTape() as tape:
        loss = used * x
    grads = tape.gradient(loss, [used, unused])
    optimizer.apply_gradients(zip(grads, [used, unused]))
    """)

TWICE_ON_ONE_TAPE = textwrap.dedent("""\
    import tensorflow as tf

    w = tf.Variable(1.0)
    v = tf.Variable(2.0)
    with tf.GradientTape() as tape:
        a = w * 3.0
        b = v * 4.0 + a
    da = tape.gradient(a, w)
    db = tape.gradient(b, v)
    """)


def test_two_unnamed_variables_are_two_variables(tmp_path):
    (tmp_path / "two.py").write_text(TWO_UNNAMED)
    facts = run_step("two.py", cwd=str(tmp_path), timeout=300)
    assert facts.status == "ok", facts.error
    assert facts.gradient_status() == {"Variable#1": True, "Variable#2": False}
    [cause] = group_causes(facts)
    assert cause.keys == ("Variable#2",)
    assert cause.variables[0].created_at.line == 4


def test_a_second_gradient_on_a_tape_that_is_not_persistent_is_said(tmp_path):
    (tmp_path / "twice.py").write_text(TWICE_ON_ONE_TAPE)
    result = diagnose_target("twice.py", cwd=str(tmp_path), timeout=300)
    notes = [n for n in result.facts.notes if n.get("kind") == "instrumentation"]
    assert len(notes) == 1 and notes[0]["site"]["line"] == 9
    assert "not persistent" in notes[0]["message"] and "RuntimeError" in notes[0]["message"]



def test_sandbox_keeps_the_programs_writes_out_of_the_project(tmp_path):
    import json
    import os
    import subprocess
    import sys

    (tmp_path / "train.py").write_text('open("written.txt", "w").write("the program was here")\n' + TWO_UNNAMED)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-m", "gradfix", "diagnose", "--sandbox", "--json", "train.py"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr
    assert not (tmp_path / "written.txt").exists()
    document = json.loads(done.stdout)
    [cause] = document["diagnose"]["causes"]
    assert cause["variables"] == ["Variable#2"]
    # what the run saw is reported on the project's own file, not on the scratch copy
    assert document["findings"][0]["span"]["path"] == "train.py"
