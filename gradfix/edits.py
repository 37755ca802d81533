"""Turning a transformed module into line edits, and applying edits to text."""

from __future__ import annotations

import difflib
import re
from typing import Mapping, Sequence

import libcst as cst

from gradfix.model import TextEdit

# Expressions that bind looser than an operand of an operator, an attribute, a subscript or a call.
_LOOSE = (cst.BinaryOperation, cst.BooleanOperation, cst.Comparison, cst.UnaryOperation, cst.IfExp, cst.Lambda,
          cst.NamedExpr)
# Where an expression sits as an operand: the fields of each node that need a loose operand in parentheses.
_OPERAND_FIELDS = {cst.BinaryOperation: ("left", "right"), cst.UnaryOperation: ("expression",),
                   cst.BooleanOperation: ("left", "right"), cst.Comparison: ("left",), cst.ComparisonTarget: ("comparator",),
                   cst.Attribute: ("value",), cst.Subscript: ("value",), cst.Call: ("func",), cst.Await: ("expression",)}


class ReplaceNodes(cst.CSTTransformer):
    """Replace nodes by identity; a replacement that lands as an operand (``x1 * <new>``) keeps its meaning
    by being parenthesised when it binds looser than where it stands."""

    def __init__(self, replacements: Mapping[cst.CSTNode, object]):
        self.replacements = replacements
        self._placed = {id(value) for value in replacements.values()}

    def on_leave(self, original_node, updated_node):
        if original_node in self.replacements:
            return self.replacements[original_node]
        fields = _OPERAND_FIELDS.get(type(updated_node))
        if fields and self._placed:
            changes = {}
            for name in fields:
                value = getattr(updated_node, name)
                if id(value) in self._placed and isinstance(value, _LOOSE) and not value.lpar:
                    changes[name] = value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
            if changes:
                return updated_node.with_changes(**changes)
        return updated_node


def replace_nodes(module: cst.Module, replacements: Mapping[cst.CSTNode, object]) -> str:
    return module.visit(ReplaceNodes(replacements)).code


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def split_lines(text: str) -> list[str]:
    """Lines as Python counts them: ended by \\n, \\r\\n or \\r only.

    ``str.splitlines`` also ends a line at a form feed, \\v, \\x1c-\\x1e, \\x85 and
    \\u2028/\\u2029, which would shift line numbers and lose those characters.
    """
    return _LINE.findall(text)


def line_edits(old_text: str, new_text: str, printed: str | None = None) -> tuple[TextEdit, ...]:
    """The whole-line edits from ``old_text`` to ``new_text``.

    ``printed`` is LibCST's print of the unchanged module, when ``new_text`` is its print
    of the changed one. LibCST does not print every byte back (a form feed before a
    statement, a final bare CR), so the edits are taken between its two prints and
    applied to the text as stored: no byte outside the changed lines is touched.
    """
    ending = re.search(r"(\r\n|\r|\n)\Z", old_text)
    if ending and not new_text.endswith(("\r", "\n")) and new_text:
        new_text += ending.group(1)
    old_lines = split_lines(old_text)
    if printed is not None and printed != old_text:
        if ending and not printed.endswith(("\r", "\n")) and printed:
            printed += ending.group(1)
        printed_lines = split_lines(printed)
        if len(printed_lines) == len(old_lines):
            old_lines = printed_lines
    new_lines = split_lines(new_text)
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    return tuple(
        TextEdit(i1 + 1, i2 + 1, "".join(new_lines[j1:j2]))
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag != "equal"
    )


def apply_edits(text: str, edits: Sequence[TextEdit]) -> str:
    lines = split_lines(text)
    for edit in sorted(edits, key=lambda e: e.start_line, reverse=True):
        lines[edit.start_line - 1 : edit.end_line - 1] = [edit.new_text]
    return "".join(lines)
