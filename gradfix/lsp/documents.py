"""What the editor holds: each document's text, the findings on it, and those a run reported.

Findings are always computed on the text the editor sent, never on the file on disk,
and are kept with that text: a fix is offered only while the document still reads as
it did when the fix was computed, so an edit is never applied to a text it was not made for.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

from gradfix.config import ConfigError
from gradfix.edits import split_lines
from gradfix.engine import analyze
from gradfix.lsp.settings import rules_and_problem
from gradfix.model import Finding, RelatedSpan, Span
from gradfix.source import SourceError, SourceFile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Analysis:
    text: str
    findings: tuple[Finding, ...] = ()
    error: str | None = None  # the text does not parse: why, as gradfix says it
    seconds: float = 0.0
    config_error: ConfigError | None = None  # the pyproject.toml that applies cannot be used: the defaults ran
    error_span: tuple[int, int, int, int] | None = None  # where the text stops parsing (1-based lines and columns)


@dataclass
class Document:
    uri: str
    path: str
    text: str
    version: int | None = None
    analysis: Analysis | None = None  # of the last text analysed, which may be older than ``text``
    parsed: Analysis | None = None  # of the last text that parsed: what the editor is showing
    runtime: tuple[Finding, ...] = ()  # from gradfix.diagnose, on ``runtime_text``
    runtime_text: str | None = None

    @property
    def current(self) -> Analysis | None:
        """The analysis of the text as it is now, if there is one."""
        if self.analysis is not None and self.analysis.text == self.text:
            return self.analysis
        return None


def path_of(uri: str) -> str:
    """The file system path of a ``file:`` URI; for an unsaved buffer, a name in the current folder."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        path = unquote(parsed.path)
        if os.name == "nt" and path.startswith("/") and len(path) > 2 and path[2] == ":":
            path = path[1:]
        return path
    return os.path.abspath(os.path.basename(unquote(parsed.path)) or "untitled.py")


def analyse_text(path: str, text: str) -> Analysis:
    """The static findings on ``text`` as the rules configured for ``path`` see it; never raises for bad input."""
    started = time.perf_counter()
    rules, config_error = rules_and_problem(path)
    if not text.strip():
        return Analysis(text, (), None, 0.0, config_error)
    try:
        findings = analyze(SourceFile(path=path, text=text, encoding="utf-8"), rules)
    except SourceError as error:
        return Analysis(text, (), error.problem, time.perf_counter() - started, config_error, error.span)
    except RecursionError:
        return Analysis(text, (), "too deeply nested to analyse", time.perf_counter() - started, config_error)
    return Analysis(text, tuple(findings), None, time.perf_counter() - started, config_error)


def _unchanged_lines(old: str, new: str) -> dict[int, int]:
    """1-based lines of ``old`` that ``new`` still has, unchanged, and where: the common head and tail,
    and the lines a diff of what lies between matches."""
    import difflib

    a = [line.rstrip("\r\n") for line in split_lines(old)]
    b = [line.rstrip("\r\n") for line in split_lines(new)]
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[len(a) - 1 - tail] == b[len(b) - 1 - tail]:
        tail += 1
    mapping = {number: number for number in range(1, head + 1)}
    mapping.update({len(a) - k: len(b) - k for k in range(tail)})
    middle = difflib.SequenceMatcher(a=a[head:len(a) - tail], b=b[head:len(b) - tail], autojunk=False)
    for block in middle.get_matching_blocks():
        for k in range(block.size):
            mapping[head + block.a + k + 1] = head + block.b + k + 1
    return mapping


def moved_findings(findings: list[Finding], old: str, new: str, path: str) -> list[Finding]:
    """``findings`` on ``old`` placed on ``new``: those whose lines ``new`` has unchanged, moved with them."""
    mapping = _unchanged_lines(old, new)

    def moved(span: Span) -> Span | None:
        shift = mapping.get(span.start_line, 0) - span.start_line
        if span.start_line not in mapping or any(mapping.get(line) != line + shift
                                                 for line in range(span.start_line, span.end_line + 1)):
            return None
        return dataclasses.replace(span, start_line=span.start_line + shift, end_line=span.end_line + shift)

    out = []
    same_file = os.path.abspath(path)
    for finding in findings:
        span = moved(finding.span)
        if span is None:
            continue
        related = []
        for item in finding.related:
            if os.path.abspath(item.span.path) != same_file:
                related.append(item)
            elif (where := moved(item.span)) is not None:
                related.append(RelatedSpan(where, item.message))
        out.append(finding.replace(span=span, related=tuple(related)))
    return out


@dataclass
class Documents:
    by_uri: dict[str, Document] = field(default_factory=dict)

    def open(self, uri: str, text: str, version: int | None) -> Document:
        document = Document(uri, path_of(uri), text, version)
        self.by_uri[uri] = document
        return document

    def change(self, uri: str, text: str, version: int | None) -> Document | None:
        document = self.by_uri.get(uri)
        if document is None:
            return None
        document.text, document.version = text, version
        return document

    def close(self, uri: str) -> None:
        self.by_uri.pop(uri, None)

    def get(self, uri: str) -> Document | None:
        return self.by_uri.get(uri)

    def record(self, document: Document, analysis: Analysis) -> bool:
        """Keep an analysis; True if it parsed (and so replaces the findings shown)."""
        document.analysis = analysis
        if analysis.error is None:
            document.parsed = analysis
            return True
        return False

    def shown(self, document: Document) -> list[Finding]:
        """The findings to publish, on the text as it is now: the last static ones that parsed, with a run's
        findings while the text is the one run.

        While the text does not parse (mid-typing), the findings of the last text that did are kept on the
        lines the edits left as they were, moved to where those lines are now; a finding on a changed line
        is dropped rather than shown at a stale place. A run's finding replaces the static finding of the same
        rule on the same line: it says more (the variables without a gradient, whether its fix was verified).
        """
        static = list(document.parsed.findings) if document.parsed else []
        if document.parsed is not None and document.parsed.text != document.text:
            static = moved_findings(static, document.parsed.text, document.text, document.path)
        runtime = list(document.runtime) if document.runtime_text == document.text else []
        seen = {(f.rule, f.span.start_line) for f in runtime}
        return [f for f in static if (f.rule, f.span.start_line) not in seen] + runtime

    def fixable(self, document: Document) -> list[tuple[Finding, str]]:
        """Findings whose fixes apply to the text as it is now, with that text."""
        out: list[tuple[Finding, str]] = []
        current = document.current
        runtime_now = document.runtime_text == document.text
        runtime_keys = {(f.rule, f.span.start_line) for f in document.runtime} if runtime_now else set()
        if current is not None and current.error is None:
            out.extend((f, current.text) for f in current.findings if (f.rule, f.span.start_line) not in runtime_keys)
        if runtime_now:
            out.extend((f, document.text) for f in document.runtime)
        return out
