"""From gradfix's model to LSP's: findings to diagnostics, whole-line fixes to the smallest text edits.

Columns in gradfix's spans count code points; LSP counts UTF-16 code units unless the
client and server agreed on UTF-8 or UTF-32 (``positionEncoding``), so every position
goes through ``Positions``, built on the text the finding was computed from.
"""

from __future__ import annotations

import difflib
import os
import pathlib
import re
from typing import Iterable, Sequence

from lsprotocol import types as lsp

from gradfix.edits import split_lines
from gradfix.messages import LIMIT, clause, variables_summary
from gradfix.model import Applicability, Evidence, Finding, Fix, Severity, Span, TextEdit

SOURCE = "gradfix"
RUNTIME_SOURCE = "gradfix (run)"
FIX_ALL_KIND = "source.fixAll.gradfix"

SEVERITY = {
    Severity.ERROR: lsp.DiagnosticSeverity.Error,
    Severity.WARNING: lsp.DiagnosticSeverity.Warning,
    Severity.INFO: lsp.DiagnosticSeverity.Information,
}

def rule_href(code: str, path: str | None = None) -> str:
    """The rule's page as the project of the file at ``path`` links it (its ``docs-url``, else the installed page)."""
    from gradfix.docs import published_base, rule_url

    return rule_url(code, published_base(os.path.dirname(os.path.abspath(path))) if path else None)


class Positions:
    """Positions in one text, in the client's units ("utf-16", "utf-8" or "utf-32")."""

    def __init__(self, text: str, encoding: str = "utf-16"):
        self.text = text
        self.lines = split_lines(text)
        self.encoding = str(encoding or "utf-16")
        starts, offset = [], 0
        for line in self.lines:
            starts.append(offset)
            offset += len(line)
        self.starts = starts

    def units(self, chars: str) -> int:
        if self.encoding == "utf-8":
            return len(chars.encode("utf-8", "surrogatepass"))
        if self.encoding == "utf-32":
            return len(chars)
        return len(chars) + sum(1 for char in chars if ord(char) > 0xFFFF)

    def position(self, line: int, column: int) -> lsp.Position:
        """From a 0-based line and a code-point column; a line past the end is the end of the text."""
        if line >= len(self.lines):
            if self.lines and not self.lines[-1].endswith(("\n", "\r")):
                return lsp.Position(len(self.lines) - 1, self.units(self.lines[-1]))
            return lsp.Position(len(self.lines), 0)
        content = self.lines[line].rstrip("\r\n")
        return lsp.Position(line, self.units(content[: max(0, column)]))

    def at_offset(self, offset: int) -> lsp.Position:
        """From an index into the text."""
        import bisect

        line = bisect.bisect_right(self.starts, offset) - 1
        if line < 0:
            return lsp.Position(0, 0)
        if offset >= len(self.text) and (not self.lines or self.lines[-1].endswith(("\n", "\r"))):
            return lsp.Position(len(self.lines), 0)
        return lsp.Position(line, self.units(self.lines[line][: offset - self.starts[line]]))

    def span_range(self, span: Span) -> lsp.Range:
        return lsp.Range(
            start=self.position(span.start_line - 1, span.start_column - 1),
            end=self.position(span.end_line - 1, span.end_column - 1),
        )

    def line_offset(self, line: int) -> int:
        """Index of the start of 1-based ``line`` (the end of the text past the last line)."""
        if line - 1 < len(self.starts):
            return self.starts[line - 1]
        return len(self.text)


def to_uri(path: str) -> str:
    return pathlib.Path(path).resolve().as_uri()


def diagnostic(finding: Finding, positions: Positions, uri_of=to_uri) -> lsp.Diagnostic:
    """The diagnostic for a finding: code and link to its rule's page, related places, fix status."""
    message = "\n".join(details(finding))
    related = [
        lsp.DiagnosticRelatedInformation(
            location=lsp.Location(uri=uri_of(item.span.path), range=_related_range(item.span, finding.span, positions)),
            message=item.message,
        )
        for item in finding.related
    ]
    return lsp.Diagnostic(
        range=positions.span_range(finding.span),
        message=message,
        severity=SEVERITY.get(finding.severity, lsp.DiagnosticSeverity.Error),
        code=finding.rule,
        code_description=lsp.CodeDescription(href=rule_href(finding.rule, finding.span.path)),
        source=SOURCE if finding.evidence is Evidence.STATIC else RUNTIME_SOURCE,
        related_information=related or None,
        data={"rule": finding.rule, "line": finding.span.start_line, "evidence": finding.evidence.value},
    )


def details(finding: Finding) -> list[str]:
    """The message of a finding's diagnostic: its one short line first (what editors show inline), then the
    details, a line each: why and what to do, what a run saw, the variables without a gradient, the fix's verdict."""
    lines = [finding.message]
    lines += [text for text in (finding.detail, finding.explanation) if text]
    if finding.evidence is not Evidence.STATIC and finding.variables:
        lines.append(f"Without a gradient: {variables_summary(finding.variables)}.")
    if finding.fix is not None and finding.fix.verified is True:
        lines.append(f"Fix verified by a re-run: {finding.fix.description}.")
    elif finding.fix is not None and finding.fix.verified is False:
        lines.append("The fix on offer did not restore the gradients when re-run.")
    return lines


def error_diagnostic(problem: str, span: tuple[int, int, int, int] | None, positions: Positions) -> lsp.Diagnostic:
    """The diagnostic of a text gradfix cannot analyse (a syntax error), at the place CPython names."""
    import re

    if span is not None:
        where = positions.span_range(Span("", *span))
    else:
        line = int(found.group(1)) - 1 if (found := re.search(r"\bline (\d+)", problem)) else 0
        content = positions.lines[line].rstrip("\r\n") if line < len(positions.lines) else ""
        where = lsp.Range(positions.position(line, 0), positions.position(line, len(content)))
    message = re.sub(r"^syntax error at line \d+(, column \d+)?: ", "Syntax error: ", problem)
    return lsp.Diagnostic(range=where, message=message[:1].upper() + message[1:], severity=lsp.DiagnosticSeverity.Error,
                          source=SOURCE, data={"syntax": True})


def config_diagnostic(error) -> lsp.Diagnostic:
    """The diagnostic on a pyproject.toml gradfix cannot use, on its key (or TOML's own position)."""
    line, start, end = error.location()
    return lsp.Diagnostic(
        range=lsp.Range(lsp.Position(line, start), lsp.Position(line, end)),
        message=f"{error.problem}; gradfix runs its default rules until it is fixed",
        severity=lsp.DiagnosticSeverity.Error,
        source=SOURCE,
    )


def _related_range(span: Span, main: Span, positions: Positions) -> lsp.Range:
    if span.path == main.path:
        return positions.span_range(span)
    # another file: its text is not at hand, so columns are taken as they are (exact for ASCII lines)
    return lsp.Range(lsp.Position(span.start_line - 1, span.start_column - 1), lsp.Position(span.end_line - 1, span.end_column - 1))


# --------------------------------------------------------------------------- edits


def minimal_edits(text: str, edits: Iterable[TextEdit], positions: Positions | None = None) -> list[lsp.TextEdit]:
    """The smallest character ranges that turn ``text`` into ``apply_edits(text, edits)``."""
    positions = positions or Positions(text)
    out: list[lsp.TextEdit] = []
    for edit in sorted(edits, key=lambda e: e.start_line):
        start = positions.line_offset(edit.start_line)
        end = positions.line_offset(edit.end_line)
        out.extend(_smallest(text, start, end, edit.new_text, positions))
    return out


def text_edits(old_text: str, new_text: str, positions: Positions | None = None) -> list[lsp.TextEdit]:
    """The smallest edits between two whole texts (the fix-all action)."""
    positions = positions or Positions(old_text)
    return _smallest(old_text, 0, len(old_text), new_text, positions)


def _smallest(text: str, start: int, end: int, new: str, positions: Positions) -> list[lsp.TextEdit]:
    """Replace text[start:end] by ``new``, as one edit per changed run of lines, each trimmed to the changed characters."""
    old_lines = split_lines(text[start:end])
    new_lines = split_lines(new)
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    edits = []
    offsets = [start]
    for line in old_lines:
        offsets.append(offsets[-1] + len(line))
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        old_piece = "".join(old_lines[i1:i2])
        new_piece = "".join(new_lines[j1:j2])
        prefix = _common_prefix(old_piece, new_piece)
        suffix = _common_suffix(old_piece[prefix:], new_piece[prefix:])
        # never cut a \r\n pair in two: LSP positions cannot point between them
        while prefix and old_piece[prefix - 1] == "\r" and old_piece[prefix : prefix + 1] == "\n":
            prefix -= 1
        while suffix and old_piece[len(old_piece) - suffix] == "\n" and old_piece[len(old_piece) - suffix - 1 : len(old_piece) - suffix] == "\r":
            suffix -= 1
        first = offsets[i1] + prefix
        last = offsets[i2] - suffix
        edits.append(lsp.TextEdit(
            range=lsp.Range(start=positions.at_offset(first), end=positions.at_offset(last)),
            new_text=new_piece[prefix : len(new_piece) - suffix],
        ))
    return edits


def _common_prefix(a: str, b: str) -> int:
    limit = min(len(a), len(b))
    index = 0
    while index < limit and a[index] == b[index]:
        index += 1
    return index


def _common_suffix(a: str, b: str) -> int:
    limit = min(len(a), len(b))
    index = 0
    while index < limit and a[len(a) - 1 - index] == b[len(b) - 1 - index]:
        index += 1
    return index


def apply_lsp_edits(text: str, edits: Sequence[lsp.TextEdit], encoding: str = "utf-16") -> str:
    """Apply LSP text edits to a text, as a client does (for tests and the benchmark)."""
    positions = Positions(text, encoding)

    def offset(position: lsp.Position) -> int:
        if position.line >= len(positions.lines):
            return len(text)
        line = positions.lines[position.line]
        units = 0
        for index, char in enumerate(line):
            if units >= position.character:
                return positions.starts[position.line] + index
            units += positions.units(char)
        return positions.starts[position.line] + len(line)

    spans = sorted(((offset(e.range.start), offset(e.range.end), e.new_text) for e in edits), reverse=True)
    for start, end, new in spans:
        text = text[:start] + new + text[end:]
    return text


# --------------------------------------------------------------------------- code actions


def fix_title(finding: Finding) -> str:
    """A code action's title, one line of at most 80 characters: ``Unsafe fix GF003: Compute the loss from ...``.

    "Unsafe" says the fix may change what the program computes; the diagnostic's details say why."""
    fix = finding.fix
    assert fix is not None, "a code action is made for a fix"
    label = {Applicability.SAFE: "Fix", Applicability.UNSAFE: "Unsafe fix"}.get(fix.applicability, "Suggestion")
    suffix = {True: " (verified)", False: " (failed its re-run)"}.get(fix.verified, "") if fix.verified is not None else ""
    head = f"{label} {finding.rule}: "
    return head + clause(fix.description, LIMIT - len(head) - len(suffix)) + suffix


def is_preferred(fix: Fix) -> bool:
    """Safe fixes are the ones an editor may apply on its own; one a re-run disproved is not."""
    return fix.applicability is Applicability.SAFE and fix.verified is not False


_NOQA_CODES = re.compile(r"#\s*noqa\s*:\s*[A-Za-z]+[0-9]+(?:\s*,?\s*[A-Za-z]+[0-9]+)*", re.IGNORECASE)
_BARE_NOQA = re.compile(r"#\s*noqa\b(?!\s*:)", re.IGNORECASE)


def noqa_edit(text: str, line: int, code: str, positions: Positions) -> lsp.TextEdit | None:
    """Insert ``# noqa: CODE`` at the end of 1-based ``line`` (or add CODE to the noqa already there)."""
    if line - 1 >= len(positions.lines):
        return None
    raw = positions.lines[line - 1]
    content = raw.rstrip("\r\n")
    comment_at = _comment_start(content)
    comment = content[comment_at:] if comment_at is not None else ""
    existing = _NOQA_CODES.search(comment)
    if existing:
        assert comment_at is not None, "found in the comment"
        if code.upper() in existing.group(0).upper():
            return None
        column = comment_at + existing.end()
        new_text = f", {code}"
    elif comment and _BARE_NOQA.search(comment):
        return None  # a bare noqa already silences every rule on the line
    else:
        column = len(content.rstrip())
        new_text = f"  # noqa: {code}"
        if column < len(content):  # trailing blanks: replace them
            end = positions.position(line - 1, len(content))
            return lsp.TextEdit(lsp.Range(positions.position(line - 1, column), end), new_text)
    where = positions.position(line - 1, column)
    return lsp.TextEdit(lsp.Range(where, where), new_text)


def _comment_start(line: str) -> int | None:
    """Where the line's comment starts, skipping ``#`` inside string literals on the line."""
    import io
    import tokenize

    if "#" not in line:
        return None
    try:
        for token in tokenize.generate_tokens(io.StringIO(line + "\n").readline):
            if token.type == tokenize.COMMENT:
                return token.start[1]
    except (tokenize.TokenError, SyntaxError, IndentationError):
        pass  # a line continued from or onto others: fall back below
    index = line.rfind("#")
    return index if index >= 0 else None
