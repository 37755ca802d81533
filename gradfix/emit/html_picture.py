"""The review page's picture of the model as the run saw it: one box per layer in the order the variables were made,
green where the layer's variables get gradients, red where they do not, and for each cause the break between the
last tensor still connected to the variables and the loss; drawn twice, wide (rows left to right) and narrow (top to
bottom, for a phone), the page's style sheet showing one."""

from __future__ import annotations

from gradfix.emit.html_text import escaped

BOX_WIDTH, BOX_HEIGHT, GAP = 150, 58, 34
BREAK_LENGTH = 380  # the dashed cut between the last connected tensor and the loss


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
    return (f'<g class="layer {box["state"]}" data-layer="{escaped(box["name"])}" data-count="{box["count"]}">'
            f'<title>{escaped(title)}</title>'
            f'<rect x="{x}" y="{y}" width="{box_width}" height="{BOX_HEIGHT}" rx="8"/>'
            f'<text x="{x + box_width / 2}" y="{y + 17}" class="name">{escaped(_short(box["name"], name_letters))}</text>'
            f'<text x="{x + box_width / 2}" y="{y + 33}" class="cls">'
            f'{escaped(_short(kind, letters - len(count_words)))}{escaped(count_words)}</text>'
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
            f'<text x="{x + BOX_WIDTH / 2}" y="{y + 24}" class="name">{escaped(words["label"])}</text>'
            f'<text x="{x + BOX_WIDTH / 2}" y="{y + 42}" class="cls">{escaped(words["sub"])}</text>')


def _loss_box(x: float, y: float) -> str:
    return (f'<rect class="loss" x="{x}" y="{y}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="8"/>'
            f'<text x="{x + BOX_WIDTH / 2}" y="{y + 34}" class="name">loss</text>')


def _break_mark(words: dict, x: float, y: float, label_dy: float, code_dy: float, two_lines: bool = False) -> str:
    """The ✕ centred at (x, y), the place named ``label_dy`` below its centre (above when negative), in one line or
    in two (the cause, then where), the code ``code_dy`` below."""
    label = (f'{escaped(words["category"])}<tspan x="{x}" dy="16">{escaped(words["place"])}</tspan>' if two_lines
             else escaped(words["site_label"]))
    return (f'<g class="break" data-site="{escaped(words["site"])}" data-breaks-at="{escaped(words["breaks_at"])}">'
            f'<title>{escaped(words["title"])}</title>'
            f'<circle cx="{x}" cy="{y}" r="13"/>'
            f'<text x="{x}" y="{y + 5}" class="x">✕</text>'
            f'<text x="{x}" y="{y + label_dy}" class="site">{label}</text>'
            f'<text x="{x}" y="{y + code_dy}" class="code">{escaped(words["code"])}</text></g>')


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
