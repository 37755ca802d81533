"""The review page: one self-contained HTML file (inline CSS and SVG, nothing fetched) made from the report document.

For each finding: what and why, the fix side by side with the code it replaces, its applicability and
verification. Above them, the model as the run saw it: one box per layer in the order the variables were
made, green where the layer's variables get gradients, red where they do not, and for each cause the
break between the last tensor still connected to the variables and the loss.
"""

from __future__ import annotations

import difflib
import html
import re
from typing import Any

import unidiff

from gradfix.docs import installed_page_url, page
from gradfix.emit.markdown import to_html as markdown_html
from gradfix.patch import verification_text
from gradfix.registry import rule_by_code

BOX_WIDTH, BOX_HEIGHT, GAP = 150, 58, 34
BREAK_LENGTH = 380  # the dashed cut between the last connected tensor and the loss


def _e(text: Any) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _prose(text: Any) -> str:
    """Text of a message, escaped, its `code` spans set as code (the messages mark code with backticks)."""
    parts = ("" if text is None else str(text)).split("`")
    if len(parts) % 2 == 0:  # an odd backtick: no pairs to trust
        return _e(text)
    return "".join(_e(part) if index % 2 == 0 else f"<code>{_e(part)}</code>" for index, part in enumerate(parts))


# --------------------------------------------------------------------------- the model picture

def layers(document: dict) -> list[dict]:
    """The layers in the order the run met their variables, each with its variables and whether all got gradients."""
    found: dict[tuple, dict] = {}
    for variable in document.get("diagnose", {}).get("variables", []):
        layer = variable.get("layer") or {}
        key = (layer.get("class"), layer.get("name")) if layer else ("", variable["path"])
        entry = found.setdefault(key, {
            "class": layer.get("class") or variable.get("kind", "variable"),
            "name": layer.get("name") or variable["path"],
            "built_at": layer.get("built_at"),
            "variables": [],
        })
        entry["variables"].append(variable)
    for entry in found.values():
        got = [v["gradient"] for v in entry["variables"]]
        entry["state"] = "connected" if all(got) else ("disconnected" if not any(got) else "partial")
    return list(found.values())


def _where(site: dict | None) -> str:
    if not site:
        return ""
    where = site.get("path") or ""
    if site.get("line"):
        where += f":{site['line']}"
        if site.get("column"):
            where += f":{site['column']}"
    return where


PER_ROW = 7  # boxes per row: the picture wraps instead of scrolling sideways
GROUP_FROM = 3  # a block of layers repeated this many times or more is one box
MAX_BLOCK = 4  # layers in the longest block looked for
STATE_WORDS = {"connected": "✓ gradients", "disconnected": "✕ no gradient", "partial": "◐ some gradients"}


def grouped(boxes: list[dict]) -> list[dict]:
    """Repeated blocks as one box each: a run of GROUP_FROM or more repetitions of the same sequence of up to
    MAX_BLOCK layers (class and state alike: ``Dense, LayerNormalization, Dense`` twenty times), ``count`` the
    repetitions and ``block`` the classes of one; every other layer a box of its own (``count`` 1)."""
    signature = [(box["class"], box["state"]) for box in boxes]
    result: list[dict] = []
    index = 0
    while index < len(boxes):
        best_length, best_repeats = 1, 1
        for length in range(1, MAX_BLOCK + 1):
            repeats = 1
            while signature[index + repeats * length:index + (repeats + 1) * length] == signature[index:index + length]:
                repeats += 1
            if repeats >= GROUP_FROM and repeats * length > best_length * best_repeats:
                best_length, best_repeats = length, repeats
        members = boxes[index:index + best_length * best_repeats]
        if best_repeats >= GROUP_FROM:
            result.append({**members[0], "count": best_repeats, "block": [box["class"] for box in members[:best_length]],
                           "name": f"{members[0]['name']} … {members[-1]['name']}",
                           "variables": [v for member in members for v in member["variables"]]})
        else:
            result.append({**members[0], "count": 1, "block": [members[0]["class"]]})
        index += len(members)
    return result


def placed(boxes: list[dict]) -> list[tuple[dict, int, int, int]]:
    """Each box with its row, first slot and slots taken: a repeated block takes two slots, and a row PER_ROW."""
    out, row, slot = [], 0, 0
    for box in boxes:
        slots = 2 if box["count"] > 1 else 1
        if slot + slots > PER_ROW:
            row, slot = row + 1, 0
        out.append((box, row, slot, slots))
        slot += slots
    return out


def _picture_width(boxes: list[tuple[dict, int, int, int]]) -> int:
    rows = boxes[-1][1] + 1
    used = max(slot + slots for _, _, slot, slots in boxes) if rows == 1 else PER_ROW
    return max(used * (BOX_WIDTH + GAP) + GAP, 2 * BOX_WIDTH + BREAK_LENGTH + 2 * GAP)


def picture_width(document: dict) -> int | None:
    """The model picture's width in pixels (None when there is no picture)."""
    boxes = placed(grouped(layers(document)))
    return _picture_width(boxes) if boxes else None


def _layer_box(box: dict, x: float, y: float, box_width: int, count_with_state: bool = False) -> str:
    """One layer's box, or a repeated block's: its name, its class (``n × A + B``) and variables, its state. With
    ``count_with_state``, a class too long to share its line with the count of variables keeps the line to itself
    and the count goes to the state's line."""
    # characters that fit in the box: about 8px each of the 13px bold name, 6px of the 11px lines
    name_letters, letters = box_width // 8, box_width // 6
    title = "; ".join(f"{v['path']}: {'gradient' if v['gradient'] else 'no gradient'}" for v in box["variables"])
    kind = f"{box['count']} × " + " + ".join(box["block"]) if box["count"] > 1 else box["class"]
    variables = len(box["variables"])
    count_words = f" · {variables} var{'s' * (variables != 1)}"
    state_words = STATE_WORDS[box["state"]]
    if count_with_state and len(kind) + len(count_words) > letters:
        kind, count_words, state_words = _short(kind, letters), "", state_words + count_words
    return (f'<g class="layer {box["state"]}" data-layer="{_e(box["name"])}" data-count="{box["count"]}">'
            f'<title>{_e(title)}</title>'
            f'<rect x="{x}" y="{y}" width="{box_width}" height="{BOX_HEIGHT}" rx="8"/>'
            f'<text x="{x + box_width / 2}" y="{y + 17}" class="name">{_e(_short(box["name"], name_letters))}</text>'
            f'<text x="{x + box_width / 2}" y="{y + 33}" class="cls">'
            f'{_e(_short(kind, letters - len(count_words)))}{_e(count_words)}</text>'
            f'<text x="{x + box_width / 2}" y="{y + 49}" class="state">{state_words}</text></g>')


def _svg_open(boxes: list, width: int, height: int, marker: str, caption_lines: list[str]) -> list[str]:
    layer_count = sum(box["count"] * len(box["block"]) for box in boxes)
    parts = [f'<svg class="model" role="img" aria-label="The model: {layer_count} layers with trainable variables" '
             f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
             f'<defs><marker id="{marker}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#4b5563"/></marker></defs>']
    parts.extend(f'<text x="12" y="{22 + 16 * number}" class="caption">{line}</text>'
                 for number, line in enumerate(caption_lines))
    return parts


def _causes(document: dict) -> list[tuple[dict, dict | None]]:
    """Each cause of the run with the finding it explains (None when the document names none)."""
    findings = document.get("findings", [])
    out = []
    for cause in document.get("diagnose", {}).get("causes", []):
        index = cause.get("finding")
        out.append((cause, findings[index] if isinstance(index, int) and index < len(findings) else None))
    return out


def model_picture(document: dict) -> str:
    """The model laid out in rows of PER_ROW boxes, data flowing left to right, and each cause's break beside the
    loss below them: the picture for a window wide enough for its break row."""
    boxes = placed(grouped(layers(document)))
    if not boxes:
        return NO_PICTURE
    causes = _causes(document)
    rows = boxes[-1][1] + 1
    width = _picture_width(boxes)
    layers_height = rows * (BOX_HEIGHT + GAP)
    height = 40 + layers_height + len(causes) * (BOX_HEIGHT + 60) + 16
    parts = _svg_open([box for box, *_ in boxes], width, height, "arrow",
                      ["data flows left to right, row after row; each box is a layer with trainable variables, "
                       "or a block of layers repeated (n ×)"])
    for box, row, slot, slots in boxes:
        x = GAP + slot * (BOX_WIDTH + GAP)
        y = 40 + row * (BOX_HEIGHT + GAP)
        parts.append(_layer_box(box, x, y, slots * BOX_WIDTH + (slots - 1) * GAP))
        if slot:
            parts.append(f'<line x1="{x - GAP + 2}" y1="{y + BOX_HEIGHT / 2}" x2="{x - 3}" y2="{y + BOX_HEIGHT / 2}" '
                         f'class="flow" marker-end="url(#arrow)"/>')
        elif row:  # the row goes on from the end of the one above
            parts.append(f'<line x1="4" y1="{y + BOX_HEIGHT / 2}" x2="{x - 3}" y2="{y + BOX_HEIGHT / 2}" '
                         f'class="flow" marker-end="url(#arrow)"/>')
    for number, (cause, finding) in enumerate(causes):
        parts.append(_break_row(cause, number, 40 + layers_height + 16 + number * (BOX_HEIGHT + 60), finding))
    parts.append("</svg>")
    # drawn at its own size, the labels stay readable; a window narrower than the picture scrolls it
    return f'<div class="picture" role="region" tabindex="0" aria-label="the model picture">{"".join(parts)}</div>'


NO_PICTURE = '<p class="empty">The run did not reach a gradient, so there is no picture of the model.</p>'
# the picture for a phone: one box a row, as wide as a 360 px window leaves for it (the panel's padding and borders
# and main's padding take 46 px of it there)
NARROW_WIDTH = 300
NARROW_BOX_WIDTH = NARROW_WIDTH - 2 * 20
NARROW_CUT = 20  # each dashed piece of the cut, above the ✕ and below its three lines of text
NARROW_LABELS = 74  # the three lines under the ✕: the cause, where it is, the code
# the tensor's box, a cut, the ✕ and the lines under it, a cut, the loss's box
NARROW_BREAK_HEIGHT = BOX_HEIGHT + NARROW_CUT + 26 + NARROW_LABELS + NARROW_CUT + 4 + BOX_HEIGHT


def narrow_model_picture(document: dict) -> str:
    """The same model for a window too narrow for the wide picture: one box a row, data flowing top to bottom, and
    under them each cause's last connected tensor, the break with its two lines of text, and the loss. Its labels
    keep their size and the picture fits the window, so nothing of it is hidden past the window's edge."""
    boxes = grouped(layers(document))
    if not boxes:
        return NO_PICTURE
    causes = _causes(document)
    x = (NARROW_WIDTH - NARROW_BOX_WIDTH) / 2
    top = 24 + 16 * 3
    layers_height = len(boxes) * (BOX_HEIGHT + GAP)
    height = top + layers_height + len(causes) * (NARROW_BREAK_HEIGHT + GAP) + 8
    parts = _svg_open(boxes, NARROW_WIDTH, height, "arrow-down",
                      ["data flows top to bottom; each box is a layer",
                       "with trainable variables, or a block of layers",
                       "repeated (n ×)"])
    for number, box in enumerate(boxes):
        y = top + number * (BOX_HEIGHT + GAP)
        parts.append(_layer_box(box, x, y, NARROW_BOX_WIDTH, count_with_state=True))
        if number:
            parts.append(f'<line x1="{NARROW_WIDTH / 2}" y1="{y - GAP + 2}" x2="{NARROW_WIDTH / 2}" y2="{y - 3}" '
                         f'class="flow" marker-end="url(#arrow-down)"/>')
    for number, (cause, finding) in enumerate(causes):
        parts.append(_narrow_break(cause, number, top + layers_height + number * (NARROW_BREAK_HEIGHT + GAP), finding))
    parts.append("</svg>")
    return f'<div class="picture">{"".join(parts)}</div>'


def _break_words(cause: dict, finding: dict | None, label_room: int) -> dict:
    """The words drawn at a cause's break, ``label_room`` characters of 12px text wide: the box of the last connected
    tensor (``label``, ``sub``), the place named over the cut (``site_label``, or in two lines ``category`` and
    ``place``), the code under it and the title."""
    last = cause.get("last_connected") or {}
    if last:
        label = "last connected"
        sub = f"{last.get('name') or 'tensor'}" + (f" · line {last['line']}" if last.get("line") else "")
    else:
        label, sub = "the variables", ", ".join(v.rsplit("/", 2)[-2] if "/" in v else v for v in cause["variables"][:2])
    site = _where(cause.get("site"))
    # the label names where the finding is, the line below it the statement the run saw; both in the title too
    breaks_at = _finding_place(cause, finding) or cause.get("site") or {}
    # a long path is named by its file name (the whole of it is in the title)
    file_name = (breaks_at.get("path") or "").rsplit("/", 1)[-1]
    position = _where({**breaks_at, "path": ""})
    def shown_site(room: int) -> str:
        room = max(8, room - len(position))
        return (file_name if len(file_name) <= room else file_name[:room - 1] + "…") + position

    code = (cause.get("site") or {}).get("code") or ""
    title = f"{site}: {cause.get('detail', '')}"
    if breaks_at is not cause.get("site"):
        seen = (cause.get("site") or {})
        seen_where = f"line {seen.get('line')}" if seen.get("path") == breaks_at.get("path") else site
        code = f"run saw it at {seen_where}: {code}"
        title = f"{_where(breaks_at)}: the finding; {title}"
    return {"label": _short(label, 17), "sub": _short(sub, 22), "site": site, "breaks_at": _where(breaks_at),
            "site_label": _short(cause["category"] + " at " + shown_site(label_room - len(cause["category"]) - 4),
                                 label_room),
            "category": _short(cause["category"], label_room), "place": "at " + shown_site(label_room - 3),
            "code": _short(code, label_room), "title": title}


def _tensor_box(words: dict, x: float, y: float) -> str:
    return (f'<rect class="tensor" x="{x}" y="{y}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="8"/>'
            f'<text x="{x + BOX_WIDTH / 2}" y="{y + 24}" class="name">{_e(words["label"])}</text>'
            f'<text x="{x + BOX_WIDTH / 2}" y="{y + 42}" class="cls">{_e(words["sub"])}</text>')


def _loss_box(x: float, y: float) -> str:
    return (f'<rect class="loss" x="{x}" y="{y}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="8"/>'
            f'<text x="{x + BOX_WIDTH / 2}" y="{y + 34}" class="name">loss</text>')


def _break_mark(words: dict, x: float, y: float, label_dy: float, code_dy: float, two_lines: bool = False) -> str:
    """The ✕ centred at (x, y), the place named ``label_dy`` below its centre (above when negative), in one line or
    in two (the cause, then where), the code ``code_dy`` below."""
    label = (f'{_e(words["category"])}<tspan x="{x}" dy="16">{_e(words["place"])}</tspan>' if two_lines
             else _e(words["site_label"]))
    return (f'<g class="break" data-site="{_e(words["site"])}" data-breaks-at="{_e(words["breaks_at"])}">'
            f'<title>{_e(words["title"])}</title>'
            f'<circle cx="{x}" cy="{y}" r="13"/>'
            f'<text x="{x}" y="{y + 5}" class="x">✕</text>'
            f'<text x="{x}" y="{y + label_dy}" class="site">{label}</text>'
            f'<text x="{x}" y="{y + code_dy}" class="code">{_e(words["code"])}</text></g>')


def _break_row(cause: dict, number: int, y: int, finding: dict | None = None) -> str:
    words = _break_words(cause, finding, BREAK_LENGTH // 7)  # characters of 12px text over the cut
    x1 = GAP
    x2 = x1 + BOX_WIDTH + BREAK_LENGTH
    middle = y + BOX_HEIGHT / 2
    return (f'<g class="break-row" data-cause="{number}">{_tensor_box(words, x1, y)}'
            f'<line x1="{x1 + BOX_WIDTH + 4}" y1="{middle}" x2="{x2 - 4}" y2="{middle}" class="cut"/>'
            f'{_break_mark(words, (x1 + BOX_WIDTH + x2) / 2, middle, -20, 34)}{_loss_box(x2, y)}</g>')


def _narrow_break(cause: dict, number: int, y: float, finding: dict | None) -> str:
    """A cause's break going down: the last connected tensor, the cut with its ✕, the place and the code under
    the ✕ (the cut pauses for them), then the loss."""
    words = _break_words(cause, finding, NARROW_WIDTH // 7)
    middle = NARROW_WIDTH / 2
    cross = y + BOX_HEIGHT + NARROW_CUT + 13
    resume = cross + 13 + NARROW_LABELS
    loss_top = resume + NARROW_CUT + 4
    return (f'<g class="break-row" data-cause="{number}">{_tensor_box(words, middle - BOX_WIDTH / 2, y)}'
            f'<line x1="{middle}" y1="{y + BOX_HEIGHT + 4}" x2="{middle}" y2="{cross - 13}" class="cut"/>'
            f'{_break_mark(words, middle, cross, 34, 68, two_lines=True)}'
            f'<line x1="{middle}" y1="{resume}" x2="{middle}" y2="{resume + NARROW_CUT}" class="cut"/>'
            f'{_loss_box(middle - BOX_WIDTH / 2, loss_top)}</g>')


def _finding_place(cause: dict, finding: dict | None) -> dict | None:
    """The place of the cause's finding when it is not the statement where the run saw the break: the run stops at
    the statement of the training step (``loss = incorrect_loss(...)``), the finding is where the code goes wrong
    (the layer call inside that loss function)."""
    if not finding:
        return None
    site, span = cause.get("site") or {}, finding["span"]
    if span["path"] == site.get("path") and span["start_line"] == site.get("line"):
        return None
    return {"path": span["path"], "line": span["start_line"], "column": span["start_column"]}


def _short(text: str, limit: int) -> str:
    text = str(text or "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- the side-by-side diff

def side_by_side(diff: str, label: str = "the code before and after the fix") -> str:
    """A two-column table of a unified diff: before on the left, after on the right, each removed line beside the
    added line most like it. A narrow window shows it as one column, each old line above its new one."""
    try:
        patch = unidiff.PatchSet(diff)
    except unidiff.UnidiffParseError:
        return f"<pre>{_e(diff)}</pre>"
    rows = []
    for patched in patch:
        rows.append(f'<tr class="file"><th colspan="4">{_e(patched.path)}</th></tr>')
        for hunk in patched:
            rows.append(f'<tr class="hunk"><td colspan="4">{_e(str(hunk).splitlines()[0])}</td></tr>')
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
    return (f'<div class="diff-scroll" role="region" tabindex="0" aria-label="{_e(label)}">'
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
    marked_old, marked_new = _e(old_text), _e(new_text)
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
        removed, added = _e("".join(old_tokens[i1:i2])), _e("".join(new_tokens[j1:j2]))
        if tag == "equal":
            before.append(removed)
            after.append(added)
            continue
        if removed:
            before.append(f"<del>{removed}</del>")
        if added:
            after.append(f"<ins>{added}</ins>")
    return "".join(before), "".join(after)


# --------------------------------------------------------------------------- findings

BADGE = {"safe": "safe", "unsafe": "unsafe", "display-only": "display"}
SHOWN_VARIABLES = 8  # more are summarised in one line, the list behind it


def _fix_diff(document: dict, finding: dict) -> str:
    """The diff of the file patch that holds this finding's fix (the file's whole patch: fixes compose)."""
    fix = finding.get("fix")
    if not fix:
        return ""
    for patch in document.get("fixes", []):
        if patch["path"] == finding["span"]["path"] and any(f["rule"] == fix["rule"] for f in patch["fixes"]):
            return patch["diff"]
    return ""


def rule_link(finding: dict) -> str:
    """Where a finding's rule is explained: the project's published page when it set ``docs-url``, else the rule's
    documentation on this page (the page installed with gradfix is Markdown, which a browser shows as raw text)."""
    url = finding.get("url") or ""
    try:
        installed = url == installed_page_url(finding["rule"])
    except KeyError:  # a code no rule has: its link leads to the folder of pages
        return url
    return f"#rule-{finding['rule']}" if installed or not url else url


def finding_section(document: dict, finding: dict, index: int) -> str:
    span = finding["span"]
    fix = finding.get("fix")
    where = f"{span['path']}:{span['start_line']}:{span['start_column']}"
    link = rule_link(finding)
    code = (f'<a class="code-id" href="{_e(link)}">{_e(finding["rule"])}</a>' if link
            else f'<span class="code-id">{_e(finding["rule"])}</span>')
    parts = [f'<section class="finding" id="finding-{index}">',
             f'<h2>{code} {_e(finding["name"])} '
             f'<span class="where">{_e(where)}</span></h2>',
             f'<p class="message">{_prose(finding["message"])}</p>']
    if finding.get("detail"):
        parts.append(f'<p class="detail">{_prose(finding["detail"])}</p>')
    if finding.get("explanation"):
        parts.append(f'<p class="explanation">{_prose(finding["explanation"])}</p>')
    if finding.get("variables"):
        listed = ", ".join(f"<code>{_e(v)}</code>" for v in finding["variables"])
        if len(finding["variables"]) <= SHOWN_VARIABLES:
            parts.append(f'<p class="vars">Variables without a gradient: {listed}</p>')
        else:  # a long list is one line until opened
            from gradfix.messages import variables_summary

            parts.append(f'<details class="vars"><summary>{_prose(variables_summary(finding["variables"]))} get no '
                         f'gradient</summary><p>{listed}</p></details>')
    if fix:
        applicability = fix["applicability"]
        verified = fix.get("verified")
        state = {True: "verified", False: "failed", None: "unverified"}[verified]
        parts.append('<div class="fixline">'
                     f'<span class="badge {BADGE[applicability]}">{_e(applicability)}</span>'
                     f'<span class="badge {state}">{_e(verification_text(verified))}</span>'
                     f'<span class="desc">{_prose(fix["description"])}</span></div>')
        if fix.get("reason"):
            parts.append(f'<p class="reason">Why {_e(applicability)}: {_prose(fix["reason"])}</p>')
        diff = _fix_diff(document, finding)
        label = f"finding {index + 1} ({finding['rule']} at {where}): the code before and after the fix"  # unique
        parts.append(side_by_side(diff, label) if diff
                     else '<p class="empty">This fix is a suggestion; gradfix writes no patch for it.</p>')
    else:
        parts.append('<div class="fixline"><span class="badge none">no automatic fix</span></div>')
    if link:
        words = "the rule's documentation, at the end of this page" if link.startswith("#") else "the rule's page"
        parts.append(f'<p class="doc"><a href="{_e(link)}">{_e(finding["rule"])} {_e(finding.get("name", ""))}: '
                     f'{words}</a></p>')
    parts.append("</section>")
    return "".join(parts)


def rules_section(document: dict) -> str:
    """The documentation of every rule the page reports, from the Markdown pages gradfix ships, each folded in a
    ``<details id="rule-CODE">`` that the findings link to. Open, so that a link to it shows it in any browser."""
    parts = []
    for code in dict.fromkeys(finding["rule"] for finding in document["findings"]):
        try:
            rule = rule_by_code(code)
        except KeyError:
            continue
        markdown = page(rule)
        if markdown.startswith("# "):  # the title is the summary line of the details
            markdown = markdown.split("\n", 1)[1] if "\n" in markdown else ""
        parts.append(f'<details class="rule" id="rule-{_e(rule.code)}" open><summary><span class="code-id">{_e(rule.code)}'
                     f'</span> {_e(rule.name)}</summary>{markdown_html(markdown, heading_offset=1)}</details>')
    if not parts:
        return ""
    return ('<section class="panel rules" id="rules"><h2>The rules reported</h2>' + "".join(parts) + "</section>")


def _count_item(document: dict) -> str:
    findings = document["findings"]
    read = sum(1 for f in findings if f.get("evidence") == "static") if document.get("diagnose") else 0
    total = f"<b>{len(findings)}</b> finding{'s' * (len(findings) != 1)}"
    return f"<li>{total} ({len(findings) - read} from the run, {read} by reading the code)</li>" if read else f"<li>{total}</li>"


def _findings(document: dict) -> str:
    """The run's findings, then those found by reading the code that the run does not account for."""
    indexed = list(enumerate(document["findings"]))
    ran = [(i, f) for i, f in indexed if f.get("evidence") != "static"]
    read = [(i, f) for i, f in indexed if f.get("evidence") == "static"]
    if not document.get("diagnose"):
        ran, read = indexed, []
    parts = ['<h2 class="findings-title">Findings and their fixes</h2>']
    parts.extend(finding_section(document, f, i) for i, f in ran)
    if not ran:
        parts.append('<p class="empty">No findings from the run: every trainable variable gets a gradient.</p>'
                     if document.get("diagnose") else '<p class="empty">No findings.</p>')
    if read:
        parts.append('<h2 class="findings-title">Also found by reading the code</h2><p class="detail">What '
                     '<code>gradfix check</code> finds in the same files that the run does not account for: bug shapes '
                     'on paths this step did not take, or findings the run disproves. Their fixes were not run.</p>')
        parts.extend(finding_section(document, f, i) for i, f in read)
    return "".join(parts)


def _summary(document: dict) -> str:
    diagnose = document.get("diagnose") or {}
    gradients = diagnose.get("gradients") or {}
    missing = sum(1 for ok in gradients.values() if not ok)
    verification = document.get("verification") or {}
    after = verification.get("after") or {}
    items = [f"<li><b>{len(gradients) - missing}</b> of {len(gradients)} variables get a gradient</li>" if gradients else "",
             f'<li class="bad"><b>{missing}</b> do not</li>' if missing else "",
             _count_item(document)]
    if after:
        fixed = sum(1 for ok in after.values() if ok)
        items.append(f'<li class="{"good" if fixed == len(after) else "bad"}">after the fixes: '
                     f"<b>{fixed}</b> of {len(after)}</li>")
    status = diagnose.get("status", "")
    if status and status != "ok":
        items.append(f'<li class="bad">run status: {_e(status)}</li>')
    return f'<ul class="summary">{"".join(items)}</ul>'


CSS = """
:root { --green:#166534; --green-bg:#dcfce7; --red:#991b1b; --red-bg:#fee2e2; --amber:#92400e; --amber-bg:#fef3c7;
        --ink:#111827; --muted:#4b5563; --line:#e5e7eb; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 0.92em; background: #f3f4f6; border-radius: 3px; padding: 0 3px; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); margin: 0; background: #f9fafb; }
header { background: #111827; color: white; padding: 18px 32px; }
header h1 { margin: 0; font-size: 22px; } header p { margin: 4px 0 0; color: #d1d5db; }
main { padding: 20px 32px 48px; max-width: 1400px; }
.summary { display: flex; gap: 12px; list-style: none; padding: 0; margin: 0 0 20px; flex-wrap: wrap; }
.summary li { background: white; border: 1px solid var(--line); border-radius: 8px; padding: 8px 14px; }
.summary li.bad { border-color: var(--red); color: var(--red); } .summary li.good { border-color: var(--green); color: var(--green); }
.panel { background: white; border: 1px solid var(--line); border-radius: 10px; padding: 16px 20px; margin-bottom: 22px; }
.picture { overflow-x: auto; } .picture-hint { display: none; font-size: 13px; color: var(--muted); margin: 0 0 4px; }
svg.model { display: block; max-width: none; }  /* never scaled down: a narrow window scrolls it, its labels stay readable */
.panel h2 { margin: 0 0 8px; font-size: 18px; }
.legend span { display: inline-block; margin-right: 18px; font-size: 13px; color: var(--muted); }
.legend i { display: inline-block; width: 14px; height: 14px; border-radius: 3px; vertical-align: -2px; margin-right: 6px; }
svg.model text { font-family: system-ui, sans-serif; text-anchor: middle; }
svg.model .caption { text-anchor: start; fill: var(--muted); font-size: 12px; }
svg.model .name { font-size: 13px; font-weight: 600; } svg.model .cls { font-size: 11px; fill: #374151; }
.layer rect { stroke-width: 2; }
.layer.connected rect { fill: var(--green-bg); stroke: var(--green); }
.layer.disconnected rect { fill: var(--red-bg); stroke: var(--red); stroke-dasharray: 7 4; }
.layer.partial rect { fill: var(--amber-bg); stroke: var(--amber); stroke-dasharray: 2 3; }
svg.model .state { font-size: 11px; font-weight: 700; }
.layer.connected .state { fill: var(--green); } .layer.disconnected .state { fill: var(--red); } .layer.partial .state { fill: var(--amber); }
.flow { stroke: #4b5563; stroke-width: 2; }
.tensor { fill: var(--green-bg); stroke: var(--green); stroke-width: 2; }
.loss { fill: #e0e7ff; stroke: #4338ca; stroke-width: 2; }
.cut { stroke: var(--red); stroke-width: 3; stroke-dasharray: 8 6; }
.break circle { fill: var(--red); } .break .x { fill: white; font-size: 15px; font-weight: 700; }
.break .site { fill: var(--red); font-size: 12px; font-weight: 600; } .break .code { fill: #374151; font-size: 11px; font-family: ui-monospace, monospace; }
.finding { background: white; border: 1px solid var(--line); border-left: 5px solid var(--red); border-radius: 10px; padding: 14px 20px; margin-bottom: 22px; }
.finding h2 { font-size: 17px; margin: 0 0 6px; } .code-id { background: var(--ink); color: white; border-radius: 4px; padding: 1px 7px; font-size: 14px; }
.where { color: var(--muted); font-weight: 400; font-family: ui-monospace, monospace; font-size: 14px; margin-left: 8px; }
.message { margin: 4px 0; font-weight: 600; } .detail, .explanation { color: #374151; margin: 4px 0 8px; }
.reason, .doc, .vars { color: var(--muted); font-size: 13px; margin: 6px 0; }
details.vars summary { cursor: pointer; }
.fixline { display: flex; gap: 8px; align-items: center; margin: 10px 0; flex-wrap: wrap; }
.badge { border-radius: 999px; padding: 2px 10px; font-size: 12px; font-weight: 600; border: 1px solid; }
.badge.safe, .badge.verified { color: var(--green); background: var(--green-bg); }
.badge.unsafe { color: var(--amber); background: var(--amber-bg); }
.badge.display, .badge.unverified, .badge.none { color: var(--muted); background: #f3f4f6; }
.badge.failed { color: var(--red); background: var(--red-bg); }
.desc { font-weight: 600; }
table.diff { border-collapse: collapse; width: 100%; font: 12.5px/1.45 ui-monospace, SFMono-Regular, Menlo, monospace; }
table.diff col.num { width: 42px; } table.diff col.code { width: 50%; } table.diff thead th { text-align: left; font: 600 12px system-ui, sans-serif; color: var(--muted); padding: 4px 8px; }
.diff-scroll { overflow-x: auto; }
/* code wraps only at spaces; a word longer than its column widens the column, and the diff's box scrolls */
table.diff td { padding: 0 8px; vertical-align: top; white-space: pre-wrap; overflow-wrap: normal; word-break: normal; }
table.diff span.w { white-space: nowrap; }
table.diff del { background: #fca5a5; text-decoration: none; border-radius: 2px; }
table.diff ins { background: #86efac; text-decoration: none; border-radius: 2px; }
table.diff td.num { color: var(--muted); text-align: right; user-select: none; border-right: 1px solid var(--line); }
table.diff td.del { background: var(--red-bg); } table.diff td.add { background: var(--green-bg); }
table.diff td.empty { background: #f3f4f6; }
table.diff tr.hunk td { color: #3730a3; background: #eef2ff; padding: 2px 8px; }
table.diff tr.file th { text-align: left; font: 600 13px ui-monospace, monospace; padding: 6px 8px; border-bottom: 1px solid var(--line); }
.empty { color: var(--muted); font-style: italic; }
.rules details.rule { border-top: 1px solid var(--line); padding: 8px 0; }
.rules summary { cursor: pointer; font-weight: 600; }
.rules h3 { font-size: 15px; margin: 14px 0 4px; }
.rules pre { background: #f3f4f6; border-radius: 6px; padding: 8px 10px; overflow-x: auto; font-size: 12.5px; }
.rules pre code { background: none; padding: 0; }
a.code-id { text-decoration: none; } a.code-id:hover, a.code-id:focus { text-decoration: underline; }
/* a narrow window: one column of code, each old line above the new one (a unified diff), lines unwrapped and
   scrolled sideways in the diff's own box */
@media (max-width: 760px) {
  header { padding: 14px 14px; } main { padding: 16px 10px 40px; }
  .panel, .finding { padding: 12px 12px; }
  table.diff, table.diff tbody { display: block; }
  table.diff { width: max-content; min-width: 100%; }
  table.diff colgroup, table.diff thead { display: none; }
  table.diff tr { display: grid; grid-template-columns: 36px 36px 1fr; }
  table.diff td { white-space: pre; }
  table.diff tr td.num { padding: 0 4px; }
  table.diff tr > :nth-child(1) { grid-area: 1 / 1; } table.diff tr > :nth-child(2) { grid-area: 1 / 3; }
  table.diff tr > :nth-child(3) { grid-area: 2 / 2; } table.diff tr > :nth-child(4) { grid-area: 2 / 3; }
  table.diff tr.same > :nth-child(3) { grid-row: 1; } table.diff tr.same > :nth-child(4) { display: none; }
  table.diff tr.file > *, table.diff tr.hunk > * { grid-area: 1 / 1 / 2 / -1; }
  table.diff td.empty { display: none; }
  table.diff td.code::before { content: "  "; } table.diff td.del::before { content: "- "; }
  table.diff td.add::before { content: "+ "; }
}
"""


def _picture_hint_rule(document: dict) -> str:
    """Shows the hint above the wide model picture in a window too narrow for it: the picture never shrinks, so
    what lies past the window's edge is hidden until scrolled to. Narrower still, below the width that the break
    row alone needs, the narrow picture takes its place (NARROW_PICTURE_RULE)."""
    width = picture_width(document) if document.get("diagnose") else None
    if width is None:
        return ""
    return f"@media (max-width: {width + PAGE_MARGINS}px) {{ .picture-hint {{ display: block; }} }}"


# main's and the panel's padding, the panel's borders and a scroll bar: the window that shows the picture whole
PAGE_MARGINS = 2 * 32 + 2 * 20 + 2 + 20
# the narrowest any wide picture is: its break row, the last connected tensor, the cut and the loss
WIDE_PICTURE_MIN = 2 * BOX_WIDTH + BREAK_LENGTH + 2 * GAP
# One of the two pictures is shown, the other is not displayed at all (so that a screen reader meets one picture):
# the wide one in any window that fits its break row, and there, with the hint, in a box that scrolls if its rows
# are wider still; the narrow one, which fits a phone, in a window narrower than that.
NARROW_PICTURE_RULE = (f".narrow-picture {{ display: none; }} @media (max-width: {WIDE_PICTURE_MIN + PAGE_MARGINS}px) "
                       "{ .wide-picture { display: none; } .narrow-picture { display: block; } }")


def render(document: dict) -> str:
    diagnose = document.get("diagnose") or {}
    title = f"gradfix review: {diagnose.get('target') or document['command']}"
    findings = _findings(document)
    picture = ""
    if diagnose:
        picture = ('<section class="panel" id="model"><h2>The model as the run saw it</h2>'
                   '<p class="legend"><span><i style="background:#dcfce7;border:2px solid #166534"></i>✓ gets gradients</span>'
                   '<span><i style="background:#fee2e2;border:2px dashed #991b1b"></i>✕ gets no gradient</span>'
                   '<span><i style="background:#fef3c7;border:2px dotted #92400e"></i>◐ some of its variables do</span>'
                   '<span>✕ on a dashed line: where the path to the loss breaks</span></p>'
                   '<div class="wide-picture"><p class="picture-hint">The picture is wider than the window: scroll it '
                   f'sideways to see all of it.</p>{model_picture(document)}</div>'
                   f'<div class="narrow-picture">{narrow_model_picture(document)}</div></section>')
    tool = document["tool"]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{_e(title)}</title><style>{CSS}{_picture_hint_rule(document)}{NARROW_PICTURE_RULE}</style></head><body>"
        f"<header><h1>{_e(title)}</h1><p>{_e(tool['name'])} {_e(tool['version'])} · "
        f"report schema {document['schema_version']}</p></header><main>"
        f"{_summary(document)}{picture}{findings}{rules_section(document)}"
        "</main></body></html>\n"
    )
