"""TensorFlow 1 graph mode (``tf.compat.v1.disable_v2_behavior``): no op runs while the program builds its graph,
so whether the target is computed from an unwatched tensor is read from the graph itself."""

from __future__ import annotations

import pytest

from gradfix import categories as cat
from gradfix.diagnose import diagnose

pytestmark = pytest.mark.tensorflow

# x feeds the target and is never watched: a missing watch; unused feeds nothing: watching it would not help
PROGRAM = """\
import numpy as np
import tensorflow as tf

tf.compat.v1.disable_v2_behavior()

x = tf.constant(np.ones((4, 3), "float32"))
unused = tf.constant(np.ones((3, 1), "float32"))
w = tf.constant(np.full((3, 1), 0.5, "float32"))
with tf.GradientTape() as tape:
    y = tf.reduce_sum(tf.matmul(x, w))
grads = tape.gradient(y, [x, unused])
print("gradient", grads)
"""


def test_unwatched_tensor_that_feeds_the_target_is_a_missing_watch_in_graph_mode(run_fixture, tmp_path):
    (tmp_path / "tf1_watch.py").write_text(PROGRAM)
    facts = run_fixture("tf1_watch.py", tmp_path)
    assert facts.status == "ok", facts.error
    result = diagnose(facts)
    found = {cause.category: [v.shape for v in cause.variables] for cause in result.causes}
    assert found == {cat.MISSING_WATCH: [(4, 3)], cat.TARGET_INDEPENDENT: [(3, 1)]}
    watch = result.findings[[c.category for c in result.causes].index(cat.MISSING_WATCH)]
    assert watch.rule == "GF007" and watch.fix is not None
    # and the report says what graph mode hides from the run
    notes = [n for n in facts.shown_notes() if n["kind"] == "graph-mode"]
    assert len(notes) == 1 and "TensorFlow 1 graph mode" in notes[0]["message"] and notes[0]["site"]["line"] == 11
