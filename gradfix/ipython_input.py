"""A notebook cell as IPython reads it, without IPython: which lines are Python and which are IPython's own.

Jupyter hands each cell to IPython, which rewrites it before Python sees it
(``IPython.core.inputtransformer2.TransformerManager.transform_cell``, then, for a
cell of one line, the automagic of ``InteractiveShell.prefilter_manager``). This
module does the same rewriting, step for step, as IPython 9 on Python 3.11 does it:

- blank lines at the top are dropped, the cell's common indentation removed (or, as
  IPython 8 did, the first line's, from the lines that start with it), and ``>>>`` and
  ``In [1]:`` prompts stripped;
- a first line ``%%name`` makes the cell one call of that cell magic;
- ``x = %magic``, ``x = !cmd``, lines that start with ``%``, ``!``, ``!!``, ``?``,
  ``,``, ``;`` or ``/``, and lines that end with ``name?`` are rewritten one at a
  time, earliest first, each with the lines it continues with a backslash;
  whether a line *starts* there is decided by Python's tokens, so ``% b`` or
  ``!= b`` continuing a bracketed or backslash-continued expression stays code;
- a cell left with one line whose first word names a line magic (``ls``,
  ``cd data``) is that magic, unless the name is bound (by an earlier cell, a
  builtin or a keyword) or the line assigns it.

The tokens are those of Python 3.11's ``tokenize`` (ported below), not those of the
Python gradfix runs on, whose tokenizer changed in 3.12: a cell reads the same on
every Python. Each line of the result records the lines of the cell it stands for,
so that findings and fixes map back to the cell.
"""

from __future__ import annotations

import builtins
import itertools
import keyword
import re
import textwrap
from dataclasses import dataclass
from typing import Callable

from gradfix.edits import split_lines

# Cell magics whose body IPython runs as a cell of Python in the notebook's namespace
# (each passes the body through ``transform_cell`` first); every other cell magic's
# body is a script, a file's text or markup.
PYTHON_CELL_MAGICS = frozenset({"capture", "debug", "prun", "time", "timeit"})

# The line magics of IPython 8 and 9 (aliases of shell commands included), and those
# a Jupyter kernel adds (ipykernel's KernelMagics): the names automagic runs.
LINE_MAGICS = frozenset("""
    alias alias_magic autoawait autocall automagic bookmark cat cd code_wrap colors conda config cp debug dhist
    dirs doctest_mode ed edit env gui hist history killbgscripts ldir lf lk ll load load_ext loadpy logoff logon
    logstart logstate logstop ls lsmagic lx macro magic mamba matplotlib micromamba mkdir mv notebook page pastebin
    pdb pdef pdoc pfile pinfo pinfo2 pip popd pprint precision prun psearch psource pushd pwd pycat pylab quickref
    recall rehashx reload_ext rep rerun reset reset_selective rm rmdir run save sc set_env sx system tb time timeit
    unalias unload_ext uv who who_ls whos xdel xmode
""".split())
KERNEL_LINE_MAGICS = frozenset({"autosave", "clear", "connect_info", "less", "man", "more", "qtconsole"})

# Names a fresh kernel's namespace holds; none is a magic's name today, but each would hide one.
_KERNEL_NAMESPACE = frozenset({"In", "Out", "exit", "quit", "get_ipython", "open", "display"})

TRANSFORM_LOOP_LIMIT = 500  # IPython gives up on a cell needing more rewrites than this


class CellSyntaxError(SyntaxError):
    """IPython itself cannot read the cell (a dedent matching no indentation, too many rewrites)."""

    cell_line = 1  # the line of the cell it is at, from 1


# --------------------------------------------------------------------------- Python 3.11's tokens

NAME, NUMBER, STRING, OP, COMMENT, NL, NEWLINE, INDENT, DEDENT, ENDMARKER, ERRORTOKEN = range(11)


@dataclass(frozen=True)
class Token:
    kind: int
    string: str
    row: int  # counted from 1
    column: int
    line: str  # the physical line it starts on


def _group(*choices: str) -> str:
    return "(" + "|".join(choices) + ")"


def _string_prefixes() -> list[str]:
    prefixes = {""}
    for prefix in ("b", "r", "u", "f", "br", "fr"):
        for order in itertools.permutations(prefix):
            for cased in itertools.product(*[(c, c.upper()) for c in order]):
                prefixes.add("".join(cased))
    return sorted(prefixes)


# Python 3.11's operators: 3.12 added "!" (for f-strings), which would make "x = !ls" read differently.
_OPERATORS = ("!= % %= & &= ( ) * ** **= *= + += , - -= -> . ... / // //= /= : := ; < << <<= <= = == > >= >> >>= "
              "@ @= [ ] ^ ^= { | |= } ~").split()
_PREFIX = _group(*_string_prefixes())
_NUMBER = _group(
    _group(r"[0-9](?:_?[0-9])*[jJ]", _group(
        _group(r"[0-9](?:_?[0-9])*\.(?:[0-9](?:_?[0-9])*)?", r"\.[0-9](?:_?[0-9])*") + r"(?:[eE][-+]?[0-9](?:_?[0-9])*)?",
        r"[0-9](?:_?[0-9])*[eE][-+]?[0-9](?:_?[0-9])*") + r"[jJ]"),
    _group(_group(r"[0-9](?:_?[0-9])*\.(?:[0-9](?:_?[0-9])*)?", r"\.[0-9](?:_?[0-9])*")
           + r"(?:[eE][-+]?[0-9](?:_?[0-9])*)?", r"[0-9](?:_?[0-9])*[eE][-+]?[0-9](?:_?[0-9])*"),
    _group(r"0[xX](?:_?[0-9a-fA-F])+", r"0[bB](?:_?[01])+", r"0[oO](?:_?[0-7])+", r"(?:0(?:_?0)*|[1-9](?:_?[0-9])*)"))
_SPECIAL = _group(*map(re.escape, sorted(_OPERATORS, reverse=True)))
_CONTINUED_STRING = _group(_PREFIX + r"'[^\n'\\]*(?:\\.[^\n'\\]*)*" + _group("'", r"\\\r?\n"),
                           _PREFIX + r'"[^\n"\\]*(?:\\.[^\n"\\]*)*' + _group('"', r"\\\r?\n"))
_PSEUDO_EXTRAS = _group(r"\\\r?\n|\Z", r"#[^\r\n]*", _group(_PREFIX + "'''", _PREFIX + '"""'))
_PSEUDO_TOKEN = re.compile(r"[ \f\t]*" + _group(_PSEUDO_EXTRAS, _NUMBER, _group(r"\r?\n", _SPECIAL),
                                                 _CONTINUED_STRING, r"\w+"), re.UNICODE)
_TAILS = {"'": re.compile(r"[^'\\]*(?:\\.[^'\\]*)*'"), '"': re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"'),
          "'''": re.compile(r"[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*'''"),
          '"""': re.compile(r'[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*"""')}
_TRIPLE_OPENINGS = frozenset(p + q for p in _string_prefixes() for q in ("'''", '"""'))
_SINGLE_OPENINGS = frozenset(p + q for p in _string_prefixes() for q in ("'", '"'))


class _Unfinished(Exception):
    """The lines end inside a string or brackets: IPython keeps the tokens read so far."""


def _tokens(lines: list[str]):
    """The tokens of ``lines`` as Python 3.11's ``tokenize.generate_tokens`` gives them."""
    row = depth = 0
    continued = False
    pending: str | None = None  # a string still open at the end of a line
    pending_line: str | None = None
    needs_backslash = False
    tail: re.Pattern[str] | None = None
    start = (0, 0)
    indents = [0]
    last = line = ""
    source = iter(lines)
    while True:
        last, line = line, next(source, "")
        row += 1
        pos, end = 0, len(line)
        if pending is not None:
            assert tail is not None and pending_line is not None, "set with pending"
            if not line:
                raise _Unfinished()
            closing = tail.match(line)
            if closing:
                pos = closing.end(0)
                yield Token(STRING, pending + line[:pos], start[0], start[1], pending_line + line)
                pending = pending_line = None
                needs_backslash = False
            elif needs_backslash and line[-2:] != "\\\n" and line[-3:] != "\\\r\n":
                yield Token(ERRORTOKEN, pending + line, start[0], start[1], pending_line)
                pending = pending_line = None
                continue
            else:
                pending += line
                pending_line += line
                continue
        elif depth == 0 and not continued:
            if not line:
                break
            column = 0
            while pos < end:
                if line[pos] == " ":
                    column += 1
                elif line[pos] == "\t":
                    column = (column // 8 + 1) * 8
                elif line[pos] == "\f":
                    column = 0
                else:
                    break
                pos += 1
            if pos == end:
                break
            if line[pos] in "#\r\n":
                if line[pos] == "#":
                    comment = line[pos:].rstrip("\r\n")
                    yield Token(COMMENT, comment, row, pos, line)
                    pos += len(comment)
                yield Token(NL, line[pos:], row, pos, line)
                continue
            if column > indents[-1]:
                indents.append(column)
                yield Token(INDENT, line[:pos], row, 0, line)
            while column < indents[-1]:
                if column not in indents:
                    raise CellSyntaxError("unindent does not match any outer indentation level", ("<cell>", row, pos, line))
                indents.pop()
                yield Token(DEDENT, "", row, pos, line)
        else:
            if not line:
                raise _Unfinished()
            continued = False
        while pos < end:
            match = _PSEUDO_TOKEN.match(line, pos)
            if not match:
                yield Token(ERRORTOKEN, line[pos], row, pos, line)
                pos += 1
                continue
            first, pos = match.span(1)
            if first == pos:
                continue
            token, initial = line[first:pos], line[first]
            if initial in "0123456789" or (initial == "." and token not in (".", "...")):
                yield Token(NUMBER, token, row, first, line)
            elif initial in "\r\n":
                yield Token(NL if depth > 0 else NEWLINE, token, row, first, line)
            elif initial == "#":
                yield Token(COMMENT, token, row, first, line)
            elif token in _TRIPLE_OPENINGS:
                tail = _TAILS[token[-3:]]
                closing = tail.match(line, pos)
                if closing:
                    pos = closing.end(0)
                    yield Token(STRING, line[first:pos], row, first, line)
                else:
                    start, pending, pending_line = (row, first), line[first:], line
                    break
            elif initial in _SINGLE_OPENINGS or token[:2] in _SINGLE_OPENINGS or token[:3] in _SINGLE_OPENINGS:
                if token[-1] == "\n":
                    quote = next(c for c in token if c in "'\"")
                    tail, start, pending, pending_line = _TAILS[quote], (row, first), line[first:], line
                    needs_backslash = True
                    break
                yield Token(STRING, token, row, first, line)
            elif initial.isidentifier():
                yield Token(NAME, token, row, first, line)
            elif initial == "\\":
                continued = True
            else:
                if initial in "([{":
                    depth += 1
                elif initial in ")]}":
                    depth -= 1
                yield Token(OP, token, row, first, line)
    if last and last[-1] not in "\r\n" and not last.strip().startswith("#"):
        yield Token(NEWLINE, "", row - 1, len(last), "")
    for _ in indents[1:]:
        yield Token(DEDENT, "", row, 0, "")
    yield Token(ENDMARKER, "", row, 0, "")


def _tokens_by_line(lines: list[str]) -> list[list[Token]]:
    """The tokens grouped into logical lines: a group ends at a NEWLINE, or at an NL outside brackets
    (IPython's ``make_tokens_by_line``)."""
    groups: list[list[Token]] = [[]]
    depth = 0
    try:
        for token in _tokens(lines):
            groups[-1].append(token)
            if token.kind == NEWLINE or (token.kind == NL and depth <= 0):
                groups.append([])
            elif token.kind == OP and token.string in "([{":
                depth += 1
            elif token.kind == OP and token.string in ")]}" and depth > 0:
                depth -= 1
    except _Unfinished:
        pass
    if not groups[-1]:
        groups.pop()
    return groups


# --------------------------------------------------------------------------- the rewriting

@dataclass
class _Line:
    text: str
    first: int  # the first line of the cell it stands for (from 0)
    last: int
    offset: int = 0  # characters the cleanup removed from the start of the first line
    rewritten: bool = False


def _clean(lines: list[_Line], indentation: str) -> list[_Line]:
    """IPython's cleanup: blank lines at the top dropped, the cell's indentation and prompts removed."""
    for index, line in enumerate(lines):
        if line.text and not line.text.isspace():
            lines = lines[index:]
            break
    for strip in (_dedent if indentation == COMMON else _strip_first_indent, _strip_doctest_prompts, _strip_ipython_prompts):
        texts = strip([line.text for line in lines])
        lines = [_Line(text, line.first, line.last) for text, line in zip(texts, lines)]
    return lines


def _dedent(texts: list[str]) -> list[str]:
    result = split_lines(textwrap.dedent("".join(texts)))
    return result if len(result) == len(texts) else texts


def _strip_first_indent(texts: list[str]) -> list[str]:
    leading = re.match(r"[ \t]*", texts[0]) if texts else None  # a match for any text: the pattern matches ""
    indent = leading.group(0) if leading is not None else ""
    return [text[len(indent):] if indent and text.startswith(indent) else text for text in texts]


_DOCTEST_ANY = re.compile(r"^\s*>>>")
_DOCTEST_PS1 = re.compile(r"^\s*>>>[ \t]?")
_DOCTEST_PS2 = re.compile(r"^\s*\.\.\.[ \t]?")
_TRIPLE_QUOTE = re.compile(r"(?<!\\)(\"\"\"|''')")
_PREFIX_ONLY = re.compile(r"(?i)^[rubf]*$")
_IPYTHON_PROMPT = re.compile(r"^(((\[nav\]|\[ins\])?\ )?In\ \[\d+\]:\ |\s*\.{3,}:\ ?)")


def _in_docstring(texts: list[str]) -> list[bool]:
    """Per line, whether IPython takes it for the inside of a triple-quoted string that keeps ``>>>``."""
    mask: list[bool] = []
    inside: str | None = None
    keep = seen_prompt = False
    for text in texts:
        mask.append(inside is not None and keep)
        for match in _TRIPLE_QUOTE.finditer(text):
            quote = match.group(1)
            if inside is None:
                inside = quote
                before = text[: match.start()]
                stripped = _DOCTEST_PS2.sub("", _DOCTEST_PS1.sub("", before, count=1), count=1)
                keep = bool(not (stripped != before and seen_prompt) and _PREFIX_ONLY.match(stripped.strip()))
                mask[-1] = keep
            elif inside == quote:
                inside, keep = None, False
        seen_prompt = seen_prompt or bool(_DOCTEST_ANY.match(text))
    return mask


def _strip_doctest_prompts(texts: list[str]) -> list[str]:
    mask = _in_docstring(texts)
    if not any(not inside and _DOCTEST_ANY.match(text) for text, inside in zip(texts, mask)):
        return texts
    out, stripped = [], []
    for text, inside in zip(texts, mask):
        new = text
        if not inside:
            if _DOCTEST_PS1.match(text):
                new = _DOCTEST_PS1.sub("", text, count=1)
            elif _DOCTEST_PS2.match(text):
                new = _DOCTEST_PS2.sub("", text, count=1)
        out.append(new)
        stripped.append(new != text)
    result: list[str] = []
    for inside, grouped in itertools.groupby(range(len(out)), key=lambda i: mask[i]):
        run = list(grouped)
        segment = [out[i] for i in run]
        result.extend(_dedent(segment) if not inside and any(stripped[i] for i in run) else segment)
    return result


def _strip_ipython_prompts(texts: list[str]) -> list[str]:
    if texts and (_IPYTHON_PROMPT.match(texts[0]) or (len(texts) > 1 and _IPYTHON_PROMPT.match(texts[1]))):
        return [_IPYTHON_PROMPT.sub("", text, count=1) for text in texts]
    return texts


def _assignment(group: list[Token]) -> int | None:
    """The index of the group's first ``=`` outside brackets."""
    depth = 0
    for index, token in enumerate(group):
        if token.string == "=" and depth == 0:
            return index
        if token.string in ("(", "[", "{"):
            depth += 1
        elif token.string in (")", "]", "}") and depth > 0:
            depth -= 1
    return None


def _first_token(group: list[Token]) -> Token | None:
    return next((token for token in group if token.kind not in (INDENT, DEDENT)), None)


def _find_magic_assign(groups):
    for group in groups:
        at = _assignment(group)
        if at is not None and len(group) > at + 2 and group[at + 1].string == "%" and group[at + 2].kind == NAME:
            return group[at + 1]
    return None


def _find_system_assign(groups):
    for group in groups:
        at = _assignment(group)
        if at is None or group[at].line.strip().startswith("=") or len(group) < at + 2:
            continue
        for token in group[at + 1:]:
            if token.kind != ERRORTOKEN:
                break
            if token.string == "!":
                return token
            if not token.string.isspace():
                break
    return None


_ESCAPES = ("!", "?", "%", ",", ";", "/")


def _find_escaped(groups):
    for group in groups:
        first = _first_token(group)
        if first is not None and first.string in _ESCAPES:
            return first
    return None


def _find_help_end(groups):
    for group in groups:
        if len(group) > 2 and group[-2].string == "?":
            return _first_token(group), group[-2]
    return None


def _continued_to(lines: list[_Line], start: int) -> int:
    """The last line of the backslash-continued run from ``start``."""
    end = start
    while lines[end].text.endswith("\\\n"):
        end += 1
        if end >= len(lines):
            break
    return min(end, len(lines) - 1)


def _assembled(lines: list[_Line], start: int, column: int, end: int) -> str:
    parts = [lines[start].text[column:]] + [line.text for line in lines[start + 1:end + 1]]
    return " ".join([part.rstrip()[:-1] for part in parts[:-1]] + [parts[-1].rstrip()])


def _replace(lines: list[_Line], start: int, end: int, text: str) -> list[_Line]:
    merged = _Line(text, lines[start].first, lines[end].last, lines[start].offset, rewritten=True)
    return lines[:start] + [merged] + lines[end + 1:]


def _magic_call(name: str, arguments: str) -> str:
    return f"get_ipython().run_line_magic({name!r}, {arguments!r})"


def _help_call(target: str, escape: str) -> str:
    method = "pinfo2" if escape == "??" else "psearch" if "*" in target else "pinfo"
    name, _, arguments = f"{method} {target}".partition(" ")
    return _magic_call(name.lstrip("%"), arguments)


def _escaped_call(escape: str, content: str) -> str:
    if escape in ("?", "??"):
        return "get_ipython().show_usage()" if not content else _help_call(content, escape)
    if escape == "!":
        return f"get_ipython().system({content!r})"
    if escape == "!!":
        return f"get_ipython().getoutput({content!r})"
    name, _, arguments = content.partition(" ")
    if escape == "%":
        return _magic_call(name, arguments)
    if escape == ",":
        return '{}("{}")'.format(name, '", "'.join(arguments.split()))
    if escape == ";":
        return f'{name}("{arguments}")'
    if not name:
        raise SyntaxError('"!" must be followed by a callable name')
    return "{}({})".format(name, ", ".join(arguments.split()))


_HELP_END = re.compile(r"(%{0,2}(?!\d)[\w*]+(\.(?!\d)[\w*]+|\[-?[0-9]+\])*)(\?\??)$")


def _rewrite_assignment(lines, token, escape):
    start, column = token.row - 1, token.column
    end = _continued_to(lines, start)
    right = _assembled(lines, start, column, end)
    if escape == "%":
        name, _, arguments = right[1:].partition(" ")
        call = _magic_call(name, arguments)
    else:
        call = f"get_ipython().getoutput({right[1:]!r})"
    return _replace(lines, start, end, lines[start].text[:column] + call + "\n")


def _rewrite_escaped(lines, token):
    start, column = token.row - 1, token.column
    end = _continued_to(lines, start)
    text = _assembled(lines, start, column, end)
    escape = text[:2] if len(text) > 1 and text[:2] in ("!!", "??") else text[:1]
    call = _escaped_call(escape, text[len(escape):])
    return _replace(lines, start, end, lines[start].text[:column] + call + "\n")


def _rewrite_help_end(lines, first, question):
    start, end = first.row - 1, question.row - 1
    piece = "".join(line.text for line in lines[start:end + 1])
    match = _HELP_END.search(piece[first.column:])
    if not match:
        raise SyntaxError(piece)
    return _replace(lines, start, end, piece[:first.column] + _help_call(match.group(1), match.group(3)) + "\n")


def _rewrite_one(lines: list[_Line]) -> list[_Line] | None:
    """The cell with its earliest piece of IPython syntax rewritten, or None when there is none.

    As IPython does, each kind offers only its first match, the earliest offer wins (help
    before an escape at the same place), and an offer that cannot be rewritten gives way
    to the next."""
    try:
        groups = _tokens_by_line([line.text for line in lines])
    except CellSyntaxError as error:
        error.cell_line = lines[min(error.lineno or 1, len(lines)) - 1].first + 1
        raise
    offers: list[tuple[tuple[int, int, int], Callable[..., list[_Line] | None]]] = []
    token = _find_magic_assign(groups)
    if token is not None:
        offers.append(((token.row, token.column, 10), lambda t=token: _rewrite_assignment(lines, t, "%")))
    token = _find_system_assign(groups)
    if token is not None:
        offers.append(((token.row, token.column, 10), lambda t=token: _rewrite_assignment(lines, t, "!")))
    token = _find_escaped(groups)
    if token is not None:
        offers.append(((token.row, token.column, 10), lambda t=token: _rewrite_escaped(lines, t)))
    found = _find_help_end(groups)
    if found is not None:
        first, question = found
        offers.append(((first.row, first.column, 5), lambda: _rewrite_help_end(lines, first, question)))
    for _, rewrite in sorted(offers, key=lambda offer: offer[0]):
        try:
            return rewrite()
        except SyntaxError:
            continue
    return None


def _rewritten(lines: list[_Line]) -> list[_Line]:
    for _ in range(TRANSFORM_LOOP_LIMIT):
        changed = _rewrite_one(lines)
        if changed is None:
            return lines
        lines = changed
    raise CellSyntaxError(f"IPython gives up on a cell needing more than {TRANSFORM_LOOP_LIMIT} rewrites",
                          ("<cell>", 1, 0, ""))


# --------------------------------------------------------------------------- automagic

def _split_first_word(line: str) -> tuple[str, str, str] | None:
    """(leading space, the function part, the rest, stripped) of a line with no escape character, as
    IPython's ``split_user_input`` splits it; None when the line starts with an escape."""
    match = re.match(r"^(\s*)([,;/%]|!!?|\?\??)?\s*(%{0,2}[\w\.\*]*)(.*?$|$)", line)
    if match is None:
        return None
    space, escape, word, rest = match.groups()
    return None if escape else (space, word.strip(), rest.lstrip())


def automagic(line: str, bound: frozenset[str] | set[str]) -> str | None:
    """What IPython runs for a cell of this one line when automagic (or the kernel's ``exit``) takes it, else None."""
    parts = _split_first_word(line.rstrip("\n"))
    if parts is None or not line.strip():
        return None
    space, word, rest = parts
    if word in ("exit", "quit") and word not in bound:
        # the kernel's exit and quit are called when named alone (IPython's IPyAutocall)
        if rest.startswith("("):
            return None
        return f"{word}({rest[:-1]});" if rest.endswith(";") else f"{word}({rest})"
    if rest and rest[0] in "=,":
        return None  # an assignment: ``ls = 3`` binds a name, whatever magic it shadows
    if word not in LINE_MAGICS and word not in KERNEL_LINE_MAGICS:
        return None
    head = word.split(".", 1)[0]
    if head in bound or head in _KERNEL_NAMESPACE or hasattr(builtins, head) or keyword.iskeyword(head):
        return None
    name, _, arguments = f"{word} {rest}".partition(" ")
    return space + _magic_call(name.lstrip("%"), arguments)


# --------------------------------------------------------------------------- a cell's reading

@dataclass(frozen=True)
class ReadLine:
    """One line of the cell, as gradfix analyses it."""

    text: str  # the code; for IPython's own syntax, the call IPython runs (on the first of its lines) or a blank
    offset: int  # columns IPython removed from the start of the line (the cell's indentation, a prompt)
    code: bool  # the user's Python, which a fix may change; False for IPython syntax, never rewritten by gradfix
    continued: bool = False  # continues the line above (a shell escape continued with a backslash)


@dataclass(frozen=True)
class CellReading:
    lines: tuple[ReadLine, ...]  # one per line of the cell; empty for a cell that is not Python
    static: str  # the cell as TransformerManager().transform_cell gives it
    python: str  # the cell as InteractiveShell.transform_cell gives it (automagic applied)
    magic: str | None = None  # the cell magic that starts the cell, if any
    body: "CellReading | None" = None  # the reading of a Python cell magic's body
    body_text: str = ""  # that body, as the magic is given it

    @property
    def is_python(self) -> bool:
        return bool(self.lines)


def cell_lines(text: str) -> list[str]:
    """The lines of a cell as IPython splits it (a last newline added)."""
    return split_lines(text if text.endswith("\n") else text + "\n")


# How a cell's indentation is removed: IPython 9 removes the indentation all its lines share; IPython 8 and
# earlier (Colab's among them) remove the first line's from every line that starts with it, so that a cell whose
# first line alone is indented runs there and not in IPython 9.
COMMON, FIRST_LINE = "common", "first line"


def read_cell(text: str, bound: frozenset[str] | set[str] = frozenset(), indentation: str = COMMON) -> CellReading:
    """How IPython reads the cell ``text``, given the names earlier cells bound. Raises CellSyntaxError."""
    raw = cell_lines(text)
    return _read(raw, [_Line(line, index, index) for index, line in enumerate(raw)], bound, indentation)


def _read(raw: list[str], lines: list[_Line], bound, indentation: str = COMMON) -> CellReading:
    cleaned = _clean(lines, indentation)
    for line in cleaned:
        source = raw[line.first]
        line.offset = len(source) - len(line.text) if source.endswith(line.text) else 0
    if cleaned and cleaned[0].text.startswith("%%") and not re.match(r"%%\w+\?", cleaned[0].text):
        return _read_cell_magic(raw, cleaned, bound, indentation)
    result = _rewritten(cleaned)
    static = "".join(line.text for line in result)
    if len(static.splitlines()) == 1 and not result[0].rewritten:
        call = automagic(result[0].text, bound)
        if call is not None:
            result = [_Line(call + "\n", result[0].first, result[0].last, result[0].offset, rewritten=True)]
    python = "".join(line.text for line in result)
    return CellReading(_per_line(raw, result), static, python)


def _read_cell_magic(raw, cleaned, bound, indentation) -> CellReading:
    name, _, first_line = cleaned[0].text[2:].rstrip().partition(" ")
    body_text = "".join(line.text for line in cleaned[1:])
    call = f"get_ipython().run_cell_magic({name!r}, {first_line!r}, {body_text!r})\n"
    if name not in PYTHON_CELL_MAGICS or not body_text.strip():
        return CellReading((), call, call, magic=name)
    body = _read(raw, [_Line(line.text, line.first, line.last) for line in cleaned[1:]], bound, indentation)
    lines = list(body.lines)
    lines[cleaned[0].first] = ReadLine("\n", cleaned[0].offset, code=False)
    return CellReading(tuple(lines), call, call, magic=name, body=body, body_text=body_text)


def _per_line(raw: list[str], result: list[_Line]) -> tuple[ReadLine, ...]:
    # Lines IPython dropped (blank lines at the top) are blank; the rest are as the rewriting left them.
    lines = [ReadLine(line if line.isspace() else "\n", 0, code=True) for line in raw]
    for line in result:
        if line.rewritten:
            lines[line.first] = ReadLine(line.text, line.offset, code=False)
            for index in range(line.first + 1, line.last + 1):
                lines[index] = ReadLine("\n", 0, code=False, continued=True)
        else:
            lines[line.first] = ReadLine(line.text, line.offset, code=True)
    return tuple(lines)
