"""The repair on respelled fixtures: the same bug as a repair fixture, written another way (tests/respell.py).

For each variant in the sample, `gradfix diagnose --fix --apply --unsafe-fixes` runs on a copy (one child
process set), and:
- its run must show the same variables without a gradient as the fixture's own run (else the respelling
  changed the bug: a generator bug, raised as :class:`NotTheSameBug` so that no xfail can hide it);
- a verified fix must be written, and a plain run of what was written gives every variable a gradient and
  finishes its step (as tests/runtime/test_repair.py checks for the fixtures themselves).

The sample is fixed (no randomness): :data:`REPAIRED` holds respellings the repair handles today, one or two
of each family, so that a regression in any of them is caught; :data:`NOT_YET` holds a few it does not, as
strict xfails that flip when the repair learns them. ``GRADFIX_RESPELLINGS=all`` runs every variant instead
(about 250 child process sets: an hour or more); bench/bench_respellings.py measures the same over all of
them and reports the rate per fixture and per kind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from respell import KINDS, fixable_cases, variants

from gradfix.runtime.runner import run_step

pytestmark = pytest.mark.tensorflow

ISSUE = "respelled repair not general yet: issue 16"

# (fixture, kind) pairs the repair writes a verified fix for today (bench/bench_respellings.py).
REPAIRED = [
    ("gan_negated_gen_loss_in_gradient_call", "spelling:K"),
    ("integer_variables_sgd", "import:from-math"),
    ("onehot_argmax_lambda_decoder", "placement:Layer.call"),
    # the gradient asked for in a helper function; a state update made by a helper method
    ("gradient_of_call_in_gradient_args", "placement:function"),
    ("memory_layer_assign_in_call", "placement:method"),
    # keras.ops.argmax in a Lambda: the run's op (Equal) ran inside keras.ops.argmax; the call is what is repaired
    ("lambda_argmax_output_fit", "spelling:keras.ops"),
]

# (fixture, kind) pairs the repair does not fix yet: strict xfails, so that a fix that lands is noticed.
NOT_YET: list[tuple[str, str]] = [
]


class NotTheSameBug(Exception):
    """The respelled program does not lose the gradients its fixture loses: the generator changed its meaning."""


def _sample():
    everything = os.environ.get("GRADFIX_RESPELLINGS") == "all"
    wanted = set(REPAIRED) | set(NOT_YET)
    cases = fixable_cases() if everything else [c for c in fixable_cases() if c.id in {f for f, _ in wanted}]
    out = []
    for variant in variants(cases):
        pair = (variant.case.id, variant.kind)
        if pair in NOT_YET:
            out.append(pytest.param(variant, id=variant.id, marks=pytest.mark.xfail(strict=True, reason=ISSUE,
                                                                                    raises=AssertionError)))
        elif everything or pair in REPAIRED:
            out.append(pytest.param(variant, id=variant.id))
    return out


SAMPLE = _sample()


def test_the_sample_names_respellings_the_generator_makes():
    made = {param.values[0].id for param in SAMPLE}
    for fixture, kind in REPAIRED + NOT_YET:
        assert kind in KINDS
        assert f"{fixture}[{kind}]" in made, f"({fixture}, {kind}) is not a respelling the generator makes"


def _lost(gradients: dict[str, bool]) -> list[str]:
    return sorted(name for name, has in gradients.items() if not has)


@pytest.mark.parametrize("variant", SAMPLE)
def test_a_respelled_fixture_is_repaired(variant, tmp_path, run_fixture):
    case = variant.case
    original = run_fixture(case.program.name, case.program.parent)
    program = tmp_path / case.program.name
    program.write_text(variant.source)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-m", "gradfix", "diagnose", "--json", "-q", "--fix", "--apply", "--unsafe-fixes",
                           program.name], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    report = json.loads(done.stdout)
    where = f"exit {done.returncode}\n{done.stderr[-2000:]}"
    if _lost(report["diagnose"]["gradients"]) != _lost(original.gradient_status()):
        raise NotTheSameBug(f"{variant.id} loses {_lost(report['diagnose']['gradients'])}, "
                            f"its fixture {_lost(original.gradient_status())}")
    assert case.cause in [c["category"] for c in report["diagnose"]["causes"]], where
    written = [p for p in report["fixes"] if p["applied"]]
    assert written, f"no verified fix was written\n{json.dumps(report['diagnose']['repairs'], indent=1)[:3000]}\n{where}"
    for patch in written:
        assert all(fix["verified"] is True for fix in patch["fixes"])
    assert program.read_text() != variant.source
    facts = run_step(program.name, cwd=str(tmp_path), timeout=300)
    assert facts.status == "ok", f"{facts.status}: {facts.error}"
    assert facts.variables_without_gradient() == []
    assert not facts.update_problems()
    assert facts.update_completed() or not facts.applies


# Each spelling of the table computes what TensorFlow's function computes, on the same arguments.
_SAME_VALUES = r"""
import sys
import numpy as np
import tensorflow as tf
import keras
from tensorflow.keras import backend as K
sys.path.insert(0, sys.argv[1])
from respell import OPS

x = tf.constant([[0.4, -1.5, 2.5], [3.0, 0.5, -0.2]])
y = tf.constant([[1.0, -2.0, 2.5], [0.5, 0.5, 1.0]])
samples = {"x": x, "y": y, "input_tensor": x, "input": x, "logits": x, "t": x, "axis": 1, "keepdims": True,
           "indices": tf.constant([0, 2]), "depth": 3, "dtype": tf.int32, "shape": (2, 3),
           "clip_value_min": -1.0, "clip_value_max": 1.0}
wrong = []
for op in OPS:
    args = [samples[name] for name in op.params]
    if op.name == "cast":
        args = [x, tf.int32]
    if op.name in ("log", "sqrt"):
        args = [tf.abs(x) + 0.1]
    if op.name == "pow":
        args = [tf.abs(x) + 0.1, y]
    expected = None
    for path in op.tf_paths:
        function = tf
        for part in path.split("."):
            function = getattr(function, part)
        value = np.asarray(function(*args))
        expected = value if expected is None else expected
        if value.shape != expected.shape or not np.allclose(value, expected):
            wrong.append(f"tf.{path}")
    for module, spelling in ((K, op.backend), (keras.ops, op.ops)):
        if spelling is not None:
            value = np.asarray(getattr(module, spelling[0])(*args))
            if value.shape != expected.shape or not np.allclose(value.astype("float64"), expected.astype("float64")):
                wrong.append(f"{module.__name__}.{spelling[0]}")
print("\n".join(wrong))
"""


def test_every_spelling_in_the_table_computes_the_same_values(repo):
    done = subprocess.run([sys.executable, "-c", _SAME_VALUES, str(repo / "tests")], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == []
