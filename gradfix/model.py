"""The data every part of gradfix shares: spans, findings and fixes (a file's patch is gradfix.repair.FilePatch).

Plain dataclasses, serialisable with ``to_dict`` as they are, so that the JSON
and SARIF emitters and the language server need no reshaping.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any


class Applicability(str, enum.Enum):
    """How far a fix may be trusted, as in Ruff.

    safe: keeps the program's meaning apart from restoring the gradient;
    unsafe: likely right, but may change what the program computes;
    display-only: shown as a suggestion, never applied.
    """

    SAFE = "safe"
    UNSAFE = "unsafe"
    DISPLAY_ONLY = "display-only"


class Evidence(str, enum.Enum):
    """Why gradfix believes a finding."""

    STATIC = "static"  # the source has the shape of the bug
    RUNTIME = "runtime"  # a run showed variables without gradients here
    VERIFIED = "verified"  # a run of the patched program showed the gradients flowing


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Span:
    """A region of a source file; lines and columns count from 1, end is exclusive."""

    path: str
    start_line: int
    start_column: int
    end_line: int
    end_column: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Span":
        return cls(**data)


@dataclass(frozen=True)
class RelatedSpan:
    span: Span
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"span": self.span.to_dict(), "message": self.message}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RelatedSpan":
        return cls(Span.from_dict(data["span"]), data["message"])


@dataclass(frozen=True)
class TextEdit:
    """Replace lines ``start_line`` to ``end_line - 1`` (1-based) with ``new_text``.

    Whole lines keep edits exact across encodings and line endings; an insertion
    has ``start_line == end_line``. In a notebook, the lines are those of cell ``cell``
    (counted from 1 over all its cells); ``cell`` is None in a Python file.
    """

    start_line: int
    end_line: int
    new_text: str
    cell: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if self.cell is None:
            del data["cell"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TextEdit":
        return cls(**data)


@dataclass(frozen=True)
class Fix:
    rule: str
    description: str
    applicability: Applicability
    edits: tuple[TextEdit, ...]
    verified: bool | None = None  # None: not run; True/False: outcome of a re-run
    reason: str = ""  # why the fix is not safe (or not verified), in one sentence; empty when there is nothing to say

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "description": self.description,
            "applicability": self.applicability.value,
            "edits": [edit.to_dict() for edit in self.edits],
            "verified": self.verified,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Fix":
        return cls(
            rule=data["rule"],
            description=data["description"],
            applicability=Applicability(data["applicability"]),
            edits=tuple(TextEdit.from_dict(e) for e in data["edits"]),
            verified=data.get("verified"),
            reason=data.get("reason", ""),
        )


@dataclass(frozen=True)
class Finding:
    """One problem found. ``message`` is one line of at most 80 characters saying what is wrong; ``detail`` says
    why, with the names involved, and what to do (``gradfix.messages``); a run adds ``variables`` and ``explanation``."""

    rule: str  # the rule's code, e.g. "GF001"
    name: str  # the rule's name, e.g. "computed-outside-tape"
    message: str
    span: Span
    severity: Severity = Severity.ERROR
    evidence: Evidence = Evidence.STATIC
    related: tuple[RelatedSpan, ...] = ()
    fix: Fix | None = None
    variables: tuple[str, ...] = ()  # variable paths a run showed without gradients
    explanation: str = ""  # what a run saw, and why it loses the gradient
    detail: str = ""  # why the first line holds, with the names involved, and what to do

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "name": self.name,
            "message": self.message,
            "detail": self.detail,
            "severity": self.severity.value,
            "evidence": self.evidence.value,
            "span": self.span.to_dict(),
            "related": [r.to_dict() for r in self.related],
            "fix": self.fix.to_dict() if self.fix else None,
            "variables": list(self.variables),
            "explanation": self.explanation,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Finding":
        return cls(
            rule=data["rule"],
            name=data["name"],
            message=data["message"],
            span=Span.from_dict(data["span"]),
            severity=Severity(data.get("severity", "error")),
            evidence=Evidence(data.get("evidence", "static")),
            related=tuple(RelatedSpan.from_dict(r) for r in data.get("related", ())),
            fix=Fix.from_dict(data["fix"]) if data.get("fix") else None,
            variables=tuple(data.get("variables", ())),
            explanation=data.get("explanation", ""),
            detail=data.get("detail", ""),
        )

    def replace(self, **changes: Any) -> "Finding":
        return dataclasses.replace(self, **changes)
