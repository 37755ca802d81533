"""The review page's side-by-side diff of a fix: before on the left, after on the right, each removed line beside
the added line most like it, the changed words marked, lines broken only at spaces."""

from __future__ import annotations

import difflib
import re

import unidiff

from gradfix.emit.html_text import escaped


def side_by_side(diff: str, label: str = "the code before and after the fix") -> str:
    """A two-column table of a unified diff: before on the left, after on the right, each removed line beside the
    added line most like it. A narrow window shows it as one column, each old line above its new one."""
    try:
        patch = unidiff.PatchSet(diff)
    except unidiff.UnidiffParseError:
        return f"<pre>{escaped(diff)}</pre>"
    rows = []
    for patched in patch:
        rows.append(f'<tr class="file"><th colspan="4">{escaped(patched.path)}</th></tr>')
        for hunk in patched:
            rows.append(f'<tr class="hunk"><td colspan="4">{escaped(str(hunk).splitlines()[0])}</td></tr>')
            removed: list = []
            added: list = []
            for line in list(hunk) + [None]:
                if line is not None and line.is_removed:
                    removed.append(line)
                    continue
                if line is not None and line.is_added:
                    added.append(line)
                    continue
                for old, new, similar in paired_lines([_text(r) for r in removed], [_text(a) for a in added]):
                    rows.append(_row(removed[old] if old is not None else None, added[new] if new is not None else None,
                                     similar))
                removed, added = [], []
                if line is not None and line.is_context:
                    rows.append(_row(line, line, False, context=True))
    # the wrapper scrolls a line too long for the window, so that code is never broken inside a word
    return (f'<div class="diff-scroll" role="region" tabindex="0" aria-label="{escaped(label)}">'
            '<table class="diff"><colgroup><col class="num"><col class="code"><col class="num"><col class="code">'
            '</colgroup><thead><tr><th colspan="2">before</th><th colspan="2">after the fix</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


SIMILAR = 0.75  # difflib's own cutoff (Differ._fancy_replace) for two lines to be one line changed
MAX_PAIRINGS = 2500  # a larger rewritten block is paired in order: comparing every pair would take too long


def paired_lines(old: list[str], new: list[str]) -> list[tuple[int | None, int | None, bool]]:
    """The rows of a changed block: ``(old index, new index, similar)``, either index None for a line with no
    partner. As difflib's ``Differ._fancy_replace`` does, the most similar pair (ratio at least SIMILAR) is one
    row and the lines above and below it are paired the same way; lines left with no similar partner are set
    side by side in order, marked as not similar."""

    def pair(old_from: int, old_to: int, new_from: int, new_to: int) -> list[tuple[int | None, int | None, bool]]:
        best, best_ratio = None, SIMILAR - 0.01  # difflib's start: a pair must beat it, then reach SIMILAR
        if (old_to - old_from) * (new_to - new_from) <= MAX_PAIRINGS:
            matcher = difflib.SequenceMatcher(None, autojunk=False)
            for j in range(new_from, new_to):
                matcher.set_seq2(new[j])
                for i in range(old_from, old_to):
                    matcher.set_seq1(old[i])
                    # the cheap upper bounds first, as difflib does
                    if matcher.real_quick_ratio() > best_ratio and matcher.quick_ratio() > best_ratio:
                        ratio = matcher.ratio()
                        if ratio > best_ratio:
                            best, best_ratio = (i, j), ratio
        if best is None or best_ratio < SIMILAR:
            old_side, new_side = range(old_from, old_to), range(new_from, new_to)
            return [(old_side[k] if k < len(old_side) else None, new_side[k] if k < len(new_side) else None, False)
                    for k in range(max(len(old_side), len(new_side)))]
        i, j = best
        return pair(old_from, i, new_from, j) + [(i, j, True)] + pair(i + 1, old_to, j + 1, new_to)

    return pair(0, len(old), 0, len(new))


def _row(old, new, similar: bool, context: bool = False) -> str:
    old_text = _text(old)
    new_text = _text(new)
    marked_old, marked_new = escaped(old_text), escaped(new_text)
    if similar:
        marked_old, marked_new = changed_parts(old_text, new_text)

    def cells(line, number_attr: str, css: str, marked: str) -> str:
        if line is None:
            return '<td class="num empty"></td><td class="code empty"></td>'
        number = getattr(line, number_attr) or ""
        return f'<td class="num">{number}</td><td class="code {css}">{unbroken_words(marked)}</td>'
    return (f'<tr class="{"same" if context else "change"}">'
            f"{cells(old, 'source_line_no', '' if context else 'del', marked_old)}"
            f"{cells(new, 'target_line_no', '' if context else 'add', marked_new)}</tr>")


_MARKED_PIECE = re.compile(r"<(/?)(del|ins)>|\s+|[^\s<]+")


def unbroken_words(marked: str) -> str:
    """A line of code (escaped, its changes marked by ``changed_parts``) with each run of characters between
    spaces in a ``<span class="w">`` that does not wrap. A browser would otherwise break a line where Unicode lets
    it, inside code too (``model.layers[0]|(x)``, ``a/|b``); so a line wraps only at its spaces, and a mark that
    spans a space is closed and opened again around it."""
    out: list[str] = []
    mark, in_word = "", False
    for piece in _MARKED_PIECE.finditer(marked):
        text = piece.group(0)
        if piece.group(2):  # <del>, </ins>, ...
            mark = "" if piece.group(1) else piece.group(2)
            out.append(text)
        elif text.isspace():
            if in_word:
                out.append(f"</{mark}></span><{mark}>" if mark else "</span>")
                in_word = False
            out.append(text)
        else:
            if not in_word:
                out.append(f'</{mark}><span class="w"><{mark}>' if mark else '<span class="w">')
                in_word = True
            out.append(text)
    if in_word:
        out.append("</span>")
    return re.sub(r"<(del|ins)></\1>", "", "".join(out))


def _text(line) -> str:
    return "" if line is None else line.value.rstrip("\n\r")


_TOKEN = re.compile(r"\w+|\s+|[^\w\s]")


def changed_parts(old: str, new: str) -> tuple[str, str]:
    """The two lines escaped, with the words and signs that differ between them marked (``<del>``, ``<ins>``)."""
    old_tokens, new_tokens = _TOKEN.findall(old), _TOKEN.findall(new)
    matcher = difflib.SequenceMatcher(None, old_tokens, new_tokens, autojunk=False)
    before, after = [], []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        removed, added = escaped("".join(old_tokens[i1:i2])), escaped("".join(new_tokens[j1:j2]))
        if tag == "equal":
            before.append(removed)
            after.append(added)
            continue
        if removed:
            before.append(f"<del>{removed}</del>")
        if added:
            after.append(f"<ins>{added}</ins>")
    return "".join(before), "".join(after)
