"""A real editor: Neovim's built-in LSP client shows gradfix's diagnostics and applies its quick fix."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures"
SCRIPT = pathlib.Path(__file__).with_name("nvim") / "quickfix.lua"
CASE = FIXTURES / "computed-outside-tape" / "forward_pass_before_tape.py"

pytestmark = [pytest.mark.skipif(shutil.which("nvim") is None, reason="Neovim (nvim) is not installed"),
              pytest.mark.slow]  # starts an editor: outside the fast lane


def test_neovim_shows_the_diagnostic_and_applies_the_quick_fix(tmp_path):
    program = tmp_path / "train.py"
    shutil.copy(CASE, program)
    out = tmp_path / "nvim.json"
    env = dict(os.environ, GRADFIX_NVIM_FILE=str(program), GRADFIX_NVIM_OUT=str(out), GRADFIX_NVIM_PYTHON=sys.executable)
    subprocess.run(["nvim", "--headless", "--clean", "-n", "-c", f"luafile {SCRIPT}"], env=env, cwd=tmp_path,
                   timeout=240, check=True, stdin=subprocess.DEVNULL, capture_output=True)
    seen = json.loads(out.read_text())
    assert "error" not in seen, seen
    assert seen["got_diagnostics"], seen
    assert seen["diagnostics"] == [{"code": "GF001", "line": 17, "col": 8, "source": "gradfix"}]
    assert seen["applied"].startswith("Fix GF001")
    assert seen["cleared"], seen
    assert program.read_text() == CASE.with_name("forward_pass_before_tape.fixed.py").read_text()
