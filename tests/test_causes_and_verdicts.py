"""The runtime's cause and the verification's verdict, from synthetic facts (no TensorFlow).

The child's facts are plain JSON; these tests build them by hand so that each decision of
``gradfix.causes.categorise`` and ``gradfix.repair.judge`` is checked on its own.
"""

from __future__ import annotations

from gradfix import categories as cat
from gradfix.causes import LINE_TEXT, RUN, group_causes
from gradfix.repair import judge
from gradfix.runtime.facts import RunFacts

SITE = {"file": "/p/train.py", "line": 12, "function": "step", "code": "loss = f(pred)"}


def _facts(source: dict | None = None, call: dict | None = None, applies=(), error=None, status="ok") -> RunFacts:
    variable = {"index": 0, "kind": "variable", "path": "dense/kernel", "key": "dense/kernel", "shape": [3, 1],
                "dtype": "float32", "trainable": True, "gradient_is_none": True, "watched": True, "read": "in-tape"}
    variable.update(source or {})
    gradient = {"index": 0, "site": {**SITE, "line": 14, "code": "grads = tape.gradient(loss, v)"},
                "target": {}, "sources": [variable], "target_depends_on_watched": True}
    gradient.update(call or {})
    return RunFacts.from_dict({"status": status, "gradient_calls": [gradient], "applies": list(applies), "error": error})


def _break(cut=None, **extra) -> dict:
    frontier = {"last_connected": {"name": "pred", "line": 11, "file": "/p/train.py", "function": "step"},
                "last_connected_read": True, "break": {**SITE, "end_line": 12, "recording": True, "reads_connected": ["pred"],
                                                       "outputs": [{"name": "loss", "type": "EagerTensor", "dtype": "float32"}]},
                "cut": cut}
    frontier.update(extra)
    return {"frontier": frontier}


def _only(facts):
    causes = group_causes(facts)
    assert len(causes) == 1
    return causes[0]


def test_an_op_without_gradient_is_named_from_the_run():
    cause = _only(_facts(_break({"kind": "op", "op": "ArgMax", "line": 12, "file": "/p/train.py", "recording": True,
                                 "output_dtypes": ["int64"], "no_registered_gradient": False})))
    assert (cause.category, cause.basis) == (cat.NON_DIFFERENTIABLE, RUN)
    assert "argmax" in cause.detail and "int64" in cause.detail


def test_a_cast_to_an_integer_dtype_says_so():
    cause = _only(_facts(_break({"kind": "op", "op": "Cast", "dst_dtype": "int32", "line": 12, "file": "/p/train.py",
                                 "recording": True, "output_dtypes": ["int32"]})))
    assert cause.category == cat.NON_DIFFERENTIABLE and "a cast to int32" in cause.detail


def test_stop_gradient_numpy_and_state_update_cuts():
    assert _only(_facts(_break({"kind": "stop-gradient", "op": "StopGradient", "line": 12}))).category == cat.STOP_GRADIENT
    assert _only(_facts(_break({"kind": "numpy-conversion", "how": ".numpy()", "line": 12}))).category == cat.NUMPY_CONVERSION
    metric = _only(_facts(_break({"kind": "state-update", "method": "assign", "line": 12, "metric": "MeanSquaredError"})))
    assert metric.category == cat.STATE_UPDATE and "MeanSquaredError" in metric.detail


def test_an_op_run_while_no_tape_recorded_is_outside_the_tape():
    cause = _only(_facts(_break({"kind": "op", "op": "Neg", "line": 12, "recording": False, "output_dtypes": ["float32"]})))
    assert cause.category == cat.OUTSIDE_TAPE


def test_a_target_computed_in_the_gradient_call_is_outside_the_tape():
    origin = {"op": "Neg", "file": "/p/train.py", "line": 14, "recording": False, "code": "grads = tape.gradient(-loss, v)"}
    cause = _only(_facts({"frontier": None}, {"target_origin": origin}))
    assert cause.category == cat.OUTSIDE_TAPE and cause.site.line == 14
    assert "gradient call's own arguments" in cause.detail


def test_a_finished_tensor_handed_to_the_tape_is_outside_the_tape():
    origin = {"file": "/p/train.py", "line": 5, "recording": False, "before_window": True, "name": "cost", "code": "cost = f(w)"}
    cause = _only(_facts({"watched": False, "read": "never", "frontier": None}, {"target_origin": origin}))
    assert cause.category == cat.OUTSIDE_TAPE and cause.site.line == 5 and "`cost`" in cause.detail


def test_an_assign_in_the_window_is_a_state_update():
    assign = {"kind": "state-update", "method": "assign", "line": 9, "file": "/p/train.py", "variable": "memory"}
    cause = _only(_facts({"frontier": {"last_connected": None, "assign": assign}}))
    assert cause.category == cat.STATE_UPDATE and cause.site.line == 9


def test_a_constant_target_is_not_a_missing_watch():
    tensor = {"kind": "tensor", "path": "<EagerTensor>", "key": "<EagerTensor>", "watched": False, "feeds_target": False}
    assert _only(_facts(tensor)).category == cat.TARGET_INDEPENDENT
    tensor["feeds_target"] = True
    assert _only(_facts(tensor)).category == cat.MISSING_WATCH
    # watched already: the cause is what cut the path, not the watch
    tensor.update(watched=True, **_break({"kind": "numpy-conversion", "how": "tf.data", "line": 12}))
    assert _only(_facts(tensor)).category == cat.NUMPY_CONVERSION


def test_integer_variables_and_the_line_text_fallback():
    assert _only(_facts({"dtype": "int32"})).category == cat.NOT_TRAINABLE
    guess = _only(_facts(_break(None) | {"frontier": {**_break(None)["frontier"],
                                                       "break": {**SITE, "code": "loss = tf.round(pred)", "recording": True,
                                                                 "reads_connected": ["pred"], "outputs": []}}}))
    assert guess.category == cat.NON_DIFFERENTIABLE and guess.basis == LINE_TEXT


def test_a_dropped_output_in_another_function_is_never_used():
    frontier = {"last_connected": {"name": "output", "line": 20, "file": "/p/model.py", "function": "call"},
                "last_connected_read": False}
    assert _only(_facts({"frontier": frontier})).category == cat.NEVER_USED
    frontier["last_connected"]["function"] = "step"
    assert _only(_facts({"frontier": frontier})).category == cat.LOSS_IGNORES_PREDICTION


def test_two_unnamed_variables_are_two_variables():
    first = {"index": 0, "kind": "variable", "path": "Variable", "key": "Variable#1", "dtype": "float32",
             "trainable": True, "gradient_is_none": False, "watched": True}
    second = dict(first, index=1, key="Variable#2", gradient_is_none=True)
    facts = RunFacts.from_dict({"status": "ok", "gradient_calls": [{"index": 0, "sources": [first, second]}]})
    assert facts.gradient_status() == {"Variable#1": True, "Variable#2": False}


# --------------------------------------------------------------------------- verdicts

def _apply(completed=True, mismatches=(), error=None, none=False):
    variable = {"index": 0, "kind": "variable", "path": "dense/kernel", "key": "dense/kernel", "dtype": "float32",
                "trainable": True, "gradient_is_none": none}
    return {"index": 0, "method": "apply_gradients", "optimizer": "Adam", "variables": [variable],
            "completed": completed, "mismatches": list(mismatches), "error": error}


ORIGINAL = _facts(applies=[_apply(completed=False, none=True, error={"type": "ValueError", "message": "No gradients provided"})],
                  error={"type": "ValueError", "message": "No gradients provided for any variable."})


def _patched(**change):
    source = {"gradient_is_none": False}
    return _facts(source, applies=[_apply(**change)])


def test_verified_when_the_update_runs_and_every_variable_gets_a_gradient():
    verdict = judge(ORIGINAL, _patched(), ["dense/kernel"])
    assert verdict.verified and not verdict.problems


def test_not_verified_when_a_gradient_is_applied_to_another_variable():
    verdict = judge(ORIGINAL, _patched(mismatches=["the gradient computed for g/kernel is applied to d/kernel"]), ["dense/kernel"])
    assert not verdict.verified and "applied to d/kernel" in verdict.reason


def test_not_verified_when_the_update_does_not_run_or_something_new_is_raised():
    assert not judge(ORIGINAL, _patched(completed=False), ["dense/kernel"]).verified
    crashed = _facts({"gradient_is_none": False}, applies=[_apply()], error={"type": "InvalidArgumentError", "message": "shapes"})
    verdict = judge(ORIGINAL, crashed, ["dense/kernel"])
    assert not verdict.verified and "InvalidArgumentError" in verdict.reason


def test_not_verified_when_a_variable_still_or_newly_lacks_a_gradient():
    assert judge(ORIGINAL, _facts(applies=[_apply()]), ["dense/kernel"]).still_failing == ["dense/kernel"]
    two = RunFacts.from_dict({"status": "ok", "gradient_calls": [{"index": 0, "sources": [
        {"index": 0, "kind": "variable", "path": "a", "key": "a", "dtype": "float32", "gradient_is_none": True},
        {"index": 1, "kind": "variable", "path": "b", "key": "b", "dtype": "float32", "gradient_is_none": False}]}]})
    swapped = RunFacts.from_dict({"status": "ok", "gradient_calls": [{"index": 0, "sources": [
        {"index": 0, "kind": "variable", "path": "a", "key": "a", "dtype": "float32", "gradient_is_none": False},
        {"index": 1, "kind": "variable", "path": "b", "key": "b", "dtype": "float32", "gradient_is_none": True}]}]})
    verdict = judge(two, swapped, ["a"])
    assert not verdict.verified and verdict.lost == ["b"]


def test_a_patched_program_that_never_reaches_a_gradient_is_not_verified():
    verdict = judge(ORIGINAL, RunFacts.from_dict({"status": "crashed", "error": {"type": "NameError", "message": "x"}}), ["k"])
    assert not verdict.verified and "NameError" in verdict.reason
