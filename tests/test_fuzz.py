"""Arbitrary Python never crashes the analysis, and whatever gradfix fixes still parses."""

from __future__ import annotations

import hypothesmith
import libcst as cst
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradfix.engine import analyze, fix_source
from gradfix.source import SourceError, SourceFile

# Random programs rarely mention TensorFlow, so each is also tried behind a header that makes every rule look at it.
HEADER = "import tensorflow as tf\nimport numpy as np\nfrom tensorflow import keras\n# GradientTape stop_gradient numpy argmax\n"

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def _exercise(text: str) -> None:
    source = SourceFile("fuzz.py", text, "utf-8")
    try:
        analyze(source)
    except SourceError:
        return  # hypothesmith can produce text LibCST's grammar refuses; that is a reported input error, not a crash
    outcome = fix_source(source, include_unsafe=True)
    cst.parse_module(outcome.new_text)
    compile(outcome.new_text, "fuzz.py", "exec", dont_inherit=True)


@FUZZ
@given(hypothesmith.from_grammar())
def test_any_module_is_analysed_without_crashing(code):
    _exercise(HEADER + code if code.strip() else HEADER)


TAPE_PARTS = st.sampled_from([
    "pred = model(x)",
    "h = model.layers[0](x)",
    "loss = tf.reduce_mean(tf.square(y - pred))",
    "loss = tf.reduce_mean(tf.stop_gradient(pred))",
    "loss = np.mean(pred.numpy())",
    "loss = tf.cast(tf.argmax(pred, -1), tf.float32)",
    "loss = tf.reduce_mean(h)",
    "tape.watch(x)",
    "w = w - 0.1 * loss",
    "pass",
])


@FUZZ
@given(st.lists(TAPE_PARTS, max_size=4), st.lists(TAPE_PARTS, min_size=1, max_size=4), st.lists(TAPE_PARTS, max_size=3),
       st.sampled_from(["model.trainable_variables", "model.variables", "[w]", "x"]))
def test_training_step_shapes_are_fixed_into_parsable_code(before, inside, after, sources):
    body = "\n".join(
        ["def step(model, x, y, w):"]
        + [f"    {line}" for line in before]
        + ["    with tf.GradientTape() as tape:"]
        + [f"        {line}" for line in inside]
        + [f"    {line}" for line in after]
        + [f"    grads = tape.gradient(loss, {sources})", "    return grads", ""]
    )
    _exercise(HEADER + body)
