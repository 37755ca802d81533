"""Which runs may be forked from a warm server: the checks of the program's source, the interpreter and the
environment (no TensorFlow needed; tests/runtime/test_warm.py runs them)."""

from __future__ import annotations

import os
import sys

import pytest

from gradfix.runtime.warm_checks import (
    PER_RUN,
    changes_imports,
    cold_reason,
    interpreter_reason,
    pythonpath_entries,
    server_environment,
    shadowing,
    target_files,
)


@pytest.mark.parametrize("line", [
    'os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"',
    "os.environ['A'] += 'x'",
    'os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")',
    "os.environ.update(PYTHONHASHSEED='0')",
    'os.environ.pop("TF_ENABLE_ONEDNN_OPTS")',
    'del os.environ["XLA_FLAGS"]',
    "env = os.environ",
    "from os import environ",
    'os.putenv("A", "1")',
    'sys.path.insert(0, "..")',
    'sys.path.append("/opt/lib")',
    "sys.path[:0] = ['src']",
    "from sys import path",
    'sys.modules["tensorflow"] = stub',
    "import tf_keras as keras",
    'os.environ.get("TF_USE_LEGACY_KERAS")',
    'backend = os.getenv("KERAS_BACKEND")',
    "site.addsitedir('/opt/site')",
])
def test_a_program_that_may_change_what_tensorflow_imports_is_named(line):
    assert changes_imports(f"import os, sys\n{line}\nimport tensorflow as tf\n")


@pytest.mark.parametrize("line", [
    'data = os.environ.get("DATA_DIR", "data")',
    'data = os.environ["DATA_DIR"]',
    'if os.environ["MODE"] == "debug": pass',
    'if "CI" in os.environ: pass',
    'if "CI" not in os.environ: pass',
    "settings = dict(os.environ.items())",
    "child_env = os.environ.copy()",
    'print(sys.argv, sys.version)',
])
def test_reading_the_environment_is_not_a_change(line):
    assert changes_imports(f"import os, sys\n{line}\nimport tensorflow as tf\n") is None


def test_a_module_target_is_checked_with_its_packages(tmp_path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "__init__.py").write_text("import os\nos.environ['KERAS_HOME'] = '/tmp'\n")
    (tmp_path / "pkg" / "sub" / "train.py").write_text("import tensorflow as tf\n")
    files = target_files("pkg.sub.train:main", str(tmp_path), [])
    assert files == [str(tmp_path / "pkg" / "__init__.py"), str(tmp_path / "pkg" / "sub" / "__init__.py"),
                     str(tmp_path / "pkg" / "sub" / "train.py")]
    reason = cold_reason("pkg.sub.train:main", sys.executable, str(tmp_path), {"PATH": os.environ.get("PATH", "")})
    assert reason and "__init__.py" in reason and "environ" in reason
    # a package run as a program: its __main__.py runs too
    (tmp_path / "pkg" / "sub" / "__init__.py").write_text("")
    assert cold_reason("pkg.sub", sys.executable, str(tmp_path), {}) is None
    (tmp_path / "pkg" / "sub" / "__main__.py").write_text("import sys\nsys.path.insert(0, 'x')\n")
    assert "__main__.py" in cold_reason("pkg.sub", sys.executable, str(tmp_path), {})
    # found through the run's PYTHONPATH, or not at all (an installed module is not read: cold)
    elsewhere = tmp_path / "lib"
    (elsewhere / "tool").mkdir(parents=True)
    (elsewhere / "tool" / "run.py").write_text("import tensorflow\n")
    assert target_files("tool.run:main", str(tmp_path), [str(elsewhere)]) == [str(elsewhere / "tool" / "run.py")]
    assert target_files("installed.module:main", str(tmp_path), []) is None
    assert "not found" in cold_reason("installed.module:main", sys.executable, str(tmp_path), {})


def test_a_file_target_relative_to_the_run_folder(tmp_path):
    (tmp_path / "train.py").write_text("import tensorflow as tf\n")
    assert target_files("train.py", str(tmp_path), []) == [str(tmp_path / "train.py")]
    assert target_files("train.py:step", str(tmp_path), []) == [str(tmp_path / "train.py")]
    assert cold_reason("train.py:step", sys.executable, str(tmp_path), {}) is None
    assert cold_reason("train.py", sys.executable, str(tmp_path), {"GRADFIX_WARM": "0"}) == "GRADFIX_WARM=0"
    assert "not found" in cold_reason("missing.py", sys.executable, str(tmp_path), {})


def test_a_script_interpreter_starts_cold(tmp_path):
    wrapper = tmp_path / "python"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")
    wrapper.chmod(0o755)
    assert "script" in interpreter_reason(str(wrapper), {})
    assert interpreter_reason(sys.executable, {}) is None
    assert "not found" in interpreter_reason(str(tmp_path / "none"), {})


def test_the_server_key_leaves_out_what_differs_from_run_to_run(tmp_path):
    run_folder = tmp_path / "copy"
    shared = tmp_path / "lib"
    env = {"HOME": "/home/u", "PYTHONPATH": os.pathsep.join([str(run_folder), str(shared)]),
           "TMPDIR": str(run_folder / "tmp"), "GRADFIX_FACTS": "/x/facts.json", "GRADFIX_RUN": "abc"}
    key, server_env = server_environment(env, str(run_folder))
    other_key, _ = server_environment({**env, "PYTHONPATH": str(shared), "TMPDIR": "/elsewhere",
                                       "GRADFIX_FACTS": "/y/facts.json", "GRADFIX_RUN": "def"}, str(run_folder))
    assert key == other_key
    assert server_env["PYTHONPATH"] == str(shared) and server_env["HOME"] == "/home/u"
    assert not PER_RUN & (set(server_env) - {"PYTHONPATH", "TMPDIR"})
    assert server_environment({**env, "HOME": "/home/v"}, str(run_folder))[0] != key
    # relative entries are the run folder's
    assert pythonpath_entries({"PYTHONPATH": "src" + os.pathsep}, "/work") == ["/work/src", "/work"]


def test_a_module_of_the_run_that_would_shadow_the_import_starts_cold(tmp_path):
    (tmp_path / "helpers.py").write_text("")
    names = frozenset({"numpy", "sitecustomize"})
    assert shadowing([str(tmp_path)], [], names) is None
    (tmp_path / "numpy").mkdir()
    assert "numpy" in shadowing([str(tmp_path)], [], names)
    assert shadowing([str(tmp_path)], [str(tmp_path)], names) is None  # the server has it too
    assert shadowing([str(tmp_path / "absent")], [], names) is None
