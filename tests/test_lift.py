"""A cause seen from the caller of the helper it sits in (gradfix.lift), and the operators' rewrites through the call.

The run records the user's frames that called each site (``Site.callers``). These tests build the run's
sites by hand for small programs whose cut, or whose gradient call, sits in a helper function, and check
what the repair operators make of them: the rewrite is made where the helper is called, reading the
helper through the call's arguments.
"""

from __future__ import annotations

import textwrap

import pytest

from gradfix.categories import MISSING_WATCH, OUTSIDE_TAPE, STATE_UPDATE
from gradfix.causes import Cause
from gradfix.lift import lifted_causes
from gradfix.repair import _operator_candidates, _site
from gradfix.runtime.facts import GradientCall, Site


def _program(tmp_path, code: str):
    path = tmp_path / "train.py"
    path.write_text(textwrap.dedent(code).lstrip(), encoding="utf-8")
    return path, path.read_text(encoding="utf-8").splitlines()


def _site_at(path, lines, text: str, function: str, occurrence: int = 0, callers=()) -> Site:
    """The site of ``text`` (its nth occurrence) as the run records it: line, columns from 1, end column after it."""
    found = [(number, line.index(text)) for number, line in enumerate(lines, 1) if text in line]
    number, column = found[occurrence]
    return Site(file=str(path), line=number, function=function, code=lines[number - 1].strip(), column=column + 1,
                end_line=number, end_column=column + 1 + len(text), text=text, callers=tuple(callers))


def _call(where: Site) -> GradientCall:
    return GradientCall(index=0, step=1, site=None, user_site=where, target={}, sources=())


def _candidate_texts(cause: Cause) -> list[str]:
    texts = []
    for lifted in lifted_causes(cause):
        site = _site(lifted)
        texts.extend(c.new_text for c in _operator_candidates(site) if c is not None)
        if texts:
            break
    return texts


FORWARD_IN_HELPER = """
import tensorflow as tf

def forward(model, x):
    return model(x)

for x, y in data:
    pred = forward(model, x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(pred - y))
    grads = tape.gradient(loss, model.trainable_variables)
"""


def test_a_cut_in_a_helper_is_seen_from_where_it_is_called(tmp_path):
    path, lines = _program(tmp_path, FORWARD_IN_HELPER)
    caller = _site_at(path, lines, "forward(model, x)", "<module>", occurrence=1)
    site = _site_at(path, lines, "model(x)", "forward", callers=[caller])
    where = _site_at(path, lines, "tape.gradient(loss, model.trainable_variables)", "<module>")
    cause = Cause(OUTSIDE_TAPE, site, _call(where))
    lifted = list(lifted_causes(cause))
    # out to the gradient call's own function, and no further
    assert [(c.site.line, c.lifted_from.line) for c in lifted] == [(caller.line, site.line)]
    texts = _candidate_texts(cause)
    assert texts, "no rewrite was made at the helper's call"
    assert "    with tf.GradientTape() as tape:\n        pred = forward(model, x)\n" in texts[0]


def test_nothing_is_lifted_from_the_gradient_calls_own_function(tmp_path):
    path, lines = _program(tmp_path, FORWARD_IN_HELPER)
    where = _site_at(path, lines, "tape.gradient(loss, model.trainable_variables)", "<module>")
    site = _site_at(path, lines, "pred = forward(model, x)", "<module>")
    assert list(lifted_causes(Cause(OUTSIDE_TAPE, site, _call(where)))) == []


def test_a_caller_in_another_file_is_not_followed(tmp_path):
    path, lines = _program(tmp_path, FORWARD_IN_HELPER)
    elsewhere = Site(file=str(tmp_path / "other.py"), line=3, function="<module>", code="forward(model, x)")
    site = _site_at(path, lines, "model(x)", "forward", callers=[elsewhere])
    where = _site_at(path, lines, "tape.gradient(loss, model.trainable_variables)", "<module>")
    assert list(lifted_causes(Cause(OUTSIDE_TAPE, site, _call(where)))) == []


WATCH_IN_HELPER = """
import tensorflow as tf

x = tf.zeros(())

def grad_of(tape, y, x):
    return tape.gradient(y, x)

with tf.GradientTape() as t:
    y = 2 * x + 3
g = grad_of(t, y, x)
"""


def test_the_tape_and_sources_of_a_helper_are_the_callers_arguments(tmp_path):
    path, lines = _program(tmp_path, WATCH_IN_HELPER)
    caller = _site_at(path, lines, "grad_of(t, y, x)", "<module>")
    where = _site_at(path, lines, "tape.gradient(y, x)", "grad_of", callers=[caller])
    texts = _candidate_texts(Cause(MISSING_WATCH, where, _call(where)))
    assert texts and "with tf.GradientTape() as t:\n    t.watch(x)\n    y = 2 * x + 3\n" in texts[0]
    assert "tape.watch" not in texts[0]


TARGET_IN_HELPER = """
import tensorflow as tf

class Steps:
    def grads(self, tape, score, model):
        return tape.gradient(-score, model.trainable_variables)

steps = Steps()
with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
    score = disc(gen(z))
d_grads = d_tape.gradient(score, disc.trainable_variables)
g_grads = steps.grads(g_tape, score, gen)
"""


def test_a_helper_computing_the_target_is_called_inside_the_block(tmp_path):
    path, lines = _program(tmp_path, TARGET_IN_HELPER)
    caller = _site_at(path, lines, "steps.grads(g_tape, score, gen)", "<module>")
    where = _site_at(path, lines, "tape.gradient(-score, model.trainable_variables)", "grads", callers=[caller])
    cause = Cause(OUTSIDE_TAPE, where, _call(where), cut={"op": "Neg", "file": str(path), "line": where.line})
    texts = _candidate_texts(cause)
    assert texts
    # the call jumps over the other tape's gradient call, which it neither reads from nor writes to
    assert ("    score = disc(gen(z))\n    g_grads = steps.grads(g_tape, score, gen)\n"
            "d_grads = d_tape.gradient(score, disc.trainable_variables)\n") in texts[0]


def test_a_helper_call_that_reads_what_the_statements_between_bind_is_not_moved(tmp_path):
    code = TARGET_IN_HELPER.replace("g_grads = steps.grads(g_tape, score, gen)", "g_grads = steps.grads(g_tape, d_grads, gen)")
    path, lines = _program(tmp_path, code)
    caller = _site_at(path, lines, "steps.grads(g_tape, d_grads, gen)", "<module>")
    where = _site_at(path, lines, "tape.gradient(-score, model.trainable_variables)", "grads", callers=[caller])
    cause = Cause(OUTSIDE_TAPE, where, _call(where), cut={"op": "Neg", "file": str(path), "line": where.line})
    assert _candidate_texts(cause) == []


UPDATE_IN_HELPER = """
import tensorflow as tf

def smooth(self, mse):
    return self.ema.assign(self.decay * self.ema + (1.0 - self.decay) * mse)

class SmoothedMSE:
    def __call__(self, y_true, y_pred):
        mse = tf.reduce_mean(tf.square(y_true - y_pred))
        smooth(self, mse)
        return self.ema
"""


def test_a_state_update_made_by_a_helper_is_spelled_out_where_it_is_called(tmp_path):
    path, lines = _program(tmp_path, UPDATE_IN_HELPER)
    caller = _site_at(path, lines, "smooth(self, mse)", "__call__", occurrence=1)
    site = Site(file=str(path), line=4, function="", code=lines[3].strip(), callers=(caller,))
    cut = {"kind": "state-update", "method": "assign", "file": str(path), "line": 4}
    texts = _candidate_texts(Cause(STATE_UPDATE, site, None, cut=cut))
    assert texts
    assert ("        new_ema = self.decay * self.ema + (1.0 - self.decay) * mse\n"
            "        self.ema.assign(new_ema)\n        return new_ema\n") in texts[0]


@pytest.mark.parametrize("call", ["smooth(*args)", "smooth(self, mse, extra)", "smooth(self, other=mse)"])
def test_a_call_whose_arguments_cannot_be_bound_is_not_read_through(tmp_path, call):
    code = UPDATE_IN_HELPER.replace("        smooth(self, mse)", f"        {call}")
    path, lines = _program(tmp_path, code)
    caller = _site_at(path, lines, call, "__call__")
    site = Site(file=str(path), line=4, function="", code=lines[3].strip(), callers=(caller,))
    cut = {"kind": "state-update", "method": "assign", "file": str(path), "line": 4}
    assert _candidate_texts(Cause(STATE_UPDATE, site, None, cut=cut)) == []


SOURCES_IN_HELPER = """
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.layers.Dense(4), tf.keras.layers.BatchNormalization()])
optimizer = tf.keras.optimizers.SGD(0.01)

def compute_grads(tape, loss, model):
    return tape.gradient(loss, model.variables)

with tf.GradientTape() as tape:
    loss = tf.reduce_mean(model(x, training=True))
grads = compute_grads(tape, loss, model)
optimizer.apply_gradients(zip(grads, model.variables))
"""


def test_a_one_statement_helper_is_written_in_at_its_call_for_the_static_fix(tmp_path):
    from gradfix.categories import NOT_TRAINABLE

    path, lines = _program(tmp_path, SOURCES_IN_HELPER)
    caller = _site_at(path, lines, "compute_grads(tape, loss, model)", "<module>", occurrence=1)
    where = _site_at(path, lines, "tape.gradient(loss, model.variables)", "compute_grads", callers=[caller])
    cause = Cause(NOT_TRAINABLE, where, _call(where))
    from gradfix.inlined import inlined_static_candidate

    lifted = next(lifted_causes(cause))
    candidate = inlined_static_candidate(_site(lifted))
    assert candidate is not None and candidate.applicability.value == "unsafe" and candidate.reason
    assert "grads = tape.gradient(loss, model.trainable_variables)\n" in candidate.new_text
    assert "optimizer.apply_gradients(zip(grads, model.trainable_variables))\n" in candidate.new_text
    # the helper itself is left as it was: other callers may rely on it
    assert "    return tape.gradient(loss, model.variables)\n" in candidate.new_text


def test_a_helper_of_several_statements_is_not_written_in(tmp_path):
    from gradfix.categories import NOT_TRAINABLE
    from gradfix.inlined import inlined_static_candidate

    code = SOURCES_IN_HELPER.replace("    return tape.gradient(loss, model.variables)",
                                     "    print('grads')\n    return tape.gradient(loss, model.variables)")
    path, lines = _program(tmp_path, code)
    caller = _site_at(path, lines, "compute_grads(tape, loss, model)", "<module>", occurrence=1)
    where = _site_at(path, lines, "tape.gradient(loss, model.variables)", "compute_grads", callers=[caller])
    lifted = next(lifted_causes(Cause(NOT_TRAINABLE, where, _call(where))))
    assert inlined_static_candidate(_site(lifted)) is None


def test_the_text_report_says_where_the_helper_holding_a_site_was_called(tmp_path):
    from gradfix.diagnose_cli import _called_at

    path, lines = _program(tmp_path, FORWARD_IN_HELPER)
    caller = _site_at(path, lines, "forward(model, x)", "<module>", occurrence=1)
    site = _site_at(path, lines, "model(x)", "forward", callers=[caller])
    assert _called_at(site) == f"  (in `forward`, called at {caller.where()})"
    assert caller.where().endswith(f"train.py:{caller.line}:{caller.column}")
    # a site in the module's own code, or one the run saw no caller of, says nothing more
    assert _called_at(caller) == "" and _called_at(_site_at(path, lines, "model(x)", "forward")) == ""
