"""Wall time of `gradfix diagnose` against the plain run of the same program, in one run.

    python bench/bench_diagnose.py [--repeat N]

The program is fixtures/runtime/train_epochs.py (a tf.function step over a small
tf.data pipeline; every variable gets a gradient). The baseline is the plain run
set to train one step (the cost is TensorFlow's import and the first step's tracing);
the plain run of one epoch (8 steps) is shown beside it. gradfix diagnose is run on the same program set to 1 and to 1000
epochs; it stops after the first step, so the two should cost the same.
Prints the median of N runs of each and the ratios.

Then, on buggy programs from fixtures/repair (a custom loop whose loss goes through NumPy, and a
`fit` whose loss is a stateful metric), the plain run of the program (it fails or warns after its
first step) against `gradfix diagnose` (which runs the frontier search and the cut search at the
break) and `gradfix diagnose --fix --unsafe-fixes` (which re-runs the step once per candidate fix).

And (`--only python-heavy`, run first) the programs of bench/programs, whose step is mostly Python: a loss that
loops over the batch, a model whose call loops over 64 layers, a tf.function with a Python loop, a fit
with a custom train_step whose loss loops over the batch. Each against its own plain run; the buggy ones
(PYTHON_HEAVY's flag) also under `diagnose --fix --unsafe-fixes`, with the number of candidate fixes it
verified (each a re-run of the step).
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
BUGGY = [ROOT / "fixtures" / "repair" / "gan_generator_numpy_moments.py",
         ROOT / "fixtures" / "repair" / "metric_instance_in_custom_loss.py"]
PROGRAMS = ROOT / "bench" / "programs"
# program, has a missing-gradient bug (diagnose runs its frontier and cut search; --fix is measured too)
PYTHON_HEAVY = [("loss_loop_over_batch.py", True), ("layers_loop_model.py", False), ("tf_function_loop.py", False),
                ("fit_custom_train_step.py", True)]


def timed(command: list[str], cwd: Path = PROGRAM.parent, codes=(0,)) -> float:
    return timed_run(command, cwd, codes)[0]


def timed_run(command: list[str], cwd: Path, codes=(0,)) -> tuple[float, str]:
    """Seconds the command took, and what it wrote on stderr (gradfix's progress lines)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode not in codes:
        raise SystemExit(f"{' '.join(command)} exited with {done.returncode}")
    return elapsed, done.stderr


def report(runs: dict[str, list[float]], base: str) -> dict[str, float]:
    medians = {name: statistics.median(times) for name, times in runs.items()}
    print(f"{'run':<34}{'median s':>10}{'ratio':>8}   all runs")
    for name, value in medians.items():
        print(f"{name:<34}{value:>10.2f}{value / medians[base]:>8.2f}   {', '.join(f'{t:.2f}' for t in runs[name])}")
    return medians


def buggy(repeat: int) -> None:
    python = sys.executable
    for program in BUGGY:
        runs = {
            "plain run": ([python, program.name], (0, 1)),
            "diagnose": ([python, "-m", "gradfix", "diagnose", "--quiet", program.name], (1,)),
            "diagnose --fix --unsafe-fixes": ([python, "-m", "gradfix", "diagnose", "--quiet", "--fix", "--unsafe-fixes",
                                               program.name], (1,)),
        }
        results: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(repeat):
            for name, (command, codes) in runs.items():
                results[name].append(timed(command, program.parent, codes))
        print(f"\n{program.relative_to(ROOT)}")
        report(results, "plain run")


def python_heavy(repeat: int) -> None:
    python = sys.executable
    # a timeout far above the default 120 s: a slow diagnosis is the thing measured
    diagnose = [python, "-m", "gradfix", "diagnose", "--quiet", "--timeout", "900"]
    for name, buggy in PYTHON_HEAVY:
        runs = {"plain run": ([python, name], (0, 1)),
                "diagnose": (diagnose + [name], (1,) if buggy else (0,))}
        if buggy:
            runs["diagnose --fix --unsafe-fixes"] = (diagnose + ["--fix", "--unsafe-fixes", name], (1,))
        results: dict[str, list[float]] = {run: [] for run in runs}
        candidates = set()
        for _ in range(repeat):  # interleaved, so that machine load hits all alike
            for run, (command, codes) in runs.items():
                elapsed, stderr = timed_run(command, PROGRAMS, codes)
                results[run].append(elapsed)
                if "--fix" in command:
                    candidates.add(sum(line.startswith("gradfix: verifying") for line in stderr.splitlines()))
        print(f"\n{(PROGRAMS / name).relative_to(ROOT)}" + (" (buggy)" if buggy else " (clean)"))
        medians = report(results, "plain run")
        if candidates:
            tried = max(candidates)
            fix_ratio = medians["diagnose --fix --unsafe-fixes"] / medians["plain run"]
            print(f"candidate fixes verified: {tried}; --fix goal: {2 + tried:.0f}x, measured {fix_ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=["clean", "buggy", "python-heavy"], help="run one of the benchmarks")
    options = parser.parse_args()
    if options.only in (None, "python-heavy"):
        python_heavy(options.repeat)
        if options.only == "python-heavy":
            return
    if options.only != "clean":
        buggy(options.repeat)
        if options.only == "buggy":
            return
        print()
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
    medians = report(results, "plain, 1 step")
    flat = medians["diagnose, 1000 epochs"] / medians["diagnose, 1 epoch"]
    print(f"1000 epochs / 1 epoch under diagnose: {flat:.2f}")


if __name__ == "__main__":
    main()
