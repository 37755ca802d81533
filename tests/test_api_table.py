"""The single definitions the rules share: the dtype test and what a statement assigns to a name."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from gradfix.static.analysis import ModuleAnalysis
from gradfix.static.api import integer_dtype

HEADER = "import numpy as np\nimport tensorflow as tf\nfrom tensorflow import int16 as small, float16 as half\n"


def _analysis(text: str) -> ModuleAnalysis:
    text = textwrap.dedent(text)
    return ModuleAnalysis("m.py", text, cst.parse_module(text))


def _dtype(code: str) -> tuple[ModuleAnalysis, cst.BaseExpression]:
    """The analysis of a module ending in ``x = tf.cast(y, <code>)``, and the dtype argument as parsed in it."""
    analysis = _analysis(HEADER + f"x = tf.cast(y, {code})\n")
    call = next(analysis.walk(None, cst.Call))
    return analysis, call.args[1].value


@pytest.mark.parametrize("code", ["tf.int32", "tf.uint8", "tf.bool", "np.int64", "tf.dtypes.int8", '"int32"', "'bool'", "small", "int"])
def test_integer_and_boolean_dtypes_are_integer(code):
    assert integer_dtype(*_dtype(code))


@pytest.mark.parametrize("code", ["tf.float32", "np.float64", '"float32"', "half", "tf.string", "self.int32", "float", "tf.complex64"])
def test_float_string_and_unknown_dtypes_are_not(code):
    assert not integer_dtype(*_dtype(code))


def test_no_dtype_is_not_an_integer_dtype():
    analysis, _ = _dtype("tf.int32")
    assert not integer_dtype(analysis, None)


def test_an_alias_counts_by_what_it_imports_not_by_its_spelling():
    analysis = _analysis("from tensorflow import float32 as int32\nx = tf.cast(y, int32)\n")
    call = next(analysis.walk(None, cst.Call))
    assert not integer_dtype(analysis, call.args[1].value)
