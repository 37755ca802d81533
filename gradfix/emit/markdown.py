"""The Markdown of the rule pages as simple HTML, so that the review page can carry them: headings, paragraphs,
fenced code blocks, lists, and inline code, bold, italics and links. What the rule pages do not use (tables,
nested lists, block quotes) is shown as paragraphs of its text."""

from __future__ import annotations

import html
import re

_HEADING = re.compile(r"(#{1,6})\s+(.*?)\s*#*\s*$")
_ITEM = re.compile(r"\s{0,3}(?:[-*+]|(\d+)[.)])\s+(.*)")
_FENCE = re.compile(r"\s{0,3}(`{3,}|~{3,})\s*([\w+-]*)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_ITALIC = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])")


def inline(text: str) -> str:
    """One paragraph's text as HTML: `code` spans first, so that nothing inside them is read as emphasis."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick is a backtick
        parts = [text]
    out = []
    for index, part in enumerate(parts):
        if index % 2:
            out.append(f"<code>{html.escape(part)}</code>")
            continue
        escaped = html.escape(part, quote=False)
        escaped = _LINK.sub(lambda m: f'<a href="{html.escape(html.unescape(m.group(2)))}">{m.group(1)}</a>', escaped)
        escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
        out.append(_ITALIC.sub(r"<em>\1</em>", escaped))
    return "".join(out)


def to_html(markdown: str, heading_offset: int = 0) -> str:
    """``markdown`` as HTML; a heading of level n becomes ``h{n + heading_offset}`` (at most h6)."""
    lines = markdown.splitlines()
    out: list[str] = []
    paragraph: list[str] = []
    items: list[list[str]] = []
    ordered = False

    def close_paragraph() -> None:
        if paragraph:
            out.append(f"<p>{inline(' '.join(line.strip() for line in paragraph))}</p>")
            paragraph.clear()

    def close_list() -> None:
        if items:
            tag = "ol" if ordered else "ul"
            out.append(f"<{tag}>" + "".join(f"<li>{inline(' '.join(item))}</li>" for item in items) + f"</{tag}>")
            items.clear()

    index = 0
    while index < len(lines):
        line = lines[index]
        fence = _FENCE.match(line)
        heading = _HEADING.match(line)
        item = _ITEM.match(line)
        if fence:
            close_paragraph()
            close_list()
            marker, language = fence.group(1), fence.group(2)
            code = []
            index += 1
            while index < len(lines) and not lines[index].strip().startswith(marker):
                code.append(lines[index])
                index += 1
            language_class = f' class="language-{html.escape(language)}"' if language else ""
            # a code block scrolls sideways rather than wrapping its lines; focusable, so that a keyboard scrolls it too
            out.append(f'<pre tabindex="0"><code{language_class}>{html.escape(chr(10).join(code))}</code></pre>')
        elif heading:
            close_paragraph()
            close_list()
            level = min(6, len(heading.group(1)) + heading_offset)
            out.append(f"<h{level}>{inline(heading.group(2))}</h{level}>")
        elif item:
            close_paragraph()
            if items and ordered != bool(item.group(1)):
                close_list()
            ordered = bool(item.group(1))
            items.append([item.group(2)])
        elif not line.strip():
            close_paragraph()
            following = next((rest for rest in lines[index + 1:] if rest.strip()), "")
            if not _ITEM.match(following):  # a blank line between two items keeps one list
                close_list()
        elif items and line.startswith((" ", "\t")):
            items[-1].append(line.strip())  # an item's continuation line
        else:
            close_list()
            paragraph.append(line)
        index += 1
    close_paragraph()
    close_list()
    return "".join(out)
