"""GF004: how NumPy arguments carry over to TensorFlow, and when no fix is offered."""

from __future__ import annotations

import textwrap

import pytest

from gradfix.engine import analyze, fix_source
from gradfix.rules.numpy_in_gradient_path import NumpyInGradientPath
from gradfix.source import SourceFile

TEMPLATE = """
import numpy as np
import tensorflow as tf

with tf.GradientTape() as tape:
    pred = model(x)
    loss = {expression}
grads = tape.gradient(loss, model.trainable_variables)
"""


def _fixed_line(expression: str) -> str:
    source = SourceFile("t.py", textwrap.dedent(TEMPLATE.format(expression=expression)), "utf-8")
    new_text = fix_source(source, [NumpyInGradientPath()], include_unsafe=True).new_text
    return new_text.splitlines()[6].strip()


@pytest.mark.parametrize(
    "numpy_code, tf_code",
    [
        ("np.mean(pred)", "tf.reduce_mean(pred)"),
        ("np.mean(pred, axis=1)", "tf.reduce_mean(pred, axis=1)"),
        ("np.sum(pred, 0)", "tf.reduce_sum(pred, 0)"),
        ("np.sum(pred, axis=(0, 1), keepdims=True)", "tf.reduce_sum(pred, axis=(0, 1), keepdims=True)"),
        ("np.max(pred, -1, keepdims=True)", "tf.reduce_max(pred, -1, keepdims=True)"),
        ("np.std(pred)", "tf.math.reduce_std(pred)"),
        ("np.log(pred)", "tf.math.log(pred)"),
        ("np.maximum(0.0, pred)", "tf.maximum(0.0, pred)"),
        ("np.concatenate([pred, pred])", "tf.concat([pred, pred], axis=0)"),
        ("np.concatenate([pred, pred], axis=1)", "tf.concat([pred, pred], axis=1)"),
        ("np.dot(pred, w)", "tf.tensordot(pred, w, axes=1)"),
        ("pred.numpy().mean(axis=0)", "tf.reduce_mean(pred, axis=0)"),
        ("2.0 * float(pred - y)", "2.0 * (pred - y)"),
    ],
)
def test_numpy_call_becomes_its_tensorflow_twin(numpy_code, tf_code):
    assert _fixed_line(numpy_code) == f"loss = {tf_code}"


@pytest.mark.parametrize(
    "numpy_code",
    [
        "np.mean(pred, dtype=np.float64)",  # dtype has no place in tf.reduce_mean
        "np.sum(pred, 0, None, None, True)",  # NumPy's third positional is dtype, TensorFlow's is keepdims
        "np.var(pred, ddof=1)",
        "np.linalg.norm(pred)",  # no one-to-one twin known
        "pred.numpy().reshape(-1)",
    ],
)
def test_arguments_that_do_not_carry_over_get_no_fix(numpy_code):
    source = SourceFile("t.py", textwrap.dedent(TEMPLATE.format(expression=numpy_code)), "utf-8")
    findings = analyze(source, [NumpyInGradientPath()])
    assert findings
    assert all(f.fix is None for f in findings)


def test_dot_and_float_fixes_are_unsafe():
    for expression in ("np.dot(pred, w)", "float(tf.reduce_sum(pred))"):
        source = SourceFile("t.py", textwrap.dedent(TEMPLATE.format(expression=expression)), "utf-8")
        (finding,) = analyze(source, [NumpyInGradientPath()])
        assert finding.fix.applicability.value == "unsafe"
        assert fix_source(source, [NumpyInGradientPath()]).new_text == source.text


def test_non_differentiable_numpy_is_left_to_other_rules():
    source = SourceFile("t.py", textwrap.dedent(TEMPLATE.format(expression="np.argmax(pred)")), "utf-8")
    assert analyze(source, [NumpyInGradientPath()]) == []


CHAIN = """
import numpy as np
import tensorflow as tf

with tf.GradientTape() as tape:
    pred = model(x, training=True)
    a = pred.numpy()
    b = np.square(a - y)
    c = np.mean(np.sqrt(b), axis=0)
    d = np.mean(pred.numpy() ** 2)
    loss = tf.reduce_sum(c) + d
grads = tape.gradient(loss, model.trainable_variables)
"""


def test_numpy_carried_on_from_one_cut_is_one_finding_with_one_fix():
    source = SourceFile("t.py", CHAIN.lstrip("\n"), "utf-8")
    findings = [f for f in analyze(source, [NumpyInGradientPath()])]
    # the chain from `a = pred.numpy()` (four NumPy calls on three lines) and the separate `d` line
    assert [f.span.start_line for f in findings] == [6, 9]
    chain = findings[0]
    assert sorted(r.span.start_line for r in chain.related if "chain goes on" in r.message) == [7, 8, 8]
    assert chain.fix is not None and chain.fix.applicability.value == "safe"
    fixed = fix_source(source, [NumpyInGradientPath()], only=[chain]).new_text
    assert "np." not in "".join(fixed.splitlines(keepends=True)[5:8])
    assert "tf.reduce_mean(tf.sqrt(b), axis=0)" in fixed


def test_a_chain_with_a_call_gradfix_cannot_rewrite_offers_no_fix():
    text = CHAIN.replace("np.sqrt(b)", "np.frexp(b)[0]").lstrip("\n")
    chain = analyze(SourceFile("t.py", text, "utf-8"), [NumpyInGradientPath()])[0]
    assert chain.span.start_line == 6 and chain.fix is None
