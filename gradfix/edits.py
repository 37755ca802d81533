"""Turning a transformed module into line edits, and applying edits to text."""

from __future__ import annotations

import difflib
from typing import Mapping, Sequence

import libcst as cst

from gradfix.model import TextEdit


class _ReplaceNodes(cst.CSTTransformer):
    def __init__(self, replacements: Mapping[cst.CSTNode, object]):
        self.replacements = replacements

    def on_leave(self, original_node, updated_node):
        if original_node in self.replacements:
            return self.replacements[original_node]
        return updated_node


def replace_nodes(module: cst.Module, replacements: Mapping[cst.CSTNode, object]) -> str:
    return module.visit(_ReplaceNodes(replacements)).code


def line_edits(old_text: str, new_text: str) -> tuple[TextEdit, ...]:
    old_lines = old_text.splitlines(keepends=True)
    new_lines = new_text.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    return tuple(
        TextEdit(i1 + 1, i2 + 1, "".join(new_lines[j1:j2]))
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag != "equal"
    )


def apply_edits(text: str, edits: Sequence[TextEdit]) -> str:
    lines = text.splitlines(keepends=True)
    for edit in sorted(edits, key=lambda e: e.start_line, reverse=True):
        lines[edit.start_line - 1 : edit.end_line - 1] = [edit.new_text]
    return "".join(lines)
