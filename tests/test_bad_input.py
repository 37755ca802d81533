"""Bad input: one clear line naming the file and the problem, exit 2, nothing written, the rest still processed."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest
from click.testing import CliRunner

from gradfix.cli import main

GOOD = "import tensorflow as tf\nx = tf.constant(1.0)\n"


def _run(*args):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("broken.py", b"def f(:\n    pass\n", "syntax error"),
        # errors of CPython's compiler, not its parser, which LibCST's parser lets through: a file the rules
        # read (it holds a tape) and one no rule reads take different ways to the verdict
        ("stray_return.py", b"import tensorflow as tf\nwith tf.GradientTape() as tape:\n    return 1\n",
         "syntax error at line 3, column 5: 'return' outside function"),
        ("stray_nonlocal.py", b"nonlocal x\n", "nonlocal declaration not allowed at module level"),
        ("latin.py", b"x = '\xe9t\xe9'\n", "not valid utf-8"),
        ("declared.py", b"# -*- coding: ascii -*-\nx = '\xc3\xa9'\n", "not valid ascii"),
    ],
)
@pytest.mark.parametrize("command", [["check"], ["fix"], ["fix", "--apply"]])
def test_bad_file_is_named_in_one_line_and_left_alone(tmp_path, name, content, problem, command):
    bad = tmp_path / name
    bad.write_bytes(content)
    good = tmp_path / "good.py"
    good.write_text(GOOD)
    result = _run(*command, str(bad), str(good))
    assert result.exit_code == 2
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("gradfix: error:")]
    assert len(error_lines) == 1
    assert str(bad) in error_lines[0] and problem in error_lines[0]
    assert bad.read_bytes() == content
    assert good.read_text() == GOOD
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "good.py"])


def test_missing_path(tmp_path):
    missing = tmp_path / "nope.py"
    result = _run("check", str(missing))
    assert result.exit_code == 2
    assert f"{missing}: no such file or folder" in result.stderr


def test_folder_without_python_files(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "data.csv").write_text("1,2")
    result = _run("check", str(tmp_path))
    assert result.exit_code == 2
    assert f"{tmp_path}: folder holds no Python files" in result.stderr


def test_folder_is_searched_recursively(tmp_path):
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (nested / "broken.py").write_text("def (:\n")
    result = _run("check", str(tmp_path))
    assert result.exit_code == 2
    assert "broken.py" in result.stderr


def test_unknown_rule_is_an_error():
    result = _run("check", "--select", "GF999", ".")
    assert result.exit_code == 2
    assert "unknown rule GF999" in result.output


def test_clean_file_exits_zero(tmp_path):
    good = tmp_path / "good.py"
    good.write_text(GOOD)
    assert _run("check", str(good)).exit_code == 0
    result = _run("fix", "--apply", str(good))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert good.read_text() == GOOD


def test_console_entry_point_runs_as_a_program(tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("def (:\n")
    completed = subprocess.run([sys.executable, "-m", "gradfix", "check", str(bad)], capture_output=True, text=True)
    assert completed.returncode == 2
    assert completed.stderr.strip().startswith(f"gradfix: error: {bad}: syntax error")


# Shaped as tf_agents/utils/common.py: a module with a training step and a helper comparing to a literal with `is`,
# which CPython compiles with a SyntaxWarning, and a string with an invalid escape sequence.
LITERAL_IDENTITY = """\
# Copyright header
import tensorflow as tf


def safe_has_state(state):
    return state is not None and state is not () and state is not []


def checkpoint_pattern(prefix):
    return prefix + "-\\d+"


def train_step(model, optimizer, x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x) - y))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss
"""


# a chain of `and` terms longer than LibCST parses on the default stack: its depth is measured on CPython's tree first
LONG_CHAIN = "\n\ndef every(x):\n    return " + " and ".join(["x"] * 1200) + "\n"


@pytest.mark.parametrize("name", ["common.py", "common.ipynb", "chain.py"])
def test_python_warnings_about_the_checked_code_are_not_printed(tmp_path, name):
    """CPython's warnings about the code (`state is not ()`) are not findings; gradfix compiles the file (or the
    cell) and its statements one by one, so they would come several times, some naming a line the code is not on."""
    checked = tmp_path / name
    if name.endswith(".ipynb"):
        cell = {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": LITERAL_IDENTITY}
        checked.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    else:
        checked.write_text(LITERAL_IDENTITY + (LONG_CHAIN if name == "chain.py" else ""))
    completed = subprocess.run([sys.executable, "-W", "default", "-m", "gradfix", "check", str(checked)],
                               capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert "SyntaxWarning" not in completed.stderr and "DeprecationWarning" not in completed.stderr
    assert completed.stderr.strip() == "No problems found."


@pytest.mark.parametrize("content", [b"", b"\n\n   \n", b"\r\n"])
@pytest.mark.parametrize("command", [["check"], ["check", "--force-exclude"], ["fix"], ["fix", "--apply", "--force-exclude"]])
def test_an_empty_file_is_clean_whether_met_in_a_folder_or_named(tmp_path, content, command):
    """As Ruff and mypy take it: a pre-commit hook names every staged file, empty `__init__.py` files too."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_bytes(content)
    (package / "model.py").write_text(GOOD)
    assert _run(*command, str(tmp_path)).exit_code == 0
    named = _run(*command, str(package / "__init__.py"), str(package / "model.py"))
    assert named.exit_code == 0, named.output
    assert "gradfix: error" not in named.stderr and (package / "__init__.py").read_bytes() == content
    if command == ["check"]:
        assert named.stderr.strip() == "No problems found."


def test_an_empty_file_from_the_pre_commit_hook_entry(tmp_path, monkeypatch):
    """The hook's own command line (.pre-commit-hooks.yaml) on a staged empty `__init__.py` and a clean module."""
    import yaml

    hooks = {hook["id"]: hook["entry"].split()[1:] for hook in
             yaml.safe_load((pathlib.Path(__file__).parents[1] / ".pre-commit-hooks.yaml").read_text())}
    monkeypatch.chdir(tmp_path)
    pathlib.Path("__init__.py").write_text("")
    pathlib.Path("model.py").write_text(GOOD)
    for entry in hooks.values():
        result = _run(*entry, "__init__.py", "model.py")
        assert result.exit_code == 0, (entry, result.output)


CONFIG_PROBLEMS = [
    ('[tool.gradfix]\nselct = ["GF001"]\n', "[tool.gradfix] selct: unknown key (did you mean select?)"),
    ('[tool.gradfix]\nselect = ["GF999"]\n', "[tool.gradfix] select: unknown rule GF999"),
    ('[tool.gradfix]\nselect = ["GF001"\n', "not valid TOML"),
]


@pytest.mark.parametrize("content, problem", CONFIG_PROBLEMS)
@pytest.mark.parametrize("command", [
    ["check", "."], ["check", "train.py", "other.py"], ["check", "--force-exclude", "train.py", "other.py"],
    ["check", "--format", "concise", "."], ["check", "--format", "json", "."], ["check", "--jobs", "2", "."],
    ["fix", "."], ["fix", "train.py", "other.py"], ["fix", "--apply", "--force-exclude", "train.py", "other.py"],
])
def test_a_pyproject_toml_gradfix_cannot_use_is_one_line_naming_it_and_exit_2(tmp_path, monkeypatch, content, problem, command):
    """The same line however the files were given (a folder, named, from a pre-commit hook with --force-exclude,
    in worker processes): the file, the key and the problem, said once, never a traceback or exit 1."""
    from gradfix import config

    monkeypatch.chdir(tmp_path)
    config.clear_cache()
    (tmp_path / "pyproject.toml").write_text(content)
    for name in ("train.py", "other.py", *(f"m{n}.py" for n in range(30 if "--jobs" in command else 0))):
        (tmp_path / name).write_text(GOOD)
    result = _run(*command)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.stderr.splitlines() if line.startswith("gradfix: error:")]
    assert errors == [f"gradfix: error: pyproject.toml: {errors[0].split(': ', 3)[-1]}"], result.stderr
    assert problem in errors[0] and errors[0].endswith("; the files it applies to were not checked")
    if "json" in command:
        import json

        assert [error["path"] for error in json.loads(result.stdout)["errors"]] == ["pyproject.toml"]


def test_a_pyproject_toml_gradfix_cannot_use_from_standard_input_and_diagnose(tmp_path, monkeypatch):
    from gradfix import config

    monkeypatch.chdir(tmp_path)
    config.clear_cache()
    (tmp_path / "pyproject.toml").write_text(CONFIG_PROBLEMS[0][0])
    for args in (["check", "-", "--stdin-filename", "train.py"], ["fix", "-", "--stdin-filename", "train.py"],
                 ["diagnose", "train.py"]):
        result = CliRunner().invoke(main, args, input=GOOD)
        assert result.exit_code == 2, (args, result.output)
        errors = [line for line in result.stderr.splitlines() if line.startswith("gradfix: error:")]
        assert len(errors) == 1 and errors[0].startswith("gradfix: error: pyproject.toml: [tool.gradfix] selct:"), args


@pytest.mark.parametrize("content, line, key", [
    ('[project]\nname = "x"\n\n[tool.gradfix]\nignore = ["GF009"]\nselct = ["GF001"]\n', 5, "selct"),
    ('[tool.gradfix]\n"per-file-ignores" = { "a.py" = ["GF999"] }\n', 1, '"a.py"'),
    ('[tool.gradfix.diagnose]\ntarget = "x.py"\ntimeout = -3\n', 2, "timeout"),
    ('[tool.gradfix]\nselect = ["GF001"\nignore = []\n', 2, None),
])
def test_a_configuration_error_knows_its_line(tmp_path, content, line, key):
    from gradfix.config import ConfigError, clear_cache, settings_for

    (tmp_path / "pyproject.toml").write_text(content)
    clear_cache()
    with pytest.raises(ConfigError) as raised:
        settings_for(tmp_path / "train.py")
    number, start, end = raised.value.location()
    assert number == line
    text = content.splitlines()[number]
    assert text[start:end] == (key if key is not None else text)


def test_a_failing_rule_is_reported_and_the_others_still_run(tmp_path, monkeypatch):
    from gradfix.engine import analyze, select_rules
    from gradfix.source import SourceFile

    monkeypatch.delenv("GRADFIX_STRICT", raising=False)
    rules = select_rules()
    broken = rules[0]

    def explode(analysis):
        raise RuntimeError("boom")
        yield

    monkeypatch.setattr(broken, "check", explode)
    text = (pathlib.Path(__file__).parent.parent / "fixtures" / "seed" / "example1.py").read_text()
    from gradfix.engine import IncompleteAnalysis

    with pytest.raises(IncompleteAnalysis, match=f"not fully checked: internal error in rule {broken.code}") as raised:
        analyze(SourceFile("example1.py", text, "utf-8"), rules)
    assert [f.rule for f in raised.value.findings] == ["GF003"]
