"""The one API every front end drives: source in, findings and fixed text out."""

from __future__ import annotations

import concurrent.futures
import os
import sys
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

from gradfix.edits import apply_edits, line_edits, replace_nodes
from gradfix.model import Applicability, Finding, Fix, RelatedSpan
from gradfix.registry import all_rules
from gradfix.rule import Report, Rule
from gradfix.source import EmptySourceError, SourceError, SourceFile, check_syntax, parse_source, read_source
from gradfix.static.analysis import ModuleAnalysis

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


def analyze(source: SourceFile, rules: Sequence[Rule] | None = None) -> list[Finding]:
    """Findings for one file, each with its fix where the rule has one. Raises SourceError."""
    rules = list(rules) if rules is not None else select_rules()
    wanted = [rule for rule in rules if rule.wants(source.text)]
    if not wanted:
        check_syntax(source)
        return []
    module = parse_source(source)
    analysis = ModuleAnalysis(source.path, source.text, module)
    findings: list[Finding] = []
    for rule in wanted:
        try:
            findings.extend(_finding(rule, report, analysis) for report in rule.check(analysis))
        except Exception as error:  # noqa: BLE001 - one failing rule must not take the others down
            if os.environ.get("GRADFIX_STRICT"):
                raise
            print(f"gradfix: internal error: rule {rule.code} failed on {source.path} "
                  f"({error.__class__.__name__}: {error}); its findings are missing", file=sys.stderr)
    findings.sort(key=lambda f: (f.span.start_line, f.span.start_column, f.rule))
    return _unique(findings)


def _finding(rule: Rule, report: Report, analysis: ModuleAnalysis) -> Finding:
    fix = None
    if report.replacements:
        new_text = replace_nodes(analysis.module, report.replacements)
        edits = line_edits(analysis.text, new_text)
        if edits:
            fix = Fix(
                rule=rule.code,
                description=report.fix_description or rule.summary,
                applicability=report.applicability or rule.applicability,
                edits=edits,
            )
    return Finding(
        rule=rule.code,
        name=rule.name,
        message=report.message,
        span=analysis.span(report.node),
        severity=report.severity or rule.severity,
        related=tuple(RelatedSpan(analysis.span(node), message) for node, message in report.related),
        fix=fix,
    )


def _unique(findings: list[Finding]) -> list[Finding]:
    seen = set()
    unique = []
    for finding in findings:
        key = (finding.rule, finding.span, finding.message)
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

    @property
    def changed(self) -> bool:
        return self.new_text != self.source.text


def fix_source(
    source: SourceFile,
    rules: Sequence[Rule] | None = None,
    include_unsafe: bool = False,
    only: Iterable[Finding] | None = None,
) -> FixOutcome:
    """Apply fixes one at a time, re-analysing after each, until none is left to apply.

    ``only`` limits the fixes to those of the given findings (matched by rule and line),
    as when a run decided which static findings explain the missing gradients.
    """
    rules = list(rules) if rules is not None else select_rules()
    wanted = {(f.rule, f.span.start_line) for f in only} if only is not None else None
    current = source
    applied: list[Fix] = []
    seen_texts = {source.text}
    findings = found = analyze(current, rules)
    for _ in range(MAX_FIX_ROUNDS):
        candidates = [
            f for f in findings
            if applicable(f.fix, include_unsafe)
            and (wanted is None or (f.rule, f.span.start_line) in wanted)
        ]
        if not candidates:
            break
        fix = candidates[0].fix
        new_text = apply_edits(current.text, fix.edits)
        if new_text in seen_texts:
            break
        try:
            next_source = SourceFile(current.path, new_text, current.encoding)
            next_findings = analyze(next_source, rules)
        except SourceError:
            # A fix whose result does not parse is dropped rather than written.
            findings = [f for f in findings if f is not candidates[0]]
            continue
        if wanted is not None:
            shift = _line_shift(fix)
            wanted = {(rule, line + shift if line > fix.edits[0].start_line else line) for rule, line in wanted}
        seen_texts.add(new_text)
        applied.append(fix)
        current, findings = next_source, next_findings
    return FixOutcome(source=source, new_text=current.text, found=found, applied=applied, remaining=findings)


def _line_shift(fix: Fix) -> int:
    return sum(edit.new_text.count("\n") - (edit.end_line - edit.start_line) for edit in fix.edits)


@dataclass
class FileResult:
    path: str
    findings: list[Finding] = field(default_factory=list)
    error: SourceError | None = None
    source: SourceFile | None = None


@dataclass(frozen=True)
class FoundFile:
    path: str
    error: SourceError | None = None
    named: bool = True  # named on the command line, rather than met while walking a folder

    def read(self) -> SourceFile | None:
        """The file's text; None for an empty file met in a folder, which is normal (``__init__.py``)."""
        try:
            return read_source(self.path)
        except EmptySourceError:
            if self.named:
                raise
            return None


def iter_python_files(paths: Sequence[str]) -> Iterator[FoundFile]:
    """Every .py file under the given paths; a path that yields nothing is reported as an error."""
    for path in paths:
        if os.path.isdir(path):
            found = False
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in {"__pycache__", "node_modules"})
                for name in sorted(files):
                    if name.endswith(".py"):
                        found = True
                        yield FoundFile(os.path.join(root, name), named=False)
            if not found:
                yield FoundFile(path, SourceError(path, "folder holds no Python files"))
        elif os.path.exists(path):
            yield FoundFile(path)
        else:
            yield FoundFile(path, SourceError(path, "no such file or folder"))


def check_file(found: FoundFile, rules: Sequence[Rule]) -> FileResult | None:
    if found.error is not None:
        return FileResult(found.path, error=found.error)
    try:
        source = found.read()
        if source is None:
            return None
        return FileResult(found.path, findings=analyze(source, rules), source=source)
    except SourceError as problem:
        return FileResult(found.path, error=problem)


def _check_in_worker(found: FoundFile, rule_codes: tuple[str, ...]) -> FileResult | None:
    return check_file(found, select_rules(select=rule_codes))


# Below this many files a process pool costs more than it saves.
PARALLEL_THRESHOLD = 24


def check_paths(paths: Sequence[str], rules: Sequence[Rule] | None = None, jobs: int = 1) -> Iterator[FileResult]:
    """Results in the order of the files; with ``jobs`` > 1, large trees are checked in that many processes."""
    rules = list(rules) if rules is not None else select_rules()
    files = list(iter_python_files(paths))
    if jobs > 1 and len(files) >= PARALLEL_THRESHOLD:
        codes = tuple(rule.code for rule in rules)
        with concurrent.futures.ProcessPoolExecutor(max_workers=jobs) as pool:
            results = pool.map(_check_in_worker, files, [codes] * len(files), chunksize=8)
            yield from (result for result in results if result is not None)
        return
    for found in files:
        result = check_file(found, rules)
        if result is not None:
            yield result
