"""The analysis's LibCST parse skips the per-node check only for the parser's own nodes, in its own thread."""

from __future__ import annotations

import threading

import libcst as cst
import pytest

from gradfix import parsing

SOURCE = '''import tensorflow as tf


def train_step(model, x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((model(x) - y) ** 2)  # a comment
    return tape.gradient(loss, model.trainable_variables)
'''


def _unnamed() -> str:
    """What building a node LibCST's check rejects gives: the check's error, or "built" when nothing checked it."""
    try:
        cst.Name("")
    except cst.CSTValidationError as error:
        return str(error)
    return "built"


def test_the_tree_is_the_one_libcst_parses():
    assert parsing.parse_module(SOURCE).deep_equals(cst.parse_module(SOURCE))
    assert parsing.parse_module(SOURCE).code == SOURCE


def test_nodes_built_after_the_parse_are_checked():
    parsing.parse_module(SOURCE)
    assert _unnamed() == "Cannot have empty name identifier."


def test_nodes_built_after_a_failed_parse_are_checked():
    with pytest.raises(cst.ParserSyntaxError):
        parsing.parse_module("def broken(:\n")
    assert _unnamed() == "Cannot have empty name identifier."


def test_during_a_parse_only_the_parsing_thread_skips_the_check(monkeypatch):
    seen: dict[str, str] = {}

    def parse_while_another_thread_builds(text: str) -> cst.Module:
        seen["parsing thread"] = _unnamed()
        other = threading.Thread(target=lambda: seen.__setitem__("other thread", _unnamed()))
        other.start()
        other.join()
        return cst.Module([])

    monkeypatch.setattr(parsing.cst, "parse_module", parse_while_another_thread_builds)
    parsing.parse_module("")
    assert seen == {"parsing thread": "built", "other thread": "Cannot have empty name identifier."}
