"""One line per finding, ``path:line:col: CODE message``, as Ruff's and mypy's concise output: for grep, editors'
error formats and a quick look; ``--format text`` has the excerpt, the details and the fix."""

from __future__ import annotations

from gradfix.model import Finding


def render_finding(finding: Finding) -> str:
    span = finding.span
    return f"{span.path}:{span.start_line}:{span.start_column}: {finding.rule} {finding.message.splitlines()[0] if finding.message else ''}"
