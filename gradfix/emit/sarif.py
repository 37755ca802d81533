"""SARIF 2.1.0, for code-scanning services and editors that read it."""

from __future__ import annotations

import json
import os
from typing import Sequence
from urllib.parse import quote

from gradfix import __version__
from gradfix.docs import rule_url
from gradfix.model import Finding, Span, TextEdit
from gradfix.registry import all_rules

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def _uri(path: str) -> str:
    """A relative URI reference (RFC 3986): forward slashes, percent-encoded; absolute paths become file URIs."""
    posix = path.replace(os.sep, "/")
    if os.path.isabs(path):
        return "file://" + quote(posix if posix.startswith("/") else "/" + posix, safe="/")
    return quote(posix, safe="/")


def _region(span: Span) -> dict:
    return {
        "startLine": span.start_line,
        "startColumn": span.start_column,
        "endLine": span.end_line,
        "endColumn": span.end_column,
    }


def _location(span: Span, message: str | None = None, identifier: int | None = None) -> dict:
    location: dict = {"physicalLocation": {"artifactLocation": {"uri": _uri(span.path)}, "region": _region(span)}}
    if message is not None:
        location["message"] = {"text": message}
    if identifier is not None:
        location["id"] = identifier
    return location


def _replacement(edit: TextEdit) -> dict:
    # Whole lines: from column 1 of the first line to column 1 of the line after the last, newlines included.
    return {
        "deletedRegion": {"startLine": edit.start_line, "startColumn": 1, "endLine": edit.end_line, "endColumn": 1},
        "insertedContent": {"text": edit.new_text},
    }


def _result(finding: Finding, rule_index: dict[str, int]) -> dict:
    result: dict = {
        "ruleId": finding.rule,
        "level": LEVELS[finding.severity.value],
        # the one short line first, as SARIF viewers show it; the details after it
        "message": {"text": "\n".join(text for text in (finding.message, finding.detail) if text)},
        "locations": [_location(finding.span)],
        "properties": {"evidence": finding.evidence.value},
    }
    if finding.rule in rule_index:
        result["ruleIndex"] = rule_index[finding.rule]
    if finding.related:
        result["relatedLocations"] = [
            _location(related.span, related.message, index) for index, related in enumerate(finding.related)
        ]
    if finding.variables:
        result["properties"]["variables"] = list(finding.variables)
    if finding.fix is not None:
        result["properties"]["fixApplicability"] = finding.fix.applicability.value
    # SARIF replaces regions of the file as stored; a notebook's fix changes lines of a cell, which are no such region
    if finding.fix is not None and not any(edit.cell is not None for edit in finding.fix.edits):
        result["fixes"] = [{
            "description": {"text": f"{finding.fix.description} ({finding.fix.applicability.value})"},
            "artifactChanges": [{
                "artifactLocation": {"uri": _uri(finding.span.path)},
                "replacements": [_replacement(edit) for edit in finding.fix.edits],
            }],
        }]
    return result


def _rules() -> list[dict]:
    rules = []
    for rule in all_rules():
        entry = {
            "id": rule.code,
            "name": rule.name,
            "shortDescription": {"text": rule.summary},
            "help": {"text": rule.doc(), "markdown": rule.doc()},
            "defaultConfiguration": {"level": LEVELS[rule.severity.value]},
            "properties": {"fixApplicability": rule.applicability.value},
        }
        url = rule_url(rule.code)
        # a page on the disk of the machine that ran the check is no use where the log is read; the help is inline
        if not url.startswith("file:"):
            entry["helpUri"] = url
        rules.append(entry)
    return rules


def render(findings: Sequence[Finding], errors: Sequence[tuple[str, str]] = ()) -> str:
    rules = _rules()
    rule_index = {rule["id"]: index for index, rule in enumerate(rules)}
    run = {
        "tool": {"driver": {"name": "gradfix", "version": __version__, "rules": rules}},
        "results": [_result(finding, rule_index) for finding in findings],
        "invocations": [{
            "executionSuccessful": not errors,
            "toolExecutionNotifications": [
                {
                    "level": "error",
                    "message": {"text": message},
                    "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(path)}}}],
                }
                for path, message in errors
            ],
        }],
    }
    return json.dumps({"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2, ensure_ascii=False) + "\n"
