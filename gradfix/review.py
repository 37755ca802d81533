"""The interactive review of fixes, as ``git add -p`` reviews hunks: accept, skip, all of this rule, or quit.

The loop knows nothing of where the fixes come from: ``fix --interactive`` hands it a generator that
re-analyses a file after each accepted fix, and ``diagnose --fix --interactive`` can hand it the
verified fixes of a run. Each item's ``accepted`` is set before the next item is asked for, so a
generator can read the decision on the item it just yielded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol

from rich.console import Console
from rich.text import Text

from gradfix.docs import rule_url
from gradfix.model import Applicability, Finding, Fix
from gradfix.patch import verification_text

CHOICES = "y,n,a,q,?"
HELP = """y - accept this fix
n - skip this fix
a - accept this fix and every later fix of the same rule
q - quit; the fixes accepted so far are kept, nothing else is asked
? - this help"""


@dataclass
class ReviewItem:
    finding: Finding
    fix: Fix
    diff: str  # the diff this fix alone makes
    accepted: bool | None = None  # set by review(); None: not reached (quit before it)
    quit: bool = False  # the review was ended at this item


class Answers(Protocol):
    """Where the review shows an item and reads the answer: the terminal, or a test's script."""

    def show(self, item: ReviewItem, number: int, total: int | None = None) -> None: ...

    def ask(self, prompt: str) -> str: ...

    def say(self, text: str) -> None: ...


def review(items: Iterable[ReviewItem], answers: Answers, total: int | None = None) -> list[ReviewItem]:
    """Ask about each item in turn; returns the items reached, each with its decision.

    ``total``: how many fixes were on offer when the review began, for "fix 2 of 6" (an accepted fix can
    reveal another, so the count grows when the items outrun it)."""
    reached: list[ReviewItem] = []
    accept_rules: set[str] = set()
    number = 0
    iterator = iter(items)
    for item in iterator:
        number += 1
        if total is not None:
            total = max(total, number)
        reached.append(item)
        if item.fix.rule in accept_rules:
            item.accepted = True
            # shown as it is written, without a question
            answers.show(item, number, total)
            answers.say(f"Fix {number}: {item.fix.rule} accepted (all of this rule).")
            continue
        answers.show(item, number, total)
        while True:
            answer = answers.ask(f"Apply this fix [{CHOICES}]? ").strip().lower()[:1]
            if answer in ("y", "n", "a", "q"):
                break
            answers.say(HELP)
        if answer == "q":
            item.accepted, item.quit = False, True
            break
        item.accepted = answer in ("y", "a")
        if answer == "a":
            accept_rules.add(item.fix.rule)
    close = getattr(iterator, "close", None)
    if close is not None:
        close()
    return reached


def describe(item: ReviewItem) -> list[Text]:
    """What a reviewer needs to decide: where, what, why, how safe, whether a re-run proved it, and the diff."""
    finding, fix = item.finding, item.fix
    span = finding.span
    lines = []
    head = Text(f"{span.path}:{span.start_line}:{span.start_column}: ", style="bold")
    head.append(f"{finding.rule} {finding.name}", style="bold red")
    lines.append(head)
    lines.append(Text(finding.message))
    if finding.detail:
        lines.append(Text(finding.detail))
    if finding.explanation:
        lines.append(Text(finding.explanation, style="dim"))
    lines.append(Text(f"fix: {fix.description}"))
    style = "green" if fix.applicability is Applicability.SAFE else "yellow"
    applicability = Text("applicability: ")
    applicability.append(fix.applicability.value, style=style)
    if fix.reason:
        applicability.append(f" ({fix.reason})")
    lines.append(applicability)
    lines.append(Text(f"verification: {verification_text(fix.verified)}",
                      style={True: "green", False: "red", None: "dim"}[fix.verified]))
    lines.append(Text(f"rule: {rule_url(finding.rule)}", style="dim"))
    for line in item.diff.splitlines():
        if line.startswith(("+++", "---")):
            lines.append(Text(line, style="bold"))
        elif line.startswith("+"):
            lines.append(Text(line, style="green"))
        elif line.startswith("-"):
            lines.append(Text(line, style="red"))
        elif line.startswith("@@"):
            lines.append(Text(line, style="cyan"))
        else:
            lines.append(Text(line))
    return lines


class TerminalAnswers:
    """The review on a terminal: items printed with rich, answers read a line at a time from standard input."""

    def __init__(self, console: Console, read_line=input):
        self.console = console
        self.read_line = read_line

    def show(self, item: ReviewItem, number: int, total: int | None = None) -> None:
        self.console.print()
        self.console.print(Text(f"Fix {number}" + (f" of {total}" if total else ""), style="bold reverse"))
        for line in describe(item):
            self.console.print(line)

    def ask(self, prompt: str) -> str:
        self.console.print(Text(prompt, style="bold blue"), end="")
        self.console.file.flush()
        try:
            return self.read_line()
        except EOFError:
            return "q"

    def say(self, text: str) -> None:
        self.console.print(text)
