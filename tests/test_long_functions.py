"""A bug is found however long the function around it: no recursion limit in following the data flow."""

from __future__ import annotations

import pytest

from gradfix.engine import analyze
from gradfix.source import SourceFile


def tape_step(statements: int) -> str:
    body = "\n".join(f"        h{i + 1} = tf.nn.relu(h{i})" for i in range(statements))
    return (
        "import tensorflow as tf\n"
        "def step(model, x, opt):\n"
        "    with tf.GradientTape() as tape:\n"
        "        h0 = tf.stop_gradient(model(x))\n"
        f"{body}\n"
        f"        loss = tf.reduce_mean(h{statements})\n"
        "    grads = tape.gradient(loss, model.trainable_variables)\n"
        "    opt.apply_gradients(zip(grads, model.trainable_variables))\n"
    )


def loss_function(statements: int) -> str:
    body = "\n".join(f"    h{i + 1} = tf.nn.relu(h{i})" for i in range(statements))
    return (
        "import tensorflow as tf\n"
        "def my_loss(y_true, y_pred):\n"
        "    h0 = tf.round(y_pred)\n"
        f"{body}\n"
        f"    return tf.reduce_mean(h{statements} - y_true)\n"
        "model = tf.keras.Sequential([tf.keras.layers.Dense(1)])\n"
        "model.compile(optimizer='adam', loss=my_loss)\n"
    )


@pytest.mark.parametrize("statements", [10, 120, 600])
def test_a_stop_gradient_at_the_top_of_a_long_tape_body_is_found(statements, monkeypatch):
    monkeypatch.setenv("GRADFIX_STRICT", "1")  # an internal error fails the test rather than hiding a finding
    findings = analyze(SourceFile("long.py", tape_step(statements), "utf-8"))
    assert [(f.rule, f.span.start_line) for f in findings] == [("GF002", 4)]


@pytest.mark.parametrize("statements", [10, 400])
def test_a_round_at_the_top_of_a_long_loss_function_is_found(statements, monkeypatch):
    monkeypatch.setenv("GRADFIX_STRICT", "1")
    findings = analyze(SourceFile("long.py", loss_function(statements), "utf-8"))
    assert [(f.rule, f.span.start_line) for f in findings] == [("GF009", 3)]


def test_a_model_rewrapped_over_a_thousand_times_is_still_traced_to_its_making(monkeypatch):
    """GF006 follows the model back through every rebinding to the layers it was made of (a queue, not recursion)."""
    monkeypatch.setenv("GRADFIX_STRICT", "1")
    rebindings = "\n".join("model = wrap(model)" for _ in range(1200))
    text = (
        "import tensorflow as tf\n"
        "model = tf.keras.Sequential([tf.keras.layers.Dense(4), tf.keras.layers.BatchNormalization()])\n"
        f"{rebindings}\n"
        "with tf.GradientTape() as tape:\n"
        "    loss = tf.reduce_mean(model(x, training=True))\n"
        "grads = tape.gradient(loss, model.variables)\n"
    )
    findings = analyze(SourceFile("deep.py", text, "utf-8"))
    assert [f.rule for f in findings] == ["GF006"]
