"""Every rule's VALID and INVALID examples, run through the engine (Fixit's habit)."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from gradfix.engine import analyze, fix_source
from gradfix.registry import all_rules
from gradfix.source import SourceFile


def _source(code: str) -> SourceFile:
    return SourceFile(path="example.py", text=textwrap.dedent(code), encoding="utf-8")


def _valid_cases():
    for rule in all_rules():
        for index, code in enumerate(rule.VALID):
            yield pytest.param(rule, code, id=f"{rule.code}-valid-{index}")


def _invalid_cases():
    for rule in all_rules():
        for index, example in enumerate(rule.INVALID):
            yield pytest.param(rule, example, id=f"{rule.code}-invalid-{index}")


def test_every_rule_has_examples_and_docs():
    rules = all_rules()
    assert rules, "no rules were discovered in gradfix.rules"
    for rule in rules:
        assert rule.VALID and rule.INVALID, f"{rule.code} needs VALID and INVALID examples"
        doc = rule.doc()
        for heading in ("## Why gradients vanish", "## Example", "## Fix safety"):
            assert heading in doc, f"{rule.code}'s doc page lacks {heading!r}"


@pytest.mark.parametrize("rule, code", list(_valid_cases()))
def test_valid_example_has_no_finding(rule, code):
    findings = analyze(_source(code), [rule()])
    assert [f for f in findings if f.rule == rule.code] == []


@pytest.mark.parametrize("rule, example", list(_invalid_cases()))
def test_invalid_example_is_found_and_fixed_as_expected(rule, example):
    source = _source(example.code)
    findings = [f for f in analyze(source, [rule()]) if f.rule == rule.code]
    assert findings, f"{rule.code} found nothing in its own invalid example"
    if example.applicability is not None:
        fixes = [f.fix for f in findings if f.fix is not None]
        assert fixes and all(fix.applicability is example.applicability for fix in fixes), (
            f"expected {example.applicability.value} fixes, got {[fix.applicability.value for fix in fixes]}")
    if example.expected is None:
        assert all(f.fix is None or f.fix.applicability.value == "display-only" for f in findings)
        return
    outcome = fix_source(source, [rule()], include_unsafe=True)
    expected = textwrap.dedent(example.expected)
    assert outcome.new_text == expected
    cst.parse_module(outcome.new_text)
    again = [f for f in analyze(_source(expected), [rule()]) if f.rule == rule.code]
    assert again == [], "the fixed example is still reported"
