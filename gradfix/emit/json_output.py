"""The machine-readable report: the model's own dictionaries, as they are."""

from __future__ import annotations

import json
from typing import Sequence

from gradfix import __version__
from gradfix.model import Finding


def render(findings: Sequence[Finding], errors: Sequence[tuple[str, str]] = (), extra: dict | None = None) -> str:
    document = {
        "tool": "gradfix",
        "version": __version__,
        "findings": [finding.to_dict() for finding in findings],
        "errors": [{"path": path, "message": message} for path, message in errors],
    }
    if extra:
        document.update(extra)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
