"""GF010: how sure each kind of finding is, and when the dtype fix is withheld."""

from __future__ import annotations

import textwrap

from gradfix.engine import analyze
from gradfix.rules.non_trainable_source import NonTrainableSource
from gradfix.source import SourceFile


def _findings(code: str):
    source = SourceFile("t.py", textwrap.dedent(code), "utf-8")
    return [f for f in analyze(source, [NonTrainableSource()]) if f.rule == "GF010"]


def test_integer_variable_is_an_error_with_an_unsafe_fix():
    (finding,) = _findings(
        """
        import tensorflow as tf
        w = tf.Variable(3)
        with tf.GradientTape() as tape:
            y = tf.cast(w, tf.float32) * x
        g = tape.gradient(y, w)
        """
    )
    assert finding.severity.value == "error"
    assert finding.fix is not None and finding.fix.applicability.value == "unsafe"
    assert "tf.Variable(3.0)" in finding.fix.edits[0].new_text


def test_integer_counter_made_non_trainable_gets_no_fix():
    (finding,) = _findings(
        """
        import tensorflow as tf
        step = tf.Variable(0, trainable=False)
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x))
        g = tape.gradient(loss, model.trainable_variables + [step])
        """
    )
    assert finding.fix is None


def test_frozen_owner_listed_with_others_is_a_warning_without_fix():
    (finding,) = _findings(
        """
        import tensorflow as tf
        def step(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, head(base(x)))
            return tape.gradient(loss, base.weights + head.trainable_variables)
        base.trainable = False
        """
    )
    assert finding.severity.value == "warning" and finding.fix is None
    assert "optimizer updates the frozen weights" in finding.detail and len(finding.message) <= 80


def test_freezing_after_training_at_module_level_is_not_reported():
    assert not _findings(
        """
        import tensorflow as tf
        with tf.GradientTape() as tape:
            loss = loss_fn(y, base(x))
        g = tape.gradient(loss, base.variables)
        base.trainable = False
        """
    )
