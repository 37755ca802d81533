"""The verdict on a patched run, for each way a step updates its variables (facts as the child writes them; no TensorFlow).

The runtime lane (tests/runtime/test_update_kinds.py) runs these steps for real; here the verdict's rules
are pinned on facts documents: the update kind the facts name, when a step counts as having run through
its update, and when a variable counts as having got its own gradient.
"""

from __future__ import annotations

from gradfix.repair import judge
from gradfix.runtime.facts import RunFacts


def _source(key, shape, lost=False):
    return {"index": 0, "kind": "variable", "path": key, "key": key, "name": key, "shape": shape, "dtype": "float32",
            "trainable": True, "gradient_is_none": lost, "watched": True, "read": "in-tape"}


def _facts(sources, applies=(), error=None):
    return RunFacts.from_dict({
        "status": "ok",
        "error": error,
        "gradient_calls": [{"index": 0, "step": 1, "site": None, "user_site": None, "target": {}, "sources": sources}],
        "applies": list(applies),
    })


def _update(kind, method, variables, optimizer="", completed=True, **extra):
    return {"index": 0, "kind": kind, "method": method, "optimizer": optimizer, "site": None, "after_gradient_call": 0,
            "variables": variables, "mismatches": extra.pop("mismatches", []), "completed": completed, **extra}


NO_GRADIENTS = {"type": "ValueError", "message": "No gradients provided for any variable", "traceback": ""}
W, B = ("w", [2, 1]), ("b", [1])


def test_a_compat_v1_minimize_that_raised_is_verified_once_its_apply_gradients_completes():
    original = _facts([_source(*W, lost=True)],
                      [_update("compat-v1-optimizer", "minimize", [], "GradientDescentOptimizer", completed=False,
                               error=NO_GRADIENTS)], error=NO_GRADIENTS)
    assert original.update_kind() == "compat-v1-optimizer" and not original.update_ran()
    patched = _facts([_source(*W)], [_update("compat-v1-optimizer", "apply_gradients", [_source(*W)],
                                             "GradientDescentOptimizer")])
    verdict = judge(original, patched, ["w"])
    assert verdict.verified, verdict.reason
    assert verdict.update == {"kind": "compat-v1-optimizer", "ran": True,
                              "calls": ["GradientDescentOptimizer.apply_gradients"], "variables": ["w"]}
    assert "compat-v1-optimizer: GradientDescentOptimizer.apply_gradients) ran" in verdict.update_words()


def test_a_step_that_failed_in_its_update_needs_a_completed_update():
    original = _facts([_source(*W, lost=True)], error=NO_GRADIENTS)  # an optimizer gradfix does not wrap raised
    verdict = judge(original, _facts([_source(*W)]), ["w"])
    assert not verdict.verified
    assert verdict.reason == "the patched step did not run through the optimizer's update"


def test_manual_assigns_of_each_variables_own_gradient_are_a_completed_update():
    original = _facts([_source(*W, lost=True), _source(*B, lost=True)],
                      error={"type": "TypeError", "message": "unsupported operand type(s) for *: 'float' and 'NoneType'"})
    patched = _facts([_source(*W), _source(*B)],
                     [_update("manual-assign", "assign_sub", [_source(*W)], from_gradients=["w"]),
                      _update("manual-assign", "assign", [_source(*B)], from_gradients=["b"])])
    verdict = judge(original, patched, ["w", "b"])
    assert verdict.verified, verdict.reason
    assert verdict.update == {"kind": "manual-assign", "ran": True, "calls": ["assign_sub", "assign"],
                              "variables": ["w", "b"]}


def test_a_manual_assign_not_computed_from_the_gradient_updates_no_variable():
    """A value that left TensorFlow (NumPy arithmetic) cannot be traced to a gradient: the update ran, and the
    verdict does not claim it gave the variable its gradient."""
    patched = _facts([_source(*W)], [_update("manual-assign", "assign", [_source(*W)], from_gradients=[])])
    assert patched.update_ran()
    assert patched.updated_variables() == []


def test_a_gradient_applied_to_another_variable_is_not_verified():
    patched = _facts([_source("w", [2]), _source("v", [2])],
                     [_update("manual-assign", "assign_sub", [_source("w", [2])], from_gradients=["v"],
                              mismatches=["the gradient computed for v is applied to w"])])
    verdict = judge(_facts([_source("w", [2], lost=True), _source("v", [2])]), patched, ["w"])
    assert not verdict.verified
    assert verdict.reason == "the gradient computed for v is applied to w"
    assert verdict.update["variables"] == []


def test_an_update_that_never_returned_is_not_verified():
    patched = _facts([_source(*W)], [_update("keras-optimizer", "apply", [_source(*W)], "SGD", completed=False)])
    verdict = judge(_facts([_source(*W, lost=True)]), patched, ["w"])
    assert not verdict.verified
    assert verdict.reason == "the patched step did not run through its update (SGD.apply)"


def test_a_step_without_an_optimizer_is_verified_by_its_gradients():
    patched = _facts([_source(*W)])
    verdict = judge(_facts([_source(*W, lost=True)]), patched, ["w"])
    assert verdict.verified
    assert verdict.update == {"kind": "no-optimizer", "ran": True, "calls": [], "variables": []}
    assert verdict.update_words() == "no optimizer: the step's gradient call ran"


def test_facts_from_before_the_update_kind_are_keras_optimizer_updates():
    facts = _facts([_source(*W)], [{k: v for k, v in _update("", "apply_gradients", [_source(*W)], "Adam").items()
                                    if k != "kind"}])
    assert facts.update_kind() == "keras-optimizer"
    assert facts.update_calls() == ["Adam.apply_gradients"]
