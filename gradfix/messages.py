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
CODE_KEPT = 20  # a code span is shortened to no fewer characters than this before the words around it are cut,
CODE_LEAST = 8  # or to this many, when that makes the line fit

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
    """``message`` on one line of at most ``limit`` characters. Code spans are shortened first, the longest first: said
    by their shape (``tf.one_hot(...)``), then cut (``actor_lo...``), down to ``CODE_KEPT`` characters, or down to
    ``CODE_LEAST`` when that is enough to fit; only then is the text cut at a word (ending ``...``)."""
    text = " ".join(message.split())
    if len(text) <= limit:
        return text
    shortest = _shorten_code(text, 0, CODE_LEAST)
    text = _shorten_code(text, limit, CODE_KEPT if len(shortest) > limit else CODE_LEAST)
    if len(text) > limit:
        cut = text[: limit - len(ELLIPSIS) + 1]
        space = cut.rfind(" ")
        cut = cut[:space] if space > limit // 2 else cut[:-1]
        if cut.count("`") % 2:  # never end inside a code span
            cut = cut[: cut.rfind("`")].rstrip()
        text = cut.rstrip(" ,;:") + ELLIPSIS
    return text


def _shorten_code(text: str, limit: int, floor: int) -> str:
    """``text`` with its longest code span shortened a step at a time, while over ``limit`` and a span is over ``floor``."""
    while len(text) > limit:
        spans = [m for m in _CODE.finditer(text) if len(_kept(m.group(0)[1:-1])) > floor]
        if not spans:
            break
        span = max(spans, key=lambda m: len(_kept(m.group(0)[1:-1])))
        code = span.group(0)[1:-1]
        groups = [g for g in _bracketed(code) if g[1] - g[0] > len(ELLIPSIS)]
        if groups:  # a call said by its shape first: `tf.one_hot(...)`
            start, end = max(groups, key=lambda g: g[1] - g[0])
            shorter = code[:start] + ELLIPSIS + code[end:]
        else:
            shorter = _kept(code)[:-1].rstrip() + ELLIPSIS
        text = text[: span.start()] + "`" + shorter + "`" + text[span.end():]
    return text


def _kept(code: str) -> str:
    """What is left of a code span's own text once cut (without the ``...`` that marks the cut)."""
    return code[: -len(ELLIPSIS)] if code.endswith(ELLIPSIS) else code


def clause(text: str, limit: int = LIMIT) -> str:
    """A long description cut to its main clause before anything else is cut: without its trailing parenthesis,
    then up to its first colon or ``, so that``/``, which`` (``Open the tape before the forward pass, so that it is
    recorded`` is ``Open the tape before the forward pass``); then ``fit``."""
    text = " ".join(text.split())
    if len(text) > limit:
        text = re.sub(r"\s*\([^()]*\)$", "", text)
    if len(text) > limit:
        found = re.search(r":\s|,\s(?:so that|which|since|because|as)\b", text)
        if found and found.start() >= 20:
            text = text[: found.start()]
    return fit(text, limit)


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
