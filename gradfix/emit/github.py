"""GitHub Actions workflow commands: each finding becomes an annotation on the pull request's diff."""

from __future__ import annotations

from typing import Sequence

from gradfix.docs import rule_url
from gradfix.model import Finding

COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _rule_reference(code: str) -> str:
    """The rule's published page, or the command that shows it: a page on the runner's disk is no use to a reader."""
    url = rule_url(code)
    return f"`gradfix rules {code}`" if url.startswith("file:") else url


def render(findings: Sequence[Finding], errors: Sequence[tuple[str, str]] = ()) -> str:
    lines = []
    for finding in findings:
        span = finding.span
        properties = ",".join([
            f"file={_escape_property(span.path)}",
            f"line={span.start_line}",
            f"col={span.start_column}",
            f"endLine={span.end_line}",
            f"endColumn={span.end_column}",
            f"title={_escape_property(f'{finding.rule} {finding.name}')}",
        ])
        fix = f" (fix: {finding.fix.description}, {finding.fix.applicability.value})" if finding.fix else ""
        message = "\n".join(text for text in (finding.message, finding.detail) if text)
        message = f"{message}{fix}\n{_rule_reference(finding.rule)}"
        lines.append(f"::{COMMANDS[finding.severity.value]} {properties}::{_escape_data(message)}")
    for path, message in errors:
        lines.append(f"::error file={_escape_property(path)},title=gradfix::{_escape_data(message)}")
    return "".join(line + "\n" for line in lines)
