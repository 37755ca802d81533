"""gradfix starts quickly: a command imports only what it needs (bench/bench_start.py measures the times).

Each command runs as a user runs it, ``python -m gradfix ...`` in a fresh interpreter, which writes the names of the
modules it imported when it exits. A top-level import of LibCST, Rich, the language server, the runtime or the rules
put back into ``gradfix/cli.py`` (or into a module it imports at start) fails these tests.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent

# Runs gradfix as `python -m gradfix ARGS` does and, at exit, writes every imported module's name to the file named first.
CHILD = """
import atexit, json, runpy, sys
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["gradfix", *sys.argv[2:]]
runpy.run_module("gradfix", run_name="__main__", alter_sys=True)
"""

# Never needed to print the version or the help.
HEAVY = ("libcst", "rich", "pygls", "lsprotocol", "tensorflow", "keras", "numpy", "pathspec", "unidiff",
         "gradfix.static", "gradfix.runtime", "gradfix.rules", "gradfix.rule", "gradfix.registry", "gradfix.engine",
         "gradfix.emit", "gradfix.lsp", "gradfix.diagnose", "gradfix.diagnose_cli", "gradfix.transforms",
         "gradfix.source", "gradfix.config", "gradfix.notebook")
# Never needed to check a file and report its findings as text: the editor's server, running programs, other formats.
NOT_FOR_CHECK = ("pygls", "lsprotocol", "tensorflow", "keras", "gradfix.lsp", "gradfix.runtime", "gradfix.diagnose",
                 "gradfix.diagnose_cli", "gradfix.report", "gradfix.emit.html", "gradfix.emit.sarif",
                 "gradfix.emit.github", "gradfix.emit.json_output", "gradfix.review", "gradfix.apply_patch")
SMALL_FILE = REPO / "fixtures" / "repair" / "missing_watch_zeros_tensor.py"


def imported_by(tmp_path, *args: str) -> tuple[set[str], subprocess.CompletedProcess]:
    out = tmp_path / "modules.json"
    done = subprocess.run([sys.executable, "-c", CHILD, str(out), *args], capture_output=True, text=True, cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))))
    if not out.exists():
        pytest.fail(f"gradfix {' '.join(args)} did not run to its exit: {done.stderr[-2000:]}")
    return set(json.loads(out.read_text())), done


def loaded(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    """The packages of ``packages`` of which ``modules`` holds the package itself or a module inside it."""
    return [package for package in packages if any(name == package or name.startswith(package + ".") for name in modules)]


@pytest.mark.parametrize("args", [("--version",), ("check", "--help"), ("fix", "--help")])
def test_the_version_and_the_help_import_nothing_heavy(tmp_path, args):
    modules, done = imported_by(tmp_path, *args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()  # the child ran gradfix and printed its answer, not nothing
    assert "click" in modules
    assert loaded(modules, HEAVY) == []


def test_the_command_list_loads_diagnose_for_its_line_and_nothing_heavy(tmp_path):
    modules, done = imported_by(tmp_path, "--help")
    assert done.returncode == 0, done.stderr
    assert "diagnose" in done.stdout and "Run TARGET's first training step" in done.stdout
    assert loaded(modules, ("libcst", "rich", "pygls", "lsprotocol", "tensorflow", "gradfix.static", "gradfix.rules",
                            "gradfix.engine", "gradfix.emit", "gradfix.lsp", "gradfix.diagnose")) == []


def test_the_version_is_the_installed_package_version(tmp_path):
    import gradfix

    _, done = imported_by(tmp_path, "--version")
    assert done.stdout == f"gradfix, version {gradfix.__version__}\n"


def test_the_rule_list_imports_no_output_library_nor_runtime(tmp_path):
    modules, done = imported_by(tmp_path, "rules")
    assert done.returncode == 0, done.stderr
    assert "GF001" in done.stdout
    assert loaded(modules, ("rich", "pygls", "lsprotocol", "tensorflow", "gradfix.runtime", "gradfix.lsp",
                            "gradfix.emit", "gradfix.diagnose", "gradfix.diagnose_cli", "gradfix.docs")) == []


def test_checking_one_file_imports_no_language_server_runtime_or_other_format(tmp_path):
    modules, done = imported_by(tmp_path, "check", "--no-color", str(SMALL_FILE))
    assert done.returncode == 1, done.stderr  # the file's one finding
    assert "GF007" in done.stdout
    assert "libcst" in modules and "gradfix.emit.text" in modules  # what the check does need
    assert loaded(modules, NOT_FOR_CHECK) == []


def test_the_diagnose_command_is_loaded_when_it_is_asked_for(tmp_path):
    modules, done = imported_by(tmp_path, "diagnose", "--help")
    assert done.returncode == 0, done.stderr
    assert "Run TARGET's first training step" in done.stdout
    assert "gradfix.diagnose_cli" in modules
    assert loaded(modules, ("libcst", "tensorflow", "pygls", "lsprotocol")) == []
