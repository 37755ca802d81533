"""GF007: where the watch goes, and the sources it must leave alone."""

from __future__ import annotations

import textwrap

from gradfix.engine import analyze, fix_source
from gradfix.rules.missing_watch import MissingWatch
from gradfix.source import SourceFile


def _source(code: str) -> SourceFile:
    return SourceFile("t.py", textwrap.dedent(code), "utf-8")


def _findings(code: str):
    return [f for f in analyze(_source(code), [MissingWatch()]) if f.rule == "GF007"]


def test_tensor_made_in_a_nested_block_of_the_tape_is_reported_without_a_fix():
    findings = _findings(
        """
        import tensorflow as tf
        with tf.GradientTape() as tape:
            if flag:
                x = tf.constant(1.0)
            else:
                x = tf.constant(2.0)
            y = x * x
        g = tape.gradient(y, x)
        """
    )
    assert len(findings) == 1 and findings[0].fix is None


def test_every_unwatched_tensor_is_watched_in_one_fix():
    source = _source(
        """
        import tensorflow as tf
        x = tf.random.uniform((8, 1))
        t = tf.random.uniform((8, 1))
        with tf.GradientTape() as tape:
            u = net(tf.concat([x, t], axis=1))
        du_dx, du_dt = tape.gradient(u, [x, t])
        """
    )
    new_text = fix_source(source, [MissingWatch()]).new_text
    assert "    tape.watch(x)\n    tape.watch(t)\n    u = net(" in new_text


def test_parameter_is_judged_by_every_call_site():
    template = """
        import tensorflow as tf
        def saliency(image):
            with tf.GradientTape() as tape:
                score = model(image)
            return tape.gradient(score, image)
        saliency(tf.constant([[1.0, 2.0]]))
        saliency({other})
        """
    assert _findings(template.format(other="tf.random.normal((1, 2))"))
    assert not _findings(template.format(other="tf.Variable([[1.0, 2.0]])"))
    assert not _findings(template.format(other="load_image()"))


def test_integer_and_unread_tensors_are_left_alone():
    assert not _findings(
        """
        import tensorflow as tf
        n = tf.constant([1, 2, 3])
        x = tf.constant(2.0)
        with tf.GradientTape() as tape:
            y = tf.reduce_sum(tf.cast(n, tf.float32) * w)
        g = tape.gradient(y, [n, x])
        """
    )
