"""Start-up time: `gradfix --version`, `gradfix rules` and `gradfix check` of one small file, against a bare interpreter.

    python bench/bench_start.py [--repeat N] [--file PATH] [--compare CHECKOUT]

Every run is a fresh process of the same interpreter (this one), with this checkout first on ``PYTHONPATH``:

- baseline: ``python -c pass`` (the interpreter's own start, with the site packages of its environment);
- second baseline: ``python -c "import libcst"`` (what any command that parses Python pays at least);
- ``python -m gradfix --version``, ``python -m gradfix rules``, ``python -m gradfix check FILE`` (by default
  ``fixtures/repair/missing_watch_zeros_tensor.py``, 13 lines with one finding, so the check parses, analyses and
  reports).

With ``--compare``, the three gradfix commands are run from that checkout too (an earlier commit, say, unpacked with
``git archive COMMIT | tar -x -C DIR`` and ``ln -s ../transforms DIR/gradfix/transforms``), in the same rounds.

The runs are interleaved round by round (one of each, then the next round), so a change in the machine's load falls
on all of them alike; the table gives the median wall time and its ratio to each baseline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL_FILE = os.path.join(ROOT, "fixtures", "repair", "missing_watch_zeros_tensor.py")


def commands(path: str, checkout: str, label: str = "") -> list[tuple[str, list[str], str]]:
    """(label, command, the checkout on PYTHONPATH) of each run; the baselines when ``label`` is empty."""
    python = sys.executable
    runs = [] if label else [
        ("python -c pass", [python, "-c", "pass"], checkout),
        ('python -c "import libcst"', [python, "-c", "import libcst"], checkout),
    ]
    return runs + [
        (f"gradfix --version{label}", [python, "-m", "gradfix", "--version"], checkout),
        (f"gradfix rules{label}", [python, "-m", "gradfix", "rules"], checkout),
        (f"gradfix check {os.path.basename(path)}{label}", [python, "-m", "gradfix", "check", "--no-color", path], checkout),
    ]


def wall_time(command: list[str], checkout: str) -> float:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [checkout, os.environ.get("PYTHONPATH")])))
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=checkout)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):  # `check` exits 1 for its finding
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="rounds (every command once a round)")
    parser.add_argument("--file", default=SMALL_FILE, help="the small file `gradfix check` reads")
    parser.add_argument("--compare", metavar="CHECKOUT", help="another gradfix checkout to run the same commands from")
    options = parser.parse_args()
    path = os.path.abspath(options.file)
    runs = commands(path, ROOT)
    if options.compare:
        runs += commands(path, os.path.abspath(options.compare), f" ({os.path.basename(options.compare.rstrip('/'))})")
    for _, command, checkout in runs:  # one untimed round: the files in the page cache, the bytecode written
        wall_time(command, checkout)
    times: dict[str, list[float]] = {label: [] for label, _, _ in runs}
    for _ in range(options.repeat):
        for label, command, checkout in runs:
            times[label].append(wall_time(command, checkout))
    medians = {label: statistics.median(values) for label, values in times.items()}
    bare, libcst = medians[runs[0][0]], medians[runs[1][0]]
    print(f"{options.repeat} rounds, medians; {sys.executable} (Python {sys.version.split()[0]}); "
          f"checking {os.path.relpath(path)}\n")
    print(f"| {'command':<62} | median s | ratio to `python -c pass` | ratio to `import libcst` |")
    print(f"|{'-' * 64}|---------:|--------------------------:|-------------------------:|")
    for label, _, _ in runs:
        print(f"| {label:<62} | {medians[label]:8.3f} | {medians[label] / bare:25.2f} | {medians[label] / libcst:24.2f} |")


if __name__ == "__main__":
    main()
