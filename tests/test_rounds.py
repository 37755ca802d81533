"""What the repair writes when its fixes come from more than one round, without TensorFlow.

A first-round fix is a set of line edits of the file as read; a later round's fix is the file's whole text
with the earlier fixes in it (gradfix.rounds). ``merged_text`` is what both ``patches_to_write`` and the next
round start from. ``tests/runtime/test_repair.py`` runs the rounds for real, on a fixture that needs two.
"""

from __future__ import annotations

from gradfix.edits import line_edits
from gradfix.model import Applicability, Fix
from gradfix.repair import Attempt, Repair, Verification, merged_text
from gradfix.repair_site import Candidate
from gradfix.rounds import _texts_so_far
from gradfix.source import SourceFile

PROGRAM = """\
with tf.GradientTape() as tape:
    Fx, Bx = cnn(x)
    F.assign(Fx)
    B.assign(Bx)
    op = custom_layer(F, B)
"""
FIRST = PROGRAM.replace("custom_layer(F, B)", "custom_layer(Fx, B)")
SECOND = FIRST.replace("custom_layer(Fx, B)", "custom_layer(Fx, Bx)")


def _attempt(old: str, new: str, round_: int = 1, path: str = "train.py") -> Attempt:
    fix = Fix("GF005", "pass the value on", Applicability.UNSAFE, line_edits(old, new), verified=True)
    candidate = Candidate("GF005", "pass the value on", Applicability.UNSAFE, path, new, "", SourceFile(path, PROGRAM, "utf-8"))
    return Attempt(candidate, fix, Verification(True, verified=True), round=round_)


def test_first_round_fixes_are_merged_as_edits_of_the_text_read():
    other = PROGRAM.replace("    Fx, Bx = cnn(x)\n", "    Fx, Bx = cnn(x, training=True)\n")
    text, taken, left = merged_text(PROGRAM, [_attempt(PROGRAM, FIRST), _attempt(PROGRAM, other)])
    assert "custom_layer(Fx, B)" in text and "training=True" in text
    assert len(taken) == 2 and left == []


def test_overlapping_first_round_fixes_leave_one_out():
    clash = PROGRAM.replace("custom_layer(F, B)", "custom_layer(F, Bx)")
    text, taken, left = merged_text(PROGRAM, [_attempt(PROGRAM, FIRST), _attempt(PROGRAM, clash)])
    assert text == FIRST and len(taken) == 1 and len(left) == 1


def test_a_later_round_text_holds_the_earlier_fixes_and_is_the_files_text():
    first, second = _attempt(PROGRAM, FIRST), _attempt(PROGRAM, SECOND, round_=2)
    text, taken, left = merged_text(PROGRAM, [first, second])
    assert text == SECOND
    assert taken == [first.fix, second.fix] and left == []


def test_the_next_round_starts_from_every_verified_fix_so_far():
    unfixed = Repair(1)
    fixed = Repair(0, [_attempt(PROGRAM, FIRST)])
    assert _texts_so_far([fixed, unfixed]) == {"train.py": FIRST}
    unfixed.attempts.append(_attempt(PROGRAM, SECOND, round_=2))
    assert _texts_so_far([fixed, unfixed]) == {"train.py": SECOND}
    # a fix that did not verify is not written in
    tried = Repair(2, [Attempt(_attempt(PROGRAM, PROGRAM.replace("F, B", "B, F")).candidate,
                               _attempt(PROGRAM, PROGRAM).fix, Verification(True, verified=False))])
    assert _texts_so_far([tried]) == {}


def test_a_first_round_fix_that_overlaps_another_is_set_aside_for_a_later_round():
    from gradfix.rounds import _set_aside_overlaps

    f_only = PROGRAM.replace("custom_layer(F, B)", "custom_layer(Fx, B)")
    b_only = PROGRAM.replace("custom_layer(F, B)", "custom_layer(F, Bx)")
    first, second = Repair(0, [_attempt(PROGRAM, f_only)]), Repair(1, [_attempt(PROGRAM, b_only)])
    _set_aside_overlaps([first, second])
    assert first.chosen is not None and first.chosen.set_aside == ""
    assert second.chosen is None and second.attempts[0].set_aside
    assert "overlaps" in second.note
    assert _texts_so_far([first, second]) == {"train.py": f_only}
