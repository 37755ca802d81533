"""Malformed input is one error line naming the file, exit 2, and every other file is still processed."""

from __future__ import annotations

import json

import pytest

from tests.safety.conftest import BUGGY, run


def _one_error_line(result, name: str) -> str:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.startswith("gradfix: error:")]
    assert len(lines) == 1 and name in lines[0], result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_a_patch_adding_a_character_the_file_encoding_cannot_hold(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    original = b'# -*- coding: latin-1 -*-\nx = "caf\xe9"\n'
    (tmp_path / "old.py").write_bytes(original)
    (tmp_path / "euro.patch").write_text(
        "--- a/old.py\n+++ b/old.py\n@@ -1,2 +1,2 @@\n # -*- coding: latin-1 -*-\n-x = \"caf\u00e9\"\n+x = \"\u20ac\"\n",
        encoding="utf-8")
    for args in (("apply", "--check", "euro.patch"), ("apply", "euro.patch")):
        result = run(*args)
        assert result.exit_code == 2
        line = _one_error_line(result, "old.py")
        assert "U+20AC" in line and "iso-8859-1" in line and "nothing written" in line
        assert (tmp_path / "old.py").read_bytes() == original


@pytest.mark.parametrize("metadata, problem", [
    ([], "its metadata is a JSON array, not an object"),
    ({"kernelspec": {"language": 3}}, "metadata.kernelspec.language is a JSON number, not a string"),
    ({"kernelspec": {"name": "python3"}, "language_info": {"name": ["python"]}},
     "metadata.language_info.name is a JSON array, not a string"),
    ("bad cell", "the source of cell 1 is not text"),
])
@pytest.mark.parametrize("command", [("check",), ("fix",)])
def test_a_notebook_with_malformed_metadata_does_not_end_the_folder_run(tmp_path, metadata, problem, command):
    notebook = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "source": ["x = 1\n"]}],
                "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}
    if metadata == "bad cell":
        notebook["metadata"] = {}
        notebook["cells"][0]["source"] = ["x = 1\n", 2]
    (tmp_path / "a.ipynb").write_text(json.dumps(notebook))
    (tmp_path / "train.py").write_text(BUGGY)
    result = run(*command, tmp_path)
    assert result.exit_code == 2
    assert problem in _one_error_line(result, "a.ipynb")
    assert "GF006" in result.stdout  # train.py, after the notebook in the walk, was still checked


@pytest.mark.parametrize("content, problem", [
    (b"[tool.gradfix]\nselect = [\"GF006\"]\n# caf\xe9\n", "not valid TOML: not UTF-8 text (byte 39)"),
    (b"[tool.gradfix]\nselct = [\"GF006\"]\n", "[tool.gradfix] selct: unknown key"),
])
@pytest.mark.parametrize("command", [("check",), ("fix",)])
def test_a_pyproject_toml_gradfix_cannot_read_in_a_subfolder(tmp_path, content, problem, command):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "pyproject.toml").write_bytes(content)
    (tmp_path / "a" / "train.py").write_text(BUGGY)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "train.py").write_text(BUGGY)
    result = run(*command, tmp_path)
    assert result.exit_code == 2
    line = _one_error_line(result, "pyproject.toml")
    assert problem in line and "were not checked" in line
    assert "b/train.py" in result.stdout  # the other folder was still checked
