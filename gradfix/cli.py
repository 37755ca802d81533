"""The command line: ``gradfix check``, ``gradfix fix``, ``gradfix diagnose``, ``gradfix rules``.

Exit codes: 0 nothing found (or everything fixed), 1 problems found or left,
2 gradfix could not do what was asked (bad input, bad option, failed run).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Sequence

import click

from gradfix import __version__, fixing, report
from gradfix.emit import github, json_output, sarif
from gradfix.emit.text import make_console, render_finding
from gradfix.engine import (
    AnalysisTimeout, CheckOptions, FixOutcome, IncompleteAnalysis, check_paths, file_time_setting, fix_source,
    iter_python_files, select_rules, time_bound, time_limit, timed_out,
)
from gradfix.model import Applicability
from gradfix.patch import make_diff, patch_header, quote_name
from gradfix.registry import all_rules, rule_by_code
from gradfix.edits import split_lines
from gradfix.notebook import cell_lines, check_notebook_json, is_notebook
from gradfix.config import ConfigError, settings_for
from gradfix.diagnose_cli import Seconds
from gradfix.source import MAX_BYTES_ENV, NotRegularFileError, SourceError, write_source_atomically

EXIT_CLEAN = 0
EXIT_FOUND = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells expect (128 + SIGINT)


def _emit_for_tools(output_format: str, findings, errors) -> bool:
    """`check`'s findings as JSON, SARIF or GitHub annotations; False when the format is the text report."""
    if output_format == "json":
        code = EXIT_ERROR if errors else (EXIT_FOUND if findings else EXIT_CLEAN)
        click.echo(json_output.render(findings, errors, command="check", exit_code=code), nl=False)
    elif output_format == "sarif":
        click.echo(sarif.render(findings, errors), nl=False)
    elif output_format == "github":
        click.echo(github.render(findings, errors), nl=False)
    else:
        return False
    return True


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
@click.option("--format", "output_format", type=click.Choice(["text", "json", "sarif", "github"]), default="text", show_default=True)
@click.option("--color/--no-color", default=None, help="Colour the text report (default: when writing to a terminal).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=os.cpu_count() or 1, show_default="the number of cores",
              help="Processes to check a large tree with.")
@click.option("--force-exclude", is_flag=True, help="Apply exclusions (.gitignore, [tool.gradfix] exclude) to files named here too.")
@click.option("--report-unused-noqa", is_flag=True, help="Report `# noqa: GF...` comments that suppress nothing.")
@click.option("--progress/--no-progress", default=None, help="A progress bar on standard error (default: on a terminal, for large trees).")
@reads_stdin("_check_stdin")
def check(paths, select, ignore, output_format, color, jobs, force_exclude, report_unused_noqa, progress):
    """Report the statically visible causes of missing gradients in PATHS (files or folders)."""
    _rules(select, ignore)  # unknown codes are an error before anything is read
    _refuse_bad_time_setting()
    options = CheckOptions(select=tuple(select), ignore=tuple(ignore))
    console = make_console(sys.stdout, color)
    findings, errors, checked, unused = [], [], 0, []
    with _progress_bar(progress) as advance:
        for result in check_paths(paths, jobs=jobs, options=options, force_exclude=force_exclude, progress=advance):
            if result.warning is not None:
                click.echo(f"gradfix: warning: {result.warning}", err=True)
                continue
            if result.error is not None:
                # a file checked in part (a rule failed) keeps the findings of the rules that ran
                errors.append((result.path, result.error.problem))
                report_error(str(result.error))
            else:
                checked += 1
            findings.extend(result.findings)
            if report_unused_noqa:
                unused.extend((result.path, *item) for item in result.unused_noqa)
            if output_format == "text" and result.findings:
                lines = split_lines(result.source.text) if result.source else None
                for finding in result.findings:
                    if result.notebook is not None:
                        lines = cell_lines(result.notebook, finding)
                    render_finding(console, finding, [line.rstrip("\r\n") for line in lines] if lines else None)
    for path, line, column, codes in unused:
        click.echo(f"{path}:{line}:{column}: unused noqa: {codes} (nothing to suppress here)", err=output_format != "text")
    if not _emit_for_tools(output_format, findings, errors):
        click.echo(_summary(findings, checked, len(errors)), err=not findings)
    if errors:
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_FOUND if findings or unused else EXIT_CLEAN)


def _refuse_bad_time_setting() -> None:
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


def _summary(findings, checked: int | None = None, failed: int = 0) -> str:
    if not findings:
        if failed:
            return (f"No problems found in the {checked} file{'s' * (checked != 1)} checked; "
                    f"{failed} could not be checked (see the errors above).")
        if checked == 0:
            return "No files checked: every path given was excluded."
        return "No problems found."
    files = len({f.span.path for f in findings})
    safe = sum(1 for f in findings if f.fix and f.fix.applicability is Applicability.SAFE)
    unsafe = sum(1 for f in findings if f.fix and f.fix.applicability is Applicability.UNSAFE)
    text = f"Found {len(findings)} problem{'s' * (len(findings) != 1)} in {files} file{'s' * (files != 1)}"
    notes = [f"{failed} file{'s' * (failed != 1)} not fully checked, see the errors above"] if failed else []
    if safe:
        notes.append(f"{safe} fixable with `gradfix fix --apply`")
    if unsafe:
        notes.append(f"{unsafe} more with `--unsafe-fixes`" if safe else f"{unsafe} fixable with `gradfix fix --apply --unsafe-fixes`")
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
    rules = _rules(select, ignore)
    _refuse_bad_time_setting()
    if interactive and not sys.stdin.isatty():
        raise click.UsageError("--interactive needs a terminal to ask on; use --diff and `gradfix apply` instead")
    write = apply_fixes or (interactive and not show_diff)
    sources, had_error, notebooks, read_errors = [], False, {}, []
    for found in iter_python_files(paths, force_exclude=force_exclude):
        if found.error is not None:
            report_error(str(found.error))
            read_errors.append((found.error.path, found.error.problem))  # an unreadable folder: in the JSON too
            had_error = True
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
                report_error(str(problem))
                read_errors.append((problem.path, problem.problem))
                had_error = True
            else:
                click.echo(f"gradfix: warning: {problem}", err=True)
            continue
        except SourceError as problem:
            # as in `check`: every file that could not be read is in the JSON's errors, notebooks included
            report_error(str(problem))
            read_errors.append((problem.path, problem.problem))
            had_error = True
            continue
        except ConfigError as problem:
            error = SourceError(problem.path, f"[tool.gradfix] {problem.key}: {problem.problem}")
            report_error(str(error))
            read_errors.append((error.path, error.problem))
            had_error = True
            continue
        if source is not None:
            sources.append(source)
    if interactive:
        outcomes = _review(sources, rules, unsafe_fixes, color)
    else:
        outcomes = _fix_all(sources, rules, unsafe_fixes, per_file=(select, ignore))
    outcomes += list(notebooks.values())
    changed_files, fixes_written, left, patches, errors, not_written = 0, 0, [], [], read_errors, []
    for outcome in outcomes:
        if isinstance(outcome, SourceError):
            report_error(str(outcome))
            errors.append((outcome.path, outcome.problem))
            had_error = True
            continue
        source = outcome.source
        if not outcome.changed:
            left.extend(outcome.found)
            continue
        diff = patch_header(outcome.applied, source.text) + make_diff(source.path, source.text, outcome.new_text)
        if output_format == "diff" and (show_diff or not interactive):
            click.echo(diff, nl=False)
        if write:
            try:
                validate = check_notebook_json if source.path in notebooks else None
                write_source_atomically(source, outcome.new_text, force=force_write, validate=validate)
            except SourceError as problem:
                report_error(str(problem))
                errors.append((source.path, problem.problem))
                not_written.extend(outcome.found)  # every problem of the file stays, fixable or not
                had_error = True
                continue
            fixes_written += len(outcome.applied)
        left.extend(outcome.remaining)
        patches.append(report.patch_dict(source.path, diff, outcome.applied, applied=write))
        changed_files += 1
    # Without --apply the problems the fixes shown would solve still count: nothing was written.
    problems = len(left) if write else len(left) + sum(len(p["fixes"]) for p in patches)
    code = EXIT_ERROR if had_error else (EXIT_FOUND if problems else EXIT_CLEAN)
    if output_format == "json":
        findings = [f for o in outcomes if not isinstance(o, SourceError) for f in o.found]
        document = report.document("fix", findings, fixes=patches, errors=errors, exit_code=code)
        click.echo(report.render(document), nl=False)
    for line in fixing.summary(write, unsafe_fixes, changed_files, fixes_written, left, not_written):
        if line == "No problems found." and had_error:
            line = "No problems found in the files read; some could not be read or written (see the errors above)."
        click.echo(line, err=True)
    sys.exit(code)


def _fix_all(sources, rules, unsafe_fixes, per_file=None):
    """Fix each source; with ``per_file`` (the --select and --ignore given), rules and
    unsafe-fixes come from the file's [tool.gradfix] table as well."""
    outcomes = []
    for source in sources:
        try:
            chosen, unsafe = rules, unsafe_fixes
            if per_file is not None:
                chosen, unsafe = _configured(source.path, *per_file, unsafe_fixes)
            limit = time_limit(source.path)
            try:
                with time_bound(limit):
                    outcomes.append(fix_source(source, chosen, include_unsafe=unsafe))
            except AnalysisTimeout:
                outcomes.append(timed_out(source.path, limit))
        except SourceError as problem:
            outcomes.append(problem)
        except ConfigError as problem:
            outcomes.append(SourceError(problem.path, f"[tool.gradfix] {problem.key}: {problem.problem}"))
    return outcomes


def _configured(path, select, ignore, unsafe_fixes):
    settings = settings_for(path)
    return select_rules(select=settings.rule_codes(path, select, ignore)), unsafe_fixes or settings.unsafe_fixes


def _fix_notebook(path, select, ignore, unsafe_fixes):
    """The fix of a notebook's code cells, as an outcome on its JSON text (so the diff and the write are the file's)."""
    from gradfix.notebook import fixed_notebook, read_notebook

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
    from gradfix.review import TerminalAnswers, review

    files = [fixing.ReviewedFile(source) for source in sources]
    items = (item for reviewed in files for item in fixing.review_items(reviewed, rules, unsafe_fixes))
    review(items, TerminalAnswers(make_console(sys.stdout, color)))
    return [reviewed.error or reviewed for reviewed in files if reviewed.error or reviewed.new_text]


@main.command()
@click.argument("rule", required=False)
@click.option("--color/--no-color", default=None, help="Colour the page (default: when writing to a terminal).")
def rules(rule, color):
    """List the rules, or show one rule's page (RULE: its code or name, in any case)."""
    if rule:
        from rich.markdown import Markdown

        from gradfix.docs import page, rule_url

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

    from gradfix.source import max_patch_bytes

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
def report_command(target, args, output, python, timeout):
    """Run TARGET's first step, fix what it finds, and write a review page (one self-contained HTML file)."""
    from gradfix.emit import html

    refusal = _report_output_refusal(output, target)
    if refusal:
        report_error(f"{output}: not written: {refusal}")
        sys.exit(EXIT_ERROR)
    console = make_console(sys.stderr)
    with console.status(f"Running {target} to its first gradient, then the fixed copy..."):
        document = report.target_document(target, args, python=python, timeout=timeout)
    page = html.render(document)
    try:
        _write_text_atomically(output, page)
    except OSError as problem:
        report_error(f"{output}: not written: {problem.strerror or problem}")
        sys.exit(EXIT_ERROR)
    findings = len(document["findings"])
    click.echo(f"Wrote {output}: {findings} finding{'s' * (findings != 1)}, status {document['diagnose']['status']}.", err=True)
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
    from gradfix.source import EmptySourceError, decode_source, max_file_bytes

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


def _check_stdin(paths, stdin_filename, select, ignore, output_format, color, **_):
    """`gradfix check - --stdin-filename PATH`: the report on the source read from standard input."""
    from gradfix.engine import analyze

    findings, errors = [], []
    try:
        rules, _unsafe = _stdin_rules(stdin_filename, select, ignore)
        source = _stdin_source(paths, stdin_filename)
        if source is not None:
            findings = analyze(source, rules)
    except IncompleteAnalysis as problem:
        report_error(str(problem))
        findings = problem.findings
        errors.append((stdin_filename or "-", problem.problem))
    except (SourceError, ConfigError) as problem:
        report_error(str(problem))
        errors.append((stdin_filename or "-", getattr(problem, "problem", str(problem))))
    code = EXIT_ERROR if errors else (EXIT_FOUND if findings else EXIT_CLEAN)
    if not _emit_for_tools(output_format, findings, errors):
        console = make_console(sys.stdout, color)
        lines = [line.rstrip("\r\n") for line in split_lines(source.text)] if findings else None
        for finding in findings:
            render_finding(console, finding, lines)
        if not errors:
            click.echo(_summary(findings, 1), err=not findings)
    sys.exit(code)


def _fix_stdin(paths, stdin_filename, select, ignore, apply_fixes, unsafe_fixes, interactive, output_format, **_):
    """`gradfix fix - --stdin-filename PATH`: the diff (or with --apply, the whole fixed source) on standard output."""
    if interactive:
        raise click.UsageError("--interactive cannot read the source from standard input")
    try:
        rules, unsafe = _stdin_rules(stdin_filename, select, ignore, unsafe_fixes)
        source = _stdin_source(paths, stdin_filename)
        outcome = fix_source(source, rules, include_unsafe=unsafe) if source is not None else None
    except (SourceError, ConfigError) as problem:
        report_error(str(problem))
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


def _register_diagnose() -> None:
    from gradfix.diagnose_cli import diagnose

    main.add_command(diagnose)


_register_diagnose()
