"""Where a run says a path broke, as LibCST nodes a repair can rewrite.

A :class:`RepairSite` holds one parsed file and one cause from the run: the expression the run
pinned the cut to and the statement that holds it. The runtime repair hands it to the repair
operators (``transforms/``, through ``Context.of_site``) and makes each rewrite a :class:`Candidate`
text; the engine verifies each one by re-running.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import libcst as cst
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider

from gradfix.causes import Cause
from gradfix.model import Applicability
from gradfix.source import SourceFile


@dataclass(frozen=True)
class Candidate:
    """One proposed repair: the whole new text of one file, and how far it can be trusted."""

    rule: str
    description: str
    applicability: Applicability
    path: str
    new_text: str
    reason: str = ""  # why it is not safe: what else it changes
    # the file as read when ``new_text`` was made from it: the edits are taken against this text, and
    # a write is refused when the file on disk is no longer this one
    source: SourceFile | None = field(default=None, compare=False, repr=False)


@dataclass
class RepairSite:
    cause: Cause
    source: SourceFile
    module: cst.Module = field(init=False)
    _wrapper: MetadataWrapper = field(init=False, repr=False)
    _positions: dict = field(init=False, repr=False)
    _parents: dict = field(init=False, repr=False)

    def __post_init__(self):
        self._wrapper = MetadataWrapper(cst.parse_module(self.source.text), unsafe_skip_copy=True)
        self.module = self._wrapper.module
        self._positions = self._wrapper.resolve(PositionProvider)
        self._parents = self._wrapper.resolve(ParentNodeProvider)

    # ------------------------------------------------------------------ positions
    @property
    def path(self) -> str:
        return self.source.path

    def lines_of(self, node: cst.CSTNode) -> tuple[int, int]:
        position = self._positions[node]
        return position.start.line, position.end.line

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node).strip()

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self._parents.get(node)

    def nodes(self, kind) -> Iterator[cst.CSTNode]:
        for node in self._positions:
            if isinstance(node, kind):
                yield node

    def statement_at(self, line: int) -> cst.BaseStatement | None:
        """The innermost simple statement line holding ``line`` (or a compound statement's header line)."""
        best: cst.BaseStatement | None = None
        for node in self.nodes((cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            assert isinstance(node, cst.BaseStatement), "both kinds are statements"
            start, end = self.lines_of(node)
            if isinstance(node, cst.BaseCompoundStatement):
                end = self.lines_of(node.body)[0] if not isinstance(node.body, cst.SimpleStatementSuite) else end
                if isinstance(node.body, cst.IndentedBlock):
                    end = start  # only its header
            if start <= line <= end and (best is None or self.lines_of(best)[0] <= start):
                best = node
        return best

    def pinned_node(self) -> cst.BaseExpression | None:
        """The expression the run saw cut the path (``K.argmax(x)``, ``a > b``, ``t.numpy()``), as this file's
        node; None when the run pinned no expression, pinned one in another file, or the text has changed."""
        from gradfix.pinned import pinned_node

        expression = self.cause.expression
        if expression is None or not _same_file(expression.file, self.path):
            return None
        node = pinned_node(self._positions, expression, self.cause.cut)
        if node is None or (expression.exact and " ".join(self.code(node).split()) != " ".join(expression.text.split())):
            return None
        return node

    def cut_line(self) -> int | None:
        """The line where the run saw the path cut: the pinned expression's, else the cut's, else the break's."""
        node = self.pinned_node()
        if node is not None:
            return self.lines_of(node)[0]
        cut = self.cause.cut or {}
        return cut.get("line") or (self.cause.site.line if self.cause.site is not None else None)

    def cut_statement(self) -> cst.BaseStatement | None:
        """The statement holding the pinned expression (a compound statement when it sits in its header),
        else the statement at the cut's line."""
        node = self.pinned_node()
        if node is not None:
            statement = self.enclosing(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement))
            if isinstance(statement, cst.BaseStatement):  # either kind, or None
                return statement
        line = self.cut_line()
        return self.statement_at(line) if line else None

    def enclosing(self, node: cst.CSTNode, kind) -> cst.CSTNode | None:
        current = self.parent(node)
        while current is not None and not isinstance(current, kind):
            current = self.parent(current)
        return current

    # ------------------------------------------------------------------ rewriting
    def candidate(self, rule: str, description: str, applicability: Applicability, new_text: str, reason: str = "") -> Candidate | None:
        if new_text == self.source.text:
            return None
        try:
            compile(new_text, self.path, "exec")
        except (SyntaxError, ValueError):
            return None
        return Candidate(rule, description, applicability, self.path, new_text, reason, self.source)


def _same_file(a: str, b: str) -> bool:
    import os

    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)

