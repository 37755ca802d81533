"""GF011: what counts as a use, and how sure a finding is."""

from __future__ import annotations

import textwrap

from gradfix.engine import analyze
from gradfix.rules.layer_never_called import LayerNeverCalled
from gradfix.source import SourceFile

MODEL = """
from tensorflow import keras
class Net(keras.Model):
    def __init__(self):
        super().__init__()
        self.body = keras.layers.Dense(8)
        self.spare = keras.layers.{spare}
{extra}
    def call(self, x):
        return self.body(x)
"""


def _findings(spare: str = "Dense(8)", extra: str = ""):
    code = textwrap.dedent(MODEL.format(spare=spare, extra=extra))
    return [f for f in analyze(SourceFile("t.py", code, "utf-8"), [LayerNeverCalled()]) if f.rule == "GF011"]


def test_unbuilt_layer_is_information_and_built_layer_a_warning():
    (unbuilt,) = _findings()
    assert unbuilt.severity.value == "info" and unbuilt.span.start_line == 7
    built = "    def build(self, shape):\n        self.body.build(shape)\n        self.spare.build(shape)\n"
    (finding,) = _findings(extra=built)
    assert finding.severity.value == "warning" and finding.fix is None


def test_layers_without_variables_are_not_reported():
    assert _findings(spare="Dropout(0.5)") == []
    assert _findings(spare="MaxPooling2D()") == []


def test_dynamic_access_and_other_methods_count_as_uses():
    assert _findings(extra="    def summary_of(self):\n        return [l.name for l in self.layers]\n") == []
    assert _findings(extra="    def aux(self, x):\n        return self.spare(x)\n") == []
    assert _findings(extra="    def pick(self, name):\n        return getattr(self, name)\n") == []
