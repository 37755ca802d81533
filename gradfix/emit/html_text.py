"""Text for the review page's HTML: escaped, and a message's `code` spans set as code."""

from __future__ import annotations

import html
from typing import Any


def escaped(text: Any) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def prose(text: Any) -> str:
    """Text of a message, escaped, its `code` spans set as code (the messages mark code with backticks)."""
    parts = ("" if text is None else str(text)).split("`")
    if len(parts) % 2 == 0:  # an odd backtick: no pairs to trust
        return escaped(text)
    return "".join(escaped(part) if index % 2 == 0 else f"<code>{escaped(part)}</code>" for index, part in enumerate(parts))
