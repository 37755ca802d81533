"""Every repair operator's VALID and INVALID examples, pinned as a run pins a cut (by line and op type)."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from gradfix.categories import ALL
from gradfix.pin import pinned_nodes
from gradfix.registry import all_operators
from gradfix.transforms._operator import Context

CUT_MARK = "# cut"


def rewrites(operator, code: str, op: str):
    """The operator's rewrites of the cut marked in ``code``, with the text each makes."""
    code = textwrap.dedent(code)
    lines = [number for number, line in enumerate(code.splitlines(), 1) if line.rstrip().endswith(CUT_MARK)]
    assert lines, f"an example of {operator.name} marks no line with {CUT_MARK!r}"
    # as a run pins it: by the marked lines and the op type
    context = Context.of_module(cst.parse_module(code), cut={"op": op} if op else {}, cut_lines=tuple(lines))
    return [(rewrite, context.new_text(rewrite))
            for node in pinned_nodes(context, operator, lines, op) for rewrite in operator.rewrite(node, context)]


def _examples(kind: str):
    for operator in all_operators():
        for index, example in enumerate(getattr(operator, kind)):
            yield pytest.param(operator(), example, id=f"{operator.name}-{kind.lower()}-{index}")


def test_every_operator_declares_its_cuts_and_examples():
    operators = all_operators()
    assert operators, "no operators were discovered in gradfix.transforms"
    for operator in operators:
        assert operator.cuts and all(kind.category in ALL for kind in operator.cuts), operator.name
        assert operator.INVALID, f"{operator.name} needs INVALID examples"
        assert operator.doc(), f"{operator.name} needs a docstring"


@pytest.mark.parametrize("operator, example", list(_examples("INVALID")))
def test_invalid_example_is_rewritten_as_expected(operator, example):
    made = rewrites(operator, example.code, example.op)
    assert made, f"{operator.name} rewrote nothing"
    first, text = made[0]
    assert text == textwrap.dedent(example.expected)
    for rewrite, new_text in made:
        compile(new_text, "example.py", "exec")
        assert rewrite.applicability.value in ("safe", "unsafe", "display-only")
        assert rewrite.applicability.value == "safe" or rewrite.reason, "a rewrite that is not safe must say why"


@pytest.mark.parametrize("operator, example", list(_examples("VALID")))
def test_valid_example_is_left_alone(operator, example):
    assert rewrites(operator, example.code, example.op) == []


@pytest.mark.parametrize("code, index", [("GF009", 0), ("GF009", 2), ("GF008", 3)])
def test_a_rule_without_a_certain_fix_shows_the_surrogate_as_a_suggestion(code, index):
    from gradfix.edits import apply_edits
    from gradfix.engine import analyze
    from gradfix.registry import rule_by_code
    from gradfix.source import SourceFile

    rule = rule_by_code(code)
    source = SourceFile("example.py", textwrap.dedent(rule.INVALID[index].code), "utf-8")
    fixes = [f.fix for f in analyze(source, [rule()]) if f.rule == code and f.fix is not None]
    assert fixes and all(fix.applicability.value == "display-only" and fix.reason for fix in fixes)
    suggested = apply_edits(source.text, fixes[0].edits)
    compile(suggested, "example.py", "exec")
    assert "tf.stop_gradient(" in suggested and "tf.stop_gradient(" not in source.text


def test_every_operator_is_used_by_a_static_rule():
    """The static fix and the runtime repair share one implementation of each repair: every operator's module is
    imported by at least one rule in gradfix/rules (the runtime asks every operator through the registry)."""
    import ast
    import inspect
    from pathlib import Path

    import gradfix.rules

    imported = set()
    for path in Path(gradfix.rules.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gradfix.transforms."):
                imported.add(node.module)
    unused = sorted(operator.name for operator in all_operators() if inspect.getmodule(operator).__name__ not in imported)
    assert not unused, f"operators no static rule uses: {unused}"
