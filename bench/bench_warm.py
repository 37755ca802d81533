"""Warm starts against cold ones, in one run.

    python bench/bench_warm.py [--runs N] [--repeat R]

1. N runs of each of two fixtures through ``run_step`` in this process, a cold run
   (``GRADFIX_WARM=0``: a fresh interpreter importing TensorFlow) and a warm run (forked from this
   process's warm server) in turn. The first warm run of the first fixture starts the server and waits
   for its import; it is shown apart, and counted in that fixture's total.
2. ``gradfix diagnose --quiet --fix --unsafe-fixes`` on a repair fixture whose repair re-runs the step
   for several candidate fixes, warm against ``GRADFIX_WARM=0``, in turn, R times each; each command
   is a new gradfix process, so each warm one starts its own server.

Prints the medians and the ratios warm / cold.
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
FIXTURES = [ROOT / "fixtures" / "seed" / "example1.py", ROOT / "fixtures" / "repair" / "gan_generator_numpy_moments.py"]
REPAIRED = ROOT / "fixtures" / "repair" / "assign_cnn_output_to_variables.py"  # 1 run + 5 verification runs


def _env(start: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name != "GRADFIX_WARM"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if start == "cold":
        env["GRADFIX_WARM"] = "0"
    return env


def runs(program: Path, count: int) -> dict[str, list[float]]:
    from gradfix.runtime.runner import run_step

    times: dict[str, list[float]] = {"cold": [], "warm": []}
    for _ in range(count):
        for start in ("cold", "warm"):
            began = time.perf_counter()
            facts = run_step(program.name, cwd=str(program.parent), env=_env(start))
            times[start].append(time.perf_counter() - began)
            if facts.start != start or facts.status != "ok":
                raise SystemExit(f"{program.name}: a {start} run started {facts.start} ({facts.start_reason}), "
                                 f"status {facts.status}")
    return times


def diagnose_fix(repeat: int) -> dict[str, list[float]]:
    command = [sys.executable, "-m", "gradfix", "diagnose", "--quiet", "--fix", "--unsafe-fixes", REPAIRED.name]
    times: dict[str, list[float]] = {"warm": [], "cold": []}
    for _ in range(repeat):
        for start in ("warm", "cold"):
            began = time.perf_counter()
            done = subprocess.run(command, cwd=REPAIRED.parent, env=_env(start), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
            times[start].append(time.perf_counter() - began)
            if done.returncode not in (0, 1):
                raise SystemExit(f"{' '.join(command)} exited with {done.returncode}")
    return times


def _row(name: str, values: list[float], base: float | None) -> str:
    median = statistics.median(values)
    ratio = f"{median / base:.2f}" if base else "1.00"
    return f"{name:<44}{median:>9.2f}{ratio:>8}   {', '.join(f'{v:.2f}' for v in values)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs of each fixture, each way (default 5)")
    parser.add_argument("--repeat", type=int, default=3, help="diagnose --fix commands, each way (default 3)")
    options = parser.parse_args()
    print(f"{'run':<44}{'median s':>9}{'ratio':>8}   all")
    from gradfix.runtime import warm

    for program in FIXTURES:
        starting = not warm.pool.pids()
        times = runs(program, options.runs)
        cold = statistics.median(times["cold"])
        first, later = times["warm"][0], times["warm"][1:]
        print(f"\n{program.relative_to(ROOT)}")
        print(_row("cold run", times["cold"], None))
        print(_row("first warm run" + (" (the server starts)" if starting else ""), [first], cold))
        if later:
            print(_row("later warm runs", later, cold))
        print(f"{f'all {options.runs} runs, s':<44}{sum(times['warm']):>9.2f}"
              f"{sum(times['warm']) / sum(times['cold']):>8.2f}   (cold: {sum(times['cold']):.2f})")
    times = diagnose_fix(options.repeat)
    cold = statistics.median(times["cold"])
    print(f"\ngradfix diagnose --fix --unsafe-fixes {REPAIRED.relative_to(ROOT)}")
    print(_row("GRADFIX_WARM=0", times["cold"], None))
    print(_row("warm", times["warm"], cold))


if __name__ == "__main__":
    main()
