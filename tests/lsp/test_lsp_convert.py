"""Findings and fixes to LSP types: positions in UTF-16 (or the negotiated encoding) and the smallest edits."""

from __future__ import annotations

import pytest
from lsprotocol import types

from gradfix.edits import apply_edits
from gradfix.lsp.convert import Positions, apply_lsp_edits, minimal_edits, noqa_edit, rule_href, text_edits
from gradfix.model import Span, TextEdit


@pytest.mark.parametrize("encoding, column", [("utf-16", 8), ("utf-8", 10), ("utf-32", 7)])
def test_positions_count_the_clients_code_units(encoding, column):
    text = 'a = "😀" + b\n'  # the emoji is 1 code point, 2 UTF-16 units, 4 UTF-8 bytes
    positions = Positions(text, encoding)
    assert positions.span_range(Span("f.py", 1, 8, 1, 9)).start == types.Position(0, column)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8", "utf-32"])
def test_minimal_edit_touches_only_the_changed_characters(encoding):
    text = 'x = "é😀"\nloss = np.mean(pred)\ny = 2\n'
    edit = TextEdit(2, 3, "loss = tf.reduce_mean(pred)\n")
    positions = Positions(text, encoding)
    [lsp_edit] = minimal_edits(text, [edit], positions)
    assert lsp_edit.new_text == "tf.reduce_"
    assert lsp_edit.range.start.line == lsp_edit.range.end.line == 1
    assert apply_lsp_edits(text, [lsp_edit], encoding) == apply_edits(text, [edit])


def test_a_moved_line_becomes_a_deletion_and_an_insertion():
    text = "a = 1\nb = f(a)\nwith t:\n    c = g(b)\nd = 4\n"
    new = "a = 1\nwith t:\n    b = f(a)\n    c = g(b)\nd = 4\n"
    edits = text_edits(text, new)
    assert apply_lsp_edits(text, edits) == new
    assert sum(len(e.new_text) for e in edits) <= len("    b = f(a)\n") + 1


def test_edits_keep_crlf_pairs_whole():
    text = "a = 1\r\nb = 2\r\n"
    new = "a = 1\r\nc = 3\r\nb = 2\r\n"
    edits = text_edits(text, new)
    assert apply_lsp_edits(text, edits) == new
    for edit in edits:
        for position in (edit.range.start, edit.range.end):
            line = Positions(text).lines[position.line] if position.line < 2 else ""
            assert position.character <= len(line.rstrip("\r\n"))


@pytest.mark.parametrize("line, expected", [
    ("y = model(x)\n", "y = model(x)  # noqa: GF001\n"),
    ("y = model(x)   \n", "y = model(x)  # noqa: GF001\n"),
    ("y = model(x)  # forward\n", "y = model(x)  # forward  # noqa: GF001\n"),
    ("y = model(x)  # noqa: GF003\n", "y = model(x)  # noqa: GF003, GF001\n"),
    ('s = "# not a comment"\n', 's = "# not a comment"  # noqa: GF001\n'),
])
def test_noqa_edit(line, expected):
    edit = noqa_edit(line, 1, "GF001", Positions(line))
    assert apply_lsp_edits(line, [edit]) == expected


def test_noqa_edit_leaves_a_line_already_silenced():
    for line in ("y = model(x)  # noqa\n", "y = model(x)  # noqa: GF001\n"):
        assert noqa_edit(line, 1, "GF001", Positions(line)) is None


def test_rule_links_name_the_rules_page():
    href = rule_href("GF003")
    assert href.endswith("/GF003-loss-ignores-prediction.md")
    assert href.startswith(("file://", "https://"))
