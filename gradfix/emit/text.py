"""The terminal report: each finding with its source excerpt and the fix on offer."""

from __future__ import annotations

import os
from typing import Sequence, TextIO

from rich.console import Console
from rich.text import Text

from gradfix.messages import variables_summary, wrap
from gradfix.model import Applicability, Finding

STYLE = {"error": "bold red", "warning": "bold yellow", "info": "bold cyan"}


def make_console(stream: TextIO, color: bool | None = None) -> Console:
    """A console that styles only when asked to, or when writing to a terminal without ``NO_COLOR`` set."""
    plain = color is False or (color is None and bool(os.environ.get("NO_COLOR")))
    if plain:
        return Console(file=stream, highlight=False, soft_wrap=True, color_system=None, force_terminal=False)
    return Console(file=stream, highlight=False, soft_wrap=True, force_terminal=color or None)


def excerpt(lines: Sequence[str], start_line: int, start_column: int, end_line: int, end_column: int) -> list[Text]:
    """The lines of a span with a caret line under the first one."""
    out: list[Text] = []
    width = len(str(end_line))
    for number in range(start_line, min(end_line, start_line + 4) + 1):
        if number - 1 >= len(lines):
            break
        content = lines[number - 1].rstrip("\r\n")
        line = Text(f"  {number:>{width}} | ", style="dim")
        line.append(content)
        out.append(line)
        if number == start_line:
            last = end_column if end_line == start_line else len(content) + 1
            carets = max(1, last - start_column)
            marker = Text(f"  {'':>{width}} | ", style="dim")
            marker.append(" " * (start_column - 1) + "^" * carets, style="bold red")
            out.append(marker)
    return out


def fix_line(finding: Finding) -> Text:
    fix = finding.fix
    if fix is None:
        return Text("  no automatic fix", style="dim")
    label = {
        Applicability.SAFE: "fix",
        Applicability.UNSAFE: "unsafe fix",
        Applicability.DISPLAY_ONLY: "suggestion",
    }[fix.applicability]
    text = Text(f"  {label}: ", style="green" if fix.applicability is Applicability.SAFE else "yellow")
    text.append(fix.description)
    if fix.verified is True:
        text.append("  (verified: the gradients flow after it)", style="green")
    elif fix.verified is False:
        text.append("  (not verified: gradients still missing after it)", style="red")
    return text


def render_finding(console: Console, finding: Finding, lines: Sequence[str] | None) -> None:
    """The finding's one short line, its excerpt, then the indented block: details, notes, what a run saw, the fix."""
    span = finding.span
    head = Text(f"{span.path}:{span.start_line}:{span.start_column}: ", style="bold")
    head.append(f"{finding.rule} ", style=STYLE.get(finding.severity.value, "bold"))
    head.append(f"[{finding.name}] ", style="dim")
    head.append(finding.message)
    console.print(head)
    if lines:
        for line in excerpt(lines, span.start_line, span.start_column, span.end_line, span.end_column):
            console.print(line)
    width = max(60, min(console.width, 100))
    for text in (finding.detail, finding.explanation):
        for wrapped in wrap(text, "  ", width):
            console.print(Text(wrapped))
    if finding.variables:
        console.print(Text(f"  without a gradient: {variables_summary(finding.variables)}"))
    for related in finding.related:
        note = Text(f"  note: {related.span.path}:{related.span.start_line}:{related.span.start_column}: ", style="dim")
        note.append(related.message)
        console.print(note)
    console.print(fix_line(finding))
    console.print()
