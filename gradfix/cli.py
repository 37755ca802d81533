"""The command line: ``gradfix check``, ``gradfix fix``, ``gradfix diagnose``, ``gradfix rules``.

Exit codes: 0 nothing found (or everything fixed), 1 problems found or left,
2 gradfix could not do what was asked (bad input, bad option, failed run).
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

import click

from gradfix import __version__
from gradfix.emit import github, json_output, sarif
from gradfix.emit.text import make_console, render_finding
from gradfix.engine import check_paths, fix_source, iter_python_files, select_rules
from gradfix.model import Applicability
from gradfix.patch import make_diff
from gradfix.registry import all_rules, rule_by_code
from gradfix.source import SourceError, write_source_atomically

EXIT_CLEAN = 0
EXIT_FOUND = 1
EXIT_ERROR = 2


def report_error(message: str) -> None:
    click.echo(f"gradfix: error: {message}", err=True)


def _rules(select: Sequence[str], ignore: Sequence[str]):
    known = {r.code for r in all_rules()} | {r.name for r in all_rules()}
    unknown = [key for key in (*select, *ignore) if key not in known]
    if unknown:
        raise click.BadParameter(f"unknown rule {', '.join(unknown)}; `gradfix rules` lists them")
    return select_rules(select, ignore)


rule_options = [
    click.option("--select", multiple=True, metavar="RULE", help="Only these rules (code or name); repeatable."),
    click.option("--ignore", multiple=True, metavar="RULE", help="Leave these rules out (code or name); repeatable."),
]


def with_rule_options(function):
    for option in reversed(rule_options):
        function = option(function)
    return function


class GradfixGroup(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as error:
            # Bad options exit with gradfix's own error code, not click's 2-for-usage by accident.
            error.exit_code = EXIT_ERROR
            raise


@click.group(cls=GradfixGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gradfix")
def main() -> None:
    """Find and fix TensorFlow/Keras code whose trainable variables get no gradient."""


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@with_rule_options
@click.option("--format", "output_format", type=click.Choice(["text", "json", "sarif", "github"]), default="text", show_default=True)
@click.option("--color/--no-color", default=None, help="Colour the text report (default: when writing to a terminal).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=os.cpu_count() or 1, show_default="the number of cores",
              help="Processes to check a large tree with.")
def check(paths, select, ignore, output_format, color, jobs):
    """Report the statically visible causes of missing gradients in PATHS (files or folders)."""
    rules = _rules(select, ignore)
    console = make_console(sys.stdout, color)
    findings, errors = [], []
    for result in check_paths(paths, rules, jobs=jobs):
        if result.error is not None:
            errors.append((result.path, result.error.problem))
            report_error(str(result.error))
            continue
        findings.extend(result.findings)
        if output_format == "text" and result.findings:
            lines = result.source.text.splitlines() if result.source else None
            for finding in result.findings:
                render_finding(console, finding, lines)
    if output_format == "json":
        click.echo(json_output.render(findings, errors), nl=False)
    elif output_format == "sarif":
        click.echo(sarif.render(findings, errors), nl=False)
    elif output_format == "github":
        click.echo(github.render(findings, errors), nl=False)
    else:
        click.echo(_summary(findings), err=not findings)
    if errors:
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_FOUND if findings else EXIT_CLEAN)


def _summary(findings) -> str:
    if not findings:
        return "No problems found."
    files = len({f.span.path for f in findings})
    safe = sum(1 for f in findings if f.fix and f.fix.applicability is Applicability.SAFE)
    unsafe = sum(1 for f in findings if f.fix and f.fix.applicability is Applicability.UNSAFE)
    text = f"Found {len(findings)} problem{'s' * (len(findings) != 1)} in {files} file{'s' * (files != 1)}"
    notes = []
    if safe:
        notes.append(f"{safe} fixable with `gradfix fix --apply`")
    if unsafe:
        notes.append(f"{unsafe} more with `--unsafe-fixes`" if safe else f"{unsafe} fixable with `gradfix fix --apply --unsafe-fixes`")
    return text + (f" ({'; '.join(notes)})." if notes else ".")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@with_rule_options
@click.option("--apply", "apply_fixes", is_flag=True, help="Write the fixes to the files (default: print the diff only).")
@click.option("--unsafe-fixes", is_flag=True, help="Include fixes that may change what the program computes.")
def fix(paths, select, ignore, apply_fixes, unsafe_fixes):
    """Print (or with --apply, write) the fixes for PATHS as a unified diff."""
    rules = _rules(select, ignore)
    had_error = False
    problems = 0
    changed_files = 0
    for found in iter_python_files(paths):
        path = found.path
        if found.error is not None:
            report_error(str(found.error))
            had_error = True
            continue
        try:
            source = found.read()
            if source is None:
                continue
            outcome = fix_source(source, rules, include_unsafe=unsafe_fixes)
        except SourceError as problem:
            report_error(str(problem))
            had_error = True
            continue
        if not outcome.changed:
            problems += len(outcome.found)
            continue
        click.echo(make_diff(path, source.text, outcome.new_text), nl=False)
        if not apply_fixes:
            problems += len(outcome.found)
            changed_files += 1
            continue
        try:
            write_source_atomically(source, outcome.new_text)
        except (SourceError, OSError) as problem:
            report_error(f"{path}: not written: {problem}")
            had_error = True
            continue
        changed_files += 1
        problems += len(outcome.remaining)
    _fix_summary(apply_fixes, unsafe_fixes, changed_files, problems)
    if had_error:
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_FOUND if problems else EXIT_CLEAN)


def _fix_summary(applied: bool, unsafe: bool, changed_files: int, problems: int) -> None:
    plural = lambda n, word: f"{n} {word}{'s' * (n != 1)}"  # noqa: E731
    if applied and changed_files:
        click.echo(f"Fixed {plural(changed_files, 'file')}.", err=True)
    elif changed_files:
        click.echo(f"Fixes for {plural(changed_files, 'file')} shown above; `--apply` writes them.", err=True)
    if problems:
        left = "left" if applied else "found"
        hint = "" if unsafe else " (`--unsafe-fixes` may fix more)"
        click.echo(f"{plural(problems, 'problem')} {left}{hint}.", err=True)
    elif not changed_files:
        click.echo("No problems found.", err=True)


@main.command()
@click.argument("rule", required=False)
def rules(rule):
    """List the rules, or show one rule's documentation."""
    if rule:
        try:
            chosen = rule_by_code(rule)
        except KeyError:
            report_error(f"unknown rule {rule}; `gradfix rules` lists them")
            sys.exit(EXIT_ERROR)
        click.echo(f"# {chosen.code} {chosen.name}\n\n{chosen.doc()}")
        return
    for chosen in all_rules():
        click.echo(f"{chosen.code}  {chosen.name:<30} {chosen.applicability.value:<13} {chosen.summary}")


def _register_diagnose() -> None:
    from gradfix.diagnose_cli import diagnose

    main.add_command(diagnose)


_register_diagnose()
