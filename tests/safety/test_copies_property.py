"""Issue 20, items 1-3 as a property: runs in copies change nothing outside the copy.

For generated projects (the buggy module at the top, in an ignored folder, in ``build/`` or in a
linked folder; data files of several kinds in the project, in an ignored folder and behind links,
some of which the program overwrites or appends to), one of three commands is run:

- ``diagnose --sandbox --fix``: every file is byte-identical afterwards;
- ``diagnose --fix`` or ``report``: the program's own run is in place, so each leaves exactly what
  one run of the program writes; the verification re-runs in copies add nothing.

Each example costs two or three TensorFlow runs, so few are run: the three written out (one per
command), and one generated (derandomized, the same each time); GRADFIX_PROPERTY_TF_EXAMPLES asks
for more generated ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("GRADFIX_PROPERTY_TF_EXAMPLES", "1"))  # generated, besides the three written out below

NET = textwrap.dedent("""\
    import tensorflow as tf


    def forward(m, x):
        return tf.stop_gradient(m(x))
    """)

TRAIN = textwrap.dedent("""\
    import tensorflow as tf

    from {package}.net import forward

    for path, mode in {writes!r}:
        with open(path, mode) as handle:
            handle.write("written by a run\\n")
    model = tf.keras.Sequential([tf.keras.layers.Dense(2)])
    model.build((None, 3))
    opt = tf.keras.optimizers.SGD(0.1)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((forward(model, tf.ones((4, 3))) - 1.0) ** 2)
    grads = tape.gradient(loss, model.trainable_variables)
    opt.apply_gradients(zip(grads, model.trainable_variables))
    """)

# where a data file sits: the project's top, a plain folder, an ignored folder, a linked folder, a linked file
FOLDERS = ("", "data", "logs", "linked", "file-link")
SUFFIXES = (".csv", ".log", ".h5", ".npy", ".txt", ".json")
data_files = st.lists(
    st.tuples(st.sampled_from(FOLDERS), st.sampled_from(SUFFIXES), st.sampled_from([1, 300, 70_000, 1_500_000]),
              st.sampled_from([None, "w", "a"])),
    min_size=1, max_size=5, unique_by=lambda item: (item[0], item[1]))
layouts = st.fixed_dictionaries({"module": st.sampled_from(["top", "ignored", "build", "linked"]), "data": data_files,
                                 "command": st.sampled_from(["sandbox", "fix", "report"])})


def _build(base: Path, layout: dict) -> tuple[Path, dict[str, bytes]]:
    """The project and what one in-place run of its program leaves (path under ``base`` -> bytes)."""
    project, shared = base / "project", base / "shared"
    (project / "logs").mkdir(parents=True)
    (project / "data").mkdir()
    (shared / "data").mkdir(parents=True)
    (project / ".gitignore").write_text("logs/\nmodels/\n")
    (project / "linked").symlink_to(shared / "data", target_is_directory=True)
    package = {"top": project / "nets", "ignored": project / "models", "build": project / "build",
               "linked": shared / "models"}[layout["module"]]
    package.mkdir()
    if layout["module"] == "linked":
        (project / "models").symlink_to(package, target_is_directory=True)
    (package / "__init__.py").write_text("")
    (package / "net.py").write_text(NET)
    writes = []
    for index, (folder, suffix, size, mode) in enumerate(layout["data"]):
        name = f"data{index}{suffix}"
        if folder == "file-link":
            real, path = shared / name, project / name
            real.write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
            path.symlink_to(real)
        else:
            path = project / folder / name
            path.write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
        if mode is not None:
            writes.append((str(path.relative_to(project)), mode))
    package_name = "models" if layout["module"] == "linked" else package.name
    (project / "train.py").write_text(TRAIN.format(package=package_name, writes=writes))
    after_one_run = _snapshot(base)
    for relative, mode in writes:
        key = str(Path(os.path.realpath(project / relative)).relative_to(base))
        after_one_run[key] = (after_one_run[key] if mode == "a" else b"") + b"written by a run\n"
    return project, after_one_run


def _snapshot(base: Path) -> dict[str, bytes]:
    """Every regular file under ``base`` by its real path (links are followed once, to their target)."""
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def _gradfix(project: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "gradfix", *args], cwd=project, capture_output=True, text=True,
                          timeout=900, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    note(f"gradfix {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


@pytest.mark.tensorflow
@settings(max_examples=max(1, EXAMPLES), deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(layout=layouts)
# the cases: the module in an ignored folder, a log rewritten in an ignored folder, data appended behind a link
@example(layout={"module": "ignored", "command": "sandbox",
                 "data": [("logs", ".csv", 300, "w"), ("data", ".h5", 1_500_000, None), ("linked", ".log", 70_000, "a")]})
@example(layout={"module": "ignored", "command": "fix",
                 "data": [("logs", ".csv", 300, "w"), ("file-link", ".h5", 1_500_000, "a"), ("linked", ".log", 70_000, "a")]})
# the module in a linked folder, a linked file appended to, a large data file rewritten
@example(layout={"module": "linked", "command": "report",
                 "data": [("file-link", ".json", 300, "a"), ("data", ".npy", 1_500_000, "w"), ("", ".txt", 1, "a")]})
def test_runs_in_copies_change_nothing_outside_the_copy(tmp_path_factory, layout):
    base = tmp_path_factory.mktemp("layout")
    tree = base / "tree"
    project, after_one_run = _build(tree, layout)
    before = _snapshot(tree)
    if layout["command"] == "sandbox":
        done = _gradfix(project, "diagnose", "--sandbox", "--fix", "-q", "train.py")
        assert done.returncode == 1 and "verified" in done.stdout, done.stderr + done.stdout
        assert _snapshot(tree) == before
    elif layout["command"] == "fix":
        done = _gradfix(project, "diagnose", "--fix", "-q", "train.py")
        assert done.returncode == 1 and "unsafe, verified" in done.stdout, done.stderr + done.stdout
        assert _snapshot(tree) == after_one_run
    else:
        done = _gradfix(project, "report", "train.py", "-o", str(base / "report.html"))
        assert done.returncode == 1, done.stderr
        assert _snapshot(tree) == after_one_run
        assert (base / "report.html").read_text().lstrip().lower().startswith("<!doctype html")
