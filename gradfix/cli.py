"""The command line: ``gradfix check``, ``gradfix fix``, ``gradfix diagnose``, ``gradfix rules``.

Exit codes: 0 nothing found (or everything fixed), 1 problems found or left,
2 gradfix could not do what was asked (bad input, bad option, failed run).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from typing import TYPE_CHECKING, ClassVar, Sequence

import click

from gradfix import __version__
from gradfix.cli_types import Seconds

if TYPE_CHECKING:
    from gradfix.source import SourceError

# Start-up stays quick (`gradfix --version`, `gradfix rules`): what a command needs (LibCST, the engine, Rich, the
# emitters, the runtime) is imported inside it, never here; tests/test_startup_imports.py holds this.

EXIT_CLEAN = 0
EXIT_FOUND = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells expect (128 + SIGINT)


def _emit_for_tools(output_format: str, findings, errors) -> bool:
    """`check`'s findings as JSON, SARIF or GitHub annotations; False when the format is the text report."""
    if output_format == "json":
        from gradfix.emit import json_output

        code = EXIT_ERROR if errors else (EXIT_FOUND if findings else EXIT_CLEAN)
        click.echo(json_output.render(findings, errors, command="check", exit_code=code), nl=False)
    elif output_format == "sarif":
        from gradfix.emit import sarif

        click.echo(sarif.render(findings, errors), nl=False)
    elif output_format == "github":
        from gradfix.emit import github

        click.echo(github.render(findings, errors), nl=False)
    else:
        return False
    return True


def report_error(message: str) -> None:
    click.echo(f"gradfix: error: {message}", err=True)


class ErrorLog:
    """The errors of one run, each said once on standard error and kept for the JSON, SARIF and GitHub reports.

    A ``pyproject.toml`` gradfix cannot use is one error naming it, however many files it applies to and whether
    they were named or met in a folder."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []  # (path, problem) for the machine-readable reports
        self.files = 0  # errors of files, rather than of configuration
        self._config_seen: set[tuple[str, str]] = set()

    def add(self, error: SourceError) -> None:
        from gradfix.config import ConfigError

        if isinstance(error, ConfigError):
            key = (os.path.abspath(error.path), error.problem)
            if key in self._config_seen:
                return
            self._config_seen.add(key)
            line = error.line()
            report_error(line)
            self.items.append((error.path, line.split(": ", 1)[1]))
            return
        report_error(str(error))
        self.items.append((error.path, error.problem))
        self.files += 1

    @property
    def configs(self) -> int:
        return len(self._config_seen)

    def __bool__(self) -> bool:
        return bool(self.items)


def _rules(select: Sequence[str], ignore: Sequence[str]):
    from gradfix.engine import select_rules
    from gradfix.registry import all_rules

    known = {r.code for r in all_rules()} | {r.name for r in all_rules()}
    unknown = [key for key in (*select, *ignore) if key not in known]
    if unknown:
        raise click.BadParameter(f"unknown rule {', '.join(unknown)}; `gradfix rules` lists them")
    return select_rules(select, ignore)


def _rule_list(ctx, param, value) -> tuple[str, ...]:
    """``--select GF001,GF003`` as ``--select GF001 --select GF003``, as Ruff takes them."""
    return tuple(key.strip() for item in value for key in item.split(",") if key.strip())


rule_options = [
    click.option("--select", multiple=True, metavar="RULE[,RULE...]", callback=_rule_list,
                 help="Only these rules (codes or names); comma-separated or repeated."),
    click.option("--ignore", multiple=True, metavar="RULE[,RULE...]", callback=_rule_list,
                 help="Leave these rules out (codes or names); comma-separated or repeated."),
]


def with_rule_options(function):
    for option in reversed(rule_options):
        function = option(function)
    return function


def reads_stdin(handler_name: str):
    """``-`` as the only path reads the source from standard input (for editors), handled by ``handler_name``."""
    import functools

    def decorate(function):
        @functools.wraps(function)
        def command(*args, stdin_filename=None, **kwargs):
            if "-" in kwargs["paths"]:
                return globals()[handler_name](stdin_filename=stdin_filename, **kwargs)
            if stdin_filename is not None:
                raise click.UsageError("--stdin-filename goes with `-` as the path")
            return function(*args, **kwargs)

        return click.option("--stdin-filename", metavar="PATH", default=None,
                            help="With `-` as the path: the file the standard input stands for (its name in the "
                                 "report, its [tool.gradfix] settings).")(command)

    return decorate


class GradfixGroup(click.Group):
    """gradfix's commands; ``diagnose`` lives in its own module, loaded when it is asked for (or listed in --help)."""

    LAZY: ClassVar[dict[str, tuple[str, str]]] = {"diagnose": ("gradfix.diagnose_cli", "diagnose")}

    def list_commands(self, ctx):
        return sorted({*super().list_commands(ctx), *self.LAZY})

    def get_command(self, ctx, name):
        if name in self.LAZY and name not in self.commands:
            module, attribute = self.LAZY[name]
            self.add_command(getattr(importlib.import_module(module), attribute), name)
        return super().get_command(ctx, name)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as error:
            # Bad options exit with gradfix's own error code, not click's 2-for-usage by accident.
            error.exit_code = EXIT_ERROR
            raise
        except KeyboardInterrupt:
            click.echo("gradfix: interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)


@click.group(cls=GradfixGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gradfix")
def main() -> None:
    """Find and fix TensorFlow/Keras code whose trainable variables get no gradient."""


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@with_rule_options
@click.option("--format", "output_format", type=click.Choice(["text", "concise", "json", "sarif", "github"]), default="text",
              show_default=True, help="text: each finding with its excerpt, details and fix; concise: one "
                                      "`path:line:col: CODE message` line each; json, sarif, github: for tools.")
@click.option("--color/--no-color", default=None, help="Colour the text report (default: when writing to a terminal).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=os.cpu_count() or 1, show_default="the number of cores",
              help="Processes to check a large tree with.")
@click.option("--force-exclude", is_flag=True, help="Apply exclusions (.gitignore, [tool.gradfix] exclude) to files named here too.")
@click.option("--report-unused-noqa", is_flag=True, help="Report `# noqa: GF...` comments that suppress nothing.")
@click.option("--progress/--no-progress", default=None, help="A progress bar on standard error (default: on a terminal, for large trees).")
@click.option("--fix", "apply_fixes", is_flag=True,
              help="Write the safe fixes, as `gradfix fix --apply` does, then report the problems left (as Ruff's `check --fix`).")
@click.option("--unsafe-fixes", is_flag=True, help="With --fix: write the unsafe fixes too.")
@reads_stdin("_check_stdin")
def check(paths, select, ignore, output_format, color, jobs, force_exclude, report_unused_noqa, progress, apply_fixes,
          unsafe_fixes):
    """Report the statically visible causes of missing gradients in PATHS (files or folders).

    With --fix, write the safe fixes first and report what is left (`gradfix fix` shows them as a diff)."""
    from gradfix.edits import split_lines
    from gradfix.emit import concise
    from gradfix.emit.text import make_console, render_finding
    from gradfix.engine import CheckOptions, check_paths
    from gradfix.notebook import cell_lines

    _rules(select, ignore)  # unknown codes are an error before anything is read
    _refuse_bad_time_setting()
    if unsafe_fixes and not apply_fixes:
        raise click.UsageError("--unsafe-fixes goes with --fix (or use `gradfix fix --unsafe-fixes`)")
    if apply_fixes:
        if report_unused_noqa:
            raise click.UsageError("--report-unused-noqa does not go with --fix; run `gradfix check --report-unused-noqa` after it")
        _check_and_fix(paths, select, ignore, unsafe_fixes, output_format, color, force_exclude)
    options = CheckOptions(select=tuple(select), ignore=tuple(ignore))
    console = make_console(sys.stdout, color)
    findings, errors, checked, unused = [], ErrorLog(), 0, []
    with _progress_bar(progress) as advance:
        for result in check_paths(paths, jobs=jobs, options=options, force_exclude=force_exclude, progress=advance):
            if result.warning is not None:
                click.echo(f"gradfix: warning: {result.warning}", err=True)
                continue
            if result.error is not None:
                # a file checked in part (a rule failed) keeps the findings of the rules that ran
                errors.add(result.error)
            else:
                checked += 1
            findings.extend(result.findings)
            if report_unused_noqa:
                unused.extend((result.path, *item) for item in result.unused_noqa)
            if output_format == "concise":
                for finding in result.findings:
                    click.echo(concise.render_finding(finding))
            if output_format == "text" and result.findings:
                lines = split_lines(result.source.text) if result.source else None
                for finding in result.findings:
                    if result.notebook is not None:
                        lines = cell_lines(result.notebook, finding)
                    render_finding(console, finding, [line.rstrip("\r\n") for line in lines] if lines else None)
    for path, line, column, codes in unused:
        click.echo(f"{path}:{line}:{column}: unused noqa: {codes} (nothing to suppress here)",
                   err=output_format not in ("text", "concise"))
    if not _emit_for_tools(output_format, findings, errors.items):
        click.echo(_summary(findings, checked, errors.files, errors.configs), err=not findings)
    if errors:
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_FOUND if findings or unused else EXIT_CLEAN)


def _refuse_bad_time_setting() -> None:
    from gradfix.engine import file_time_setting

    try:
        file_time_setting()
    except ValueError as problem:
        report_error(str(problem))
        sys.exit(EXIT_ERROR)


PROGRESS_MIN_FILES = 200


@contextlib.contextmanager
def _progress_bar(wanted: bool | None):
    """A progress bar on standard error when it is a terminal (or when asked), for trees of many files."""
    if wanted is False or (wanted is None and not sys.stderr.isatty()):
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from gradfix.emit.text import make_console

    bar = Progress("Checking", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=make_console(sys.stderr, None), transient=True)
    task = None

    def advance(done: int, total: int) -> None:
        nonlocal task
        if total < PROGRESS_MIN_FILES and not wanted:
            return
        if task is None:
            bar.start()
            task = bar.add_task("check", total=total)
        bar.update(task, completed=done)

    try:
        yield advance
    finally:
        if task is not None:
            bar.stop()


def _summary(findings, checked: int | None = None, failed: int = 0, configs: int = 0) -> str:
    from gradfix.model import Applicability

    unusable = (f"{configs} pyproject.toml {'file' if configs == 1 else 'files'} could not be used"
                if configs else "")
    if not findings:
        if configs and not failed and not checked:
            return f"No files checked: {unusable} (see the error{'s' * (configs != 1)} above)."
        if failed or configs:
            parts = [f"{failed} could not be checked"] if failed else []
            parts += [unusable] if configs else []
            return (f"No problems found in the {checked} file{'s' * (checked != 1)} checked; "
                    f"{' and '.join(parts)} (see the errors above).")
        if checked == 0:
            return "No files checked: every path given was excluded."
        return "No problems found."
    files = len({f.span.path for f in findings})
    safe = sum(1 for f in findings if f.fix and f.fix.applicability is Applicability.SAFE)
    unsafe = sum(1 for f in findings if f.fix and f.fix.applicability is Applicability.UNSAFE)
    text = f"Found {len(findings)} problem{'s' * (len(findings) != 1)} in {files} file{'s' * (files != 1)}"
    notes = [f"{failed} file{'s' * (failed != 1)} not fully checked, see the errors above"] if failed else []
    notes += [f"{unusable}, see the errors above"] if configs else []
    if safe:
        notes.append(f"{safe} fixable with `gradfix check --fix`")
    if unsafe:
        notes.append(f"{unsafe} more with `--unsafe-fixes`" if safe else f"{unsafe} fixable with `gradfix check --fix --unsafe-fixes`")
    return text + (f" ({'; '.join(notes)})." if notes else ".")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@with_rule_options
@click.option("--apply", "apply_fixes", is_flag=True, help="Write the fixes to the files (the diff is printed as well).")
@click.option("--diff", "show_diff", is_flag=True,
              help="Print the fixes as a patch for `git apply`, `patch -p1` or `gradfix apply` (the default; "
                   "with --interactive, print the accepted fixes instead of writing them).")
@click.option("--unsafe-fixes", is_flag=True, help="Include fixes that may change what the program computes.")
@click.option("--interactive", "-i", is_flag=True,
              help="Review each fix (what, why, applicability, verification, diff) and accept or skip it, "
                   "as `git add -p`; the accepted fixes are written.")
@click.option("--format", "output_format", type=click.Choice(["diff", "json"]), default="diff", show_default=True,
              help="diff: the patch on standard output; json: gradfix's report document.")
@click.option("--color/--no-color", default=None, help="Colour the interactive review (default: when on a terminal).")
@click.option("--force-exclude", is_flag=True, help="Apply exclusions (.gitignore, [tool.gradfix] exclude) to files named here too.")
@click.option("--force", "force_write", is_flag=True, help="Write read-only files too (they are refused otherwise).")
@reads_stdin("_fix_stdin")
def fix(paths, select, ignore, apply_fixes, show_diff, unsafe_fixes, interactive, output_format, color, force_exclude, force_write):
    """Print (or with --apply, write) the fixes for PATHS as a unified diff."""
    from gradfix import fixing, report
    from gradfix.patch import make_diff, patch_header
    from gradfix.source import SourceError

    rules = _rules(select, ignore)
    _refuse_bad_time_setting()
    if interactive and not sys.stdin.isatty():
        raise click.UsageError("--interactive needs a terminal to ask on; use --diff and `gradfix apply` instead")
    write = apply_fixes or (interactive and not show_diff)
    errors = ErrorLog()
    sources, notebooks = _read_to_fix(paths, select, ignore, unsafe_fixes, force_exclude, interactive, errors)
    if interactive:
        outcomes = _review(sources, rules, unsafe_fixes, color)
    else:
        outcomes = _fix_all(sources, rules, unsafe_fixes, per_file=(select, ignore))
    outcomes += list(notebooks.values())
    changed_files, fixes_written, left, patches, not_written = 0, 0, [], [], []
    for outcome in outcomes:
        if isinstance(outcome, SourceError):
            errors.add(outcome)
            continue
        source = outcome.source
        if not outcome.changed:
            left.extend(outcome.found)
            continue
        diff = patch_header(outcome.applied, source.text) + make_diff(source.path, source.text, outcome.new_text)
        if output_format == "diff" and (show_diff or not interactive):
            click.echo(diff, nl=False)
        if write:
            if not _write_fixed(outcome, notebooks, force_write, errors):
                not_written.extend(outcome.found)  # every problem of the file stays, fixable or not
                continue
            fixes_written += len(outcome.applied)
        left.extend(outcome.remaining)
        patches.append(report.patch_dict(source.path, diff, outcome.applied, applied=write))
        changed_files += 1
    # Without --apply the problems the fixes shown would solve still count: nothing was written.
    problems = len(left) if write else len(left) + sum(len(p["fixes"]) for p in patches)
    code = EXIT_ERROR if errors else (EXIT_FOUND if problems else EXIT_CLEAN)
    if output_format == "json":
        findings = [f for o in outcomes if not isinstance(o, SourceError) for f in o.found]
        document = report.document("fix", findings, fixes=patches, errors=errors.items, exit_code=code)
        click.echo(report.render(document), nl=False)
    declined = {key: why for o in outcomes for key, why in getattr(o, "declined", {}).items()}
    for line in fixing.summary(write, unsafe_fixes, changed_files, fixes_written, left, not_written, declined):
        if line == "No problems found." and errors:
            line = "No problems found in the files read; some could not be read or written (see the errors above)."
        click.echo(line, err=True)
    sys.exit(code)


def _write_fixed(outcome, notebooks, force_write: bool, errors: ErrorLog) -> bool:
    """Write one file's fixed text (a notebook's JSON is checked first); False, with the error said, when it cannot be."""
    from gradfix.notebook import check_notebook_json
    from gradfix.source import SourceError, write_source_atomically

    try:
        validate = check_notebook_json if outcome.source.path in notebooks else None
        write_source_atomically(outcome.source, outcome.new_text, force=force_write, validate=validate)
    except SourceError as problem:
        errors.add(problem)
        return False
    return True


def _read_to_fix(paths, select, ignore, unsafe_fixes, force_exclude, interactive, errors: ErrorLog):
    """The sources to fix, and the notebooks' fixes (made as they are read); what cannot be read goes to ``errors``."""
    from gradfix.engine import AnalysisTimeout, iter_python_files, time_bound, time_limit, timed_out
    from gradfix.notebook import is_notebook
    from gradfix.source import NotRegularFileError, SourceError

    sources, notebooks = [], {}
    for found in iter_python_files(paths, force_exclude=force_exclude):
        if found.error is not None:
            errors.add(found.error)  # an unreadable folder, an unusable pyproject.toml: in the JSON too
            continue
        try:
            if is_notebook(found.path):
                if interactive:
                    raise SourceError(found.path, "--interactive does not review notebooks; use --diff or --apply")
                limit = time_limit(found.path)
                try:
                    with time_bound(limit):
                        notebooks[found.path] = _fix_notebook(found.path, select, ignore, unsafe_fixes)
                except AnalysisTimeout:
                    raise timed_out(found.path, limit) from None
                continue
            source = found.read()
        except NotRegularFileError as problem:
            if found.named:
                errors.add(problem)
            else:
                click.echo(f"gradfix: warning: {problem}", err=True)
            continue
        except SourceError as problem:
            errors.add(problem)
            continue
        if source is not None:
            sources.append(source)
    return sources, notebooks


def _check_and_fix(paths, select, ignore, unsafe_fixes, output_format, color, force_exclude) -> None:
    """`check --fix`: write the fixes (safe ones, unsafe ones too with --unsafe-fixes or `unsafe-fixes = true`), then
    report the problems left in the output format asked for, and how many were fixed, as Ruff's `check --fix` does."""
    from gradfix import report
    from gradfix.edits import split_lines
    from gradfix.emit import concise, json_output
    from gradfix.emit.text import make_console, render_finding
    from gradfix.fixing import plural
    from gradfix.model import Applicability
    from gradfix.patch import make_diff, patch_header
    from gradfix.source import SourceError

    errors = ErrorLog()
    sources, notebooks = _read_to_fix(paths, select, ignore, unsafe_fixes, force_exclude, False, errors)
    outcomes = _fix_all(sources, None, unsafe_fixes, per_file=(select, ignore)) + list(notebooks.values())
    console = make_console(sys.stdout, color)
    left, fixed, fixes = [], 0, []
    for outcome in outcomes:
        if isinstance(outcome, SourceError):
            errors.add(outcome)
            continue
        remaining, text = outcome.found, outcome.source.text
        if outcome.changed and _write_fixed(outcome, notebooks, False, errors):
            remaining, text = outcome.remaining, outcome.new_text
            fixed += len(outcome.applied)
            diff = patch_header(outcome.applied, outcome.source.text) + make_diff(
                outcome.source.path, outcome.source.text, outcome.new_text)
            fixes.append(report.patch_dict(outcome.source.path, diff, outcome.applied, applied=True))
        left.extend(remaining)
        if output_format in ("text", "concise"):
            lines = None if outcome.source.path in notebooks else [line.rstrip("\r\n") for line in split_lines(text)]
            for finding in remaining:
                if output_format == "concise":
                    click.echo(concise.render_finding(finding))
                else:
                    render_finding(console, finding, lines)
    code = EXIT_ERROR if errors else (EXIT_FOUND if left else EXIT_CLEAN)
    if output_format == "json":
        click.echo(json_output.render(left, errors.items, command="check", fixes=fixes, exit_code=code), nl=False)
    elif not _emit_for_tools(output_format, left, errors.items):
        found = fixed + len(left)
        if found:
            click.echo(f"Found {plural(found, 'problem')} ({fixed} fixed, {len(left)} remaining).", err=not left)
        else:
            click.echo(_summary([], len(sources) + len(notebooks), errors.files, errors.configs), err=True)
        if not unsafe_fixes and any(f.fix and f.fix.applicability is Applicability.UNSAFE for f in left):
            click.echo("`--unsafe-fixes` would fix more of them; review them first (`gradfix fix --interactive`).",
                       err=not left)
    sys.exit(code)


def _fix_all(sources, rules, unsafe_fixes, per_file=None):
    """Fix each source; with ``per_file`` (the --select and --ignore given), rules and
    unsafe-fixes come from the file's [tool.gradfix] table as well."""
    from gradfix import engine
    from gradfix.engine import AnalysisTimeout, time_bound, time_limit, timed_out
    from gradfix.source import SourceError

    outcomes = []
    for source in sources:
        try:
            chosen, unsafe = rules, unsafe_fixes
            if per_file is not None:
                chosen, unsafe = _configured(source.path, *per_file, unsafe_fixes)
            limit = time_limit(source.path)
            try:
                with time_bound(limit):
                    outcomes.append(engine.fix_source(source, chosen, include_unsafe=unsafe))
            except AnalysisTimeout:
                outcomes.append(timed_out(source.path, limit))
        except SourceError as problem:  # a ConfigError too: said once, naming the pyproject.toml
            outcomes.append(problem)
    return outcomes


def _configured(path, select, ignore, unsafe_fixes):
    from gradfix.config import settings_for
    from gradfix.engine import select_rules

    settings = settings_for(path)
    return select_rules(select=settings.rule_codes(path, select, ignore)), unsafe_fixes or settings.unsafe_fixes


def _fix_notebook(path, select, ignore, unsafe_fixes):
    """The fix of a notebook's code cells, as an outcome on its JSON text (so the diff and the write are the file's)."""
    from gradfix.engine import FixOutcome, fix_source
    from gradfix.notebook import fixed_notebook, read_notebook
    from gradfix.source import SourceError

    notebook = read_notebook(path)
    chosen, unsafe = _configured(path, select, ignore, unsafe_fixes)
    start = notebook.layout()
    try:
        outcome = fix_source(notebook.source(), chosen, include_unsafe=unsafe, layout=start)
    except SourceError as problem:
        raise start.map_error(problem) from None
    end = outcome.layout
    new_json = fixed_notebook(notebook, end) if outcome.changed else notebook.stored.text
    return FixOutcome(source=notebook.stored, new_text=new_json, found=[start.map_finding(f) for f in outcome.found],
                      applied=outcome.applied, remaining=[end.map_finding(f) for f in outcome.remaining])


def _review(sources, rules, unsafe_fixes, color):
    from gradfix import fixing
    from gradfix.emit.text import make_console
    from gradfix.review import TerminalAnswers, review

    files = [fixing.ReviewedFile(source) for source in sources]
    items = (item for reviewed in files for item in fixing.review_items(reviewed, rules, unsafe_fixes))
    review(items, TerminalAnswers(make_console(sys.stdout, color)), total=_on_offer(sources, rules, unsafe_fixes))
    return [reviewed.error or reviewed for reviewed in files if reviewed.error or reviewed.new_text]


def _on_offer(sources, rules, unsafe_fixes) -> int:
    """How many fixes a review of these files begins with (the engine keeps each region's findings, so the
    review's own analysis of each file does not run again)."""
    from gradfix.engine import analyze, applicable
    from gradfix.source import SourceError

    count = 0
    for source in sources:
        try:
            count += sum(1 for finding in analyze(source, rules) if applicable(finding.fix, unsafe_fixes))
        except SourceError:
            continue
    return count


@main.command()
@click.argument("rule", required=False)
@click.option("--color/--no-color", default=None, help="Colour the page (default: when writing to a terminal).")
def rules(rule, color):
    """List the rules, or show one rule's page (RULE: its code or name, in any case)."""
    from gradfix.registry import all_rules, rule_by_code

    if rule:
        from rich.markdown import Markdown

        from gradfix.docs import page, rule_url
        from gradfix.emit.text import make_console

        try:
            chosen = rule_by_code(rule)
        except KeyError:
            report_error(f"unknown rule {rule}; `gradfix rules` lists them")
            sys.exit(EXIT_ERROR)
        console = make_console(sys.stdout, color)
        console.print(Markdown(page(chosen)))
        console.print(f"\n{rule_url(chosen.code)}", style="dim")
        return
    for chosen in all_rules():
        click.echo(f"{chosen.code}  {chosen.name:<30} {chosen.applicability.value:<13} {chosen.summary}")


@main.command("apply")
@click.argument("patch_file", metavar="PATCH", type=click.File("rb"))
@click.option("--check", "check_only", is_flag=True, help="Say what would be applied; write nothing.")
def apply_command(patch_file, check_only):
    """Apply PATCH (from `gradfix fix --diff`) to the files here: every hunk, or nothing.

    Refused, with nothing written: text that is not a patch, a path outside the working
    directory, a file named twice, a file with other hard links, a read-only file, a file
    changed since the patch was made, a hunk that no longer fits, a result that does not parse.
    """
    from gradfix.apply_patch import ApplyFailed, PatchRefused, apply_patch
    from gradfix.patch import quote_name
    from gradfix.source import MAX_BYTES_ENV, max_patch_bytes

    name = getattr(patch_file, "name", "<stdin>")
    name = "standard input" if name in ("<stdin>", "-") else name
    limit = max_patch_bytes()
    raw = patch_file.read(limit + 1)
    if len(raw) > limit:
        report_error(f"{name}: over gradfix's limit of {limit / 1024 / 1024:.1f} MB for a patch (four times "
                     f"{MAX_BYTES_ENV}); nothing written")
        sys.exit(EXIT_ERROR)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        report_error(f"{name}: not a patch (not UTF-8 text); nothing written")
        sys.exit(EXIT_ERROR)
    try:
        planned = apply_patch(text, os.getcwd(), check_only=check_only)
    except PatchRefused as refused:
        report_error(f"{name}: {refused}; nothing written")
        sys.exit(EXIT_ERROR)
    except ApplyFailed as failed:
        report_error(f"{name}: {failed}")
        sys.exit(EXIT_ERROR)
    verb = "Would patch" if check_only else "Patched"
    for item in planned:
        click.echo(f"{verb} {quote_name(item.path)} ({item.hunks} hunk{'s' * (item.hunks != 1)})")
        for note in item.notes:
            click.echo(f"  {note}")
    if check_only:
        click.echo(f"The patch applies cleanly to {len(planned)} file{'s' * (len(planned) != 1)}; nothing written.")


@main.command("report", context_settings={"ignore_unknown_options": False})
@click.argument("target")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--output", "-o", default="gradfix-report.html", show_default=True, type=click.Path(dir_okay=False),
              help="The HTML file to write.")
@click.option("--python", "python", default=sys.executable, show_default="this interpreter",
              help="The interpreter of your project (it needs TensorFlow).")
@click.option("--timeout", type=Seconds(), default=None, help="Seconds before each run is stopped.")
@click.option("--sandbox", is_flag=True, help="Run the program in a scratch copy of its folder (what is not copied is "
              "linked read-only), so that what it writes does not land in your project.")
@click.option("--quiet", "-q", is_flag=True, help="Hide the program's own output and gradfix's progress; errors are still shown.")
def report_command(target, args, output, python, timeout, sandbox, quiet):
    """Run TARGET's first step, fix what it finds, and write a review page (one self-contained HTML file).

    Exit status: 0 when every trainable variable gets a gradient, 1 when some do not, 2 when the program could
    not be diagnosed or the page not written."""
    from gradfix import report
    from gradfix.emit import html
    from gradfix.runtime.sandbox import SandboxTooLarge

    refusal = _report_output_refusal(output, target)
    if refusal:
        report_error(f"{output}: not written: {refusal}")
        sys.exit(EXIT_ERROR)
    if not quiet:
        # a line, not a spinner: the program's own output follows on the same terminal
        click.echo(f"gradfix: running {target} to its first gradient, then each fixed copy ...", err=True)
    try:
        document = report.target_document(target, args, python=python, timeout=timeout, sandbox=sandbox, quiet=quiet)
    except SandboxTooLarge as problem:
        report_error(f"--sandbox: {problem}")
        sys.exit(EXIT_ERROR)
    page = html.render(document)
    try:
        _write_text_atomically(output, page)
    except OSError as problem:
        report_error(f"{output}: not written: {problem.strerror or problem}")
        sys.exit(EXIT_ERROR)
    if not quiet:
        findings = len(document["findings"])
        click.echo(f"Wrote {output}: {findings} finding{'s' * (findings != 1)}, status {document['diagnose']['status']}.",
                   err=True)
    sys.exit(document["exit_code"])


REPORT_NEVER_OVER = frozenset({".py", ".pyi", ".pyw", ".pyx", ".pxd", ".ipynb"})


def _report_output_refusal(output: str, target: str) -> str:
    """Why the review page must not be written at ``output`` (over a Python source or the program run), or ""."""
    if any(os.path.splitext(name)[1].lower() in REPORT_NEVER_OVER for name in (output, os.path.realpath(output))):
        return "a review page is never written over a Python source; name an .html file"
    program = target.split(":", 1)[0]
    try:
        if os.path.exists(output) and os.path.exists(program) and os.path.samefile(output, program):
            return f"it is {target}, the program to run; name an .html file"
    except OSError:
        pass
    return ""


def _write_text_atomically(path: str, text: str) -> None:
    """Replace ``path`` by rename; a link is written through to its target, an existing file keeps its mode."""
    import stat
    import tempfile

    path = os.path.realpath(path)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = 0o644
    directory = os.path.dirname(path)
    handle, temporary = tempfile.mkstemp(prefix=".gradfix-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _stdin_source(paths, stdin_filename):
    """The source on standard input, named after --stdin-filename; None for an empty input."""
    from gradfix.source import MAX_BYTES_ENV, EmptySourceError, SourceError, decode_source, max_file_bytes

    if tuple(paths) != ("-",):
        raise click.UsageError("`-` reads the source from standard input: give it as the only path")
    name = stdin_filename or "-"
    limit = max_file_bytes()
    raw = sys.stdin.buffer.read(limit + 1)  # and no more: standard input may be endless
    if len(raw) > limit:
        raise SourceError(name, f"standard input is over gradfix's limit of {limit / 1024 / 1024:.1f} MB "
                                f"(set {MAX_BYTES_ENV} to raise it); the rest was not read")
    try:
        return decode_source(name, raw)
    except EmptySourceError:
        return None


def _stdin_rules(stdin_filename, select, ignore, unsafe_fixes=False):
    _rules(select, ignore)
    return _configured(os.path.abspath(stdin_filename or "stdin.py"), select, ignore, unsafe_fixes)


def _check_stdin(paths, stdin_filename, select, ignore, output_format, color, apply_fixes=False, **_):
    """`gradfix check - --stdin-filename PATH`: the report on the source read from standard input."""
    from gradfix.edits import split_lines
    from gradfix.emit import concise
    from gradfix.emit.text import make_console, render_finding
    from gradfix.engine import IncompleteAnalysis, analyze
    from gradfix.source import SourceError

    if apply_fixes:
        raise click.UsageError("--fix cannot write to standard input; `gradfix fix --apply -` prints the fixed source")
    findings, errors = [], ErrorLog()
    try:
        rules, _unsafe = _stdin_rules(stdin_filename, select, ignore)
        source = _stdin_source(paths, stdin_filename)
        if source is not None:
            findings = analyze(source, rules)
    except IncompleteAnalysis as problem:
        findings = problem.findings
        errors.add(problem)
    except SourceError as problem:
        errors.add(problem)
    code = EXIT_ERROR if errors else (EXIT_FOUND if findings else EXIT_CLEAN)
    if not _emit_for_tools(output_format, findings, errors.items):
        console = make_console(sys.stdout, color)
        lines = [line.rstrip("\r\n") for line in split_lines(source.text)] if findings else None
        for finding in findings:
            if output_format == "concise":
                click.echo(concise.render_finding(finding))
            else:
                render_finding(console, finding, lines)
        if not errors:
            click.echo(_summary(findings, 1), err=not findings)
    sys.exit(code)


def _fix_stdin(paths, stdin_filename, select, ignore, apply_fixes, unsafe_fixes, interactive, output_format, **_):
    """`gradfix fix - --stdin-filename PATH`: the diff (or with --apply, the whole fixed source) on standard output."""
    from gradfix import fixing, report
    from gradfix.engine import fix_source
    from gradfix.patch import make_diff, patch_header
    from gradfix.source import SourceError

    if interactive:
        raise click.UsageError("--interactive cannot read the source from standard input")
    try:
        rules, unsafe = _stdin_rules(stdin_filename, select, ignore, unsafe_fixes)
        source = _stdin_source(paths, stdin_filename)
        outcome = fix_source(source, rules, include_unsafe=unsafe) if source is not None else None
    except SourceError as problem:
        ErrorLog().add(problem)
        sys.exit(EXIT_ERROR)
    if outcome is None:
        sys.exit(EXIT_CLEAN)
    left = outcome.remaining if outcome.changed else outcome.found
    diff = patch_header(outcome.applied, source.text) + make_diff(source.path, source.text, outcome.new_text) if outcome.changed else ""
    if apply_fixes:
        sys.stdout.flush()
        sys.stdout.buffer.write(source.encode(outcome.new_text))
        sys.stdout.buffer.flush()
        problems = len(left)
    else:
        problems = len(left) + (len(outcome.applied) if outcome.changed else 0)
        if output_format == "json":
            patches = [report.patch_dict(source.path, diff, outcome.applied, applied=False)] if outcome.changed else []
            document = report.document("fix", outcome.found, fixes=patches, errors=[],
                                       exit_code=EXIT_FOUND if problems else EXIT_CLEAN)
            click.echo(report.render(document), nl=False)
        else:
            click.echo(diff, nl=False)
    for line in fixing.summary(apply_fixes, unsafe, int(outcome.changed), len(outcome.applied) if apply_fixes else 0, left):
        click.echo(line, err=True)
    sys.exit(EXIT_FOUND if problems else EXIT_CLEAN)


@main.command()
def lsp():
    """Run the language server on standard input and output, for editors (see the README's "Editors")."""
    from gradfix.lsp.server import serve

    serve()
