"""The runtime repair's candidates from a run's cut, without running anything: the operators are asked
by the cause's category and op type, on the nodes the cut is pinned to, whatever the spelling."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gradfix import categories as cat
from gradfix.causes import Cause
from gradfix.model import Applicability
from gradfix.repair import candidates
from gradfix.runtime.facts import Site, SourceFact

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

INTEGER_WEIGHTS = """\
import tensorflow as tf

x = tf.constant([[1, 2]], dtype=tf.int32)
W = tf.Variable([1, 2])
b = tf.Variable(1)
step = tf.Variable(0, trainable=False)
with tf.GradientTape() as tape:
    loss = tf.reduce_sum(x * W + b)
grads = tape.gradient(loss, [W, b, step])
"""

DROPPED_OUTPUT = """\
import tensorflow as tf

class MyModel(tf.keras.Model):
    def call(self, x):
        output = self.linear1(x)
        output = self.linear2(output)
        return self.linear3(x)
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


def _run(tmp_path, text: str, cause_of) -> list:
    path = tmp_path / "train.py"
    path.write_text(text)
    return candidates(SimpleNamespace(causes=[cause_of(str(path))], confirmed=[[]]), 0)


def _integer_variable(path: str, line: int, trainable: bool = True) -> SourceFact:
    return SourceFact(index=line, kind="variable", path=f"v{line}", name=f"v{line}", shape=(), dtype="int32",
                      trainable=trainable, gradient_is_none=True, created_at=Site(file=path, line=line))


def test_the_integer_variables_the_run_names_are_made_float_together(tmp_path):
    def cause(path):
        variables = [_integer_variable(path, 4), _integer_variable(path, 5), _integer_variable(path, 6, trainable=False)]
        return Cause(cat.NOT_TRAINABLE, Site(file=path, line=9), None, variables)

    found = _run(tmp_path, INTEGER_WEIGHTS, cause)
    assert [c.rule for c in found] == ["GF010", "GF010"]
    assert all(c.applicability is Applicability.UNSAFE and c.reason for c in found)
    floats = INTEGER_WEIGHTS.replace("tf.Variable([1, 2])", "tf.Variable([1.0, 2.0])").replace("tf.Variable(1)", "tf.Variable(1.0)")
    assert found[0].new_text == floats, "each variable must train for the step to be repaired: they change together"
    assert found[1].new_text == floats.replace("dtype=tf.int32", "dtype=tf.float32"), "then with the integer data they meet"


def test_a_variable_made_in_another_file_is_not_pinned_here(tmp_path):
    def cause(path):
        return Cause(cat.NOT_TRAINABLE, Site(file=path, line=9), None, [_integer_variable(str(tmp_path / "other.py"), 4)])

    assert _run(tmp_path, INTEGER_WEIGHTS, cause) == []


def test_the_dropped_output_the_run_names_is_read_where_the_input_is_read_again(tmp_path):
    def cause(path):
        last = {"name": "output", "line": 6, "file": path, "function": "call", "code": "output = self.linear2(output)"}
        return Cause(cat.NEVER_USED, Site(file=path, line=6, function="call"), None, [], last_connected=last)

    found = _run(tmp_path, DROPPED_OUTPUT, cause)
    assert len(found) == 1 and found[0].rule == "GF011"
    assert found[0].applicability is Applicability.UNSAFE and found[0].reason
    assert found[0].new_text == DROPPED_OUTPUT.replace("self.linear3(x)", "self.linear3(output)")


@pytest.mark.parametrize("name, elsewhere", [("hidden", False), ("output", True)], ids=["another-tensor", "another-file"])
def test_a_dropped_output_is_read_only_where_the_run_saw_it(tmp_path, name, elsewhere):
    def cause(path):
        last = {"name": name, "line": 6, "file": str(tmp_path / "other.py") if elsewhere else path, "function": "call"}
        return Cause(cat.NEVER_USED, Site(file=path, line=6, function="call"), None, [], last_connected=last)

    assert _run(tmp_path, DROPPED_OUTPUT, cause) == []


OPS_ARGMAX_IN_LAMBDA = """\
import keras
import tensorflow as tf
from keras.layers import Lambda

def decode():
    return Lambda(lambda q: keras.ops.cast(keras.ops.argmax(q, 2), tf.float32))
"""


@pytest.mark.parametrize("run_op", ["Equal", "Where"])
def test_an_op_run_inside_the_called_library_function_repairs_the_call(tmp_path, run_op):
    # keras.ops.argmax runs tf.argmax, then Equal and Where for negative zeros: the run's op is one of those,
    # and the expression it pins is the user's call, whose op is ArgMax
    path = tmp_path / "train.py"
    path.write_text(OPS_ARGMAX_IN_LAMBDA)
    line = 6
    text = OPS_ARGMAX_IN_LAMBDA.splitlines()[line - 1]
    call = "keras.ops.argmax(q, 2)"
    column = text.index(call) + 1
    span = {"line": line, "column": column, "end_line": line, "end_column": column + len(call), "exact": True, "text": call}
    site = Site(file=str(path), line=line, code=text.strip())
    cause = Cause(cat.NON_DIFFERENTIABLE, site, None, [],
                  cut={"kind": "op", "op": run_op, "line": line, "file": str(path), "span": span})
    found = candidates(SimpleNamespace(causes=[cause], confirmed=[[]]), 0)
    assert found, "no candidate for the pinned keras.ops.argmax call"
    fixed = found[0].new_text.splitlines()[line - 1]
    # a soft-argmax in the call's own spelling, the index kept as the forward value
    assert "keras.ops.softmax(q, axis=2)" in fixed and "keras.ops.stop_gradient(" in fixed
    assert found[0].applicability is Applicability.UNSAFE and found[0].reason


def test_an_op_the_pinned_expression_does_not_spell_and_no_operator_repairs_gives_nothing(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(OPS_ARGMAX_IN_LAMBDA)
    line = 6
    text = OPS_ARGMAX_IN_LAMBDA.splitlines()[line - 1]
    call = "keras.ops.cast(keras.ops.argmax(q, 2), tf.float32)"
    column = text.index(call) + 1
    span = {"line": line, "column": column, "end_line": line, "end_column": column + len(call), "exact": True, "text": call}
    site = Site(file=str(path), line=line, code=text.strip())
    # a float cast of a float: the call spells Cast, which is no cut to repair here
    cause = Cause(cat.NON_DIFFERENTIABLE, site, None, [],
                  cut={"kind": "op", "op": "Sub", "line": line, "file": str(path), "span": span})
    assert candidates(SimpleNamespace(causes=[cause], confirmed=[[]]), 0) == []
