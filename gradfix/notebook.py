"""Jupyter notebooks: their code cells read as IPython reads them, analysed as one module, mapped back to cell and line.

Each code cell is read as a Jupyter kernel reads it (``gradfix.ipython_input``). Where IPython
is installed, its own ``TransformerManager`` reads the cell too, and where the two differ
IPython's reading is the one analysed. IPython's syntax (magics, shell escapes, help,
automagics) becomes the call IPython runs in its place, on the line it starts, with blank
lines for the lines it continues over, so line numbers stay put and gradfix never edits it.
A cell magic whose body is Python (``%%time``) has its body read as a cell; any other
(``%%bash``, ``%%writefile``) leaves its cell out.

The cells, in order, make one module, so each cell is analysed with the names the cells
before it bound. A ``from __future__`` import, which IPython accepts anywhere at a cell's
top level, stays only where the module's top is; elsewhere it becomes ``pass``.

Positions are a cell, counted from 1 over every cell of the notebook (markdown included),
and a line of that cell's source, with the columns of the source as stored. A fix changes
only the cells it is in, and only lines that are the user's code; outputs, metadata, every
other cell and the JSON's own layout stay byte for byte as they are.
"""

from __future__ import annotations

import ast
import difflib
import functools
import json
import re
import warnings
from dataclasses import dataclass, replace
from typing import Callable, Sequence

from gradfix.edits import split_lines
from gradfix.ipython_input import (
    COMMON,
    FIRST_LINE,
    CellReading,
    CellSyntaxError,
    automagic,
    read_cell,
)
from gradfix.ipython_input import (
    cell_lines as ipython_cell_lines,
)
from gradfix.messages import fit
from gradfix.model import Finding, Fix, RelatedSpan, Span, TextEdit
from gradfix.source import SourceError, SourceFile, quiet_compile_warnings, read_source


@functools.lru_cache(maxsize=1)
def ipython_transform() -> Callable[[str], str] | None:
    """IPython's own reading of a cell (``TransformerManager().transform_cell``), or None without IPython."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except Exception:  # noqa: BLE001 - an IPython that fails to import is as good as none
        return None
    manager = TransformerManager()

    def transform(text: str) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return manager.transform_cell(text)

    return transform


@dataclass(frozen=True)
class Origin:
    """Where one line of the analysed text comes from."""

    cell: int  # index in data["cells"]
    line: int | None  # line of the cell's source, from 1; None for a line a fix added
    text: str  # the line as analysed
    offset: int = 0  # columns IPython removed from the start of the line (the cell's indentation, a prompt)
    code: bool = True  # the user's code: a fix may change it
    continued: bool = False  # continues the line above (a shell escape continued with a backslash)


@dataclass(frozen=True)
class Cell:
    index: int
    raw: tuple[str, ...]  # the source's lines as stored
    margin: str | None  # the indentation IPython removed from each line, which a line a fix adds gets too;
    #                     None: lines lost more than indentation (prompts), and a fix could not be written back
    magic: bool  # starts with a cell magic: nothing may go before its first line
    frozen: bool  # read through IPython's own output, or as one line of automagic: a change would read otherwise
    bound: frozenset[str]  # the names the cells before it bound
    first: bool  # the first cell analysed, whose top is the module's top


@dataclass
class Notebook:
    path: str
    data: dict
    stored: SourceFile  # the JSON as read, for the unchanged check and the write
    cells: dict[int, Cell]  # the cells analysed, by index in data["cells"]
    origins: tuple[Origin, ...]  # per line of the analysed text

    @property
    def text(self) -> str:
        return "".join(origin.text for origin in self.origins)

    def source(self) -> SourceFile:
        return SourceFile(self.path, self.text, "utf-8")

    def layout(self) -> "CellLines":
        return CellLines(self, self.origins, frozenset())


def is_notebook(path: str) -> bool:
    return path.endswith(".ipynb")


def _cell_text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def cell_number(index: int) -> int:
    """A cell's number in messages: its place among all the notebook's cells, from 1."""
    return index + 1


_DEFAULT = object()


def read_notebook(path: str, reference=_DEFAULT) -> Notebook:
    """The notebook's code cells as one analysable text. Raises SourceError, naming cell and line.

    ``reference``: IPython's reading of a cell (default: ``ipython_transform()``); None reads without it."""
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
    if reference is _DEFAULT:
        reference = ipython_transform()
    cells: dict[int, Cell] = {}
    origins: list[Origin] = []
    bound: set[str] = set()
    for index, cell in enumerate(data["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if not isinstance(source, str) and not (isinstance(source, list) and all(isinstance(s, str) for s in source)):
            raise SourceError(path, f"not a notebook gradfix can read: the source of cell {cell_number(index)} is not text")
        text = _cell_text(cell)
        if not text.strip():
            continue
        try:
            read = _read_cell(path, index, text, frozenset(bound), not cells, reference)
        except SourceError as error:
            python_2 = _python_2(data)
            if python_2 is None or not error.problem.startswith("syntax error"):
                raise
            # `print x` read as Python 3 says only "Missing parentheses": the metadata tells why
            raise SourceError(path, f"{error.problem} (a notebook for {python_2}; gradfix reads Python 3)",
                              error.span) from None
        if read is None:
            continue
        info, lines, names = read
        cells[index] = info
        origins.extend(lines)
        bound |= names
    return Notebook(path, data, stored, cells, tuple(origins))


def _read_cell(path: str, index: int, text: str, bound: frozenset[str], first: bool, reference):
    """(the cell, its lines, the names it binds), or None for a cell that is not Python.

    Without IPython to say which version runs the notebook, a cell that IPython 9 cannot run but IPython 8
    can (its first line alone indented: IPython 8 strips that indentation from the lines that have it) is read
    as IPython 8 reads it: such notebooks ran where they were written, Colab among those places."""
    try:
        return _read_cell_as(path, index, text, bound, first, reference, COMMON)
    except SourceError:
        if reference is not None or not re.match(r"[ \t]", text.lstrip("\r\n")):
            raise
        try:
            return _read_cell_as(path, index, text, bound, first, reference, FIRST_LINE)
        except SourceError:
            pass
        raise


def _read_cell_as(path: str, index: int, text: str, bound: frozenset[str], first: bool, reference, indentation: str):
    raw = tuple(split_lines(text))
    try:
        reading, problem = read_cell(text, bound, indentation), None
    except CellSyntaxError as error:
        reading, problem = None, error
    ipython = _disagreement(reference, text, reading) if reference is not None else None
    if isinstance(ipython, Exception) or (ipython is None and problem is not None):
        if problem is not None:
            line = min(problem.cell_line, len(raw))
            raise SourceError(path, f"syntax error at cell {cell_number(index)}, line {line}: {problem.msg}")
        raise SourceError(path, f"IPython cannot read cell {cell_number(index)}: {ipython.__class__.__name__}: {ipython}")
    if ipython is not None:
        lines = _lines_from_ipython(index, ipython, ipython_cell_lines(text), bound)
        frozen, magic = True, False
    else:
        assert reading is not None, "read without a problem"
        if not reading.is_python:
            return None
        lines = [Origin(index, number, line.text, line.offset, line.code, line.continued)
                 for number, line in enumerate(reading.lines, start=1)]
        frozen = reading.python != reading.static or bool(reading.body and reading.body.python != reading.body.static)
        magic = reading.magic is not None
    lines, tree = _checked(path, index, lines, first)
    info = Cell(index, raw, _margin(raw, lines), magic, frozen, bound, first)
    return info, lines, _bound_names(tree)


def _disagreement(reference, text: str, reading: CellReading | None):
    """None when IPython reads the cell as gradfix does; else IPython's reading, or the error it raised."""
    try:
        expected = reference(text)
    except Exception as error:  # noqa: BLE001 - IPython failing on the cell is its verdict on it
        return error
    if reading is None or expected != reading.static:
        return expected
    if reading.body is not None:
        try:
            if reference(reading.body_text) != reading.body.static:
                return expected
        except Exception:  # noqa: BLE001 - the magic would fail on its body: analyse the cell as IPython has it
            return expected
    return None


def _lines_from_ipython(index: int, text: str, raw: list[str], bound) -> list[Origin]:
    """The lines of IPython's own reading, each placed on the line of the cell it best matches."""
    out = split_lines(text)
    if len(text.splitlines()) == 1:
        call = automagic(out[0], bound)
        out = [call + "\n"] if call is not None else out
    matcher = difflib.SequenceMatcher(None, [line.strip() for line in raw], [line.strip() for line in out], autojunk=False)
    placed = [1] * len(out)
    for _, raw_start, raw_end, out_start, out_end in matcher.get_opcodes():
        for at in range(out_start, out_end):
            placed[at] = min(raw_start + (at - out_start), max(raw_end - 1, raw_start), len(raw) - 1) + 1
    return [Origin(index, line, out_line, len(raw[line - 1]) - len(out_line) if raw[line - 1].endswith(out_line) else 0,
                   code=False) for line, out_line in zip(placed, out)]


def _margin(raw: Sequence[str], lines: Sequence[Origin]) -> str | None:
    """The indentation IPython removed from every line of the cell, if that is all it removed."""
    margins = {raw[origin.line - 1][:origin.offset] for origin in lines
               if origin.line is not None and origin.text.strip() and origin.code}
    if not margins:
        return ""
    if len(margins) > 1:
        return None
    margin = margins.pop()
    return margin if not margin.strip() else None


def _position(index: int, lines: Sequence[Origin], line: int | None, column: int | None) -> str:
    origin = lines[min(max(line or 1, 1), len(lines)) - 1]
    where = f"cell {cell_number(index)}, line {origin.line or 1}"
    return where + (f", column {column + origin.offset}" if column else "")


def _checked(path: str, index: int, lines: list[Origin], first: bool) -> tuple[list[Origin], ast.Module]:
    """The cell's lines with ``from __future__`` imports made ``pass`` where the module's top is not,
    and the cell's tree. Raises SourceError for a cell IPython could not run: Python's verdict, per cell."""
    def refused(error: SyntaxError) -> SourceError:
        return SourceError(path, f"syntax error at {_position(index, lines, error.lineno, error.offset)}: {error.msg}")

    text = "".join(origin.text for origin in lines)
    nul = text.find("\0")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        column = nul - (text.rfind("\n", 0, nul) + 1) + 1
        raise SourceError(path, f"syntax error at {_position(index, lines, line, column)}: "
                                "source contains a NUL byte")
    try:
        with quiet_compile_warnings():
            tree = compile(text, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
            assert isinstance(tree, ast.Module), "an \"exec\" parse is a module"
            leading = _leading_futures(tree) if first else 0
            for node in tree.body[:]:
                if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                    # IPython compiles each statement of a cell alone: a future import is legal anywhere at top level
                    compile(ast.Module([node], []), path, "exec", dont_inherit=True)
                    if tree.body.index(node) >= leading:
                        lines = _as_pass(lines, node)
            text = "".join(origin.text for origin in lines)
            compile(text, path, "exec", dont_inherit=True)
    except SyntaxError as error:
        raise refused(error) from None
    except (RecursionError, MemoryError):
        raise SourceError(path, f"cell {cell_number(index)} is too deeply nested for Python to compile") from None
    except ValueError as error:
        raise SourceError(path, f"cell {cell_number(index)} cannot be parsed: {error}") from None
    return lines, tree


def _leading_futures(tree: ast.Module) -> int:
    """How many of the module's first statements may be future imports where they stand (a docstring first)."""
    body = tree.body
    count = 1 if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
        and isinstance(body[0].value.value, str) else 0
    while count < len(body) and isinstance(statement := body[count], ast.ImportFrom) and statement.module == "__future__":
        count += 1
    return count


def _as_pass(lines: list[Origin], node: ast.stmt) -> list[Origin]:
    assert node.end_lineno is not None and node.end_col_offset is not None, "a parsed statement has its end"
    lines = list(lines)
    first = lines[node.lineno - 1]
    encoded = first.text.encode("utf-8")
    if node.end_lineno == node.lineno:
        text = (encoded[:node.col_offset] + b"pass" + encoded[node.end_col_offset:]).decode("utf-8")
    else:
        text = encoded[:node.col_offset].decode("utf-8") + "pass\n"
    lines[node.lineno - 1] = replace(first, text=text, code=False)
    for number in range(node.lineno + 1, node.end_lineno + 1):
        lines[number - 1] = replace(lines[number - 1], text="\n", code=False)
    return lines


def _bound_names(tree: ast.Module) -> set[str]:
    """The names a cell binds in the notebook's namespace, which hide magics of the same name from automagic."""
    names: set[str] = set()
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            names.update(name for inner in ast.walk(node) if isinstance(inner, ast.Global) for name in inner.names)
            continue
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.alias) and node.name != "*":
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
        stack.extend(ast.iter_child_nodes(node))
    return names


# --------------------------------------------------------------------------- positions and fixes

class CellLines:
    """The analysed text's lines as cells and lines of cells, as fixes leave them (``after``)."""

    def __init__(self, notebook: Notebook, origins: Sequence[Origin], changed: frozenset[int]):
        self.notebook = notebook
        self.origins = tuple(origins)
        self.changed = changed
        self._lines: list[int] = []
        counts: dict[int, int] = {}
        for origin in self.origins:
            counts[origin.cell] = counts.get(origin.cell, 0) + 1
            # a changed cell's lines are counted as they now stand; any other keeps its stored numbers
            self._lines.append(counts[origin.cell] if origin.cell in changed else (origin.line or counts[origin.cell]))

    @property
    def text(self) -> str:
        return "".join(origin.text for origin in self.origins)

    def place(self, number: int) -> tuple[Origin, int]:
        """The origin of line ``number`` of the analysed text, and its line in its cell."""
        at = min(max(number, 1), len(self.origins)) - 1
        return self.origins[at], self._lines[at]

    def describe(self, number: int) -> str:
        origin, line = self.place(number)
        return f"cell {cell_number(origin.cell)}, line {line}"

    def map_span(self, span: Span) -> tuple[Span, int]:
        start, start_line = self.place(span.start_line)
        end, end_line = self.place(span.end_line)
        if end.cell != start.cell:
            end, end_line = start, start_line
            end_column = span.start_column + start.offset + 1
        else:
            end_column = span.end_column + end.offset
        return replace(span, start_line=start_line, start_column=span.start_column + start.offset, end_line=end_line,
                       end_column=end_column), start.cell

    def map_finding(self, finding: Finding) -> Finding:
        """The finding in cell lines and columns, its cell named first in the message, its fix too (None
        when the fix may not be written into the notebook)."""
        span, index = self.map_span(finding.span)
        related = []
        for item in finding.related:
            related_span, related_index = self.map_span(item.span)
            related.append(RelatedSpan(related_span, f"cell {cell_number(related_index)}: {item.message}"))
        return replace(finding, span=span, related=tuple(related), message=fit(f"Cell {cell_number(index)}: {finding.message}"),
                       fix=self.map_fix(finding.fix) if finding.fix is not None else None)

    def map_unused(self, unused: Sequence[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
        """Unused ``# noqa`` comments at cell lines, the cell named after the codes."""
        mapped = []
        for line, column, codes in unused:
            origin, cell_line = self.place(line)
            mapped.append((cell_line, column + origin.offset, f"{codes} in cell {cell_number(origin.cell)}"))
        return mapped

    def map_error(self, error: SourceError) -> SourceError:
        """The error with each line of the analysed text it names said as cell and line."""
        def mapped(match: re.Match) -> str:
            origin, line = self.place(int(match.group(1)))
            column = f", column {int(match.group(2)) + origin.offset}" if match.group(2) else ""
            return f"cell {cell_number(origin.cell)}, line {line}{column}"

        problem = re.sub(r"\bline (\d+)(?:, column (\d+))?", mapped, error.problem)
        if problem == error.problem:
            return error
        return SourceError(error.path, problem)

    def _where(self, edit: TextEdit) -> tuple[int, int, int] | None:
        """(cell index, first line, line after) in the cell of the lines ``edit`` replaces (an insertion: both
        the line it goes before); None when the edit may not be written into the notebook."""
        count = len(self.origins)
        if edit.start_line < edit.end_line:
            if edit.start_line < 1 or edit.end_line - 1 > count:
                return None
            lines = self.origins[edit.start_line - 1:edit.end_line - 1]
            cell = lines[0].cell
            if any(origin.cell != cell or not origin.code for origin in lines):
                return None
            first = self._lines[edit.start_line - 1]
            where = (cell, first, first + len(lines))
        elif 1 <= edit.start_line <= count:
            origin = self.origins[edit.start_line - 1]
            line = self._lines[edit.start_line - 1]
            if origin.continued or (line == 1 and self.notebook.cells[origin.cell].magic):
                return None
            where = (origin.cell, line, line)
        elif edit.start_line == count + 1 and count:
            line = self._lines[-1] + 1
            where = (self.origins[-1].cell, line, line)
        else:
            return None
        target = self.notebook.cells[where[0]]
        return None if target.frozen or target.margin is None else where

    def allows(self, fix: Fix) -> bool:
        return all(self._where(edit) is not None for edit in fix.edits)

    def map_fix(self, fix: Fix) -> Fix | None:
        """The fix with its edits in lines of the cells they change (each edit naming its cell), None when
        some edit may not be written into the notebook."""
        edits = []
        for edit in fix.edits:
            where = self._where(edit)
            if where is None:
                return None
            cell, first, after = where
            margin = self.notebook.cells[cell].margin
            assert margin is not None, "_where turns away cells without one"
            new_text = _with_margin(edit.new_text, margin)
            edits.append(TextEdit(first, after, new_text, cell=cell_number(cell)))
        return replace(fix, edits=tuple(edits))

    def after(self, fix: Fix) -> "CellLines":
        """The lines once ``fix`` (which ``allows``) is applied, as ``gradfix.edits.apply_edits`` applies it."""
        groups: list[list[Origin]] = [[origin] for origin in self.origins]
        changed = set(self.changed)
        for edit in sorted(fix.edits, key=lambda e: e.start_line, reverse=True):
            where = self._where(edit)
            assert where is not None, "a fix it allows"
            cell = where[0]
            changed.add(cell)
            margin = self.notebook.cells[cell].margin
            assert margin is not None, "_where turns away cells without one"
            added = [Origin(cell, None, line, len(margin)) for line in split_lines(edit.new_text)]
            groups[edit.start_line - 1:edit.end_line - 1] = [added]
        return CellLines(self.notebook, [origin for group in groups for origin in group], frozenset(changed))

    def cell_source(self, index: int) -> str:
        """The source of cell ``index`` as the fixes left it."""
        cell = self.notebook.cells[index]
        lines = [origin for origin in self.origins if origin.cell == index]
        out = []
        for at, origin in enumerate(lines):
            if origin.line is not None:
                text = cell.raw[origin.line - 1]
                if at < len(lines) - 1 and not text.endswith(("\n", "\r")):
                    text += "\n"
            else:
                assert cell.margin is not None, "lines are added only to cells with one"
                text = _with_margin(origin.text, cell.margin)
            out.append(text)
        source = "".join(out)
        if cell.raw and not cell.raw[-1].endswith(("\n", "\r")) and source.endswith("\n"):
            source = source[:-1]
        return source


def _with_margin(text: str, margin: str) -> str:
    return "".join(margin + line if line.strip() else line for line in split_lines(text))


def cell_lines(notebook: Notebook, finding: Finding) -> list[str]:
    """The lines of the cell a mapped finding is in, for the excerpt."""
    number = int(finding.message.split(":", 1)[0].split()[1])  # "Cell 3: ..."
    return _cell_text(notebook.data["cells"][number - 1]).splitlines()


def fixed_notebook(notebook: Notebook, layout: CellLines, reference=_DEFAULT) -> str:
    """The notebook's JSON with the cells ``layout`` changed written in, every other byte kept.

    Raises SourceError when a changed cell would not read, in IPython, as the fixed text gradfix analysed."""
    if reference is _DEFAULT:
        reference = ipython_transform()
    changed = {}
    for index in sorted(layout.changed):
        cell = notebook.cells[index]
        source = layout.cell_source(index)
        expected = [origin.text for origin in layout.origins if origin.cell == index]
        try:
            read = _read_cell(notebook.path, index, source, cell.bound, cell.first, reference)
        except SourceError:
            read = None
        if read is None or [origin.text for origin in read[1]] != expected:
            raise SourceError(notebook.path, f"not written: cell {cell_number(index)}, fixed, would not read in "
                                             "IPython as the text gradfix fixed")
        if source != _cell_text(notebook.data["cells"][index]):
            changed[index] = source
    return _with_sources(notebook.stored.text, changed)


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


def _python_2(data: dict) -> str | None:
    """The Python 2 the notebook's metadata names (its language version or its kernel), or None."""
    metadata = data.get("metadata") or {}
    info = metadata.get("language_info") or {}
    version = info.get("version")
    if isinstance(version, str) and version.startswith("2."):
        return f"Python {version}"
    if (metadata.get("kernelspec") or {}).get("name") == "python2":
        return "the python2 kernel"
    return None


def _json_kind(value: object) -> str:
    return {list: "array", dict: "object", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(value), "null")


_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _past_whitespace(text: str, at: int) -> int:
    match = _WHITESPACE.match(text, at)
    assert match is not None, "the pattern matches the empty string"
    return match.end()


def _members(text: str, start: int, closing: str):
    """(key or None, start, end) of each member of the JSON object (closing "}") or array ("]") at ``start``."""
    decoder = json.JSONDecoder()
    at = _past_whitespace(text, start + 1)
    while text[at] != closing:
        key = None
        if closing == "}":
            key, at = json.decoder.scanstring(text, at + 1)  # type: ignore[attr-defined]  # typeshed omits it
            at = _past_whitespace(text, _past_whitespace(text, at) + 1)  # past the colon
        _, end = decoder.raw_decode(text, at)
        yield key, at, end
        at = _past_whitespace(text, end)
        if text[at] == ",":
            at = _past_whitespace(text, at + 1)


def _source_spans(text: str) -> dict[int, tuple[int, int]]:
    """Where each cell's "source" value stands in the notebook's JSON text, by cell index."""
    spans: dict[int, tuple[int, int]] = {}
    top = _past_whitespace(text, 0)
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
        line_indent = stored[line_start:_past_whitespace(stored, line_start)]
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
