"""The one report document that ``check``, ``fix``, ``diagnose`` and ``report`` emit as JSON (and render as HTML).

Its shape is described by ``gradfix/schema/report-1.json``; :func:`validate` checks a document against it.
Every path in it is relative to the working directory, with forward slashes. Spans count lines and
columns from 1: ``start_*`` is the first character, ``end_line`` the line of the last character and
``end_column`` the column just after it.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from typing import Any, Iterable, Sequence

from gradfix import __version__
from gradfix.docs import rule_url
from gradfix.model import Finding, Fix

SCHEMA_VERSION = 1
SCHEMA_FILE = "report-1.json"
SCHEMA_ID = "https://github.com/gradfix/gradfix/blob/main/gradfix/schema/report-1.json"
COMMANDS = ("check", "fix", "diagnose", "report")


def relative(path: str, cwd: str | None = None) -> str:
    """``path`` relative to ``cwd`` (the working directory by default), with forward slashes."""
    if not path:
        return path
    cwd = os.path.abspath(cwd or os.getcwd())
    return os.path.relpath(os.path.abspath(os.path.join(cwd, path)), cwd).replace(os.sep, "/")


def _span(data: dict, cwd: str | None) -> dict:
    return {**data, "path": relative(data["path"], cwd)}


def finding_dict(finding: Finding, cwd: str | None = None) -> dict[str, Any]:
    data = finding.to_dict()
    data["span"] = _span(data["span"], cwd)
    data["related"] = [{**r, "span": _span(r["span"], cwd)} for r in data["related"]]
    data["url"] = rule_url(finding.rule)
    return data


def patch_dict(path: str, diff: str, fixes: Iterable[Fix], applied: bool, cwd: str | None = None) -> dict[str, Any]:
    return {"path": relative(path, cwd), "diff": diff, "fixes": [fix.to_dict() for fix in fixes], "applied": applied}


def document(
    command: str,
    findings: Sequence[Finding],
    fixes: Sequence[dict] = (),
    errors: Sequence[tuple[str, str]] = (),
    verification: dict | None = None,
    extra: dict | None = None,
    cwd: str | None = None,
    exit_code: int | None = None,
) -> dict[str, Any]:
    """The report as a plain dictionary: findings, the patches proposed or written (``patch_dict``), errors.

    ``extra`` adds top-level sections the schema knows, such as ``diagnose`` (see :func:`diagnose_document`).
    """
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}")
    data: dict[str, Any] = {
        "$schema": SCHEMA_ID,
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "gradfix", "version": __version__},
        "command": command,
        "exit_code": exit_code,
        "findings": [finding_dict(f, cwd) for f in findings],
        "fixes": list(fixes),
        "verification": verification,
        "errors": [{"path": relative(path, cwd), "message": message} for path, message in errors],
    }
    if extra:
        data.update(extra)
    return data


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def load_schema() -> dict[str, Any]:
    return json.loads(resources.files("gradfix").joinpath("schema").joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


def validate(data: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` if ``data`` does not follow the schema (needs the dev extra)."""
    import jsonschema

    jsonschema.Draft202012Validator(load_schema()).validate(data)


# --------------------------------------------------------------------------- diagnose

def _site(site, cwd: str | None) -> dict[str, Any] | None:
    if site is None:
        return None
    return {"path": relative(site.file, cwd) if site.file else "", "line": site.line, "column": site.column,
            "function": site.function, "code": site.code}


def _tensor(data: dict | None, cwd: str | None) -> dict[str, Any] | None:
    if not data:
        return None
    tensor = {key: data.get(key) for key in ("name", "line", "code", "shape", "dtype")}
    tensor["path"] = relative(data["file"], cwd) if data.get("file") else None
    if tensor["shape"] is not None:
        tensor["shape"] = list(tensor["shape"])
    return tensor


def _key(source) -> str:
    """A variable's key in the run's facts: its path, made unique when two variables share one."""
    return getattr(source, "key", "") or source.path


def _variable(source, gradient: bool, cwd: str | None) -> dict[str, Any]:
    layer = source.layer
    return {
        "path": _key(source),
        "kind": source.kind,
        "shape": list(source.shape) if source.shape is not None else None,
        "dtype": source.dtype,
        "trainable": source.trainable,
        "gradient": gradient,
        "created_at": _site(source.created_at, cwd),
        "layer": None if layer is None else {"class": layer.cls, "name": layer.name, "built_at": _site(layer.built_at, cwd)},
    }


def verification_dict(verification, findings: Sequence[Finding], repairs: Sequence = ()) -> dict[str, Any] | None:
    """The re-runs of the patched program: the merged run (if any) and, per finding, its own fix's run.

    Accepts both a per-finding mapping (``verification.verified``: finding index -> bool) and the
    repair records of ``diagnosis.repairs`` (each with its attempts' verifications).
    """
    runs = []
    for found in repairs:
        chosen = getattr(found, "chosen", None)
        attempts = [chosen] if chosen is not None else [a for a in found.attempts if a.verification is not None][-1:]
        for attempt in attempts:
            check = attempt.verification
            runs.append((found.index, check))
    if verification is None and not runs:
        return None
    main = verification if verification is not None else runs[0][1]
    fixes = []
    per_finding = getattr(main, "verified", None)
    if isinstance(per_finding, dict):
        for index, ok in sorted(per_finding.items()):
            still = getattr(main, "still_failing", {})
            fixes.append({"finding": index, "rule": findings[index].rule if index < len(findings) else "",
                          "verified": bool(ok), "still_failing": list(still.get(index, ()) if isinstance(still, dict) else ())})
    for index, check in runs:
        fixes.append({"finding": index, "rule": findings[index].rule if index < len(findings) else "",
                      "verified": bool(check.verified), "still_failing": list(check.still_failing),
                      "before": dict(check.before), "after": dict(check.after), "update": check.update})
    return {
        "ran": bool(main.ran),
        "status": main.status,
        "reason": main.reason,
        "before": dict(main.before),
        "after": dict(main.after),
        "lost": list(main.lost),
        "update": getattr(main, "update", None),
        "fixes": fixes,
    }


def diagnose_section(diagnosis, cwd: str | None = None) -> dict[str, Any]:
    """The ``diagnose`` section: the run's status, every variable (in the order the run met them) and the causes."""
    facts = diagnosis.facts
    status = facts.gradient_status()
    findings = diagnosis.findings if facts.diagnosed else diagnosis.crash_findings
    error = facts.error
    return {
        "target": relative(facts.target, cwd) if facts.target else "",
        "args": list(facts.args),
        "status": facts.status,
        "start": facts.start,
        "tensorflow_version": facts.tensorflow_version,
        "keras_version": facts.keras_version,
        "error": None if error is None else {"type": error.type, "message": error.message, "traceback": error.traceback},
        "gradients": status,
        "update": facts.update_summary() if facts.diagnosed else None,
        "variables": [_variable(source, status.get(_key(source), not source.lost), cwd) for source in facts.all_sources()],
        "causes": [
            {
                "category": cause.category,
                "finding": index if index < len(findings) else None,
                "site": _site(cause.site, cwd),
                "detail": cause.detail,
                "variables": [_key(source) for source in cause.variables],
                "last_connected": _tensor(cause.last_connected, cwd),
                "basis": cause.basis,
                "cut": _cut(cause.cut, cwd),
                "expression": _expression(cause.expression, cwd),
            }
            for index, cause in enumerate(diagnosis.causes)
        ],
        "repairs": [_repair(found) for found in getattr(diagnosis, "repairs", ())],
        "notes": [{"kind": n.get("kind", ""), "message": n.get("message", ""), "site": _note_site(n.get("site"), cwd)}
                  for n in facts.shown_notes()],
        "left_out": list(getattr(diagnosis, "left_out", ())),
    }


def _cut(cut: dict | None, cwd: str | None) -> dict | None:
    if not cut:
        return None
    data = {k: v for k, v in cut.items() if k not in ("layer", "span")}  # the span is the cause's "expression"
    if data.get("file"):
        data["file"] = relative(data["file"], cwd)
    if cut.get("layer"):
        data["layer"] = {"class": cut["layer"].get("class"), "name": cut["layer"].get("name")}
    return data


def _expression(expression, cwd: str | None) -> dict | None:
    """The expression that cut the path: its text and range (the whole line when the run gave no columns)."""
    if expression is None:
        return None
    if expression.exact:
        start, end = expression.column, expression.end_column
    else:
        import linecache

        line = linecache.getline(expression.file, expression.end_line).rstrip("\r\n")
        start, end = len(line) - len(line.lstrip()) + 1, len(line) + 1
    span = {"path": relative(expression.file, cwd), "start_line": expression.line, "start_column": max(1, start),
            "end_line": expression.end_line, "end_column": max(1, end)}
    return {"code": expression.text, "exact": expression.exact, "span": span}


def _note_site(site: dict | None, cwd: str | None) -> dict | None:
    if not site:
        return None
    return {"path": relative(site.get("file", ""), cwd) if site.get("file") else "", "line": site.get("line")}


def _repair(found) -> dict[str, Any]:
    chosen = found.chosen
    return {
        "finding": found.index,
        "note": found.note,
        "chosen": found.attempts.index(chosen) if chosen is not None else None,
        "attempts": [{"fix": a.fix.to_dict(), "round": a.round, "set_aside": a.set_aside,
                      "verification": a.verification.to_dict() if a.verification else None}
                     for a in found.attempts],
    }


def diagnose_document(diagnosis, command: str = "diagnose", cwd: str | None = None,
                      errors: Sequence[tuple[str, str]] = (), applied: bool = False) -> dict[str, Any]:
    """The whole report of a :class:`gradfix.diagnose.Diagnosis`, for ``diagnose --json`` and ``report``."""
    facts = diagnosis.facts
    findings = diagnosis.findings if facts.diagnosed else diagnosis.crash_findings
    fixes = [patch_dict(p.path, p.diff, p.fixes, applied, cwd) for p in diagnosis.patches]
    return document(
        command,
        findings,
        fixes=fixes,
        errors=errors,
        verification=verification_dict(diagnosis.verification, findings, getattr(diagnosis, "repairs", ())),
        extra={"diagnose": diagnose_section(diagnosis, cwd)},
        cwd=cwd,
        exit_code=diagnosis.exit_code,
    )


def target_document(target: str, args: Sequence[str] = (), python: str | None = None, timeout: float | None = None,
                    command: str = "report", sandbox: bool = False, quiet: bool = True) -> dict[str, Any]:
    """Run TARGET (as ``diagnose --fix --unsafe-fixes`` does, nothing written) and return its document, with
    what the static rules find in the files the run went through and no cause of the run accounts for."""
    from gradfix.diagnose import diagnose_target

    options: dict[str, Any] = {"python": python} if python else {}
    if timeout is not None:
        options["timeout"] = timeout
    cwd = os.getcwd()
    diagnosis = diagnose_target(target, list(args), cwd=cwd, fix=True, unsafe_fixes=True, sandbox=sandbox,
                                quiet=quiet, **options)
    return with_read_only_findings(diagnose_document(diagnosis, command=command, cwd=cwd), diagnosis, target, cwd)


def with_read_only_findings(data: dict[str, Any], diagnosis, target: str, cwd: str) -> dict[str, Any]:
    """The review page's document: the run's, and what ``check`` finds in the same files that the run does not
    account for (marked ``"evidence": "static"``), so that the page shows every finding ``check`` would."""
    program = target.split(":", 1)[0]
    findings, patches = read_only_findings(diagnosis, [os.path.join(cwd, program)] if program.endswith(".py") else [], cwd)
    data["findings"].extend(finding_dict(finding, cwd) for finding in findings)
    data["fixes"].extend(patch_dict(path, diff, fixes, False, cwd) for path, diff, fixes in patches)
    return data


def read_only_findings(diagnosis, also: Sequence[str] = (), cwd: str | None = None) -> tuple[list[Finding], list[tuple[str, str, list[Fix]]]]:
    """The static findings in the files the run went through (and ``also``) that no cause of the run accounts
    for, as ``check`` reports them, and per file the patch of their fixes (unsafe included, as the run's)."""
    from gradfix.diagnose import findings_in
    from gradfix.engine import fix_source
    from gradfix.patch import make_diff
    from gradfix.source import SourceError, read_source

    for path in also:
        findings_in(os.path.abspath(path), diagnosis.static_findings)
    accounted = {id(finding) for confirmed in diagnosis.confirmed for finding in confirmed}
    places = {(f.rule, os.path.abspath(f.span.path), f.span.start_line) for f in diagnosis.findings}
    findings: list[Finding] = []
    patches: list[tuple[str, str, list[Fix]]] = []
    for path, found in diagnosis.static_findings.items():
        left = [f for f in found if id(f) not in accounted
                and (f.rule, os.path.abspath(f.span.path), f.span.start_line) not in places]
        if not left:
            continue
        findings.extend(left)
        try:
            outcome = fix_source(read_source(path), include_unsafe=True, only=left)
        except SourceError:
            continue
        if outcome.changed:
            patches.append((path, make_diff(relative(path, cwd), outcome.source.text, outcome.new_text), outcome.applied))
    return findings, patches
