"""Custom training steps run through ``strategy.run`` under MirroredStrategy: the same diagnosis as without it.

Under a strategy each replica runs the step in a thread of its own, the model's variables are
mirrored variables over one variable per device, and the strategy reads the first device's copy
to initialise the others; with two replicas every step asks for two gradients.
"""

from __future__ import annotations

import pytest

from gradfix import categories as cat
from gradfix.diagnose import diagnose

pytestmark = pytest.mark.tensorflow

ALL = {"sequential/dense/kernel", "sequential/dense/bias", "sequential/dense_1/kernel", "sequential/dense_1/bias"}
ENCODER = {"sequential/dense/kernel", "sequential/dense/bias"}

# fixture -> (category, rule, break line, variables without gradient, line of the model that owns them)
CASES = {
    "mirrored_outside_tape.py": (cat.OUTSIDE_TAPE, "GF001", 24, ALL, 15),
    "mirrored_stop_gradient.py": (cat.STOP_GRADIENT, "GF002", 26, ENCODER, 15),
}


@pytest.mark.parametrize("replicas", ["1", "2"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_mirrored_strategy_names_the_cause(run_fixture, name, replicas):
    category, rule, line, variables, created = CASES[name]
    facts = run_fixture(name, args=(replicas,))
    assert facts.status == "ok", facts.error
    # one gradient call a step, whatever the number of replicas
    assert len(facts.gradient_calls) == 1
    result = diagnose(facts)
    assert [c.category for c in result.causes] == [category]
    assert result.causes[0].site.line == line
    finding = result.findings[0]
    assert finding.rule == rule
    assert set(finding.variables) == variables
    for _, source in facts.variables_without_gradient():
        assert source.created_at is not None and source.created_at.line == created
        assert source.layer is not None and source.layer.cls == "Dense"
