"""Input that cannot hang or crash gradfix: special files, huge files, NUL bytes, deep nesting, slow analysis."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from gradfix.engine import CheckOptions, FoundFile, check_file, select_rules
from tests.safety.conftest import BUGGY, run

GOOD = "import tensorflow as tf\nx = tf.constant(1.0)\n"


def _gradfix(*args, timeout=60, **kwargs):
    return subprocess.run([sys.executable, "-m", "gradfix", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def test_fifo_named_on_the_command_line_is_an_error_not_a_hang(tmp_path):
    fifo = tmp_path / "pipe.py"
    os.mkfifo(fifo)
    completed = _gradfix("check", fifo, timeout=30)
    assert completed.returncode == 2
    assert f"{fifo}: is a FIFO (named pipe), not a regular file" in completed.stderr


def test_fifo_met_in_a_folder_is_skipped_with_a_warning(tmp_path):
    os.mkfifo(tmp_path / "pipe.py")
    (tmp_path / "good.py").write_text(GOOD)
    completed = _gradfix("check", tmp_path, timeout=30)
    assert completed.returncode == 0, completed.stderr
    assert "gradfix: warning:" in completed.stderr and "pipe.py: is a FIFO" in completed.stderr


def test_link_to_dev_zero_is_not_read(tmp_path):
    link = tmp_path / "zero.py"
    link.symlink_to("/dev/zero")
    completed = _gradfix("check", link, timeout=30)
    assert completed.returncode == 2
    assert "is a character device, not a regular file" in completed.stderr


def test_file_over_the_size_limit_is_refused_with_the_figures(tmp_path, monkeypatch):
    big = tmp_path / "big.py"
    big.write_text("x = 1\n" * 2000)
    monkeypatch.setenv("GRADFIX_MAX_FILE_BYTES", "1000")
    result = run("check", big)
    assert result.exit_code == 2
    assert "over gradfix's limit of" in result.stderr and "GRADFIX_MAX_FILE_BYTES" in result.stderr


def test_nul_byte_is_reported_with_its_line_and_column(tmp_path):
    path = tmp_path / "nul.py"
    path.write_bytes(b"import tensorflow as tf\nx = 1\ny = '\x00'\n")
    result = run("check", path)
    assert result.exit_code == 2
    assert "line 3, column 6" in result.stderr and "NUL byte" in result.stderr
    assert "None" not in result.stderr


def test_syntax_error_in_a_tensorflow_file_has_cpythons_line_and_message(tmp_path):
    path = tmp_path / "train.py"
    path.write_text("import tensorflow as tf\n\nwith tf.GradientTape() as tape:\n    y = model(x\nz = 2\n")
    result = run("check", path)
    assert result.exit_code == 2
    try:
        compile(path.read_text(), str(path), "exec")
    except SyntaxError as error:
        expected = f"syntax error at line {error.lineno}, column {error.offset}: {error.msg}"
    assert expected in result.stderr


@pytest.mark.parametrize("text", [
    "def f(a, a):\n    return tf.constant(a)\n",
    "def f():\n    return tf.constant(1.0)\nnonlocal y\n",
])
def test_code_cpython_rejects_is_not_reported_clean_either(tmp_path, text):
    path = tmp_path / "train.py"
    path.write_text("import tensorflow as tf\n" + text)
    result = run("check", path)
    assert result.exit_code == 2 and "syntax error at line" in result.stderr


@pytest.mark.parametrize("text", [
    "x = " + "(" * 5000 + "a" + ")" * 5000 + "\n",  # segfaulted LibCST's native parser
    "x = " + "lambda: " * 5000 + "a\n",  # segfaulted LibCST's native parser
])
def test_deep_nesting_cannot_crash_the_process(tmp_path, text):
    path = tmp_path / "deep.py"
    path.write_text("import tensorflow as tf\n" + text)
    completed = _gradfix("check", path, timeout=60)
    assert completed.returncode == 2, completed.stderr
    assert str(path) in completed.stderr


def test_deep_nesting_cpython_accepts_is_refused_in_seconds_not_minutes(tmp_path):
    path = tmp_path / "deep.py"
    # a file the rules read (it names GradientTape), so that it would reach LibCST: minutes there
    path.write_text("import tensorflow as tf\ntape = tf.GradientTape()\nx = tf" + ".b" * 5000 + "\n")
    started = time.monotonic()
    completed = _gradfix("check", path, timeout=120)
    assert time.monotonic() - started < 30
    assert completed.returncode == 2
    assert "too deeply nested" in completed.stderr or "nested more than 1000 levels deep" in completed.stderr


def test_slow_analysis_becomes_an_error_line_not_a_hang(tmp_path, monkeypatch):
    path = tmp_path / "train.py"
    path.write_text(BUGGY)
    rules = select_rules()

    def forever(analysis):
        while True:
            pass
        yield

    monkeypatch.setattr(rules[0], "check", forever)
    monkeypatch.setattr(rules[0], "wants", lambda text: True)
    started = time.monotonic()
    result = check_file(FoundFile(str(path)), rules, CheckOptions(use_config=False, time_limit=0.5))
    assert time.monotonic() - started < 10
    assert result.error is not None and "analysis took longer than 0.5 s" in result.error.problem


def test_negative_timeout_is_rejected():
    result = run("diagnose", "train.py", "--timeout", "-1")
    assert result.exit_code == 2
    assert "--timeout" in result.output


def test_the_default_time_bound_grows_with_the_file_and_the_environment_sets_it(tmp_path, monkeypatch):
    from gradfix.engine import DEFAULT_FILE_TIME_LIMIT, FILE_TIME_ENV, time_limit

    small, large = tmp_path / "small.py", tmp_path / "large.py"
    small.write_text("x = 1\n")
    large.write_text("x = 1\n" * 250_000)  # 1.5 MB, about the size of a 50,000-line module
    monkeypatch.delenv(FILE_TIME_ENV, raising=False)
    assert time_limit(str(small), CheckOptions()) < DEFAULT_FILE_TIME_LIMIT + 1
    assert time_limit(str(large), CheckOptions()) >= DEFAULT_FILE_TIME_LIMIT + 140
    monkeypatch.setenv(FILE_TIME_ENV, "5")
    assert time_limit(str(large), CheckOptions()) == 5
    assert time_limit(str(large), CheckOptions(time_limit=0.5)) == 0.5
