"""The recorded runs of the repair fixtures (NAME.facts.json) are those the current child gives.

Three fixtures are run again and compared on what must not change between runs of one program: the status,
which variables get a gradient, the causes with their sites and the expressions they are pinned to, and
the first candidate fix of each. A difference means the child or the repairs changed since the recording:
record again with ``python -m gradfix.runtime.record_facts fixtures/repair``.
"""

from __future__ import annotations

import pytest
from fixture_cases import REPAIR

from gradfix.causes import group_causes
from gradfix.runtime.record_facts import facts_of, facts_path, load, record

pytestmark = pytest.mark.tensorflow

# one trained with fit through a Lambda layer, one with a tape and a custom layer's state update, one whose
# cut Keras made inside fit (no expression of the user's is pinned)
NAMES = ["lambda_argmax_output_fit", "memory_layer_assign_in_call", "backend_argmax_cast_lambdas_seq2seq"]


def _stable(facts, first_candidates):
    causes = []
    for cause in group_causes(facts):
        expression = cause.expression
        causes.append((cause.category, sorted(cause.keys), cause.site.line if cause.site else None,
                       None if expression is None else (expression.text, expression.line, expression.column,
                                                        expression.end_line, expression.end_column, expression.exact)))
    return {"status": facts.status, "gradients": facts.gradient_status(), "causes": causes,
            "first_candidates": first_candidates}


@pytest.mark.parametrize("name", NAMES)
def test_the_recorded_run_is_current(name):
    program = REPAIR / f"{name}.py"
    recorded_facts, recorded = load(facts_path(program))
    fresh = record(program)
    assert fresh["program"] == recorded["program"]
    assert _stable(facts_of(fresh, REPAIR), fresh["first_candidates"]) == _stable(recorded_facts, recorded["first_candidates"])
