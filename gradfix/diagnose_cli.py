"""`gradfix diagnose TARGET [-- ARGS...]`: run the training step, report every variable without a gradient.

Exit codes: 0 every variable gets a gradient, 1 some do not, 2 gradfix could not diagnose.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from gradfix import categories as cat
from gradfix.cli_types import Seconds
from gradfix.messages import variables_summary, wrap
from gradfix.runtime.runner import DEFAULT_TIMEOUT, signal_name

if TYPE_CHECKING:
    from gradfix.diagnose import Diagnosis

# A cause of more variables than this is said in one line (how many, in which layers) unless --verbose is given.
VARIABLES_LISTED = 4

STATUS_TEXT = {
    "crashed": "the program crashed before its first gradient",
    "exited-before-gradient": "the program exited before its first gradient",
    "no-gradient-call": "the program ran to the end without computing a gradient (no GradientTape.gradient, fit or train_on_batch step)",
    "timeout": "the program did not reach a gradient in time and was stopped",
    "no-tensorflow": "TensorFlow cannot be imported by that interpreter",
    "unsupported-tensorflow": "this TensorFlow lacks what gradfix needs",
    "could-not-start": "the interpreter could not be started",
}


@click.command(context_settings={"help_option_names": ["-h", "--help"], "ignore_unknown_options": False})
@click.argument("target", required=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--python", "python", default=sys.executable, show_default="this interpreter",
              help="The interpreter of your project (it needs TensorFlow, nothing else).")
@click.option("--timeout", type=Seconds(), default=None, show_default=f"{DEFAULT_TIMEOUT:g}, or diagnose.timeout",
              help="Seconds before the run is stopped.")
@click.option("--sandbox", is_flag=True, help="Run the program in a scratch copy of its folder (what is not copied is "
              "linked read-only), so that what it writes does not land in your project.")
@click.option("--steps", type=click.IntRange(min=1), default=1, show_default=True, help="Training steps to run.")
@click.option("--quiet", "-q", is_flag=True, help="Hide the program's own output.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (gradfix/schema/report-1.json); same as --format json.")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "html"]), default="text", show_default=True,
              help="The report's form: text for a terminal, JSON for tools, a self-contained HTML review page.")
@click.option("--fix", "want_fix", is_flag=True, help="Try fixes for every cause, each verified alone by re-running the step on a copy.")
@click.option("--apply", "apply_fixes", is_flag=True, help="Write the verified fixes (implies --fix); nothing unverified is written.")
@click.option("--diff", "as_diff", is_flag=True, help="Print the verified fixes as a patch for `gradfix apply`, `git apply` or `patch -p1` (implies --fix).")
@click.option("--interactive", "-i", is_flag=True, help="Review each verified fix and choose which to write (implies --fix).")
@click.option("--unsafe-fixes", is_flag=True, help="Include fixes that may change what the program computes.")
@click.option("--verbose", "-v", is_flag=True, help=f"List every variable without a gradient, one a line (by default, "
              f"a cause of more than {VARIABLES_LISTED} variables says how many, in which layers).")
def diagnose(target, args, python, timeout, sandbox, steps, quiet, as_json, output_format, want_fix, apply_fixes, as_diff,
             interactive, unsafe_fixes, verbose):
    """Run TARGET's first training step and report every variable without a gradient.

    TARGET is a script (train.py), a function in a file (train.py:train_step) or
    a module function (pkg.train:main); arguments after `--` go to the program. Without
    TARGET, `[tool.gradfix] diagnose.target` of the nearest pyproject.toml is run.
    The program runs in its own folder, with its side effects (files it writes are written),
    unless --sandbox is given.
    """
    output_format = "json" if as_json else output_format
    want_fix = want_fix or apply_fixes or as_diff or interactive
    machine = output_format != "text" or as_diff
    cwd = os.getcwd()
    target, timeout, unsafe_fixes = _configured(cwd, target, timeout, unsafe_fixes)
    if target.split(":", 1)[0].endswith(".ipynb"):
        click.echo(f"gradfix: error: {target}: diagnose runs scripts and modules, not notebooks; export it first "
                   "(jupyter nbconvert --to script) and diagnose the script (`gradfix check` reads notebooks)", err=True)
        sys.exit(2)
    progress = None if machine else (lambda line: click.echo(f"gradfix: {line} ...", err=True))
    result = _run(target, args, cwd, sandbox, python=python, timeout=timeout, steps=steps, quiet=quiet or machine,
                  fix=want_fix, unsafe_fixes=unsafe_fixes, progress=progress)
    if not quiet and not machine:
        click.echo("-" * 30 + " end of the program's output " + "-" * 30, err=True)
    patches = result.patches
    if interactive:
        patches = _review(result, patches)
    written = _write(patches) if (apply_fixes or interactive) and patches else False
    if output_format in ("json", "html"):
        from gradfix import report

        document = report.diagnose_document(result, command="diagnose", cwd=cwd, applied=bool(written))
        if output_format == "json":
            click.echo(report.render(document), nl=False)
        else:
            from gradfix.emit import html

            click.echo(html.render(report.with_read_only_findings(document, result, target, cwd)), nl=False)
    elif as_diff:
        from gradfix.patch import patch_header

        for patch in patches:
            click.echo(patch_header(patch.fixes, patch.old_text) + patch.diff, nl=False)
    else:
        _text(result, result.findings, patches, result.verification, want_fix, unsafe_fixes, bool(written), verbose)
        if written:
            for patch in patches:
                click.echo(f"gradfix: wrote {os.path.relpath(patch.path)}")
    sys.exit(_exit_code(result, patches if written else []))


def _configured(cwd: str, target, timeout, unsafe_fixes):
    """The target, timeout and unsafe-fixes choice: the command line's, else `[tool.gradfix]`'s, else the defaults."""
    from gradfix.config import ConfigError, settings_for

    try:
        settings = settings_for(cwd)
    except ConfigError as problem:
        click.echo(f"gradfix: error: {problem.line()}", err=True)
        sys.exit(2)
    if target is None:
        target = settings.diagnose_target
        if target is None:
            click.echo("gradfix: error: no TARGET given, and no [tool.gradfix] diagnose.target in a pyproject.toml "
                       "above this folder", err=True)
            sys.exit(2)
        if settings.root is not None and not os.path.isabs(target.split(":", 1)[0]) and target.split(":", 1)[0].endswith(".py"):
            target = os.path.relpath(os.path.join(settings.root, target), cwd)
    if timeout is None:
        timeout = settings.diagnose_timeout or DEFAULT_TIMEOUT
    return target, timeout, unsafe_fixes or settings.unsafe_fixes


def _run(target, args, cwd, sandbox, **options) -> Diagnosis:
    from gradfix.diagnose import diagnose_target
    from gradfix.runtime.sandbox import SandboxTooLarge

    try:
        return diagnose_target(target, args, cwd=cwd, sandbox=sandbox, **options)
    except SandboxTooLarge as problem:
        click.echo(f"gradfix: error: --sandbox: {problem}", err=True)
        sys.exit(2)


def _exit_code(result: Diagnosis, written) -> int:
    """0 when every variable gets a gradient, or when the fixes written leave no cause unfixed; 1 otherwise."""
    code = result.exit_code
    if code != 1 or not written:
        return code
    fixed = [fix.edits for patch in written for fix in patch.fixes]
    left = [r for r in result.repairs if r.chosen is None or r.chosen.fix.edits not in fixed]
    return 1 if left else 0


def _review(result: Diagnosis, patches):
    """Ask about each verified fix, as `git add -p` does; keep the accepted ones."""
    from gradfix.edits import apply_edits
    from gradfix.emit.text import make_console
    from gradfix.patch import make_diff
    from gradfix.repair import FilePatch
    from gradfix.review import ReviewItem, TerminalAnswers, review

    if not sys.stdin.isatty():
        click.echo("gradfix: error: --interactive needs a terminal", err=True)
        sys.exit(2)
    items = []
    for patch in patches:
        for fix in patch.fixes:
            finding = next((f for f in result.findings if f.fix is fix), None)
            if finding is None:
                continue
            items.append(ReviewItem(finding, fix, make_diff(patch.path, patch.old_text, apply_edits(patch.old_text, fix.edits))))
    review(items, TerminalAnswers(make_console(sys.stdout, None)), total=len(items))
    accepted = {id(item.fix) for item in items if item.accepted}
    kept = []
    for patch in patches:
        fixes = [f for f in patch.fixes if id(f) in accepted]
        if not fixes:
            continue
        text = apply_edits(patch.old_text, [e for f in fixes for e in f.edits])
        kept.append(FilePatch(patch.path, patch.old_text, text, make_diff(patch.path, patch.old_text, text), fixes, patch.source))
    return kept


def _write(patches) -> bool:
    from gradfix.source import SourceError, write_source_atomically

    for patch in patches:
        try:
            write_source_atomically(patch.source, patch.new_text)
        except (SourceError, OSError) as problem:
            click.echo(f"gradfix: error: {problem}", err=True)
            sys.exit(2)
    return True


def _text(result: Diagnosis, findings, patches, verification, want_fix, unsafe, applied=False, verbose=False) -> None:
    from gradfix.diagnose import cause_variables, explanation, variable_summary

    facts = result.facts
    echo = click.echo
    if not facts.diagnosed:
        killed = facts.status == "exited-before-gradient" and (facts.exit_code or 0) < 0
        status = STATUS_TEXT["crashed"] if killed else STATUS_TEXT.get(facts.status, facts.status)
        if facts.status == "unsupported-tensorflow" and facts.error is not None:
            # the child's message names the version and what it lacks: "unsupported TensorFlow 2.99: no ..."
            echo(f"gradfix: could not diagnose {facts.target}: {facts.error.message}.", err=True)
            return
        echo(f"gradfix: could not diagnose {facts.target}: {status}.", err=True)
        if facts.status == "exited-before-gradient" and facts.exit_code is not None:
            # a negative code is the signal that killed the program (the error below names it)
            if facts.exit_code >= 0:
                echo(f"  exit code {facts.exit_code}", err=True)
            elif facts.error is None:
                echo(f"  killed by {signal_name(-facts.exit_code)}", err=True)
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
                     f"{finding.rule} [{finding.name}] {finding.message}")
                for line in wrap(finding.detail, "    "):
                    echo(line)
                if finding.fix is not None:
                    echo(f"    fix on offer ({finding.fix.applicability.value}): {finding.fix.description}"
                         " (`gradfix fix` applies it)")
            echo("")
        return
    gradients = facts.gradient_status()
    total = len(gradients)
    if not result.causes:
        calls = len(facts.gradient_calls)
        echo(style("All", fg="green", bold=True) + f" {total} variables get a gradient ({calls} gradient call{'s' if calls != 1 else ''} in {facts.stopped_after_steps or facts.steps} step(s); TensorFlow {facts.tensorflow_version}).")
        _notes(facts)
        return
    missing = sum(len(c.variables) for c in result.causes)
    echo(style(f"{missing} of {total} variables get no gradient", fg="red", bold=True) + f" ({len(result.causes)} cause{'s' if len(result.causes) != 1 else ''}):\n")
    for number, (cause, finding) in enumerate(zip(result.causes, findings), 1):
        named = "" if cause.category == finding.name else f" ({cat.DESCRIPTIONS[cause.category]})"
        echo(style(f"[{number}] {finding.rule} {finding.name}", bold=True) + f"{named}, evidence: {finding.evidence.value}")
        if verbose or len(cause.variables) <= VARIABLES_LISTED:
            for variable in cause.variables:
                echo(f"    {variable_summary(variable)}")
        else:
            echo(f"    {cause_variables(cause)}; --verbose lists each")
        if cause.call is not None and cause.call.where is not None:
            echo(f"  gradient call: {cause.call.where.where()}  {cause.call.where.code}{_called_at(cause.call.where)}")
        if cause.last_connected and cause.last_connected.get("name"):
            last = cause.last_connected
            place = f"line {last['line']}" if last.get("line") else last.get("bound", "")
            echo(f"  last tensor still connected: `{last['name']}` {last.get('dtype', '')} {last.get('shape')} ({place})")
        if cause.site is not None:
            echo(f"  break: {cause.site.where()}  {cause.site.code}{_called_at(cause.site)}")
        if finding.span.path != (cause.site.file if cause.site else None) or finding.span.start_line != (cause.site.line if cause.site else None):
            echo(f"  static finding: {os.path.relpath(finding.span.path)}:{finding.span.start_line}:{finding.span.start_column} {finding.message}")
        echo("  " + explanation(cause))
        repair = result.repairs[number - 1] if number - 1 < len(result.repairs) else None
        if repair is not None:
            _repair_text(repair, verbose)
        elif finding.fix is not None:
            echo(f"  fix on offer ({finding.fix.applicability.value}, not run): {finding.fix.description}")
            if not want_fix:
                echo("    run with --fix to see and verify it")
        else:
            echo("  no automatic fix")
        echo("")
    _notes(facts)
    if not want_fix:
        if any(f.fix is not None for f in findings):
            echo("Next: `--fix` tries the fixes, each verified by re-running the step on a copy; `--apply` writes the verified ones.")
        return
    if want_fix:
        if not patches:
            echo("Nothing to write: " + ("; ".join(result.left_out) if result.left_out else "no fix was verified") + ".")
            return
        for patch in patches:
            echo(patch.diff.rstrip("\n"))
        echo("")
        for line in result.left_out:
            echo(f"Left out: {line}")
        if verification is not None:
            echo("The fixes above were verified together too: " + ("every variable they were for gets a gradient."
                 if verification.verified else verification.reason))
        if not applied:
            echo("Next: `--apply` writes the fixes above" + ("" if unsafe or not any(
                "unsafe" in line for line in result.left_out) else "; `--unsafe-fixes` adds the unsafe ones") + ".")


def _notes(facts) -> None:
    """What the run could not see or saw differently from a plain run: one line each, with its place when it has one."""
    for note in facts.shown_notes():
        site = note.get("site") or {}
        where = f"{os.path.relpath(site['file'])}:{site.get('line', '?')}:1: " if site.get("file") else ""
        click.echo(f"Note: {where}{note.get('message')}")


def style(text: str, **styles) -> str:
    """Colour for a terminal; none when piped (click strips it) or when NO_COLOR is set."""
    if os.environ.get("NO_COLOR"):
        return text
    return click.style(text, **styles)


def _repair_text(repair, verbose: bool = False) -> None:
    """The fixes tried for one finding: the chosen one first, with its verdict, then the others."""
    echo = click.echo
    chosen = repair.chosen
    for attempt in repair.attempts:
        fix, verification = attempt.fix, attempt.verification
        if verification is None:
            verdict = "not tried" if chosen is not None or fix.applicability.value != "display-only" else "display only"
        elif verification.verified:
            verdict = "verified"
        else:
            verdict = f"not verified: {verification.reason}"
        mark = "fix" if attempt is chosen else "other fix" if chosen is not None else "fix tried"
        colour = "green" if verification is not None and verification.verified else "yellow" if verification is not None else None
        echo("  " + style(f"{mark} ({fix.applicability.value}, {verdict})", fg=colour) + f": {fix.description}")
        if fix.reason and fix.applicability.value != "safe":
            echo(f"    why it is {fix.applicability.value}: {fix.reason}")
        if attempt.set_aside:
            echo(f"    not used: {attempt.set_aside}")
        if attempt is chosen:
            if verification.update_words():
                echo(f"    verification: {verification.update_words()}")
            before = verification.before
            restored = sorted(k for k in verification.after if before.get(k) is False)
            if verbose or len(restored) <= VARIABLES_LISTED:
                for key in restored:
                    echo(f"    {key}: None -> gradient")
            else:
                echo(f"    {variables_summary(restored)}: None -> gradient")
    if not repair.attempts or chosen is None:
        echo(f"  {repair.note}")


def _indent(text: str, width: int = 2) -> str:
    return "\n".join(" " * width + line for line in text.splitlines())


def _called_at(site) -> str:
    """Where the function holding a site was called from, when it is a helper of the user's: the repair is made there."""
    if not site.callers or not site.function or site.function == "<module>":
        return ""
    caller = site.callers[0]
    return f"  (in `{site.function}`, called at {caller.where()})"
