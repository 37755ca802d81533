"""The Markdown of the rule pages as HTML, so that the review page can carry them, rendered by markdown-it-py
(CommonMark; installed with Rich, which gradfix's terminal output uses)."""

from __future__ import annotations

from markdown_it import MarkdownIt

# raw HTML in a page is shown as its text: the page carries no markup it did not make itself
_RENDERER = MarkdownIt("commonmark", {"html": False})


def to_html(markdown: str, heading_offset: int = 0) -> str:
    """``markdown`` as HTML; a heading of level n becomes ``h{n + heading_offset}`` (at most h6). Code blocks can be
    reached from the keyboard, as a box that scrolls must be."""
    tokens = _RENDERER.parse(markdown)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1]) + heading_offset)}"
    return _RENDERER.renderer.render(tokens, _RENDERER.options, {}).replace("<pre>", '<pre tabindex="0">')
