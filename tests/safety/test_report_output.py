"""Issue 20, item 5: `gradfix report -o` never replaces a Python source or the program, and keeps a file's mode."""

from __future__ import annotations

import os
import stat
import textwrap

import pytest

from tests.safety.conftest import run

PROGRAM = textwrap.dedent("""\
    import tensorflow as tf

    w = tf.Variable(1.0)
    with tf.GradientTape() as tape:
        loss = w * 2.0
    tape.gradient(loss, [w])
    """)


@pytest.mark.parametrize("output", ["train.py", "./train.py", "other.py", "notebook.ipynb"])
def test_report_is_never_written_over_a_python_source_or_the_program(tmp_path, monkeypatch, output):
    train = tmp_path / "train.py"
    train.write_text(PROGRAM)
    (tmp_path / "other.py").write_text("x = 1\n")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    monkeypatch.chdir(tmp_path)
    result = run("report", "train.py", "-o", output)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"gradfix: error: {output}: not written: "), result.stderr
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_report_is_not_written_through_a_link_to_a_source(tmp_path, monkeypatch):
    train = tmp_path / "train.py"
    train.write_text(PROGRAM)
    (tmp_path / "other.py").write_text("x = 1\n")
    (tmp_path / "page.html").symlink_to(train)
    (tmp_path / "other.html").symlink_to(tmp_path / "other.py")
    monkeypatch.chdir(tmp_path)
    for output in ("page.html", "other.html"):
        result = run("report", "train.py", "-o", output)
        assert result.exit_code == 2 and "never written over a Python source" in result.stderr, result.output
    assert train.read_text() == PROGRAM and (tmp_path / "other.py").read_text() == "x = 1\n"


@pytest.mark.tensorflow
def test_report_keeps_the_mode_of_the_file_it_replaces(tmp_path, monkeypatch):
    (tmp_path / "train.py").write_text(PROGRAM)
    page = tmp_path / "private.html"
    page.write_text("an older report")
    os.chmod(page, 0o600)
    monkeypatch.chdir(tmp_path)
    result = run("report", "train.py", "-o", "private.html")
    assert result.exit_code == 0, result.output
    assert page.read_text().startswith("<!DOCTYPE html>") or "<html" in page.read_text()
    assert stat.S_IMODE(os.stat(page).st_mode) == 0o600
