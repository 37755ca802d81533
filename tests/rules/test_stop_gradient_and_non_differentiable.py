"""What the generic example tests do not check for GF002, GF008 and GF009: applicability, and no double reports."""

from __future__ import annotations

import textwrap

from gradfix.engine import analyze
from gradfix.model import Applicability
from gradfix.source import SourceFile


def _findings(code: str, *codes: str):
    source = SourceFile(path="example.py", text=textwrap.dedent(code), encoding="utf-8")
    return [f for f in analyze(source) if f.rule in codes]


def test_stop_gradient_on_the_whole_prediction_is_a_safe_fix():
    (finding,) = _findings(
        """
        import tensorflow as tf

        with tf.GradientTape() as tape:
            pred = tf.stop_gradient(model(x))
            loss = tf.reduce_mean(tf.square(pred - y))
        grads = tape.gradient(loss, model.trainable_variables)
        """,
        "GF002",
    )
    assert finding.fix.applicability is Applicability.SAFE


def test_stop_gradient_freezing_part_of_the_sources_is_unsafe():
    (finding,) = _findings(
        """
        import tensorflow as tf

        with tf.GradientTape() as tape:
            features = tf.stop_gradient(backbone(x))
            loss = tf.reduce_mean(tf.square(head(features) - y))
        grads = tape.gradient(loss, backbone.trainable_variables + head.trainable_variables)
        """,
        "GF002",
    )
    assert finding.fix.applicability is Applicability.UNSAFE


def test_stop_gradient_around_a_difference_is_unsafe():
    (finding,) = _findings(
        """
        import tensorflow as tf

        with tf.GradientTape() as tape:
            z = encoder(x)
            z_q = tf.stop_gradient(tf.round(z) - z)
            loss = tf.reduce_mean(tf.square(z_q - x))
        grads = tape.gradient(loss, encoder.trainable_variables)
        """,
        "GF002",
    )
    assert finding.fix.applicability is Applicability.UNSAFE


def test_argmax_into_a_loss_is_reported_once_by_gf008_not_gf009():
    findings = _findings(
        """
        import tensorflow as tf

        with tf.GradientTape() as tape:
            probs = model(x)
            loss = tf.keras.losses.categorical_crossentropy(y, tf.one_hot(tf.argmax(probs, -1), 10))
        grads = tape.gradient(loss, model.trainable_variables)
        """,
        "GF008",
        "GF009",
    )
    assert [f.rule for f in findings] == ["GF008"]


def test_non_differentiable_op_inside_a_helper_loss_is_found_in_the_helper():
    findings = _findings(
        """
        import tensorflow as tf

        def hard_l1(y, p):
            return tf.reduce_mean(tf.abs(tf.sign(p) - y))

        with tf.GradientTape() as tape:
            loss = hard_l1(y, model(x))
        grads = tape.gradient(loss, model.trainable_variables)
        """,
        "GF009",
    )
    assert [(f.span.start_line, f.severity.value) for f in findings] == [(5, "warning")]


def test_a_loss_function_used_twice_is_reported_once():
    findings = _findings(
        """
        import tensorflow as tf

        def my_loss(y_true, y_pred):
            return tf.reduce_mean(tf.square(y_true - tf.stop_gradient(y_pred)))

        model.compile(optimizer="adam", loss=my_loss)
        with tf.GradientTape() as tape:
            loss = my_loss(y, model(x))
        grads = tape.gradient(loss, model.trainable_variables)
        """,
        "GF002",
    )
    assert len(findings) == 1
