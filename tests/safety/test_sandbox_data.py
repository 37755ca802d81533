"""Issue 20, item 3: a run in a copy (`--sandbox`, the re-runs of `--fix`) never writes to an original data file.

Data files and ignored folders used to be linked into the copy, so a program's ``open(..., "w")``
(a Keras CSVLogger) truncated the originals.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gradfix.runtime.sandbox import sandbox_copy

# fit() with a CSVLogger into an ignored folder, a log opened for writing, weights saved over old ones (HDF5)
FIT = textwrap.dedent("""\
    import numpy as np
    import tensorflow as tf

    open("results.log", "w").write("this run\\n")
    with open("logs/runs.log", "a") as log:
        log.write("one more run\\n")
    model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.save_weights("weights.weights.h5")
    x = np.ones((8, 3), "float32")
    model.fit(x, x[:, :1], epochs=1, verbose=0, callbacks=[tf.keras.callbacks.CSVLogger("logs/train.csv")])
    """)

# the same writes, and a lost gradient (tf.stop_gradient) whose fix is verified in copies
BUGGY = textwrap.dedent("""\
    import tensorflow as tf

    open("results.log", "w").write("this run\\n")
    with open("logs/runs.log", "a") as log:
        log.write("one more run\\n")
    model = tf.keras.Sequential([tf.keras.layers.Dense(2)])
    model.build((None, 3))
    opt = tf.keras.optimizers.SGD(0.1)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.stop_gradient(model(tf.ones((4, 3)))) ** 2)
    grads = tape.gradient(loss, model.trainable_variables)
    opt.apply_gradients(zip(grads, model.trainable_variables))
    """)


def _project(tmp_path: Path, program: str) -> Path:
    project = tmp_path / "project"
    (project / "logs").mkdir(parents=True)
    (project / ".gitignore").write_text("logs/\n")
    (project / "logs" / "train.csv").write_text("epoch,loss\n0,1.5\n1,0.75\n")
    (project / "logs" / "runs.log").write_text("an earlier run\n")
    (project / "results.log").write_text("the results of last week\n")
    (project / "weights.weights.h5").write_bytes(b"weights of last week")
    (project / "train.py").write_text(program)
    return project


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def _gradfix(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gradfix", *args], cwd=project, capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))


@pytest.mark.tensorflow
def test_sandbox_keeps_data_files_and_ignored_folders_as_they_were(tmp_path):
    project = _project(tmp_path, FIT)
    before = _snapshot(tmp_path)
    done = _gradfix(project, "diagnose", "--sandbox", "-q", "train.py")
    assert done.returncode == 0, done.stderr + done.stdout
    assert _snapshot(tmp_path) == before


@pytest.mark.tensorflow
def test_verification_reruns_of_fix_do_not_write_to_data_files(tmp_path):
    project = _project(tmp_path, BUGGY)
    done = _gradfix(project, "diagnose", "--fix", "-q", "train.py")
    assert done.returncode == 1 and "verified" in done.stdout, done.stderr + done.stdout
    # the first run is the program's own, in its folder; the re-runs on copies leave no trace
    assert (project / "logs" / "runs.log").read_text() == "an earlier run\none more run\n"
    assert (project / "logs" / "train.csv").read_text() == "epoch,loss\n0,1.5\n1,0.75\n"


GUARDED = textwrap.dedent("""\
    import os, sys
    from gradfix.runtime.child.write_guard import install

    install()
    outcome = []
    for path, mode in [("data/big.bin", "r+b"), ("data/big.bin", "wb"), (sys.argv[1], "w"), ("new.csv", "w")]:
        try:
            with open(path, mode) as handle:
                handle.write(b"x" if "b" in mode else "x")
            outcome.append("written")
        except PermissionError:
            outcome.append("refused")
    for call in (lambda: os.truncate("data/big.bin", 0), lambda: os.remove(sys.argv[1])):
        try:
            call()
            outcome.append("done")
        except PermissionError:
            outcome.append("refused")
    print(" ".join(outcome))
    """)


def test_a_file_linked_into_the_copy_cannot_be_written_through_the_link(tmp_path):
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "big.bin").write_bytes(b"\1" * 4096)
    (project / "notes.txt").write_text("kept\n")
    before = _snapshot(tmp_path)
    with sandbox_copy(str(project), data_bytes=0) as sandbox:
        # on a file system that clones (Btrfs, XFS) the copy is the program's own; elsewhere it is a guarded link
        linked = os.path.islink(os.path.join(sandbox.path, "data", "big.bin"))
        assert linked or sandbox.cloned
        done = subprocess.run([sys.executable, "-c", GUARDED, str(project / "notes.txt")], cwd=sandbox.path,
                              env=sandbox.environment(), capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        # through the link, by the original's own path, truncated or removed: refused; a new file in the copy: written
        through_link = "refused" if linked else "written"
        assert done.stdout.split() == [through_link, through_link, "refused", "written",
                                       "refused" if linked else "done", "refused"]
        assert Path(sandbox.path, "new.csv").read_text() == "x"
    assert _snapshot(tmp_path) == before


NATIVE = textwrap.dedent("""\
    import subprocess, sys
    from gradfix.runtime.child.write_guard import install

    if not install().kernel:
        print("no-landlock")
        sys.exit(0)
    # a process the program starts writes with no Python in between, as HDF5 or TensorFlow's file system do
    for command in ("echo x > data/big.bin", "echo x >> " + sys.argv[1], "rm " + sys.argv[1], "echo x > new.csv"):
        print(subprocess.run(command, shell=True, capture_output=True).returncode == 0)
    """)


def test_native_writes_and_other_processes_cannot_reach_an_original_where_landlock_is(tmp_path):
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "big.bin").write_bytes(b"\1" * 4096)
    (project / "notes.txt").write_text("kept\n")
    before = _snapshot(tmp_path)
    with sandbox_copy(str(project), data_bytes=0) as sandbox:
        done = subprocess.run([sys.executable, "-c", NATIVE, str(project / "notes.txt")], cwd=sandbox.path,
                              env=sandbox.environment(), capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        if done.stdout.strip() == "no-landlock":
            pytest.skip("this kernel has no Landlock: only writes made through Python are refused")
        cloned = not os.path.islink(os.path.join(sandbox.path, "data", "big.bin"))
        assert done.stdout.split() == [str(cloned), "False", "False", "True"]
    assert _snapshot(tmp_path) == before


def test_a_folder_of_many_files_is_linked_whole_and_read_only(tmp_path, monkeypatch):
    from gradfix.runtime import sandbox as sandbox_module

    monkeypatch.setattr(sandbox_module, "LINK_WHOLE_ENTRIES", 3)
    project = tmp_path / "project"
    (project / "images").mkdir(parents=True)
    for index in range(4):
        (project / "images" / f"{index}.png").write_bytes(b"\x89PNG")
    (project / "train.py").write_text("x = 1\n")
    before = _snapshot(tmp_path)
    with sandbox_copy(str(project)) as sandbox:
        assert os.path.islink(os.path.join(sandbox.path, "images"))
        assert str(project / "images") in sandbox.read_only
        done = subprocess.run([sys.executable, "-c", GUARDED.replace("data/big.bin", "images/0.png"), str(project / "train.py")],
                              cwd=sandbox.path, env=sandbox.environment(), capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["refused", "refused", "refused", "written", "refused", "refused"]
    assert _snapshot(tmp_path) == before
