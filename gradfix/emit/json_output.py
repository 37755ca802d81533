"""The machine-readable report: gradfix's one JSON document (``gradfix/schema/report-1.json``)."""

from __future__ import annotations

from typing import Sequence

from gradfix import report
from gradfix.model import Finding


def render(
    findings: Sequence[Finding],
    errors: Sequence[tuple[str, str]] = (),
    extra: dict | None = None,
    command: str = "check",
    fixes: Sequence[dict] = (),
    exit_code: int | None = None,
) -> str:
    document = report.document(command, findings, fixes=fixes, errors=errors, extra=extra, exit_code=exit_code)
    return report.render(document)
