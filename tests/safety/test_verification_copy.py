"""Issue 20, item 1: the verification copy never writes through a link into the user's files.

A buggy module in a folder the scratch copy used to link back to the original (an ignored
folder, ``build/``, a symbolic link to a folder) was rewritten in place by `diagnose --fix`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gradfix.runtime.sandbox import sandbox_copy

NET = textwrap.dedent("""\
    import tensorflow as tf


    def forward(m, x):
        return tf.stop_gradient(m(x))
    """)

TRAIN = textwrap.dedent("""\
    import tensorflow as tf

    from {package}.net import forward

    model = tf.keras.Sequential([tf.keras.layers.Dense(2)])
    model.build((None, 3))
    opt = tf.keras.optimizers.SGD(0.1)
    x = tf.ones((4, 3))
    y = tf.zeros((4, 2))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((forward(model, x) - y) ** 2)
    grads = tape.gradient(loss, model.trainable_variables)
    opt.apply_gradients(zip(grads, model.trainable_variables))
    """)


def _project(tmp_path: Path, layout: str) -> tuple[Path, Path]:
    """train.py importing ``forward`` from a module placed as ``layout`` says; returns (project, the module's real file)."""
    project = tmp_path / "project"
    project.mkdir()
    if layout == "ignored":
        package = project / "models"
        (project / ".gitignore").write_text("models/\n")
    elif layout == "linked":
        package = tmp_path / "shared" / "models"
        (project / "models").symlink_to(package, target_is_directory=True)
    else:
        package = project / layout
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "net.py").write_text(NET)
    (project / "train.py").write_text(TRAIN.format(package=package.name))
    return project, package / "net.py"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink() and "__pycache__" not in p.parts}


@pytest.mark.parametrize("layout", ["ignored", "linked", "build"])
def test_copy_of_a_file_to_patch_is_real_in_every_folder_above_it(tmp_path, layout):
    project, module = _project(tmp_path, layout)
    relative = os.path.join("models" if layout != "build" else "build", "net.py")
    with sandbox_copy(str(project), keep_real=[relative]) as sandbox:
        copied = Path(sandbox.path, relative)
        for part in [copied, *copied.parents]:
            if part == Path(sandbox.scratch):
                break
            assert not part.is_symlink(), part
        assert copied.read_text() == NET
        copied.write_text("changed = True\n")
    assert module.read_text() == NET


@pytest.mark.tensorflow
@pytest.mark.parametrize("layout", ["ignored", "linked"])
def test_diagnose_fix_leaves_a_module_in_an_ignored_or_linked_folder_alone(tmp_path, layout):
    project, module = _project(tmp_path, layout)
    before = _snapshot(tmp_path)
    done = subprocess.run([sys.executable, "-m", "gradfix", "diagnose", "train.py", "--fix", "-q"], cwd=project,
                          capture_output=True, text=True, timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert done.returncode == 1, done.stderr
    # the unsafe fix is verified in the copy, and not written without --unsafe-fixes
    assert "unsafe, verified" in done.stdout and "Nothing to write" in done.stdout
    assert module.read_text() == NET
    assert _snapshot(tmp_path) == before


def test_only_the_way_to_a_patched_file_in_an_environment_is_mirrored(tmp_path):
    project = tmp_path / "project"
    packages = project / ".venv" / "lib" / "site-packages"
    (packages / "models").mkdir(parents=True)
    (packages / "other").mkdir()
    (project / ".venv" / "pyvenv.cfg").write_text("")
    (packages / "models" / "net.py").write_text(NET)
    (packages / "models" / "helpers.py").write_text("x = 1\n")
    relative = os.path.join(".venv", "lib", "site-packages", "models", "net.py")
    with sandbox_copy(str(project), keep_real=[relative]) as sandbox:
        copy = Path(sandbox.path)
        assert not any(p.is_symlink() for p in [copy / relative, *(copy / relative).parents])
        # the rest of the environment is read in place, and is read-only to the run
        assert (copy / ".venv" / "lib" / "site-packages" / "other").is_symlink()
        assert (copy / ".venv" / "lib" / "site-packages" / "models" / "helpers.py").is_symlink()
        assert str(packages / "models" / "helpers.py") in sandbox.read_only
        (copy / relative).write_text("changed = True\n")
    assert (packages / "models" / "net.py").read_text() == NET
