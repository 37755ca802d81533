"""The fixture programs: what gradfix finds in them, what it makes of them, and that the results train."""

from __future__ import annotations

import pytest
from fixture_cases import (
    FIXTURES,
    all_cases,
    assert_every_trainable_variable_gets_a_gradient,
    buggy_cases,
    fixed_programs,
)

from gradfix.engine import analyze, fix_source
from gradfix.source import read_source


@pytest.mark.parametrize("case", all_cases(), ids=lambda c: c.id)
def test_static_findings_are_the_expected_ones(case):
    findings = analyze(read_source(str(case.buggy)))
    assert sorted((f.span.start_line, f.rule) for f in findings) == case.expected()


@pytest.mark.parametrize("case", [c for c in buggy_cases() if c.fixed], ids=lambda c: c.id)
def test_fix_gives_the_expected_program(case):
    outcome = fix_source(read_source(str(case.buggy)), include_unsafe=True)
    assert outcome.new_text == case.fixed.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", [c for c in buggy_cases() if c.fixed], ids=lambda c: c.id)
def test_fixed_program_is_left_alone(case):
    source = read_source(str(case.fixed))
    assert analyze(source) == []
    assert fix_source(source, include_unsafe=True).new_text == source.text


@pytest.mark.tensorflow
@pytest.mark.parametrize("program", fixed_programs(), ids=lambda p: str(p.relative_to(FIXTURES)))
def test_program_gives_every_trainable_variable_a_gradient(program):
    assert_every_trainable_variable_gets_a_gradient(program)
