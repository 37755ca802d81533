"""A notebook cell read as IPython reads it: which lines are the user's Python and which are IPython's syntax.

Each case is a row of issue 18 (or a neighbour of one). Where IPython is installed, every case is also
read by IPython itself (``TransformerManager().transform_cell``, and for automagic
``InteractiveShell.transform_cell``), and gradfix's reading must be the same text.
"""

from __future__ import annotations

import io
import json
import pathlib
import sys
import tokenize

import pytest

from gradfix import ipython_input
from gradfix.ipython_input import KERNEL_LINE_MAGICS, LINE_MAGICS, read_cell
from gradfix.model import TextEdit
from gradfix.notebook import read_notebook
from gradfix.source import SourceError

C, I = True, False  # a line of the user's code; a line of IPython's syntax

# id: (cell, names earlier cells bound, per line: code or IPython's syntax)
CASES = {
    # shell escapes continued with a backslash
    "escape-continued": ("!pip install tensorflow \\\n    numpy\nimport numpy\n", (), [I, I, C]),
    "escape-continued-twice": ("!pip install a \\\n  b \\\n  c\nx = 1\n", (), [I, I, I, C]),
    "escape-continued-in-a-loop": ("for name in names:\n    !echo {name} \\\n        done\n    print(name)\n", (), [C, I, I, C]),
    "escape-then-quote": ("!echo it's\n%time x = 1\ny = 2\n", (), [I, I, C]),
    "capture-escape": ("!!ls\nfiles = !ls *.py\nfor f in files:\n    print(f)\n", (), [I, I, C, C]),
    # indented cells
    "indented-one-space": (" x = 1\n y = (2,\n      3)\n", (), [C, C, C]),
    "indented-two-spaces": ("  import tensorflow as tf\n\n  for i in range(3):\n      print(i)\n", (), [C, C, C, C]),
    "indented-with-magic": ("  %matplotlib inline\n  x = 1\n", (), [I, C]),
    "blank-lines-first": ("\n\n  x = 1\n", (), [C, C, C]),
    # a continuation line starting with % or != is code, not a magic
    "percent-in-brackets": ("total = (a\n         % b)\n", (), [C, C]),
    "not-equal-in-brackets": ("ok = (a\n      != b)\n", (), [C, C]),
    "percent-after-backslash": ("x = a \\\n    % b\n", (), [C, C]),
    "not-equal-after-backslash": ("y = a \\\n    != b\n", (), [C, C]),
    "percent-in-a-call": ("print('%d items'\n      % count)\n", (), [C, C]),
    "magic-after-a-closed-bracket": ("x = (1,\n     2)\n%time f(x)\n", (), [C, C, I]),
    "escape-in-a-string": ("a = '''\n!not a shell\n%not a magic\n'''\n", (), [C, C, C, C]),
    "escape-in-a-comment": ("# !pip install x\nx = 1  # what?\n", (), [C, C]),
    # line magics and magic assignments
    "line-magic": ("%matplotlib inline\nimport numpy\n", (), [I, C]),
    "magic-in-a-loop": ("for i in range(3):\n    %time f(i)\n", (), [C, I]),
    "magic-assign": ("t = %timeit -o f()\nprint(t)\n", (), [I, C]),
    # automagics: a cell of one line whose first word is a line magic's name
    "automagic-ls": ("ls\n", (), [I]),
    "automagic-ls-no-newline": ("ls -la", (), [I]),
    "automagic-pwd": ("pwd\n", (), [I]),
    "automagic-cd": ("cd data\n", (), [I]),
    "automagic-pip": ("pip install tensorflow\n", (), [I]),
    "automagic-indented-after-blank-lines": ("\n\n  cd data\n", (), [C, C, I]),
    "automagic-shadowed-by-an-earlier-cell": ("ls\n", ("ls",), [C]),
    "automagic-shadowed-time": ("time\n", ("time",), [C]),
    "automagic-not-on-assignment": ("ls = ['a', 'b']\n", (), [C]),
    "automagic-not-on-tuple-assignment": ("ls, n = [], 0\n", (), [C]),
    "automagic-not-in-a-longer-cell": ("cd data\nx = 1\n", (), [C, C]),
    "automagic-not-with-a-blank-line-after": ("pwd\n\n", (), [C, C]),
    "automagic-not-an-attribute": ("time.sleep(1)\n", (), [C]),
    "kernel-exit": ("exit\n", (), [I]),
    # cell magics: %%time and %%capture run their body as Python, %%bash and %%writefile do not
    "cell-magic-time": ("%%time\nx = 1\ny = x + 1\n", (), [I, C, C]),
    "cell-magic-capture": ("%%capture out\n!pip install x\nimport x\n", (), [I, I, C]),
    "cell-magic-timeit-indented-body": ("%%timeit\n  f(1)\n  f(2)\n", (), [I, C, C]),
    "cell-magic-indented": ("  %%time\n  x = 1\n", (), [I, C]),
    "cell-magic-time-automagic-body": ("%%time\nls\n", (), [I, I]),
    "cell-magic-bash": ("%%bash\necho hi\nls -la\n", (), None),
    "cell-magic-writefile": ("%%writefile train.py\nprint(\n", (), None),
    # help
    "help-end": ("tf.zeros?\n", (), [I]),
    "help-end-double": ("tf.zeros??\n", (), [I]),
    "help-start": ("?tf.zeros\n", (), [I]),
    "help-on-a-magic": ("%timeit?\n", (), [I]),
    "help-among-code": ("x = 1\nnp.zeros?\ny = 2\n", (), [C, I, C]),
    "help-in-a-block": ("if x:\n    f?\n", (), [C, I]),
    # pasted prompts
    "classic-prompts": (">>> x = 1\n>>> y = 2\n", (), [C, C]),
    "ipython-prompts": ("In [1]: x = (1,\n   ...:      2)\n", (), [C, C]),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_each_line_is_read_as_ipython_reads_it(case):
    text, bound, kinds = CASES[case]
    reading = read_cell(text, frozenset(bound))
    if kinds is None:
        assert not reading.is_python
        return
    assert [line.code for line in reading.lines] == kinds
    for line, source in zip(reading.lines, text.splitlines(keepends=True)):
        if line.code:
            # a line of code is analysed as written, less the indentation or prompt IPython removed
            assert source[line.offset:].rstrip("\n") == line.text.rstrip("\n")


def test_a_continued_shell_escape_is_one_call_and_its_continuations_are_blank():
    reading = read_cell("!pip install tensorflow \\\n    numpy\nimport numpy\n")
    assert reading.lines[0].text == "get_ipython().system('pip install tensorflow      numpy')\n"
    assert reading.lines[1].text == "\n" and reading.lines[1].continued
    assert not reading.lines[2].continued


def test_an_indented_cell_records_the_indentation_removed():
    reading = read_cell("  x = 1\n  if x:\n      y = 2\n")
    assert [(line.text, line.offset) for line in reading.lines] == [("x = 1\n", 2), ("if x:\n", 2), ("    y = 2\n", 2)]


def test_the_body_of_a_python_cell_magic_is_read_as_a_cell_of_its_own():
    reading = read_cell("%%time\n  x = 1\n  y = 2\n")
    assert reading.magic == "time"
    assert [line.text for line in reading.lines] == ["\n", "x = 1\n", "y = 2\n"]
    assert [line.offset for line in reading.lines[1:]] == [2, 2]


def test_a_dedent_that_matches_no_indentation_is_ipythons_error_too():
    with pytest.raises(ipython_input.CellSyntaxError) as raised:
        read_cell("x = 1\nif x:\n    a\n  b\n")
    assert raised.value.cell_line == 4


# --------------------------------------------------------------------------- against IPython itself

def _ipython():
    return pytest.importorskip("IPython", reason="IPython is not installed: gradfix's reading is checked against it "
                                                 "only where it is")


@pytest.fixture(scope="module")
def shell(tmp_path_factory):
    _ipython()
    import os

    os.environ.setdefault("IPYTHONDIR", str(tmp_path_factory.mktemp("ipython")))
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    return InteractiveShell.instance(config=config)


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_gradfix_reads_each_cell_as_ipythons_transformer_manager_does(case):
    _ipython()
    from IPython.core.inputtransformer2 import TransformerManager

    text, bound, _ = CASES[case]
    reading = read_cell(text, frozenset(bound))
    assert reading.static == TransformerManager().transform_cell(text)
    if reading.body is not None:
        assert reading.body.static == TransformerManager().transform_cell(reading.body_text)


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_gradfix_reads_each_cell_as_the_ipython_shell_does_automagic_included(case, shell):
    text, bound, _ = CASES[case]
    if text.startswith("%%"):
        pytest.skip("the shell runs a cell magic; its reading of the body is TransformerManager's, checked above")
    for name in bound:
        shell.user_ns[name] = object()
    try:
        assert read_cell(text, frozenset(bound)).python == shell.transform_cell(text)
    finally:
        for name in bound:
            del shell.user_ns[name]


def test_every_line_magic_ipython_has_is_one_automagic_knows(shell):
    assert set(shell.magics_manager.magics["line"]) <= LINE_MAGICS | KERNEL_LINE_MAGICS


_KINDS = {ipython_input.NAME: tokenize.NAME, ipython_input.NUMBER: tokenize.NUMBER, ipython_input.STRING: tokenize.STRING,
          ipython_input.OP: tokenize.OP, ipython_input.COMMENT: tokenize.COMMENT, ipython_input.NL: tokenize.NL,
          ipython_input.NEWLINE: tokenize.NEWLINE, ipython_input.INDENT: tokenize.INDENT,
          ipython_input.DEDENT: tokenize.DEDENT, ipython_input.ENDMARKER: tokenize.ENDMARKER,
          ipython_input.ERRORTOKEN: tokenize.ERRORTOKEN}


def _python_tokens(text):
    try:
        return [(t.type, t.string, t.start) for t in tokenize.generate_tokens(io.StringIO(text).readline)]
    except (tokenize.TokenError, IndentationError) as error:
        return type(error).__name__


def _ported_tokens(text):
    try:
        return [(_KINDS[t.kind], t.string, (t.row, t.column)) for t in ipython_input._tokens(text.splitlines(True))]
    except ipython_input._Unfinished:
        return "TokenError"
    except ipython_input.CellSyntaxError:
        return "IndentationError"


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="the port is of Python 3.11's tokenize, which 3.12 replaced")
@pytest.mark.parametrize("text", [case[0] for case in CASES.values()] + [
    "x = '''open\n", "f(1,\n", "if x:\n\tpass\n", "a = 0x1F + 1_000 + 1.5e-3j + .5\n", "s = rb'x' + f\"{y!r}\" + 'a\\\nb'\n",
    "x = `$`\n", "print('unterminated\ny = 2\n", "x = 1\\\n", "def f():\n    return 1\n  # comment\n",
])
def test_the_token_port_is_python_311s_tokenize(text):
    assert _ported_tokens(text) == _python_tokens(text)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="the port is of Python 3.11's tokenize, which 3.12 replaced")
def test_the_token_port_agrees_on_the_fixtures(repo):
    for path in sorted((repo / "fixtures").rglob("*.py"))[:60]:
        text = path.read_text(encoding="utf-8")
        assert _ported_tokens(text) == _python_tokens(text), path


# --------------------------------------------------------------------------- a notebook of cells

def _notebook(tmp_path, *sources, name="n.ipynb"):
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# Notes\n"]}]
    cells += [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}
              for source in sources]
    path = tmp_path / name
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return str(path)


# As aymericdamien/TensorFlow-Examples' notebooks/1_Introduction/basic_operations.ipynb: TensorFlow 1 code for Python 2.
PYTHON_2_CELL = 'with tf.Session() as sess:\n    print "a=2, b=3"\n    print "Addition with constants: %i" % sess.run(a+b)\n'


@pytest.mark.parametrize("metadata, named", [
    ({"kernelspec": {"display_name": "IPython (Python 2.7)", "language": "python", "name": "python2"},
      "language_info": {"name": "python", "version": "2.7.8"}}, "a notebook for Python 2.7.8"),
    ({"kernelspec": {"display_name": "Python 2", "language": "python", "name": "python2"}}, "the python2 kernel"),
    ({"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
      "language_info": {"name": "python", "version": "3.6.8"}}, None),
])
def test_a_python_2_notebook_is_named_so_in_its_syntax_error(tmp_path, metadata, named):
    path = _notebook(tmp_path, "import tensorflow as tf\na = tf.constant(2)\nb = tf.constant(3)\n", PYTHON_2_CELL)
    stored = json.loads(pathlib.Path(path).read_text())
    stored["metadata"] = metadata
    pathlib.Path(path).write_text(json.dumps(stored))
    with pytest.raises(SourceError) as raised:
        read_notebook(path, reference=None)
    problem = raised.value.problem
    assert problem.startswith("syntax error at cell 3, line 2, column 5: Missing parentheses in call to 'print'")
    assert (named in problem and "gradfix reads Python 3" in problem) if named else "Python 3" not in problem


def test_a_future_import_in_a_later_cell_is_read_and_kept_only_at_the_top(tmp_path):
    path = _notebook(tmp_path, "from __future__ import annotations\nimport os\n", "x = 1\n",
                     "from __future__ import division\ny: int = 2\n")
    notebook = read_notebook(path, reference=None)
    assert notebook.text == "from __future__ import annotations\nimport os\nx = 1\npass\ny: int = 2\n"
    compile(notebook.text, path, "exec")


def test_a_future_import_after_code_in_a_cell_is_what_ipython_accepts(tmp_path):
    path = _notebook(tmp_path, "x = 1\nfrom __future__ import annotations\ny = 2\n")
    assert read_notebook(path, reference=None).text == "x = 1\npass\ny = 2\n"


@pytest.mark.parametrize("source, where, problem", [
    ("def f():\n    from __future__ import annotations\n", "cell 3, line 2", "from __future__ imports must occur"),
    ("x = 1\nfrom __future__ import braces\n", "cell 3, line 2", "not a chance"),
    ("cd data\nx = 1\n", "cell 3, line 1", "invalid syntax"),
    ("x = 1\nif x:\n    a\n  b\n", "cell 3, line 4", "unindent does not match"),
])
def test_a_cell_ipython_cannot_run_is_an_error_at_its_cell_and_line(tmp_path, source, where, problem):
    path = _notebook(tmp_path, "import os\nimport sys\nimport json\n", source)
    with pytest.raises(SourceError) as raised:
        read_notebook(path, reference=None)
    assert f"at {where}" in raised.value.problem and problem in raised.value.problem


def test_names_bound_by_earlier_cells_hide_a_magic_of_the_same_name(tmp_path):
    path = _notebook(tmp_path, "ls = ['a']\n", "ls\n", "pwd\n")
    notebook = read_notebook(path, reference=None)
    assert notebook.text == "ls = ['a']\nls\nget_ipython().run_line_magic('pwd', '')\n"
    assert [origin.code for origin in notebook.origins] == [True, True, False]


def test_a_cell_ipython_reads_otherwise_is_analysed_as_ipython_reads_it_and_never_fixed(tmp_path):
    path = _notebook(tmp_path, "import os\n", "x = 1\ny = 2\n")

    def other_reading(text):
        return read_cell(text).static.replace("y = 2", "y = 3")

    notebook = read_notebook(path, reference=other_reading)
    assert notebook.text == "import os\nx = 1\ny = 3\n"
    assert [(o.cell, o.line, o.code) for o in notebook.origins] == [(1, 1, True), (2, 1, False), (2, 2, False)]
    assert notebook.cells[2].frozen and not notebook.layout().allows(_replacing(2, "x = 2\n"))


def test_ipython_failing_on_a_cell_is_an_error_naming_the_cell(tmp_path):
    path = _notebook(tmp_path, "import os\n", "x = 1\n")

    def failing(text):
        if "x" in text:
            raise RuntimeError("Input transformation still changing after 500 iterations. Aborting.")
        return text

    with pytest.raises(SourceError, match="IPython cannot read cell 3: RuntimeError: Input transformation"):
        read_notebook(path, reference=failing)


def _replacing(line, text):
    from gradfix.model import Applicability, Fix

    return Fix("GF006", "test", Applicability.SAFE, (TextEdit(line, line + 1, text),))


def test_a_fix_may_change_code_lines_only_and_only_where_the_cell_can_be_written_back(tmp_path):
    path = _notebook(tmp_path, "!pip install a \\\n  b\nx = 1\n", ">>> y = 1\n>>> z = 2\n", "  w = 1\n  v = 2\n")
    layout = read_notebook(path, reference=None).layout()
    assert not layout.allows(_replacing(1, "pass\n"))  # the shell escape
    assert not layout.allows(_insertion(2, "pass\n"))  # between an escape and its continuation
    assert layout.allows(_replacing(3, "x = 2\n"))
    assert not layout.allows(_replacing(4, "y = 2\n"))  # a cell with prompts could not be written back as it is
    fix = layout.map_fix(_replacing(6, "v = 3\n"))
    assert fix.edits == (TextEdit(1, 2, "  v = 3\n", cell=4),)  # in the cell's own lines and indentation


def _insertion(line, text):
    from gradfix.model import Applicability, Fix

    return Fix("GF007", "test", Applicability.SAFE, (TextEdit(line, line, text),))


def test_a_fixed_cell_that_would_read_otherwise_in_ipython_is_not_written(tmp_path):
    from gradfix.notebook import fixed_notebook

    path = _notebook(tmp_path, "x = 1\ny = 2\n")
    notebook = read_notebook(path, reference=None)
    layout = notebook.layout()
    fix = _insertion(2, "!ls\n")  # Python would take it for code; IPython, for a shell escape
    assert layout.allows(fix)
    with pytest.raises(SourceError, match="cell 2, fixed, would not read in IPython"):
        fixed_notebook(notebook, layout.after(fix), reference=None)


# A cell whose first line alone is indented: IPython 8 strips that indentation, IPython 9 does not.
FIRST_LINE_CASES = {
    "first-line-indented-then-flush": (" seq = f(1,\n          2)\nseq(0)\n", [C, C, C]),
    "first-line-indented-more-than-the-rest": ("   a = [\n 1]\nb = a\n", [C, C, C]),
    "first-line-indented-with-a-magic": ("  %time x = 1\ny = 2\n", [I, C]),
}


@pytest.mark.parametrize("case", FIRST_LINE_CASES, ids=list(FIRST_LINE_CASES))
def test_a_cell_read_as_ipython_8_reads_indentation(case):
    text, kinds = FIRST_LINE_CASES[case]
    reading = read_cell(text, indentation=ipython_input.FIRST_LINE)
    assert [line.code for line in reading.lines] == kinds
    compile("".join(line.text for line in reading.lines), "cell", "exec")
    with pytest.raises(SyntaxError):  # IPython 9's reading of it
        compile(read_cell(text).static, "cell", "exec")


@pytest.mark.parametrize("case", FIRST_LINE_CASES, ids=list(FIRST_LINE_CASES))
def test_the_first_line_reading_is_ipython_8s(case):
    ipython = _ipython()
    if int(ipython.__version__.split(".")[0]) >= 9:
        pytest.skip(f"IPython {ipython.__version__} removes a cell's common indentation; the first line's is IPython 8's rule")
    from IPython.core.inputtransformer2 import TransformerManager

    text, _ = FIRST_LINE_CASES[case]
    assert read_cell(text, indentation=ipython_input.FIRST_LINE).static == TransformerManager().transform_cell(text)


def test_without_ipython_a_cell_only_ipython_8_runs_is_read_as_ipython_8_reads_it(tmp_path):
    path = _notebook(tmp_path, "import os\n", " seq = f(1,\n          2)\nseq(0)\n")
    notebook = read_notebook(path, reference=None)
    assert notebook.text == "import os\nseq = f(1,\n         2)\nseq(0)\n"
    assert [origin.offset for origin in notebook.origins] == [0, 1, 1, 0]


def test_with_ipython_9_a_cell_only_ipython_8_runs_is_its_error(tmp_path):
    path = _notebook(tmp_path, "import os\n", " seq = f(1,\n          2)\nseq(0)\n")
    with pytest.raises(SourceError, match="syntax error at cell 3, line 1, column 1: unexpected indent"):
        read_notebook(path, reference=lambda text: read_cell(text).static)  # IPython 9's reading
