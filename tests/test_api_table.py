"""The single definitions the rules share: the dtype test and what a statement assigns to a name."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from gradfix.static.analysis import ModuleAnalysis, assigned_value, bindings_in, lone_assignment, statement_values
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


def _line(code: str) -> cst.CSTNode:
    return cst.parse_module(code + "\n").body[0]


def _code(node: cst.CSTNode | None) -> str | None:
    return None if node is None else cst.Module([]).code_for_node(node)


@pytest.mark.parametrize("code, value", [
    ("x = f(w)", "f(w)"),
    ("a = x = f(w)", "f(w)"),
    ("x: list = f(w)", "f(w)"),
    ("y = 1; x = f(w)", "f(w)"),
    ("a, x = f(w)", None),
    ("x += f(w)", None),
    ("y = f(w)", None),
])
def test_assigned_value_is_the_plain_assignment_of_the_name(code, value):
    assert _code(assigned_value(_line(code), "x")) == value


@pytest.mark.parametrize("code, kinds", [
    ("a, x = f(w)", ["unpacked"]),
    ("x = g(); x += f(w)", ["value", "augmented"]),
    ("for x in batches:\n    pass", ["loop"]),
    ("y = f(w)", ["other"]),
])
def test_bindings_in_gives_every_way_a_statement_binds_the_name(code, kinds):
    assert [b.kind for b in bindings_in(_line(code), "x")] == kinds


def test_an_unpacking_binds_the_whole_value():
    assert [_code(b.value) for b in bindings_in(_line("a, x = f(w)"), "x")] == ["f(w)"]


@pytest.mark.parametrize("code, expected", [
    ("x = f(w)", ("x", "f(w)")),
    ("y = 1; x = f(w)", None),
    ("a = x = f(w)", None),
    ("a, x = f(w)", None),
    ("x: list = f(w)", None),
])
def test_lone_assignment_is_a_line_of_its_own(code, expected):
    assigned = lone_assignment(_line(code))
    assert (None if assigned is None else (assigned[0], _code(assigned[1]))) == expected


def test_statement_values_include_an_augmented_target_and_a_loop_iterable():
    assert [_code(v) for v in statement_values(_line("y = g(v); x += f(w)"))] == ["g(v)", "f(w)", "x"]
    assert [_code(v) for v in statement_values(_line("for x in batches:\n    pass"))] == ["batches"]
