"""The runtime repair's candidates from a run's cut, without running anything: the operators are asked
by the cause's category and op type, on the nodes the cut is pinned to, whatever the spelling."""

from __future__ import annotations

from types import SimpleNamespace

from gradfix import categories as cat
from gradfix.causes import Cause
from gradfix.model import Applicability
from gradfix.repair import candidates
from gradfix.runtime.facts import Site

LAMBDA_ARGMAX = """\
import numpy as np
from tensorflow.keras import backend as K
from tensorflow.keras.layers import Dense, Input, Lambda

inputs = Input(shape=(4,))
decoded = Lambda(lambda x: K.one_hot(K.argmax(x), 3))(Dense(3)(inputs))
"""

STOPPED_TRUNK = """\
import keras

trunk = keras.layers.Dense(4)
x = keras.ops.stop_gradient(trunk(inputs))
"""


def _candidates(tmp_path, text: str, category: str, line: int, op: str):
    path = tmp_path / "train.py"
    path.write_text(text)
    site = Site(file=str(path), line=line, code=text.splitlines()[line - 1].strip())
    cause = Cause(category, site, None, [], cut={"kind": "op", "op": op, "line": line, "file": str(path)})
    return candidates(SimpleNamespace(causes=[cause], confirmed=[[]]), 0)


def test_a_keras_backend_argmax_in_a_lambda_gets_the_softmax_surrogates(tmp_path):
    found = _candidates(tmp_path, LAMBDA_ARGMAX, cat.NON_DIFFERENTIABLE, 6, "ArgMax")
    assert [c.rule for c in found] == ["GF009", "GF009"]
    assert all(c.applicability is Applicability.UNSAFE and c.reason for c in found)
    assert "K.softmax(x, axis=-1) + K.stop_gradient(K.one_hot(K.argmax(x), 3) - K.softmax(x, axis=-1))" in found[0].new_text
    assert "Lambda(lambda x: K.softmax(x, axis=-1))" in found[1].new_text


def test_a_cut_of_another_op_on_the_line_gets_nothing_from_the_surrogate(tmp_path):
    assert _candidates(tmp_path, LAMBDA_ARGMAX, cat.NON_DIFFERENTIABLE, 6, "Round") == []


def test_a_keras_ops_stop_gradient_is_unwrapped(tmp_path):
    found = _candidates(tmp_path, STOPPED_TRUNK, cat.STOP_GRADIENT, 4, "StopGradient")
    assert len(found) == 1 and found[0].rule == "GF002"
    assert found[0].new_text == STOPPED_TRUNK.replace("keras.ops.stop_gradient(trunk(inputs))", "trunk(inputs)")
