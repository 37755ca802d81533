"""What ``gradfix fix`` says and reviews: the interactive items of one file, and the closing summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Mapping, Sequence

from gradfix.edits import apply_edits
from gradfix.engine import MAX_FIX_ROUNDS, analyze, applicable
from gradfix.model import Applicability, Finding, Fix
from gradfix.patch import make_diff
from gradfix.review import ReviewItem
from gradfix.rule import Rule
from gradfix.source import SourceError, SourceFile


@dataclass
class ReviewedFile:
    source: SourceFile
    new_text: str = ""
    found: list[Finding] = field(default_factory=list)
    applied: list[Fix] = field(default_factory=list)
    remaining: list[Finding] = field(default_factory=list)
    error: SourceError | None = None
    declined: dict[tuple[str, str, str], str] = field(default_factory=dict)  # finding key -> why its fix was not taken

    @property
    def changed(self) -> bool:
        return self.new_text != self.source.text


def review_items(reviewed: ReviewedFile, rules: Sequence[Rule], include_unsafe: bool) -> Iterator[ReviewItem]:
    """One item per fix on offer, each diffed against the file as the fixes accepted so far left it.

    The file is analysed again after each accepted fix (its line numbers move); a skipped fix
    is not offered again.
    """
    current = reviewed.source
    reviewed.new_text = current.text
    try:
        findings = analyze(current, rules)
    except SourceError as error:
        reviewed.error = error
        return
    reviewed.found = list(findings)
    reviewed.remaining = list(findings)
    skipped: set[tuple[str, str, str]] = set()
    for _ in range(len(findings) + MAX_FIX_ROUNDS * 5):
        offered = [f for f in findings if applicable(f.fix, include_unsafe) and (f.rule, f.message, f.detail) not in skipped]
        if not offered:
            return
        finding = offered[0]
        fix = finding.fix
        assert fix is not None, "only findings with a fix are offered"
        new_text = apply_edits(current.text, fix.edits)
        item = ReviewItem(finding, fix, make_diff(current.path, current.text, new_text))
        try:
            yield item
        except GeneratorExit:  # the review ended: what it did not reach is said so
            if item.quit:
                reviewed.declined[(finding.rule, finding.message, finding.detail)] = "the review was quit here"
            for left in offered:
                reviewed.declined.setdefault((left.rule, left.message, left.detail), "not reached: the review was quit")
            raise
        if not item.accepted:
            key = (finding.rule, finding.message, finding.detail)
            skipped.add(key)
            reviewed.declined[key] = "the review was quit here" if item.quit else "skipped in the review"
            continue
        try:
            following = SourceFile(current.path, new_text, current.encoding)
            findings = analyze(following, rules)
        except SourceError:
            skipped.add((finding.rule, finding.message, finding.detail))
            reviewed.declined[(finding.rule, finding.message, finding.detail)] = "its fix does not leave code that parses"
            continue
        current = following
        reviewed.new_text = new_text
        reviewed.applied.append(fix)
        reviewed.remaining = list(findings)


def plural(count: int, word: str) -> str:
    if count == 1:
        return f"{count} {word}"
    return f"{count} {word}{'es' if word.endswith(('s', 'x', 'sh', 'ch')) else 's'}"


def where(finding: Finding) -> str:
    span = finding.span
    return f"{span.path}:{span.start_line}:{span.start_column}"


def summary(applied: bool, include_unsafe: bool, changed_files: int, fixes: int, left: Sequence[Finding],
            not_written: Sequence[Finding] = (), declined: Mapping[tuple[str, str, str], str] | None = None) -> list[str]:
    """The lines ``fix`` ends with: what was done, what is left and, only when it would change something, what to run next.

    ``not_written``: the problems of files whose fixed text could not be written (their error was shown).
    ``declined``: why an interactive review did not take a fix (skipped, not reached), by finding key.
    """
    lines = []
    if applied and changed_files:
        lines.append(f"Fixed {plural(changed_files, 'file')} ({plural(fixes, 'fix')}).")
    elif changed_files:
        lines.append(f"Fixes for {plural(changed_files, 'file')} shown above; `--apply` writes them.")
    if not_written:
        files = len({finding.span.path for finding in not_written})
        lines.append(f"{plural(len(not_written), 'problem')} not fixed: {'its file' if files == 1 else 'their files'} "
                     "could not be written (see the errors above):")
        lines.extend(f"  {where(finding)}: {finding.rule} {finding.name}: {finding.message}" for finding in not_written)
    if not left:
        if not changed_files and not not_written:
            lines.append("No problems found.")
        return lines
    if applied:
        state = "left"
    else:
        state = "not fixed by them" if changed_files else "found"
    lines.append(f"{plural(len(left), 'problem')} {state}:")
    for finding in left:
        why = (declined or {}).get((finding.rule, finding.message, finding.detail)) or _why_left(finding, include_unsafe)
        lines.append(f"  {where(finding)}: {finding.rule} {finding.name}: {finding.message} ({why})")
    if not include_unsafe and not declined and any(f.fix and f.fix.applicability is Applicability.UNSAFE for f in left):
        unsafe = sum(1 for f in left if f.fix and f.fix.applicability is Applicability.UNSAFE)
        lines.append(f"`--unsafe-fixes` would fix {plural(unsafe, 'more problem')}; review them first (`--interactive`).")
    return lines


def _why_left(finding: Finding, include_unsafe: bool) -> str:
    fix = finding.fix
    if fix is None:
        return "no automatic fix"
    if fix.applicability is Applicability.DISPLAY_ONLY:
        return f"suggestion only: {fix.description}"
    if fix.applicability is Applicability.UNSAFE and not include_unsafe:
        return f"unsafe fix, needs `--unsafe-fixes`: {fix.reason or fix.description}"
    return "its fix did not apply cleanly"
