"""The tape wrappers replace a tape class's methods, keep what each tape does in the child's state, and put the
class back as it was. A stand-in tape class: what TensorFlow's tape does is checked by the TensorFlow tests."""

from __future__ import annotations

import pytest

from gradfix.runtime.child.state import STATE
from gradfix.runtime.child.tf_hooks import TapeWrappers


class StandInTape:
    def __init__(self, persistent=False, watch_accessed_variables=True):
        self.persistent = persistent
        self.watching = watch_accessed_variables
        self.recording = False

    def _push_tape(self):
        self.recording = True

    def _pop_tape(self):
        self.recording = False

    def watch(self, tensor):
        pass

    def gradient(self, target, sources, output_gradients=None, unconnected_gradients=None):
        return None


class UserTape(StandInTape):
    def __init__(self):
        super().__init__(watch_accessed_variables=False)


@pytest.fixture
def fresh_tapes(monkeypatch):
    """The child's tape and record state, empty, and put back after the test."""
    for name in ("active_tapes",):
        monkeypatch.setattr(STATE.tapes, name, [])
    for name in ("live_tapes", "tape_windows", "tape_watched_tensors", "tape_objects", "tape_serials"):
        monkeypatch.setattr(STATE.tapes, name, {})
    for name in ("ops", "conversions", "constants"):
        monkeypatch.setattr(STATE.records, name, [])
    originals = dict(vars(StandInTape))
    yield
    for name in TapeWrappers.METHODS:
        setattr(StandInTape, name, originals[name])


def test_every_tape_is_made_persistent_and_the_program_s_choice_kept(fresh_tapes):
    TapeWrappers(StandInTape).install()
    made_persistent, left_alone = StandInTape(), StandInTape(persistent=True)
    assert made_persistent.persistent and made_persistent._gradfix_user_persistent is False
    assert left_alone.persistent and left_alone._gradfix_user_persistent is True
    subclassed = UserTape()  # a subclass's super().__init__ goes through the wrapper too
    assert subclassed.persistent and subclassed.watching is False and subclassed._gradfix_user_persistent is False


def test_push_and_pop_are_kept_in_the_tape_state(fresh_tapes):
    TapeWrappers(StandInTape).install()
    tape = StandInTape()
    tape._push_tape()
    assert tape.recording and STATE.tapes.active_tapes == [tape]
    assert id(tape) in STATE.tapes.live_tapes and STATE.tapes.tape_objects[id(tape)] is tape
    tape._pop_tape()
    assert not tape.recording and STATE.tapes.active_tapes == []
    assert id(tape) in STATE.tapes.live_tapes  # alive until its gradient is asked


def test_uninstall_puts_the_class_back(fresh_tapes):
    before = {name: vars(StandInTape)[name] for name in TapeWrappers.METHODS}
    wrappers = TapeWrappers(StandInTape).install()
    assert all(vars(StandInTape)[name] is not before[name] for name in TapeWrappers.METHODS)
    wrappers.uninstall()
    assert {name: vars(StandInTape)[name] for name in TapeWrappers.METHODS} == before
    assert StandInTape().persistent is False


def test_uninstall_leaves_inherited_methods_inherited(fresh_tapes):
    own_init = vars(UserTape)["__init__"]
    TapeWrappers(UserTape).install().uninstall()
    assert vars(UserTape)["__init__"] is own_init
    assert not any(name in vars(UserTape) for name in ("_push_tape", "_pop_tape", "watch", "gradient"))
