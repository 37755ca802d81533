"""The one API every front end drives: source in, findings and fixed text out."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import math
import os
import re
import signal
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

from gradfix import messages, suppress
from gradfix.collector import collector_held_off
from gradfix.config import settings_for
from gradfix.edits import apply_edits
from gradfix.model import Applicability, Finding, Fix, RelatedSpan, Span, TextEdit
from gradfix.notebook import Notebook, is_notebook, read_notebook
from gradfix.paths import discover
from gradfix.registry import all_rules
from gradfix.rule import Report, Rule
from gradfix.source import (
    EmptySourceError,
    NotRegularFileError,
    ParserLimitError,
    SourceError,
    SourceFile,
    check_syntax,
    guard_parse,
    libcst_module,
    read_source,
)
from gradfix.static.analysis import LINE_MARK, ModuleAnalysis
from gradfix.static.piecewise import Joined, forget_trees, joined_module
from gradfix.static.recursion_room import TreeTooDeep, parse_depth, room
from gradfix.static.regions import Region, module_parts, regions
from gradfix.static.tree import forget_indexes

MAX_FIX_ROUNDS = 20


def select_rules(select: Sequence[str] = (), ignore: Sequence[str] = ()) -> list[Rule]:
    chosen = []
    for rule in all_rules():
        keys = {rule.code, rule.name}
        if select and not keys & set(select):
            continue
        if keys & set(ignore):
            continue
        chosen.append(rule())
    return chosen


def analyze(source: SourceFile, rules: Sequence[Rule] | None = None, by_region: bool = True, lines=None) -> list[Finding]:
    """Findings for one file, each with its fix where the rule has one, less those ``# noqa`` suppresses. Raises SourceError.

    ``by_region=False`` analyses the module as one piece: the same findings, more slowly (see ``gradfix.static.regions``).
    ``lines``: for a text made of a notebook's cells, what names its lines in messages (``describe(line)``).
    """
    return analyze_with_suppressions(source, rules, by_region, lines).kept


class IncompleteAnalysis(SourceError):
    """A rule failed on the file: the findings of the others stand, but the file was not fully checked."""

    def __init__(self, path: str, problem: str, findings: Sequence[Finding] = ()):
        super().__init__(path, problem)
        self.findings = list(findings)


def analyze_with_suppressions(source: SourceFile, rules: Sequence[Rule] | None = None, by_region: bool = True,
                               lines=None) -> suppress.Filtered:
    """The findings ``analyze`` returns, and the ``# noqa: GF...`` comments that suppressed nothing.

    Raises IncompleteAnalysis, holding the findings of the rules that ran, when a rule failed."""
    if suppress.skips_file(source.text):
        return suppress.Filtered([], [])
    try:
        return suppress.filter_findings(source.text, _analyze_unfiltered(source, rules, by_region, lines))
    except IncompleteAnalysis as incomplete:
        kept = suppress.filter_findings(source.text, incomplete.findings).kept
        raise IncompleteAnalysis(incomplete.path, incomplete.problem, kept) from None


def _analyze_unfiltered(source: SourceFile, rules: Sequence[Rule] | None = None, by_region: bool = True,
                        lines=None) -> list[Finding]:
    rules = list(rules) if rules is not None else select_rules()
    wanted = [rule for rule in rules if rule.wants(source.text)]
    if not wanted:
        check_syntax(source)
        return []
    parts = _regions_worth_analysing(source, wanted) if by_region else None
    if parts is None:
        guard_parse(source.path, source.text)
    findings: list[Finding] | None = [] if parts is not None else None
    failures: list[str] = []
    for region in parts or ():
        try:
            analysed = _analyze_text(source.path, region.text, wanted, region.parts)
        except ParserLimitError:
            findings = None  # said again from the whole module, in the module's line numbers
            break
        placed = [_in_module(finding, region, lines) for finding in analysed.findings]
        if analysed.adds_imports or any(finding is None for finding in placed):
            # a fix that spans two regions' lines, or adds an import among the module's: only the whole module can place it
            findings = None
            break
        assert findings is not None, "a list while regions are read"
        findings.extend(finding for finding in placed if finding is not None)  # each is, checked above
        failures.extend(analysed.failures)
    if findings is None:
        analysed = _analyze_text(source.path, source.text, wanted, _module_parts(source) if by_region else ())
        findings = [found for finding in analysed.findings if (found := _in_module(finding, None, lines)) is not None]  # each is: no region to leave
        failures = list(analysed.failures)
    findings.sort(key=lambda f: (f.span.start_line, f.span.start_column, f.rule))
    findings = _unique(findings)
    if failures:
        raise IncompleteAnalysis(source.path, f"not fully checked: {'; '.join(dict.fromkeys(failures))}", findings)
    return findings


def _regions_worth_analysing(source: SourceFile, wanted: Sequence[Rule]) -> list[Region] | None:
    """The regions some rule has a marker in (None: the module as one); CPython's verdict on the text on the way."""
    return regions(source.path, source.text, lambda text: any(rule.wants(text) for rule in wanted))


def _module_parts(source: SourceFile) -> tuple[tuple[str, str], ...]:
    """The statements of the whole module, to parse one by one (none when the prepass cannot split it)."""
    try:
        return module_parts(source.path, source.text)
    except SourceError:
        return ()


def lines_analysed(source: SourceFile, rules: Sequence[Rule] | None = None) -> int:
    """How many lines of ``source`` LibCST parses and the rules read (benchmarks report it beside the times)."""
    rules = list(rules) if rules is not None else select_rules()
    wanted = [rule for rule in rules if rule.wants(source.text)]
    if not wanted:
        return 0
    parts = _regions_worth_analysing(source, wanted)
    return sum(region.line_count for region in parts) if parts is not None else len(source.text.splitlines())


@dataclass(frozen=True)
class _Analysed:
    findings: list[Finding]
    adds_imports: bool  # some fix adds an import, placed among the imports of the text analysed
    failures: tuple[str, ...] = ()  # the rules that failed, and how: their findings are missing


_analyzed: "OrderedDict[tuple, _Analysed]" = OrderedDict()
_analyzed_lock = threading.Lock()
ANALYZED_CACHE_SIZE = 4096  # regions (most small); an editor's change reanalyses only the region it changed


def _analyze_text(path: str, text: str, rules: Sequence[Rule], parts: Sequence[tuple[str, str]] = ()) -> _Analysed:
    """The findings of the rules that want ``text`` (a module, or one region of it, in its own line numbers).

    ``parts``: the text's statements (``Region.parts``), whose trees are parsed one by one and joined."""
    key = (path, text, tuple(type(rule) for rule in rules))
    with _analyzed_lock:
        if key in _analyzed:
            _analyzed.move_to_end(key)
            return _analyzed[key]
    rules = [rule for rule in rules if rule.wants(text)]
    try:
        joined = room.run(parse_depth(text), lambda: _libcst_tree(path, text, parts)) if rules else None
        analysis = ModuleAnalysis(path, text, joined.module, joined.first_lines) if joined is not None else None
        analysed = room.run(analysis.depth if analysis else 0, lambda: _run_rules(rules, analysis))
    except TreeTooDeep as deep:
        raise SourceError(path, f"not checked: {deep} (a chain of `and`/`or` terms or of adjacent strings "
                                "adds a level per term)") from None
    with _analyzed_lock:
        _analyzed[key] = analysed
        while len(_analyzed) > ANALYZED_CACHE_SIZE:
            _analyzed.popitem(last=False)
    return analysed


def _libcst_tree(path: str, text: str, parts: Sequence[tuple[str, str]]) -> Joined:
    """LibCST's tree of ``text``, joined from its statements' trees where ``parts`` are given and allow it."""
    joined = joined_module(parts) if parts else None
    return joined if joined is not None else Joined(libcst_module(path, text), {})


def _run_rules(rules: Sequence[Rule], analysis: ModuleAnalysis | None) -> _Analysed:
    findings: list[Finding] = []
    adds_imports = False
    failures: list[str] = []
    for rule in rules:
        assert analysis is not None, "rules run only on a parsed module"
        try:
            for report in rule.check(analysis):
                finding = _finding(rule, report, analysis)
                adds_imports = adds_imports or bool(report.imports and finding.fix is not None)
                findings.append(finding)
        except Exception as error:  # noqa: BLE001 - one failing rule must not take the others down
            if os.environ.get("GRADFIX_STRICT"):
                raise
            failures.append(f"internal error in rule {rule.code} ({error.__class__.__name__}: {error}), "
                            "its findings are missing")
    return _Analysed(findings, adds_imports, tuple(failures))


_LINE_REFERENCE = re.compile(f"(line )?{LINE_MARK}(\\d+){LINE_MARK}")


def _in_module(finding: Finding, region: Region | None, lines=None) -> Finding | None:
    """``finding`` with the module's line numbers, or None when its lines are not contiguous there.

    With ``lines``, a line a message names is said as ``lines.describe(number)`` (a notebook's cell and line)."""
    def line(number: int) -> int | None:
        return number if region is None else region.module_line(number)

    def span(old: Span) -> Span | None:
        lines = (old.start_line, old.end_line) if region is None else region.module_lines(old.start_line, old.end_line)
        return None if lines is None else dataclasses.replace(old, start_line=lines[0], end_line=lines[1])

    def edit(old: TextEdit) -> TextEdit | None:
        if old.start_line == old.end_line:
            start = line(old.start_line)
            return None if start is None else TextEdit(start, start, old.new_text)
        lines = (old.start_line, old.end_line - 1) if region is None else region.module_lines(old.start_line, old.end_line - 1)
        return None if lines is None else TextEdit(lines[0], lines[1] + 1, old.new_text)

    def message(text: str) -> str | None:
        missing = []

        def mapped(match: re.Match) -> str:
            number = line(int(match.group(2)))
            missing.extend([] if number is not None else [match])
            if lines is not None and match.group(1) and number is not None:
                return lines.describe(number)
            return (match.group(1) or "") + str(number)
        text = _LINE_REFERENCE.sub(mapped, text)
        return None if missing else text

    new_span = span(finding.span)
    related = [(span(r.span), r.message) for r in finding.related]
    new_message = message(finding.message)
    new_detail = message(finding.detail)
    edits = [edit(e) for e in finding.fix.edits] if finding.fix else []
    if new_span is None or new_message is None or new_detail is None or any(s is None for s, _ in related) \
            or any(e is None for e in edits):
        return None
    return finding.replace(
        span=new_span,
        message=new_message,
        detail=new_detail,
        # the Nones were turned away above
        related=tuple(RelatedSpan(s, m) for s, m in related if s is not None),
        fix=dataclasses.replace(finding.fix, edits=tuple(e for e in edits if e is not None)) if finding.fix else None,
    )


def _finding(rule: Rule, report: Report, analysis: ModuleAnalysis) -> Finding:
    fix = None
    if report.replacements:
        edits = analysis.fix_edits(report.replacements, report.imports)
        if edits:
            applicability = report.applicability or rule.applicability
            fix = Fix(
                rule=rule.code,
                description=report.fix_description or rule.summary,
                applicability=applicability,
                edits=edits,
                reason=_unsafe_reason(rule, report, applicability),
            )
    return Finding(
        rule=rule.code,
        name=rule.name,
        message=messages.headline(report.message),
        detail=report.detail,
        span=analysis.span(report.node),
        severity=report.severity or rule.severity,
        related=tuple(RelatedSpan(analysis.span(node), message) for node, message in report.related),
        fix=fix,
    )


def _unsafe_reason(rule: Rule, report: Report, applicability: Applicability) -> str:
    """Why a fix is not safe: the report's own words, else the rule's (its page says when its fix is unsafe)."""
    if applicability is Applicability.SAFE:
        return ""
    if report.applicability_reason:
        return report.applicability_reason
    if rule.unsafe_reason and applicability is rule.applicability:
        return rule.unsafe_reason
    if applicability is Applicability.DISPLAY_ONLY:
        return f"a suggestion only: the right change depends on what the program means (`gradfix rules {rule.code}`)"
    if applicability is not rule.applicability:
        return (f"{rule.code}'s fix is usually safe, but here it may change what the program computes, "
                f"not only its gradients (`gradfix rules {rule.code}` says when)")
    return f"it may change what the program computes, not only its gradients (`gradfix rules {rule.code}` says when)"


def _unique(findings: list[Finding]) -> list[Finding]:
    seen = set()
    unique = []
    for finding in findings:
        key = (finding.rule, finding.span, finding.message, finding.detail)
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    return unique


def applicable(fix: Fix | None, include_unsafe: bool) -> bool:
    if fix is None or fix.applicability is Applicability.DISPLAY_ONLY:
        return False
    return fix.applicability is Applicability.SAFE or include_unsafe


@dataclass
class FixOutcome:
    source: SourceFile
    new_text: str
    found: list[Finding] = field(default_factory=list)
    applied: list[Fix] = field(default_factory=list)
    remaining: list[Finding] = field(default_factory=list)
    layout: object = None  # for a notebook: its cells' lines as the fixes left them (gradfix.notebook.CellLines)

    @property
    def changed(self) -> bool:
        return self.new_text != self.source.text


def fix_source(
    source: SourceFile,
    rules: Sequence[Rule] | None = None,
    include_unsafe: bool = False,
    only: Iterable[Finding] | None = None,
    layout=None,
) -> FixOutcome:
    """Apply fixes one at a time, re-analysing after each, until none is left to apply.

    ``only`` limits the fixes to those of the given findings (matched by rule and line),
    as when a run decided which static findings explain the missing gradients.
    ``layout``: for a notebook's text, its cells' lines (gradfix.notebook.CellLines): only fixes it
    ``allows`` are applied, and the fixes applied are given as it maps them, in lines of cells.
    """
    rules = list(rules) if rules is not None else select_rules()
    wanted = {(f.rule, f.span.start_line) for f in only} if only is not None else None
    current = source
    applied: list[Fix] = []
    seen_texts = {source.text}
    findings = found = analyze(current, rules, lines=layout)
    # one round per finding there is, and MAX_FIX_ROUNDS more for those the fixes reveal; no fewer
    for _ in range(len(found) + MAX_FIX_ROUNDS):
        candidates = [
            f for f in findings
            if applicable(f.fix, include_unsafe)
            and (wanted is None or (f.rule, f.span.start_line) in wanted)
            and (layout is None or layout.allows(f.fix))
        ]
        if not candidates:
            break
        fix = candidates[0].fix
        assert fix is not None, "only findings with a fix are candidates"
        new_text = apply_edits(current.text, fix.edits)
        if new_text in seen_texts:
            break
        next_layout = layout.after(fix) if layout is not None else None
        try:
            next_source = SourceFile(current.path, new_text, current.encoding)
            next_findings = analyze(next_source, rules, lines=next_layout)
        except SourceError:
            # A fix whose result does not parse is dropped rather than written.
            findings = [f for f in findings if f is not candidates[0]]
            continue
        if wanted is not None:
            shift = _line_shift(fix)
            wanted = {(rule, line + shift if line > fix.edits[0].start_line else line) for rule, line in wanted}
        seen_texts.add(new_text)
        applied.append(fix if layout is None else layout.map_fix(fix))
        current, findings, layout = next_source, next_findings, next_layout
    return FixOutcome(source=source, new_text=current.text, found=found, applied=applied, remaining=findings,
                      layout=layout)


def _line_shift(fix: Fix) -> int:
    return sum(edit.new_text.count("\n") - (edit.end_line - edit.start_line) for edit in fix.edits)


@dataclass
class FileResult:
    path: str
    findings: list[Finding] = field(default_factory=list)
    error: SourceError | None = None  # with findings too when some rule failed (IncompleteAnalysis)
    source: SourceFile | None = None
    warning: str | None = None  # skipped with a message, not an error (a FIFO met in a folder)
    unused_noqa: list[tuple[int, int, str]] = field(default_factory=list)
    notebook: Notebook | None = None


@dataclass(frozen=True)
class FoundFile:
    path: str
    error: SourceError | None = None
    named: bool = True  # named on the command line, rather than met while walking a folder

    def read(self) -> SourceFile | None:
        """The file's text; None for an empty file (or one of blanks), which has nothing to check: an empty
        ``__init__.py`` is normal, whether met in a folder or named (a pre-commit hook names every staged file)."""
        try:
            return read_source(self.path)
        except EmptySourceError:
            return None


def iter_python_files(paths: Sequence[str], force_exclude: bool = False) -> Iterator[FoundFile]:
    """Every .py and .ipynb file under the given paths (see gradfix.paths); a path that yields nothing is an error."""
    for item in discover(paths, force_exclude=force_exclude):
        error = item.config_error or (SourceError(item.path, item.problem) if item.problem else None)
        yield FoundFile(item.path, error, named=item.named)


@dataclass(frozen=True)
class CheckOptions:
    """How check_file picks its rules and what it reports beyond findings."""

    select: tuple[str, ...] = ()  # the command line's --select: replaces [tool.gradfix] select
    ignore: tuple[str, ...] = ()  # the command line's --ignore: adds to [tool.gradfix] ignore
    use_config: bool = True
    time_limit: float | None = None  # seconds per file; None: GRADFIX_FILE_TIMEOUT, or 60 plus a second per 10 KB


DEFAULT_FILE_TIME_LIMIT = 60.0
BYTES_PER_EXTRA_SECOND = 10_000  # a large ordinary module is given time in proportion; a small pathological one is not
FILE_TIME_ENV = "GRADFIX_FILE_TIMEOUT"


class AnalysisTimeout(BaseException):
    """Raised inside the analysis of a file that takes too long (a BaseException, so no rule's handler eats it)."""


@contextlib.contextmanager
def time_bound(seconds: float | None):
    """Interrupt the block after ``seconds`` with AnalysisTimeout; a no-op off the main thread or without SIGALRM."""
    if not seconds or seconds <= 0 or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum, frame):
        raise AnalysisTimeout()

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def file_time_setting() -> float | None:
    """The seconds ``GRADFIX_FILE_TIMEOUT`` sets, None when unset; raises ValueError, with the message to show,
    for a value that is not a finite number above 0 (``nan`` would never time out)."""
    value = os.environ.get(FILE_TIME_ENV)
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{FILE_TIME_ENV}={value!r}: expected a finite number of seconds above 0")
    return seconds


def time_limit(path: str, options: CheckOptions | None = None) -> float:
    """The seconds one file's analysis may take: the option, else GRADFIX_FILE_TIMEOUT, else 60 plus a second per 10 KB."""
    if options is not None and options.time_limit is not None:
        return options.time_limit
    try:
        setting = file_time_setting()
    except ValueError:
        setting = None  # the command line refuses it before any file is read
    if setting is not None:
        return setting
    try:
        size = os.stat(path).st_size
    except OSError:
        size = 0
    return DEFAULT_FILE_TIME_LIMIT + size / BYTES_PER_EXTRA_SECOND


_RULES_BY_CODES: dict[tuple[str, ...], list[Rule]] = {}


def _rules_for(found: FoundFile, rules: Sequence[Rule] | None, options: CheckOptions) -> list[Rule]:
    if not options.use_config:
        return list(rules) if rules is not None else select_rules(options.select, options.ignore)
    codes = settings_for(found.path).rule_codes(found.path, options.select, options.ignore)
    if codes not in _RULES_BY_CODES:
        _RULES_BY_CODES[codes] = select_rules(select=codes) if codes else []
    return _RULES_BY_CODES[codes]


# A file checked once is analysed whole below this many lines: splitting it into regions (a CPython parse and a
# symbol table per statement) costs more there than the LibCST parsing the regions save (bench/README.md). An
# editor and the fix loop, which analyse a file again after each change, always split it: only a changed region
# is analysed again.
REGIONS_FROM_LINES = 1500


def check_file(found: FoundFile, rules: Sequence[Rule] | None = None, options: CheckOptions | None = None) -> FileResult | None:
    """One file's findings or error. Without ``options``, exactly ``rules`` run and no configuration is read."""
    if options is None:
        options = CheckOptions(use_config=False)
    if found.error is not None:
        return FileResult(found.path, error=found.error)
    limit = time_limit(found.path, options)
    try:
        chosen = _rules_for(found, rules, options)
        with time_bound(limit), collector_held_off(), _kept_trees_dropped():
            if is_notebook(found.path):
                notebook = read_notebook(found.path)
                layout = notebook.layout()
                try:
                    filtered = analyze_with_suppressions(notebook.source(), chosen, lines=layout)
                except IncompleteAnalysis as problem:
                    findings = [layout.map_finding(finding) for finding in problem.findings]
                    return FileResult(found.path, findings=findings, error=problem, notebook=notebook)
                except SourceError as problem:
                    raise layout.map_error(problem) from None
                findings = [layout.map_finding(finding) for finding in filtered.kept]
                return FileResult(found.path, findings=findings, unused_noqa=layout.map_unused(filtered.unused),
                                  notebook=notebook)
            source = found.read()
            if source is None:
                return FileResult(found.path)  # empty: checked, and clean
            try:
                by_region = source.text.count("\n") >= REGIONS_FROM_LINES
                filtered = analyze_with_suppressions(source, chosen, by_region=by_region)
            except IncompleteAnalysis as problem:
                return FileResult(found.path, findings=problem.findings, error=problem, source=source)
            return FileResult(found.path, findings=filtered.kept, source=source, unused_noqa=filtered.unused)
    except NotRegularFileError as problem:
        if found.named:
            return FileResult(found.path, error=problem)
        return FileResult(found.path, warning=str(problem))
    except SourceError as problem:
        return FileResult(found.path, error=problem)
    except AnalysisTimeout:
        return FileResult(found.path, error=timed_out(found.path, limit))


@contextlib.contextmanager
def _kept_trees_dropped() -> Iterator[None]:
    """Drop, after a file, the statements' trees and indexes kept for an editor's next change to it.

    A check of many files reads each once. Kept, the trees would hold memory, and the collector, back after each
    file, would scan them again and again only to find them alive (``bench/README.md``).
    Within the file they are still shared (its regions, and the whole module when a region cannot place a fix)."""
    try:
        yield
    finally:
        forget_indexes()
        forget_trees()


def timed_out(path: str, limit: float) -> SourceError:
    return SourceError(path, f"analysis took longer than {limit:g} s and was stopped (set {FILE_TIME_ENV} to allow more)")


def _check_in_worker(found: FoundFile, rule_codes: tuple[str, ...], options: CheckOptions | None = None) -> FileResult | None:
    if options is not None and options.use_config:
        return check_file(found, None, options)
    return check_file(found, select_rules(select=rule_codes), options)


STOPPING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _worker_started() -> None:
    """In each pool worker: die with the process that started it (Linux), and take SIGTERM and SIGHUP as any process does."""
    for number in STOPPING_SIGNALS:
        signal.signal(number, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
        if os.getppid() == 1:  # the parent died before the line above: nothing would stop this worker
            os._exit(1)


def _kill_workers(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    # the executor keeps its worker processes in a private field; killing them is the only way to stop their work
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            process.kill()
        except (OSError, ValueError, AttributeError):
            pass
    pool.shutdown(wait=False, cancel_futures=True)


@contextlib.contextmanager
def _workers_end_with_gradfix(pool: concurrent.futures.ProcessPoolExecutor):
    """SIGTERM or SIGHUP to gradfix kills the pool's workers, then ends gradfix with 128 + the signal's number."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        _kill_workers(pool)
        raise SystemExit(128 + signum)

    previous = {number: signal.signal(number, stop) for number in STOPPING_SIGNALS}
    try:
        yield
    except BaseException:
        _kill_workers(pool)  # an interrupt or an error: the remaining files are not wanted
        raise
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


# Below this many files a process pool costs more than it saves.
PARALLEL_THRESHOLD = 24


def check_paths(
    paths: Sequence[str],
    rules: Sequence[Rule] | None = None,
    jobs: int = 1,
    options: CheckOptions | None = None,
    force_exclude: bool = False,
    progress=None,
) -> Iterator[FileResult]:
    """Results in the order of the files; with ``jobs`` > 1, large trees are checked in that many processes.

    With ``options`` the rules of each file come from its [tool.gradfix] table and the
    command line's --select/--ignore; ``progress(done, total)`` is called after each file.
    """
    rules = list(rules) if rules is not None else (None if options is not None and options.use_config else select_rules())
    files = list(iter_python_files(paths, force_exclude=force_exclude))
    total = len(files)
    if jobs > 1 and total >= PARALLEL_THRESHOLD:
        codes = tuple(rule.code for rule in rules) if rules is not None else ()
        with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, initializer=_worker_started) as pool, \
                _workers_end_with_gradfix(pool):
            # the largest files first, one at a time, so that no process is left with a large file at the end
            futures: dict[int, concurrent.futures.Future] = {}
            for index in sorted(range(total), key=lambda i: -_size(files[i].path)):
                futures[index] = pool.submit(_check_in_worker, files[index], codes, options)
            for done, index in enumerate(range(total), start=1):
                result = futures.pop(index).result()
                if progress is not None:
                    progress(done, total)
                if result is not None:
                    yield result
        return
    for done, found in enumerate(files, start=1):
        result = check_file(found, rules, options)
        if progress is not None:
            progress(done, total)
        if result is not None:
            yield result
