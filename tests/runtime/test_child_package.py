"""The child package: the facts it writes follow the shared schema, and it stays out of the program's way."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gradfix.runtime import facts, runner
from gradfix.runtime.child import schema

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "fixtures" / "seed"
CHILD_MODULES = ("state", "frames", "values", "tracer", "ops", "frontier", "tf_hooks", "keras_hooks", "target",
                 "entry", "schema", "runner", "sandbox", "write_guard")

LOOKS_AROUND = textwrap.dedent(f"""\
    import importlib.util
    import sys

    print("shadowed:", [name for name in {CHILD_MODULES!r} if importlib.util.find_spec(name) is not None])
    print("gradfix:", sorted(name for name in sys.modules if name == "gradfix" or name.startswith("gradfix.")))
    """)


def test_parent_and_child_read_one_schema():
    assert facts.FACTS_VERSION == schema.FACTS_VERSION
    assert facts.STATUSES == schema.STATUSES
    assert runner.FACTS_ENV == schema.FACTS_ENV and runner.STEPS_ENV == schema.STEPS_ENV


def test_the_child_is_launched_by_path_from_its_package():
    command = runner.child_command("train.py", ["--epochs", "1"], python="python3")
    assert command[0] == "python3" and command[2:] == ["train.py", "--epochs", "1"]
    assert Path(command[1]) == Path(schema.__file__).with_name("__main__.py")


def test_usage_without_a_target():
    # the package loads in a bare interpreter: no TensorFlow, no gradfix on the path, none of gradfix's dependencies
    done = subprocess.run([sys.executable, "-S", "-E", runner.child_path()], capture_output=True, text=True,
                          cwd="/", timeout=60)
    assert done.returncode == 2
    assert "TARGET" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.tensorflow
def test_the_facts_file_has_the_schemas_fields(run_fixture):
    data = run_fixture("example2.py", SEED).raw
    assert tuple(data) == schema.FACTS_FIELDS
    assert data["version"] == schema.FACTS_VERSION and data["status"] in schema.STATUSES


@pytest.mark.tensorflow
def test_the_program_sees_neither_the_child_nor_gradfix(tmp_path):
    (tmp_path / "looks_around.py").write_text(LOOKS_AROUND)
    result = runner.run_step("looks_around.py", cwd=str(tmp_path), timeout=300)
    assert result.status == "no-gradient-call", result.error
    assert "shadowed: []" in result.output_tail
    assert "gradfix: []" in result.output_tail
