"""The scratch copy of a run in a copy, and its write guard, against plain baselines in the same run.

    python bench/bench_sandbox.py [--repeat N]

The project: 300 source files, 2,000 small data files (20 MB), four data files of 24 MB (one
copied, three beyond the 64 MB budget: linked read-only, or cloned where the file system can), and
an ignored folder of 500 logs. Interleaved round by round, medians of N:

- ``shutil.copytree`` of the whole project (the baseline: a plain full copy);
- ``sandbox_copy`` of it (every folder real, sources and data copied within the budget, the rest linked);
- a bare ``python -c pass`` (the baseline for the guard) against the same with the guard installed
  (the audit hook, and Landlock where the kernel has it) as a run in the copy installs it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gradfix.runtime.sandbox import sandbox_copy

GUARDED = "from gradfix.runtime.child.write_guard import install; install()"


def build(root: Path) -> None:
    (root / "src").mkdir(parents=True)
    for index in range(300):
        (root / "src" / f"module{index}.py").write_text(f"value = {index}\n" * 50)
    (root / "data").mkdir()
    for index in range(2000):
        (root / "data" / f"sample{index}.csv").write_bytes(os.urandom(10_000))
    for index in range(4):
        (root / "data" / f"large{index}.npy").write_bytes(os.urandom(24 * 1024 * 1024))
    (root / "logs").mkdir()
    for index in range(500):
        (root / "logs" / f"run{index}.log").write_text("loss 0.5\n" * 20)
    (root / ".gitignore").write_text("logs/\n")
    (root / "train.py").write_text("import src.module1\n")


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    repeat = parser.parse_args().repeat
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as base:
        project = Path(base) / "project"
        build(project)
        runs: dict[str, list[float]] = {name: [] for name in ("copytree", "sandbox_copy", "python", "python + guard")}
        for _ in range(repeat):
            target = Path(base) / "copy"
            runs["copytree"].append(timed(lambda: shutil.copytree(project, target, symlinks=True)))
            shutil.rmtree(target)

            def mirror():
                with sandbox_copy(str(project)) as sandbox:
                    mirror.env = sandbox.environment()
                    mirror.stats = (sandbox.copied, sandbox.cloned, sandbox.linked)

            runs["sandbox_copy"].append(timed(mirror))
            with sandbox_copy(str(project)) as sandbox:
                env = sandbox.environment()
                runs["python"].append(timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True)))
                runs["python + guard"].append(timed(lambda: subprocess.run([sys.executable, "-c", GUARDED], env=env, check=True)))
        medians = {name: statistics.median(times) for name, times in runs.items()}
        print(f"data files copied, cloned, linked: {mirror.stats}")
        for name, base_name in (("copytree", "copytree"), ("sandbox_copy", "copytree"), ("python", "python"),
                                ("python + guard", "python")):
            print(f"{name:<16}{medians[name]:>8.3f} s{medians[name] / medians[base_name]:>7.2f}x {base_name}"
                  f"   all: {', '.join(f'{t:.3f}' for t in runs[name])}")


if __name__ == "__main__":
    main()
