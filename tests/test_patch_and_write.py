"""Diffs that git apply, patch -p1 and unidiff accept; writes that keep a file as it was stored."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradfix.patch import apply_diff, make_diff
from gradfix.source import SourceError, decode_source, read_source, write_source_atomically

LINES = st.lists(st.sampled_from(["a", "b", "x = 1", "    y = f(x)", "", "# note", "é"]), max_size=12)
ENDINGS = st.sampled_from(["\n", "\r\n"])


def _join(lines, ending, final):
    text = ending.join(lines)
    return text + ending if final and lines else text


@settings(max_examples=200, deadline=None)
@given(LINES, LINES, ENDINGS, st.booleans(), st.booleans())
def test_unidiff_reads_back_every_diff(old_lines, new_lines, ending, old_final, new_final):
    old = _join(old_lines, ending, old_final)
    new = _join(new_lines, ending, new_final)
    diff = make_diff("pkg/train.py", old, new)
    if old == new:
        assert diff == ""
    else:
        assert diff.startswith("--- a/pkg/train.py\n+++ b/pkg/train.py\n")
        assert apply_diff(old, diff) == new


@pytest.mark.parametrize("old, new", [
    ("a\nb\nc\n", "a\nB\nc\n"),
    ("a\nb\nc", "a\nb\nC"),
    ("a\r\nb\r\n", "a\r\nx\r\nb\r\n"),
    ("a\nb", "a\nb\n"),
])
@pytest.mark.parametrize("tool", ["git", "patch"])
@pytest.mark.parametrize("name", ["train.py", "my train.py"])
def test_git_apply_and_patch_accept_the_diff(tmp_path, old, new, tool, name):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed on this machine")
    (tmp_path / "pkg").mkdir()
    target = tmp_path / "pkg" / name
    target.write_bytes(old.encode())
    diff = make_diff(f"pkg/{name}", old, new)
    command = ["git", "apply", "-"] if tool == "git" else ["patch", "-p1", "--quiet"]
    subprocess.run(command, input=diff.encode(), cwd=tmp_path, check=True)
    assert target.read_bytes() == new.encode()


def test_write_keeps_encoding_line_endings_and_mode(tmp_path):
    path = tmp_path / "latin.py"
    original = "# -*- coding: latin-1 -*-\r\nname = 'café'\r\n"
    path.write_bytes(original.encode("latin-1"))
    os.chmod(path, 0o754)
    source = read_source(str(path))
    assert source.encoding == "iso-8859-1"
    write_source_atomically(source, source.text.replace("café", "thé"))
    assert path.read_bytes() == "# -*- coding: latin-1 -*-\r\nname = 'thé'\r\n".encode("latin-1")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o754
    assert [p.name for p in tmp_path.iterdir()] == ["latin.py"]


def test_write_keeps_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.py"
    path.write_bytes(b"\xef\xbb\xbfx = 1\n")
    source = read_source(str(path))
    write_source_atomically(source, "x = 2\n")
    assert path.read_bytes() == b"\xef\xbb\xbfx = 2\n"


def test_text_that_does_not_parse_is_never_written(tmp_path):
    path = tmp_path / "train.py"
    path.write_text("x = 1\n")
    source = read_source(str(path))
    with pytest.raises(SourceError, match="train.py"):
        write_source_atomically(source, "x = (\n")
    assert path.read_text() == "x = 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["train.py"]


def test_decode_reports_the_file_and_the_problem():
    with pytest.raises(SourceError) as error:
        decode_source("m.py", b"# coding: utf-8\nx = '\xff'\n")
    assert str(error.value).startswith("m.py: not valid utf-8 text")
