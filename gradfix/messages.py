"""How a finding says what is wrong: a short first line, then the details.

Every finding's ``message`` is one line of at most ``LIMIT`` characters, in sentence case (a capital
letter or a code span first, no full stop at the end): what is wrong, where it is. The why, the names
involved and what to do go to its ``detail``, which the terminal prints as an indented block under the
excerpt and the language server as the lines after the first. Code in a first line is cut to fit
(``brief``, ``fit``); the detail has it whole.
"""

from __future__ import annotations

import re
import textwrap
from typing import Sequence

LIMIT = 80
ELLIPSIS = "..."

_CODE = re.compile(r"`[^`]*`")


def brief(code: str, limit: int = 32) -> str:
    """Code on one line, its blanks collapsed, cut to ``limit`` characters (ending ``...``)."""
    text = " ".join(code.split())
    if len(text) <= limit:
        return text
    return text[: max(1, limit - len(ELLIPSIS))].rstrip() + ELLIPSIS


def call_brief(code: str, limit: int = 32) -> str:
    """A statement or call said by its shape: ``loss = tf.reduce_mean(...)`` for a long one.

    The longest argument lists (outermost brackets) become ``...`` until the text fits; then it is cut."""
    text = " ".join(code.split())
    while len(text) > limit:
        groups = _bracketed(text)
        longest = max(groups, key=lambda g: g[1] - g[0], default=None)
        if longest is None or longest[1] - longest[0] <= len(ELLIPSIS):
            break
        text = text[: longest[0]] + ELLIPSIS + text[longest[1]:]
    return brief(text, limit)


def _bracketed(text: str) -> list[tuple[int, int]]:
    """The spans inside the outermost ``(...)`` and ``[...]`` of ``text`` (strings are not told apart: a message's
    code is short, and a bracket in a string only makes the shape less exact)."""
    spans, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char in "([":
            if depth == 0:
                start = index + 1
            depth += 1
        elif char in ")]" and depth:
            depth -= 1
            if depth == 0:
                spans.append((start, index))
    return spans


def fit(message: str, limit: int = LIMIT) -> str:
    """``message`` on one line of at most ``limit`` characters: its longest code span cut a character at a time
    (so that two long names are cut alike, never one to nothing), then, if need be, its end."""
    text = " ".join(message.split())
    while len(text) > limit:
        spans = [m for m in _CODE.finditer(text) if len(_kept(m.group(0)[1:-1])) > 4]
        if not spans:
            break
        span = max(spans, key=lambda m: len(_kept(m.group(0)[1:-1])))
        kept = _kept(span.group(0)[1:-1])[:-1].rstrip()
        text = text[: span.start()] + "`" + kept + ELLIPSIS + "`" + text[span.end():]
    if len(text) > limit:
        text = text[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS
    return text


def _kept(code: str) -> str:
    """What is left of a code span's own text once cut (without the ``...`` that marks the cut)."""
    return code[: -len(ELLIPSIS)] if code.endswith(ELLIPSIS) else code


def sentence(text: str) -> str:
    """A first line in the one style: a capital first (unless it starts with code), no full stop at the end."""
    text = text.strip().rstrip(".")
    first = text.split(" ", 1)[0]
    if first.isalpha() and first.islower():  # a word, not code such as `float()` or `tf.round`
        text = text[0].upper() + text[1:]
    return text


def headline(text: str) -> str:
    return fit(sentence(text))


def quoted_list(items: Sequence[str], shown: int = 3) -> str:
    """```a`, `b` and 2 more`` for a list of names."""
    quoted = [f"`{item}`" for item in items]
    if len(quoted) <= shown:
        return ", ".join(quoted[:-1]) + (" and " if len(quoted) > 1 else "") + quoted[-1] if quoted else ""
    return ", ".join(quoted[:shown]) + f" and {len(quoted) - shown} more"


def plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count} {word if count == 1 else (many or word + 's')}"


def wrap(text: str, indent: str = "  ", width: int = 88) -> list[str]:
    """The detail as the terminal prints it: paragraphs wrapped, each line indented."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        if not paragraph.strip():
            continue
        lines.extend(textwrap.wrap(paragraph, width=width, initial_indent=indent, subsequent_indent=indent,
                                   break_long_words=False, break_on_hyphens=False))
    return lines


def variables_summary(keys: Sequence[str], layers: Sequence[str | None] | None = None, shown: int = 4) -> str:
    """Many variables said in one line: ``122 variables in 61 layers (dense, dense_1, dense_2, dense_3 and 57 more)``.

    ``layers`` names each variable's layer where a run knows it; else the layer is the key's path less its last part
    (``model/dense/kernel`` is in ``model/dense``). One variable, or a few without layers, are named themselves."""
    keys = list(keys)
    if not keys:
        return ""
    if layers is None or len(layers) != len(keys):
        layers = [key.rsplit("/", 1)[0] if "/" in key else None for key in keys]
    if len(keys) <= 2 or all(layer is None for layer in layers):
        named = ", ".join(f"`{key}`" for key in keys[:shown])
        more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
        return f"{plural(len(keys), 'variable')}: {named}{more}" if len(keys) > 1 else f"the variable {named}"
    unique = list(dict.fromkeys(layer for layer in layers if layer))
    listed = ", ".join(unique[:shown]) + (f" and {len(unique) - shown} more" if len(unique) > shown else "")
    return f"{plural(len(keys), 'variable')} in {plural(len(unique), 'layer')} ({listed})"
