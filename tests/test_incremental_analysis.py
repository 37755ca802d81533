"""After an edit, the findings of the incremental analysis (statements parsed one by one and joined, each
statement's index kept while its node is) equal those of a full analysis of the new text.

The edits are those of an editor: a character typed, a line deleted, duplicated or moved, a blank line or a
comment added; on a real Keras module of one large class, and on the rules' INVALID examples (put inside a
class too, where the join splits a class's body).
"""

from __future__ import annotations

import pathlib
import random
import textwrap

import libcst as cst
import pytest

from gradfix import engine
from gradfix.edits import split_lines
from gradfix.registry import all_rules
from gradfix.source import SourceError, SourceFile
from gradfix.static import piecewise, regions, tree
from gradfix.static.piecewise import joined_module
from gradfix.static.regions import module_parts

HERE = pathlib.Path(__file__).parent / "incremental"
TRAINER = (HERE / "keras_tensorflow_trainer.py.txt").read_text(encoding="utf-8")


def _invalid_examples() -> list[str]:
    return [example.code for rule in all_rules() for example in rule.INVALID]


def _in_a_class(code: str) -> str:
    """``code``'s functions as methods of a class (its other lines left at the top level)."""
    lines = code.splitlines(keepends=True)
    moved, kept, inside = [], [], False
    for line in lines:
        starts = line.startswith(("def ", "@"))
        if starts or (inside and (line.startswith((" ", "\t")) or not line.strip())):
            inside = True
            moved.append("    " + line if line.strip() else line)
        else:
            inside = False
            kept.append(line)
    if not moved:
        return code
    return "".join(kept) + "\n\nclass Steps:\n    limit = 3\n\n" + "".join(moved)


def _edit(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    if not lines:
        return text
    at = rng.randrange(len(lines))
    kind = rng.randrange(6)
    line = lines[at]
    if kind == 0:  # a character typed at the end of a line's code
        body = line.rstrip("\r\n")
        lines[at] = body + rng.choice(["x", " ", "1", ")", "_"]) + line[len(body):]
    elif kind == 1:
        del lines[at]
    elif kind == 2:
        lines.insert(at, line)
    elif kind == 3 and at + 1 < len(lines):
        lines[at], lines[at + 1] = lines[at + 1], lines[at]
    elif kind == 4:
        indent = line[: len(line) - len(line.lstrip(" "))]
        lines.insert(at, indent + "# a comment\n")
    else:
        lines.insert(at, "\n")
    return "".join(lines)


def _forget_everything() -> None:
    """What a fresh process knows: nothing."""
    engine._analyzed.clear()
    regions._cache.clear()
    piecewise.forget_trees()
    tree.forget_indexes()


def _findings(text: str, by_region: bool = True):
    try:
        return [finding.to_dict() if hasattr(finding, "to_dict") else finding
                for finding in engine.analyze(SourceFile("edited.py", text, "utf-8"), by_region=by_region)]
    except SourceError as error:
        return str(error)


def _edited_texts(base: str, seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    texts, text = [], base
    for _ in range(count):
        text = _edit(text, rng)
        texts.append(text)
    return texts


BASES = {
    "keras-trainer": TRAINER,
    "keras-trainer-with-invalid-steps": TRAINER + "\n\n" + _in_a_class(_invalid_examples()[0]),
}


@pytest.mark.parametrize("name", sorted(BASES))
def test_findings_after_edits_of_a_real_module_equal_a_full_analysis(name):
    texts = _edited_texts(BASES[name], seed=len(name), count=12)
    _findings(BASES[name])
    incremental = [_findings(text) for text in texts]  # each after the one before, as an editor sends them
    for text, found in zip(texts, incremental):
        _forget_everything()
        assert found == _findings(text, by_region=False)
        _forget_everything()
        assert found == _findings(text)


def test_findings_after_edits_of_the_rules_examples_equal_a_full_analysis():
    examples = _invalid_examples()
    for index, code in enumerate(examples + [_in_a_class(code) for code in examples]):
        texts = _edited_texts(code, seed=index, count=4)
        _findings(code)
        incremental = [_findings(text) for text in texts]
        for text, found in zip(texts, incremental):
            _forget_everything()
            assert found == _findings(text), f"example {index} after an edit:\n{text}"


def _printed_first_lines(module: cst.Module) -> dict[cst.CSTNode, int]:
    """Where the print of each top-level statement, and of each statement of a class's body, starts."""
    lines: dict[cst.CSTNode, int] = {}
    line = 1 + len(module.header)
    for statement in module.body:
        lines[statement] = line
        if isinstance(statement, cst.ClassDef) and isinstance(statement.body, cst.IndentedBlock):
            members = statement.body.body
            shell = statement.with_changes(body=statement.body.with_changes(body=members[:1], footer=[]))
            inner = line + len(split_lines(module.code_for_node(shell))) - len(split_lines(module.code_for_node(members[0])))
            for member in members:
                lines[member] = inner
                inner += len(split_lines(module.code_for_node(member)))
        line += len(split_lines(module.code_for_node(statement)))
    return lines


def test_the_joined_tree_is_libcsts_tree_of_the_whole_text():
    rng = random.Random(7)
    texts = [TRAINER, *(_in_a_class(code) for code in _invalid_examples())]
    texts += [_edit(text, rng) for text in texts for _ in range(3)]
    split = joined = 0
    for text in texts:
        try:
            parts = module_parts("edited.py", text)
        except SourceError:
            continue
        split += 1
        made = joined_module(parts)
        if made is None:
            continue
        joined += 1
        assert made.module.deep_equals(cst.parse_module(text)) and made.module.code == text
        printed = _printed_first_lines(made.module)
        assert {node: line for node, line in made.first_lines.items()} == {node: printed[node] for node in made.first_lines}
    assert joined > split * 0.9, "nearly every text is joined from its statements rather than parsed whole"


def test_a_class_split_over_regions_is_joined_with_its_comments_where_a_whole_parse_puts_them():
    text = (
        "import tensorflow as tf\n\n\nclass A(object):\n  '''doc'''\n  def f(self):\n    if x:\n        y\n"
        "    # in f\n  # before g\n# at the margin\n\n  @tf.function\n  def g(self):\n    pass\n    # end of g\n\n"
        "# top\nx = 1\n"
    )
    made = joined_module(module_parts("a.py", text))
    assert made is not None and made.module.deep_equals(cst.parse_module(text)) and made.module.code == text


def test_spans_found_from_one_statement_of_a_class_are_those_of_the_whole_module():
    from gradfix.static.analysis import ModuleAnalysis

    made = joined_module(module_parts("trainer.py", TRAINER))
    assert made is not None
    local = ModuleAnalysis("trainer.py", TRAINER, made.module, made.first_lines)
    whole = ModuleAnalysis("trainer.py", TRAINER, made.module)
    whole.positions  # computed for the whole module: the reference
    nodes = list(local.walk(None, (cst.Call, cst.Name, cst.SimpleStatementLine, cst.FunctionDef)))
    assert any(local.class_member(statement, node) is not None for node in nodes for statement in [local.top_statement(node)])
    for node in nodes[::7]:
        assert local.span(node) == whole.span(node), local.code(node)


CLASS_OF_THREE = (
    "import tensorflow as tf\n\n\nclass Trainer(object):\n  '''Doc.'''\n\n  def first(self):\n    return 1\n\n"
    "  # about second\n  def second(self, x):\n    '''Its doc\n    on two lines.'''\n    y = tf.round(x)\n    return y\n\n"
    "  def third(self):\n    pass\n\n\nafter = 1\n"
)


def _member_replacements(module: cst.Module) -> list[dict]:
    klass = next(node for node in module.body if isinstance(node, cst.ClassDef))
    _doc, first, second, third = klass.body.body
    round_call = next(iter(cst.ensure_type(second, cst.FunctionDef).body.body[1].body)).value
    return [
        {round_call: cst.parse_expression("tf.math.round(x)")},
        {second: cst.RemovalSentinel.REMOVE},
        {second: cst.FlattenSentinel([cst.parse_statement("z = 1\n"), cst.parse_statement("w = 2\n")])},
        {first: cst.RemovalSentinel.REMOVE, third: cst.RemovalSentinel.REMOVE, round_call: cst.parse_expression("x")},
        # the class's own line changed too: its statements' edits would overlap the class's
        {klass.name: cst.Name("Renamed"), round_call: cst.parse_expression("tf.math.round(x)")},
    ]


def test_a_fix_in_a_class_printed_member_by_member_equals_the_fix_printed_from_the_whole_module():
    """An editor's analysis reprints only the class statement a fix is in; the edits must make the same text."""
    from gradfix.edits import apply_edits, replace_nodes
    from gradfix.static.analysis import ModuleAnalysis
    made = joined_module(module_parts("edited.py", CLASS_OF_THREE))
    assert made is not None and made.first_lines, "the class is split into its statements"
    for replacements in _member_replacements(made.module):
        analysis = ModuleAnalysis("edited.py", CLASS_OF_THREE, made.module, made.first_lines)
        edits = analysis.fix_edits(replacements)
        assert edits and apply_edits(CLASS_OF_THREE, edits) == replace_nodes(made.module, replacements)
        assert all(earlier.end_line <= later.start_line for earlier, later in zip(edits, edits[1:])), edits
        # and only the lines of the class statements changed are named, not the whole class
        if len(replacements) == 1 and next(iter(replacements.values())) is not cst.RemovalSentinel.REMOVE:
            assert all(9 <= edit.start_line and edit.end_line <= 17 for edit in edits), edits  # second, with the lines before it


def test_a_batch_check_keeps_no_tree_of_a_file_it_is_done_with(tmp_path, monkeypatch):
    """What is kept for an editor's next change would, in a check of many files, only hold memory and be scanned
    by the collector after every file; a large file (analysed by regions, its statements parsed one by one) too."""
    small = tmp_path / "small.py"
    small.write_text(textwrap.dedent(_invalid_examples()[0]), encoding="utf-8")
    large = tmp_path / "large.py"
    large.write_text(TRAINER, encoding="utf-8")
    monkeypatch.setattr(engine, "REGIONS_FROM_LINES", TRAINER.count("\n"))
    _forget_everything()
    checked = []
    for result in engine.check_paths([str(small), str(large)], engine.select_rules()):
        assert result.error is None
        checked.append((pathlib.Path(result.path).name, len(tree._units), len(piecewise._cache)))
    assert checked == [("small.py", 0, 0), ("large.py", 0, 0)]


def test_an_editor_analysis_keeps_the_statements_trees_and_indexes_for_the_next_change():
    _forget_everything()
    engine.analyze(SourceFile(path="trainer.py", text=TRAINER, encoding="utf-8"), engine.select_rules())
    assert tree._units and piecewise._cache
