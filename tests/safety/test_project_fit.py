"""Fitting the user's project: [tool.gradfix], # noqa, .gitignore and exclusions, notebooks, the sandbox copy."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

from gradfix.config import ConfigError, settings_for
from gradfix.runtime.sandbox import SandboxTooLarge, sandbox_copy
from tests.safety.conftest import BUGGY, FIXED, run


def _project(tmp_path, table: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[project]\nname = 'p'\n\n[tool.gradfix]\n{table}\n")


# --- configuration ---

def test_config_found_by_walking_up_and_select_ignore_apply(tmp_path):
    _project(tmp_path, 'ignore = ["GF006"]\n')
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text(BUGGY)
    result = run("check", tmp_path / "src" / "train.py")
    assert result.exit_code == 0, result.output
    assert run("check", "--select", "GF006", tmp_path / "src" / "train.py").exit_code == 1


def test_per_file_ignores_and_extend_select(tmp_path):
    _project(tmp_path, 'select = ["GF001"]\nextend-select = ["GF006"]\n[tool.gradfix.per-file-ignores]\n"legacy/*.py" = ["GF006"]\n')
    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / "old.py").write_text(BUGGY)
    (tmp_path / "new.py").write_text(BUGGY)
    result = run("check", "--format", "json", tmp_path)
    data = json.loads(result.stdout)
    paths = {os.path.basename(f["span"]["path"]) for f in data["findings"]}
    assert paths == {"new.py"}


def test_unsafe_fixes_from_config(tmp_path):
    _project(tmp_path, "unsafe-fixes = true\n")
    from tests.test_cli_fix import BUGGY as GF003_BUGGY
    from tests.test_cli_fix import FIXED as GF003_FIXED

    (tmp_path / "train.py").write_text(GF003_BUGGY.read_text())
    result = run("fix", "--apply", tmp_path / "train.py")
    assert (tmp_path / "train.py").read_text() == GF003_FIXED.read_text(), result.output


@pytest.mark.parametrize("table, key", [
    ('selct = ["GF001"]', "selct"),
    ('select = ["GF999"]', "select"),
    ('[tool.gradfix.per-file-ignores]\n"a.py" = ["GF999"]', 'per-file-ignores."a.py"'),
    ('[tool.gradfix.diagnose]\ntimeout = -3', "diagnose.timeout"),
    ('[tool.gradfix.diagnose]\ntargt = "x.py"', "diagnose.targt"),
])
def test_unknown_keys_and_codes_are_errors_naming_the_key(tmp_path, table, key):
    _project(tmp_path, table)
    with pytest.raises(ConfigError) as error:
        settings_for(tmp_path / "train.py")
    assert f"[tool.gradfix] {key}:" in str(error.value)
    (tmp_path / "train.py").write_text(BUGGY)
    result = run("check", tmp_path / "train.py")
    assert result.exit_code == 2 and key in result.stderr


def test_diagnose_settings_are_read(tmp_path):
    _project(tmp_path, '[tool.gradfix.diagnose]\ntarget = "train.py:step"\ntimeout = 30')
    settings = settings_for(tmp_path / "x.py")
    assert (settings.diagnose_target, settings.diagnose_timeout) == ("train.py:step", 30.0)


# --- suppression ---

@pytest.mark.parametrize("comment, suppressed", [("# noqa: GF006", True), ("# noqa", True), ("# noqa: GF001", False),
                                                 ("# NOQA:GF006,GF001", True)])
def test_noqa_on_the_findings_line(tmp_path, comment, suppressed):
    text = BUGGY.replace("grads = tape.gradient(loss, model.variables)", f"grads = tape.gradient(loss, model.variables)  {comment}")
    (tmp_path / "train.py").write_text(text)
    result = run("check", tmp_path / "train.py")
    assert result.exit_code == (0 if suppressed else 1), result.output


def test_noqa_in_a_string_does_not_suppress(tmp_path):
    text = BUGGY.replace("grads = tape.gradient(loss, model.variables)", "grads = tape.gradient(loss, model.variables); s = '# noqa'")
    (tmp_path / "train.py").write_text(text)
    assert run("check", tmp_path / "train.py").exit_code == 1


def test_skip_file_and_unused_noqa(tmp_path):
    (tmp_path / "skipped.py").write_text("# gradfix: skip-file\n" + BUGGY)
    assert run("check", tmp_path / "skipped.py").exit_code == 0
    (tmp_path / "clean.py").write_text("import tensorflow as tf\nx = tf.constant(1.0)  # noqa: GF003\n")
    assert run("check", tmp_path / "clean.py").exit_code == 0
    result = run("check", "--report-unused-noqa", tmp_path / "clean.py")
    assert result.exit_code == 1 and "clean.py:2:" in result.output and "unused noqa: GF003" in result.output


def test_fix_leaves_a_suppressed_finding_alone(tmp_path):
    text = BUGGY.replace("grads = tape.gradient(loss, model.variables)", "grads = tape.gradient(loss, model.variables)  # noqa: GF006")
    (tmp_path / "train.py").write_text(text)
    run("fix", "--apply", tmp_path / "train.py")
    assert "tape.gradient(loss, model.variables)  # noqa" in (tmp_path / "train.py").read_text()


# --- paths ---

def test_gitignore_venv_build_and_exclude_are_passed_over(tmp_path):
    _project(tmp_path, 'exclude = ["generated/"]')
    for folder in ("ignored", "venv", "env2", "build", "generated", "src"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "train.py").write_text(BUGGY)
    (tmp_path / "env2" / "pyvenv.cfg").write_text("home = /usr\n")
    (tmp_path / ".gitignore").write_text("ignored/\n")
    data = json.loads(run("check", "--format", "json", tmp_path).stdout)
    assert {os.path.basename(os.path.dirname(f["span"]["path"])) for f in data["findings"]} == {"src"}


def test_force_exclude_applies_exclusions_to_named_files(tmp_path):
    _project(tmp_path, 'exclude = ["generated/"]')
    (tmp_path / "generated").mkdir()
    named = tmp_path / "generated" / "train.py"
    named.write_text(BUGGY)
    assert run("check", named).exit_code == 1
    result = run("check", "--force-exclude", named)
    assert result.exit_code == 0 and "every path given was excluded" in result.output


# --- notebooks ---

def _notebook(cells) -> dict:
    return {"cells": cells, "metadata": {"kernelspec": {"language": "python", "name": "python3"}}, "nbformat": 4,
            "nbformat_minor": 5}


def _code(source, outputs=()):
    return {"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": list(outputs),
            "source": source.splitlines(keepends=True)}


def test_notebook_is_checked_by_cell_and_fixed_with_outputs_and_magics_untouched(tmp_path):
    head, tail = BUGGY.split("for x, y in dataset:\n")
    output = {"output_type": "stream", "name": "stdout", "text": ["loss 1.0\n"]}
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# Training\n"]},
             _code("%matplotlib inline\n!pip list\n" + head, [output]),
             _code("for x, y in dataset:\n" + tail, [output])]
    path = tmp_path / "train.ipynb"
    path.write_text(json.dumps(_notebook(cells), indent=1) + "\n")
    result = run("check", path)
    assert result.exit_code == 1, result.output
    assert "Cell 3: " in result.output and "train.ipynb:5:" in result.output  # line 5 of the third cell
    assert run("fix", "--apply", path).exit_code == 0
    fixed = json.loads(path.read_text())
    assert "".join(fixed["cells"][2]["source"]) == "for x, y in dataset:\n" + FIXED.split("for x, y in dataset:\n")[1]
    assert fixed["cells"][1]["source"][:2] == ["%matplotlib inline\n", "!pip list\n"]
    assert fixed["cells"][1]["outputs"] == [output] and fixed["cells"][2]["outputs"] == [output]
    assert fixed["cells"][0] == cells[0]


def test_notebook_with_a_syntax_error_is_not_reported_clean(tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text(json.dumps(_notebook([_code("import tensorflow as tf\ndef f(:\n")])))
    result = run("check", path)
    assert result.exit_code == 2 and "syntax error" in result.stderr


# --- sandbox ---

def test_sandbox_copies_sources_and_data_links_environments_and_is_removed(tmp_path):
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "train.py").write_text("print(1)\n")
    (project / "data" / "big.bin").write_bytes(b"\0" * (2 * 1024 * 1024))
    (project / ".venv").mkdir()
    (project / ".venv" / "pyvenv.cfg").write_text("")
    with sandbox_copy(str(project)) as sandbox:
        copy = sandbox.path
        assert pathlib.Path(copy, "train.py").read_text() == "print(1)\n"
        assert not os.path.islink(os.path.join(copy, "train.py"))
        # data within the copy budget is the copy's own (copied, or cloned where the file system can)
        assert not os.path.islink(os.path.join(copy, "data", "big.bin"))
        assert os.path.islink(os.path.join(copy, ".venv"))
        assert str(project / ".venv") in sandbox.read_only
        with open(os.path.join(copy, "train.py"), "w") as handle:
            handle.write("changed\n")
        with open(os.path.join(copy, "data", "big.bin"), "wb") as handle:
            handle.write(b"changed")
    assert (project / "train.py").read_text() == "print(1)\n"
    assert (project / "data" / "big.bin").stat().st_size == 2 * 1024 * 1024
    assert not os.path.exists(copy)


def test_sandbox_refuses_a_project_too_large_to_copy(tmp_path):
    for index in range(30):
        (tmp_path / f"m{index}.py").write_text("x = 1\n" * 100)
    with pytest.raises(SandboxTooLarge, match="too large to copy"):
        with sandbox_copy(str(tmp_path), limit_bytes=5000):
            pass



def _diagnose(cwd, *args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "gradfix", "diagnose", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_diagnose_refuses_a_notebook_with_a_clear_line(tmp_path):
    (tmp_path / "train.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    done = _diagnose(tmp_path, "train.ipynb")
    assert done.returncode == 2
    assert "train.ipynb: diagnose runs scripts and modules, not notebooks" in done.stderr
    assert done.stdout == ""


def test_diagnose_without_target_runs_the_configured_one_or_says_what_is_missing(tmp_path):
    done = _diagnose(tmp_path)
    assert done.returncode == 2 and "no TARGET given" in done.stderr
    (tmp_path / "pyproject.toml").write_text('[tool.gradfix.diagnose]\ntarget = "missing.py"\n')
    done = _diagnose(tmp_path, "-q")
    # the configured target is what runs: here it does not exist, so it cannot be diagnosed
    assert done.returncode == 2 and "missing.py" in done.stderr
