"""Notebooks that Jupyter runs are checked and fixed as IPython reads them (issue 18): a test per row of the
issue, positions as cell and line, the same errors and fixes in `check` and `fix`, and a fixed notebook's JSON
unchanged outside the cell fixed."""

from __future__ import annotations

import json

import pytest

from gradfix import notebook as notebook_module
from gradfix import report
from gradfix.ipython_input import read_cell
from tests.safety.conftest import BUGGY, FIXED, run

HEAD, LOOP = BUGGY.split("for x, y in dataset:\n")
LOOP = "for x, y in dataset:\n" + LOOP
FIXED_LOOP = "for x, y in dataset:\n" + FIXED.split("for x, y in dataset:\n")[1]
# GF006 is at line 5 of LOOP, `tape.gradient(...)` from column 13


def _code(source):
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
            "source": source.splitlines(keepends=True)}


def _notebook(*sources):
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# Training\n"]}] + [_code(s) for s in sources]
    return {"cells": cells, "metadata": {"kernelspec": {"language": "python", "name": "python3"}}, "nbformat": 4,
            "nbformat_minor": 5}


def _write(path, *sources):
    data = _notebook(*sources)
    path.write_text(json.dumps(data, indent=1) + "\n")
    return data


def _indented(text, margin):
    return "".join(margin + line if line.strip() else line for line in text.splitlines(keepends=True))


# id: (the cells before the training loop's, the loop's cell, the loop's cell once fixed, line and column of GF006)
ROWS = {
    "shell-escape-continued": (["!pip install tensorflow \\\n    numpy\n"], LOOP, FIXED_LOOP, (5, 13)),
    "shell-escape-continued-in-the-cell": ([], "!pip install -q \\\n  tensorflow\n" + LOOP,
                                           "!pip install -q \\\n  tensorflow\n" + FIXED_LOOP, (7, 13)),
    "future-import-in-a-later-cell": (["from __future__ import annotations\nimport os\n"], LOOP, FIXED_LOOP, (5, 13)),
    "cell-indented-one-space": ([], _indented(LOOP, " "), _indented(FIXED_LOOP, " "), (5, 14)),
    "cell-indented-two-spaces": ([], _indented(LOOP, "  "), _indented(FIXED_LOOP, "  "), (5, 15)),
    "percent-and-not-equal-continuing-code": (
        ["batches = (len(x_train)\n           % 8)\nuneven = (batches\n          != 0)\nshift = batches \\\n    % 3\n"
         "same = shift \\\n    != 0\n"], LOOP, FIXED_LOOP, (5, 13)),
    "automagics": (["ls", "pwd", "cd .", "pip list\n"], LOOP, FIXED_LOOP, (5, 13)),
    "cell-magic-time": ([], "%%time\n" + LOOP, "%%time\n" + FIXED_LOOP, (6, 13)),
    "cell-magic-capture": ([], "%%capture output\n%time 1\n" + LOOP, "%%capture output\n%time 1\n" + FIXED_LOOP, (7, 13)),
    "cell-magics-not-python": (["%%bash\nfor f in *.py; do echo $f; done\n", "%%writefile notes.txt\nnot (python\n"],
                               LOOP, FIXED_LOOP, (5, 13)),
    "help": (["tf.GradientTape?\n", "?tf.zeros\nmodel.fit??\n"], LOOP, FIXED_LOOP, (5, 13)),
    "line-magics-and-escapes-among-code": ([], "%load_ext autoreload\n" + LOOP.replace("    print(", "    !echo step\n    print("),
                                           "%load_ext autoreload\n" + FIXED_LOOP.replace("    print(", "    !echo step\n    print("),
                                           (6, 13)),
}


@pytest.mark.parametrize("row", ROWS, ids=list(ROWS))
def test_each_row_of_the_issue_is_read_checked_and_fixed(tmp_path, row):
    before, loop, fixed_loop, (line, column) = ROWS[row]
    path = tmp_path / "train.ipynb"
    data = _write(path, HEAD, *before, loop)
    cell = len(data["cells"])  # the loop's cell, counted from 1 over every cell
    result = run("check", path)
    assert result.exit_code == 1, result.output
    assert f"train.ipynb:{line}:{column}: GF006 [all-variables-as-sources] Cell {cell}: " in result.output
    assert "error" not in result.stderr
    assert run("fix", "--apply", path).exit_code == 0
    data["cells"][-1]["source"] = fixed_loop.splitlines(keepends=True)
    assert path.read_text() == json.dumps(data, indent=1) + "\n"


def test_a_continued_shell_escape_is_never_changed_by_a_fix_around_it(tmp_path):
    path = tmp_path / "train.ipynb"
    loop = LOOP.replace("    print(", "    !echo step \\\n        done\n    print(")
    data = _write(path, HEAD, loop)
    assert run("fix", "--apply", path).exit_code == 0
    assert "".join(json.loads(path.read_text())["cells"][2]["source"]) == loop.replace("model.variables",
                                                                                      "model.trainable_variables")
    assert data["cells"][1] == json.loads(path.read_text())["cells"][1]


# --------------------------------------------------------------------------- errors: the notebook, its cell and line

def _error_lines(result):
    return [line for line in result.stderr.splitlines() if line.startswith("gradfix: error:")]


@pytest.mark.parametrize("command", [("check",), ("fix",), ("fix", "--apply")])
def test_a_cell_that_does_not_parse_is_one_error_naming_the_cell_and_its_line(tmp_path, command):
    path = tmp_path / "train.ipynb"
    original = _write(path, HEAD, "x = 1\ny = (2,\n", LOOP)
    result = run(*command, path)
    assert result.exit_code == 2
    lines = _error_lines(result)
    assert len(lines) == 1, result.stderr
    # the third cell's second line: the line of the cells joined would be HEAD's length + 2
    assert "train.ipynb: syntax error at cell 3, line 2, column 5: '(' was never closed" in lines[0]
    assert f"line {len(HEAD.splitlines()) + 2}" not in lines[0]
    assert json.loads(path.read_text()) == original


def test_an_error_found_in_the_cells_joined_is_said_at_its_cell(tmp_path):
    path = tmp_path / "deep.ipynb"
    _write(path, HEAD, "y = 1\nx = " + "-" * 1100 + "1\n", LOOP)  # Python compiles it; gradfix does not parse it
    result = run("check", path)
    assert result.exit_code == 2
    (line,) = _error_lines(result)
    assert "deep.ipynb: the statement at cell 3, line 2 is nested more than 1000 levels deep" in line


def test_fix_and_check_give_the_same_errors_in_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "broken.ipynb", "import tensorflow as tf\n", "def f(:\n    pass\n")
    (tmp_path / "bad.ipynb").write_text("{not json")
    (tmp_path / "train.py").write_text(BUGGY)
    (tmp_path / "latin.py").write_bytes(b"x = '\xe9'\n")
    checked = run("check", "--format", "json", ".")
    fixed = run("fix", "--format", "json", ".")
    assert checked.exit_code == fixed.exit_code == 2
    check_errors = json.loads(checked.stdout)["errors"]
    fix_errors = json.loads(fixed.stdout)["errors"]
    assert sorted(e["path"] for e in check_errors) == ["bad.ipynb", "broken.ipynb", "latin.py"]
    assert sorted(check_errors, key=lambda e: e["path"]) == sorted(fix_errors, key=lambda e: e["path"])
    assert any("syntax error at cell 3, line 1" in e["message"] for e in fix_errors)


def test_check_shows_the_fix_that_fix_makes_in_lines_of_the_cell(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "train.ipynb", HEAD, _indented("%matplotlib inline\n" + LOOP, "  "))
    checked = json.loads(run("check", "--format", "json", "train.ipynb").stdout)
    shown = run("fix", "--format", "json", "train.ipynb")
    (finding,) = checked["findings"]
    assert finding["fix"] is not None
    assert finding["fix"]["edits"] == [{
        "start_line": 6, "end_line": 8, "cell": 3,
        "new_text": "      grads = tape.gradient(loss, model.trainable_variables)\n"
                    "      optimizer.apply_gradients(zip(grads, model.trainable_variables))\n"}]
    assert json.loads(shown.stdout)["fixes"][0]["fixes"] == [finding["fix"]]
    assert json.loads(shown.stdout)["findings"] == checked["findings"]
    report.validate(checked)
    report.validate(json.loads(shown.stdout))
    # the edits, made to the cell as stored, are what `fix --apply` writes
    lines = _indented("%matplotlib inline\n" + LOOP, "  ").splitlines(keepends=True)
    for edit in finding["fix"]["edits"]:
        lines[edit["start_line"] - 1:edit["end_line"] - 1] = [edit["new_text"]]
    assert run("fix", "--apply", "train.ipynb").exit_code == 0
    assert "".join(json.loads((tmp_path / "train.ipynb").read_text())["cells"][2]["source"]) == "".join(lines)


def test_a_message_naming_a_line_of_another_cell_names_that_cell(tmp_path):
    path = tmp_path / "watch.ipynb"
    _write(path, "import tensorflow as tf\nx = tf.constant(3.0)\n",
           "%time 1\nwith tf.GradientTape() as tape:\n    y = x * x\ndy_dx = tape.gradient(y, x)\n")
    result = run("check", path)
    assert "watch.ipynb:4:26: GF007 [missing-watch] Cell 3: " in result.output
    # in the details, which the terminal wraps
    assert "(made by `tf.constant` on cell 2, line 2)" in " ".join(result.output.split())


def test_an_unused_noqa_in_a_notebook_is_at_its_cell_line(tmp_path):
    path = tmp_path / "n.ipynb"
    _write(path, "import os\nimport sys\n", "x = 1\ny = 2  # noqa: GF001\n")
    result = run("check", "--report-unused-noqa", path)
    assert "n.ipynb:2:8: unused noqa: GF001 in cell 3 (nothing to suppress here)" in result.output


# --------------------------------------------------------------------------- fixes only where they can be written back

def test_a_cell_pasted_with_prompts_is_checked_but_not_fixed(tmp_path):
    path = tmp_path / "train.ipynb"
    lines = LOOP.splitlines(keepends=True)
    pasted = ">>> " + lines[0] + "".join("... " + line for line in lines[1:])
    _write(path, HEAD, pasted)
    before = path.read_text()
    checked = run("check", "--format", "json", path)
    (finding,) = json.loads(checked.stdout)["findings"]
    assert (finding["span"]["start_line"], finding["span"]["start_column"]) == (5, 17)  # the prompt counted
    assert finding["fix"] is None
    fixed = run("fix", "--apply", path)
    assert fixed.exit_code == 1 and path.read_text() == before


def test_where_ipython_reads_a_cell_otherwise_its_reading_is_checked_and_the_cell_left_alone(tmp_path, monkeypatch):
    def ipython(text):
        return read_cell(text).static + "checked = True\n"  # a reading of IPython's own that gradfix's differs from

    monkeypatch.setattr(notebook_module, "ipython_transform", lambda: ipython)
    path = tmp_path / "train.ipynb"
    _write(path, HEAD, LOOP)
    before = path.read_text()
    (finding,) = json.loads(run("check", "--format", "json", path).stdout)["findings"]
    assert finding["message"].startswith("Cell 3: ") and finding["span"]["start_line"] == 5
    assert finding["fix"] is None
    assert run("fix", "--apply", path).exit_code == 1 and path.read_text() == before


def test_a_fixed_notebook_keeps_every_byte_outside_the_fixed_cell(tmp_path):
    path = tmp_path / "train.ipynb"
    cells = [{"source": ["# Tr\u00e4ining\n"], "metadata": {"tags": ["intro"]}, "cell_type": "markdown"},
             {"outputs": [{"name": "stdout", "output_type": "stream", "text": ["ok\n"]}], "source": ["!pip install \\\n", "  tensorflow"],
              "metadata": {}, "execution_count": 1, "cell_type": "code"},
             {"cell_type": "code", "execution_count": 2, "metadata": {"scrolled": True}, "outputs": [],
              "source": HEAD.splitlines(keepends=True)},
             {"cell_type": "code", "execution_count": 3, "metadata": {}, "outputs": [],
              "source": _indented(LOOP, "  ").rstrip("\n").splitlines(keepends=True)}]
    data = {"metadata": {"language_info": {"name": "python"}}, "nbformat_minor": 5, "cells": cells, "nbformat": 4}
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")
    assert run("fix", "--apply", path).exit_code == 0
    cells[3]["source"] = _indented(FIXED_LOOP, "  ").rstrip("\n").splitlines(keepends=True)
    assert path.read_bytes() == (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def test_sarif_gives_a_notebook_findings_fix_applicability_but_no_region_to_replace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "train.ipynb", HEAD, LOOP)
    (result,) = json.loads(run("check", "--format", "sarif", "train.ipynb").stdout)["runs"][0]["results"]
    assert result["properties"]["fixApplicability"] == "safe"
    assert "fixes" not in result  # a cell's lines are not lines of the .ipynb file SARIF would edit


@pytest.mark.parametrize("source", sorted({s for before, loop, fixed, _ in ROWS.values() for s in (*before, loop, fixed)}
                                          | {HEAD, LOOP}))
def test_every_cell_of_these_notebooks_is_read_as_ipython_reads_it(source):
    pytest.importorskip("IPython", reason="IPython is not installed: gradfix's reading is checked against it only where it is")
    from IPython.core.inputtransformer2 import TransformerManager

    reading = read_cell(source)
    assert reading.static == TransformerManager().transform_cell(source)
    if reading.body is not None:
        assert reading.body.static == TransformerManager().transform_cell(reading.body_text)
