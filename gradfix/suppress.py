"""``# noqa`` and ``# gradfix: skip-file``, read from comments as Ruff reads them.

``# noqa`` alone on a finding's line suppresses every finding there; ``# noqa: GF003,
GF006`` only those rules. Codes of other tools (``E501``) are left to them.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass, field
from typing import Iterable

from gradfix.model import Finding

_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Za-z]+[0-9]+(?:\s*,?\s*[A-Za-z]+[0-9]+)*))?", re.IGNORECASE)
_SKIP_FILE = re.compile(r"#\s*gradfix:\s*skip-file\b", re.IGNORECASE)
_CODE = re.compile(r"[A-Za-z]+[0-9]+")


@dataclass
class Directive:
    line: int
    column: int
    codes: tuple[str, ...] | None  # None: a bare directive, naming no codes
    used: set[str] = field(default_factory=set)


def _comments(text: str) -> Iterable[tuple[int, int, str]]:
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT:
                yield token.start[0], token.start[1] + 1, token.string
    except (tokenize.TokenError, SyntaxError):
        # text gradfix could not tokenize: fall back to the lines, which can only over-read strings
        for number, line in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
            index = line.find("#")
            if index >= 0:
                yield number, index + 1, line[index:]


def directives(text: str) -> dict[int, Directive]:
    if "noqa" not in text.lower():
        return {}
    found = {}
    for line, column, comment in _comments(text):
        match = _NOQA.search(comment)
        if match:
            codes = tuple(code.upper() for code in _CODE.findall(match.group("codes") or "")) or None
            found[line] = Directive(line, column + match.start(), codes)
    return found


def skips_file(text: str) -> bool:
    return "skip-file" in text and any(_SKIP_FILE.search(comment) for _, _, comment in _comments(text))


def _suppressing(finding: Finding, table: dict[int, Directive]) -> Directive | None:
    for line in (finding.span.start_line, finding.span.end_line):
        directive = table.get(line)
        if directive is not None and (directive.codes is None or finding.rule in directive.codes):
            return directive
    return None


@dataclass
class Filtered:
    kept: list[Finding]
    unused: list[tuple[int, int, str]]  # line, column, the codes (or "noqa") that suppressed nothing


def filter_findings(text: str, findings: list[Finding]) -> Filtered:
    if skips_file(text):
        return Filtered([], [])
    table = directives(text)
    if not table:
        return Filtered(list(findings), [])
    kept = []
    for finding in findings:
        directive = _suppressing(finding, table)
        if directive is None:
            kept.append(finding)
        else:
            directive.used.add(finding.rule)
    unused = []
    for directive in table.values():
        if directive.codes is None:
            continue  # a bare noqa may serve another linter
        idle = [code for code in directive.codes if code.startswith("GF") and code not in directive.used]
        if idle:
            unused.append((directive.line, directive.column, ", ".join(idle)))
    return Filtered(kept, unused)
