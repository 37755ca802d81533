"""`gradfix diagnose TARGET [-- ARGS...]`: run the training step, report every variable without a gradient.

Exit codes: 0 every variable gets a gradient, 1 some do not, 2 gradfix could not diagnose.
"""

from __future__ import annotations

import json
import os
import sys

import click

from gradfix import categories as cat
from gradfix.diagnose import Diagnosis, diagnose as run_diagnosis, explanation, mark_verified, propose_fixes, variable_summary, verify
from gradfix.runtime.runner import DEFAULT_TIMEOUT, run_step

STATUS_TEXT = {
    "crashed": "the program crashed before its first gradient",
    "exited-before-gradient": "the program exited before its first gradient",
    "no-gradient-call": "the program ran to the end without computing a gradient (no GradientTape.gradient, fit or train_on_batch step)",
    "timeout": "the program did not reach a gradient in time and was stopped",
    "no-tensorflow": "TensorFlow cannot be imported by that interpreter",
    "could-not-start": "the interpreter could not be started",
}


@click.command(context_settings={"help_option_names": ["-h", "--help"], "ignore_unknown_options": False})
@click.argument("target")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--python", "python", default=sys.executable, show_default="this interpreter",
              help="The interpreter of your project (it needs TensorFlow, nothing else).")
@click.option("--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True, help="Seconds before the run is stopped.")
@click.option("--steps", type=click.IntRange(min=1), default=1, show_default=True, help="Training steps to run.")
@click.option("--quiet", "-q", is_flag=True, help="Hide the program's own output.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON (the foundation's model).")
@click.option("--fix", "want_fix", is_flag=True, help="Propose patches for the findings the run confirmed, verified on a copy.")
@click.option("--apply", "apply_fixes", is_flag=True, help="Write the proposed patches (implies --fix).")
@click.option("--unsafe-fixes", is_flag=True, help="Include fixes that may change what the program computes.")
def diagnose(target, args, python, timeout, steps, quiet, as_json, want_fix, apply_fixes, unsafe_fixes):
    """Run TARGET's first training step and report every variable without a gradient.

    TARGET is a script (train.py), a function in a file (train.py:train_step) or
    a module function (pkg.train:main); arguments after `--` go to the program.
    """
    want_fix = want_fix or apply_fixes
    cwd = os.getcwd()
    facts = run_step(target, args=args, python=python, timeout=timeout, steps=steps, cwd=cwd, quiet=quiet or as_json)
    result = run_diagnosis(facts)
    patches, verification, findings = [], None, list(result.findings)
    if want_fix and result.causes:
        patches = propose_fixes(result, include_unsafe=unsafe_fixes)
        if patches:
            verification = verify(result, patches, target, args=args, python=python, timeout=timeout, steps=steps, cwd=cwd)
            findings = mark_verified(result, verification, patches)
    if as_json:
        click.echo(json.dumps(_json(result, findings, patches, verification), indent=2))
    else:
        _text(result, findings, patches, verification, want_fix, unsafe_fixes)
    if apply_fixes and patches:
        from gradfix.source import SourceError, write_source_atomically

        for patch in patches:
            try:
                write_source_atomically(patch.source, patch.new_text)
                if not as_json:
                    click.echo(f"gradfix: wrote {os.path.relpath(patch.path)}")
            except (SourceError, OSError) as problem:
                click.echo(f"gradfix: error: {problem}", err=True)
                sys.exit(2)
    sys.exit(result.exit_code)


def _json(result: Diagnosis, findings, patches, verification) -> dict:
    facts = result.facts
    data = {
        "status": facts.status,
        "exit_code": result.exit_code,
        "tensorflow_version": facts.tensorflow_version,
        "error": None if facts.error is None else {"type": facts.error.type, "message": facts.error.message,
                                                   "traceback": facts.error.traceback},
        "variables": {path: ok for path, ok in facts.gradient_status().items()},
        "findings": [f.to_dict() for f in (findings if facts.diagnosed else result.crash_findings)],
        "categories": [c.category for c in result.causes],
        "patches": [{"path": p.path, "diff": p.diff, "fixes": [f.to_dict() for f in p.fixes]} for p in patches],
    }
    if verification is not None:
        data["verification"] = {"ran": verification.ran, "status": verification.status, "before": verification.before,
                                "after": verification.after, "lost": verification.lost, "reason": verification.reason}
    return data


def _text(result: Diagnosis, findings, patches, verification, want_fix, unsafe) -> None:
    facts = result.facts
    echo = click.echo
    if not facts.diagnosed:
        echo(f"gradfix: could not diagnose {facts.target}: {STATUS_TEXT.get(facts.status, facts.status)}.", err=True)
        if facts.status == "exited-before-gradient" and facts.exit_code is not None:
            echo(f"  exit code {facts.exit_code}", err=True)
        if facts.error is not None and facts.error.traceback:
            echo(_indent(facts.error.traceback), err=True)
        elif facts.error is not None:
            echo(f"  {facts.error.message}", err=True)
        if facts.status == "timeout":
            echo("  Raise --timeout if the program needs longer to reach its first training step.", err=True)
        if facts.output_tail and facts.status in ("crashed", "could-not-start"):
            echo("  The program's last output:\n" + _indent(facts.output_tail[-1500:], 4), err=True)
        if result.crash_findings:
            count = len(result.crash_findings)
            echo(f"The traceback passes through {'a line' if count == 1 else f'{count} lines'} where gradfix finds a cause "
                 "of missing gradients (evidence: static; the run could not confirm it):\n")
            for finding in result.crash_findings:
                echo(f"  {os.path.relpath(finding.span.path)}:{finding.span.start_line}:{finding.span.start_column}: "
                     f"{finding.rule} {finding.name} {finding.message}")
                if finding.fix is not None:
                    echo(f"    fix on offer ({finding.fix.applicability.value}): {finding.fix.description}"
                         " (`gradfix fix` applies it)")
            echo("")
        return
    status = facts.gradient_status()
    total = len(status)
    if not result.causes:
        calls = len(facts.gradient_calls)
        echo(f"All {total} variables get a gradient ({calls} gradient call{'s' if calls != 1 else ''} in {facts.stopped_after_steps or facts.steps} step(s); TensorFlow {facts.tensorflow_version}).")
        return
    missing = sum(len(c.variables) for c in result.causes)
    echo(f"{missing} of {total} variables get no gradient ({len(result.causes)} cause{'s' if len(result.causes) != 1 else ''}):\n")
    for number, (cause, finding) in enumerate(zip(result.causes, findings), 1):
        echo(f"[{number}] {finding.rule} {finding.name} ({cause.category}, evidence: {finding.evidence.value})")
        for variable in cause.variables:
            echo(f"    {variable_summary(variable)}")
        if cause.call is not None and cause.call.where is not None:
            echo(f"  gradient call: {cause.call.where.where()}  {cause.call.where.code}")
        if cause.last_connected and cause.last_connected.get("name"):
            last = cause.last_connected
            place = f"line {last['line']}" if last.get("line") else last.get("bound", "")
            echo(f"  last tensor still connected: `{last['name']}` {last.get('dtype', '')} {last.get('shape')} ({place})")
        if cause.site is not None:
            echo(f"  break: {cause.site.where()}  {cause.site.code}  [{cat.DESCRIPTIONS[cause.category]}]")
        if finding.span.path != (cause.site.file if cause.site else None) or finding.span.start_line != (cause.site.line if cause.site else None):
            echo(f"  static finding: {os.path.relpath(finding.span.path)}:{finding.span.start_line}:{finding.span.start_column} {finding.message}")
        echo("  " + explanation(cause))
        if finding.fix is not None:
            verdict = {True: "verified", False: "unverified", None: "not run"}[finding.fix.verified]
            echo(f"  fix on offer ({finding.fix.applicability.value}, {verdict}): {finding.fix.description}")
            if not want_fix:
                echo("    run with --fix to see and verify it" + ("" if finding.fix.applicability.value == "safe" else " (add --unsafe-fixes)"))
        else:
            echo("  no automatic fix")
        echo("")
    if want_fix:
        if not patches:
            echo("No fix to propose" + ("" if unsafe else " (unsafe fixes are left out; add --unsafe-fixes)") + ".")
            return
        for patch in patches:
            echo(patch.diff.rstrip("\n"))
        echo("")
        if verification is not None:
            if not verification.ran or verification.status != "ok":
                echo(f"Verification: not verified: {verification.reason or verification.status}")
            else:
                echo("Verification (re-run of the patched copy), per variable, before -> after:")
                for path, before in verification.before.items():
                    after = verification.after.get(path)
                    echo(f"    {path}: {_mark(before)} -> {_mark(after)}")
                for index, ok in verification.verified.items():
                    finding = findings[index]
                    if finding.fix is None:
                        continue
                    if ok:
                        echo(f"  {finding.rule} fix verified: every variable it was for now gets a gradient, none lost one.")
                    else:
                        failing = verification.still_failing.get(index, [])
                        echo(f"  {finding.rule} fix unverified: still without a gradient: {', '.join(failing) or '-'}"
                             + (f"; lost: {', '.join(verification.lost)}" if verification.lost else ""))


def _mark(value) -> str:
    return {True: "gradient", False: "None", None: "not asked"}[value]


def _indent(text: str, width: int = 2) -> str:
    return "\n".join(" " * width + line for line in text.splitlines())
