"""Wall time of `gradfix diagnose` against the plain run of the same program, in one run.

    python bench/bench_diagnose.py [--repeat N]

The program is fixtures/runtime/train_epochs.py (a tf.function step over a small
tf.data pipeline; every variable gets a gradient). The baseline is the plain run
set to train one step (the cost is TensorFlow's import and the first step's tracing);
the plain run of one epoch (8 steps) is shown beside it. gradfix diagnose is run on the same program set to 1 and to 1000
epochs; it stops after the first step, so the two should cost the same.
Prints the median of N runs of each and the ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = ROOT / "fixtures" / "runtime" / "train_epochs.py"


def timed(command: list[str]) -> float:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    started = time.perf_counter()
    done = subprocess.run(command, cwd=PROGRAM.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0,):
        raise SystemExit(f"{' '.join(command)} exited with {done.returncode}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    python = sys.executable
    gradfix = [python, "-m", "gradfix", "diagnose", "--quiet", PROGRAM.name, "--"]
    runs = {
        "plain, 1 step": [python, PROGRAM.name, "1", "1"],
        "plain, 1 epoch": [python, PROGRAM.name, "1"],
        "diagnose, 1 epoch": gradfix + ["1"],
        "diagnose, 1000 epochs": gradfix + ["1000"],
    }
    results: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(options.repeat):  # interleaved, so that machine load hits all alike
        for name, command in runs.items():
            results[name].append(timed(command))
    medians = {name: statistics.median(times) for name, times in results.items()}
    base = medians["plain, 1 step"]
    print(f"{'run':<24}{'median s':>10}{'ratio':>8}   all runs")
    for name, value in medians.items():
        print(f"{name:<24}{value:>10.2f}{value / base:>8.2f}   {', '.join(f'{t:.2f}' for t in results[name])}")
    flat = medians["diagnose, 1000 epochs"] / medians["diagnose, 1 epoch"]
    print(f"1000 epochs / 1 epoch under diagnose: {flat:.2f}")


if __name__ == "__main__":
    main()
