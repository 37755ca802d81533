"""Jupyter notebooks: their code cells as one Python text, findings mapped back to cell and line.

Magics (``%timeit``), shell escapes (``!pip``) and help (``x?``) become ``pass`` lines
of the same indentation, so line numbers stay put and gradfix never edits them;
cells that start with a cell magic (``%%bash``) are left out. A fix is written back
into the cells it changes; outputs, metadata and every other cell stay as they are.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace

from gradfix.edits import line_edits, split_lines
from gradfix.messages import fit
from gradfix.model import Finding, RelatedSpan, Span
from gradfix.source import SourceError, SourceFile, read_source

_MAGIC = re.compile(r"^(\s*)(?:[%!]|\?|[\w.]+\?{1,2}\s*$|[\w.\[\], ]+=\s*[%!])")


@dataclass
class Notebook:
    path: str
    data: dict
    stored: SourceFile  # the JSON as read, for the unchanged check and the write
    cells: list[tuple[int, list[str]]]  # (index in data["cells"], lines of its Python text)
    magic_lines: set[int]  # lines of the Python text that stand for magics
    origins: list[tuple[int, int]]  # per line of the Python text: (cell number, counted from 1; line in the cell)

    @property
    def text(self) -> str:
        return "".join(line for _, lines in self.cells for line in lines)

    def source(self) -> SourceFile:
        return SourceFile(self.path, self.text, "utf-8")


def is_notebook(path: str) -> bool:
    return path.endswith(".ipynb")


def _cell_text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def read_notebook(path: str) -> Notebook:
    stored = read_source(path)
    try:
        data = json.loads(stored.text)
    except ValueError as error:
        raise SourceError(path, f"not a notebook: its JSON does not parse ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise SourceError(path, "not a notebook: no list of cells")
    language = _language(path, data)
    if language.lower() != "python":
        raise SourceError(path, f"a {language} notebook; gradfix reads Python notebooks only")
    cells, magic_lines, origins = [], set(), []
    for index, cell in enumerate(data["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if not isinstance(source, str) and not (isinstance(source, list) and all(isinstance(s, str) for s in source)):
            raise SourceError(path, f"not a notebook gradfix can read: the source of cell {index + 1} is not text")
        text = _cell_text(cell)
        if text.lstrip().startswith("%%") or not text.strip():
            continue
        lines = split_lines(text)
        if lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += "\n"
        for number, line in enumerate(lines, start=1):
            if _MAGIC.match(line):
                indent = _MAGIC.match(line).group(1)
                lines[number - 1] = f"{indent}pass\n"
                magic_lines.add(len(origins) + 1)
            origins.append((index, number))
        cells.append((index, lines))
    return Notebook(path, data, stored, cells, magic_lines, origins)


def check_notebook_json(path: str, text: str) -> None:
    """What a notebook's new text must be before it is written: JSON that is still a notebook."""
    try:
        data = json.loads(text)
    except ValueError as error:
        raise SourceError(path, f"the new notebook text is not valid JSON: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise SourceError(path, "the new notebook text has no list of cells")


def _language(path: str, data: dict) -> str:
    """The notebook's language from its metadata (Python when it names none); SourceError when malformed."""
    metadata = data.get("metadata", {})
    if not isinstance(metadata, dict):
        raise SourceError(path, f"not a notebook gradfix can read: its metadata is a JSON {_json_kind(metadata)}, not an object")
    for table, key in (("kernelspec", "language"), ("language_info", "name")):
        section = metadata.get(table) or {}
        if not isinstance(section, dict):
            raise SourceError(path, f"not a notebook gradfix can read: metadata.{table} is a JSON {_json_kind(section)}, "
                                    "not an object")
        value = section.get(key)
        if value is not None and not isinstance(value, str):
            raise SourceError(path, f"not a notebook gradfix can read: metadata.{table}.{key} is a JSON "
                                    f"{_json_kind(value)}, not a string")
        if value:
            return value
    return "python"


def _json_kind(value: object) -> str:
    return {list: "array", dict: "object", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(value), "null")


def _cell_number(notebook: Notebook, index: int) -> int:
    return index + 1


def map_span(notebook: Notebook, span: Span) -> tuple[Span, int]:
    index, line = notebook.origins[min(span.start_line, len(notebook.origins)) - 1]
    end_index, end_line = notebook.origins[min(span.end_line, len(notebook.origins)) - 1]
    if end_index != index:
        end_line = line
    return replace(span, start_line=line, end_line=end_line), index


def map_finding(notebook: Notebook, finding: Finding) -> Finding:
    """The finding with lines counted within its cell, the cell named in the message (fixes are dropped:
    they are applied through ``fixed_notebook``, never through line numbers of the JSON file)."""
    span, index = map_span(notebook, finding.span)
    related = []
    for item in finding.related:
        related_span, related_index = map_span(notebook, item.span)
        related.append(RelatedSpan(related_span, f"cell {_cell_number(notebook, related_index)}: {item.message}"))
    return replace(finding, span=span, related=tuple(related), fix=None,
                   message=fit(f"Cell {_cell_number(notebook, index)}: {finding.message}"))


def cell_lines(notebook: Notebook, finding: Finding) -> list[str]:
    """The lines of the cell a mapped finding is in, for the excerpt."""
    number = int(finding.message.split(":", 1)[0].split()[1])  # "Cell 3: ..."
    return _cell_text(notebook.data["cells"][number - 1]).splitlines()


def fixed_notebook(notebook: Notebook, new_text: str) -> str:
    """The notebook's JSON with ``new_text`` (the fixed Python text) put back into its cells.

    Raises SourceError when a change touches a magic line or spans two cells.
    """
    starts, position = [], 1
    for index, lines in notebook.cells:
        starts.append((position, position + len(lines), index))
        position += len(lines)
    original = {index: split_lines(_cell_text(notebook.data["cells"][index])) for index, _ in notebook.cells}
    # Edits go onto the cells' own lines, magics included: no edit may touch a magic line.
    new_cells = {index: lines[:-1] + [lines[-1] if lines[-1].endswith(("\n", "\r")) else lines[-1] + "\n"]
                 for index, lines in original.items()}
    for edit in sorted(line_edits(notebook.text, new_text), key=lambda e: e.start_line, reverse=True):
        if any(line in notebook.magic_lines for line in range(edit.start_line, edit.end_line)):
            raise SourceError(notebook.path, f"not written: a fix would change a magic line ({edit.start_line})")
        last = max(edit.start_line, edit.end_line - 1)
        owner = [item for item in starts if item[0] <= edit.start_line < item[1] and item[0] <= last < item[1]]
        if not owner:
            raise SourceError(notebook.path, "not written: a fix would span two cells")
        first, _, index = owner[0]
        new_cells[index][edit.start_line - first: edit.end_line - first] = split_lines(edit.new_text)
    changed = {}
    for index, lines in new_cells.items():
        text = "".join(lines)
        if original[index] and not original[index][-1].endswith(("\n", "\r")) and text.endswith("\n"):
            text = text[:-1]
        if text != "".join(original[index]):
            changed[index] = text
    return _with_sources(notebook.stored.text, changed)


_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _members(text: str, start: int, closing: str):
    """(key or None, start, end) of each member of the JSON object (closing "}") or array ("]") at ``start``."""
    decoder = json.JSONDecoder()
    at = _WHITESPACE.match(text, start + 1).end()
    while text[at] != closing:
        key = None
        if closing == "}":
            key, at = json.decoder.scanstring(text, at + 1)
            at = _WHITESPACE.match(text, _WHITESPACE.match(text, at).end() + 1).end()  # past the colon
        _, end = decoder.raw_decode(text, at)
        yield key, at, end
        at = _WHITESPACE.match(text, end).end()
        if text[at] == ",":
            at = _WHITESPACE.match(text, at + 1).end()


def _source_spans(text: str) -> dict[int, tuple[int, int]]:
    """Where each cell's "source" value stands in the notebook's JSON text, by cell index."""
    spans = {}
    top = _WHITESPACE.match(text).end()
    for key, start, _ in _members(text, top, "}"):
        if key != "cells":
            continue
        spans = {}  # as json.loads, the last of repeated keys counts
        for index, (_, cell_start, _) in enumerate(_members(text, start, "]")):
            if text[cell_start] == "{":
                for name, value_start, value_end in _members(text, cell_start, "}"):
                    if name == "source":
                        spans[index] = (value_start, value_end)
    return spans


def _with_sources(stored: str, changed: dict[int, str]) -> str:
    """The notebook's JSON text with the sources of the changed cells replaced, every other byte kept,
    each new value written in the layout its old one had (one line, or one string per line)."""
    spans = _source_spans(stored)
    ascii_only = stored.isascii() and "\\u" in stored
    out = stored
    for index in sorted(changed, key=lambda i: spans[i][0], reverse=True):
        start, end = spans[index]
        old = stored[start:end]
        value = changed[index] if old.startswith('"') else split_lines(changed[index])
        line_start = stored.rfind("\n", 0, start) + 1
        line_indent = _WHITESPACE.match(stored, line_start).group(0)
        if "\n" in old:
            item = re.match(r"\[[ \t]*\r?\n([ \t]*)", old)
            unit = len(item.group(1)) - len(line_indent) if item else 1
            newline = "\r\n" if "\r\n" in old else "\n"
            new = json.dumps(value, indent=max(unit, 1), ensure_ascii=ascii_only).replace("\n", newline + line_indent)
        else:
            separator = re.search(r'",([ \t]*)"', old)
            new = json.dumps(value, ensure_ascii=ascii_only, separators=(f",{separator.group(1) if separator else ' '}", ": "))
        out = out[:start] + new + out[end:]
    return out
