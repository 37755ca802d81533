"""A safe fix keeps the program running: every safe fix of the rules' examples and of the fixtures is
applied (safe fixes only, as `gradfix fix` writes them) and the fixed program is run under TensorFlow in a
child, through its training step. The programs are made in ``safe_fix_programs``."""

from __future__ import annotations

import os
import pathlib
import shutil

import pytest
from safe_fix_programs import (
    DRIVERS,
    SafeFixProgram,
    case_programs,
    drivers_of,
    example_programs,
    examples_with_safe_fixes,
    fixture_programs,
)

from gradfix.registry import all_rules


def test_every_example_with_a_safe_fix_has_one_driver():
    wrong = [f"{code} invalid example {index}: {[d.marker for d in drivers_of(code, example)]}"
             for code, index, example in examples_with_safe_fixes() if len(drivers_of(code, example)) != 1]
    assert not wrong, ("each example with a safe fix needs exactly one driver in tests/safe_fix_programs.py, "
                       "to be run; these have none or several:\n" + "\n".join(wrong))


def test_every_driver_serves_an_example():
    examples = {rule.code: rule.INVALID for rule in all_rules()}
    for driver in DRIVERS:
        assert any(driver.serves(example.code) for example in examples[driver.rule]), (
            f"no {driver.rule} example holds {driver.marker!r}: the driver is stale")


def _run(program: SafeFixProgram, folder: pathlib.Path):
    from gradfix.runtime.runner import run_step

    if program.folder and program.target != program.name:
        shutil.copytree(program.folder, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / program.name).write_text(program.text, encoding="utf-8")
    # pytest names the test running in PYTEST_CURRENT_TEST; left in, each test would start its own warm server
    env = {name: value for name, value in os.environ.items() if name != "PYTEST_CURRENT_TEST"}
    return run_step(program.target or program.name, cwd=str(folder), timeout=120, env=env)


def _assert_runs_its_step(program: SafeFixProgram, folder: pathlib.Path):
    facts = _run(program, folder)
    shown = f"\n--- {program.id}, fixed ---\n{program.text}"
    assert facts.status == "ok", f"{facts.status}: {facts.error}{shown}"
    assert facts.error is None, f"the fixed program raised {facts.error.type}: {facts.error.message}{shown}"
    assert facts.gradient_calls, f"the fixed program asked for no gradient{shown}"


@pytest.mark.tensorflow
@pytest.mark.parametrize("program", example_programs(), ids=lambda p: p.id)
def test_safe_fix_of_an_example_keeps_it_running(program, tmp_path):
    _assert_runs_its_step(program, tmp_path)


@pytest.mark.tensorflow
@pytest.mark.parametrize("program", fixture_programs(), ids=lambda p: p.id)
def test_safe_fix_of_a_fixture_keeps_it_running(program, tmp_path):
    _assert_runs_its_step(program, tmp_path)


@pytest.mark.tensorflow
@pytest.mark.parametrize("program", case_programs(), ids=lambda p: p.id)
def test_safe_fix_of_a_look_alike_keeps_it_running(program, tmp_path):
    _assert_runs_its_step(program, tmp_path)
