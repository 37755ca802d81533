"""What the child's line tracer costs per line of the user's Python, against the same code run plainly, in one run.

    python bench/bench_tracer.py [--lines N] [--repeat R] [--compare CHECKOUT]

A loop of plain Python arithmetic (no TensorFlow op: the tracer's own cost, nothing else), about N line
events, run three ways in this process, interleaved round by round:

- plain (no tracer): the baseline;
- under the child's tracer (``tracer.global_trace``, as ``entry.main`` installs it) with no tape alive: what
  every line of the user's code outside a ``GradientTape`` costs;
- the same with a tape alive: each statement's values recorded for the frontier search (the locals before
  and after it, the values it read and bound).

With ``--compare``, the two tracer runs are made with that checkout's child too (an earlier commit, say, unpacked
with ``git archive COMMIT | tar -x -C DIR``), in the same rounds.

Prints the median of R runs of each, its ratio to plain and the cost per line event in microseconds. Run it
with each interpreter to compare Python versions; it needs neither TensorFlow nor NumPy (the values traced
are Python floats, which the tracer records as it records tensors).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHILD = os.path.join(ROOT, "gradfix", "runtime", "child")


def load_child(folder=CHILD, name="_gradfix_child"):
    """The child package, loaded by path under a name of its own as ``child/__main__.py`` loads it."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(folder, "__init__.py"),
                                                  submodule_search_locations=[folder])
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    spec.loader.exec_module(package)
    return (importlib.import_module(name + ".tracer"), importlib.import_module(name + ".state"))


def python_loss(values):
    """A loss that loops over the batch in Python: four line events per item."""
    total = 0.0
    for value in values:
        error = value - 0.5
        squared = error * error
        total = total + squared
    return total


def run(values, trace, tape_alive, tracer, state) -> float:
    # a child whose state is in parts (``STATE.tapes``, ``STATE.trace``) or, in an earlier checkout, in one object
    tapes = getattr(state.STATE, "tapes", state.STATE)
    lines = getattr(state.STATE, "trace", state.STATE)
    tapes.live_tapes = {1: 0} if tape_alive else {}
    lines.events, lines.objects, lines.object_index, lines.pending = [], [], {}, {}
    started = time.perf_counter()
    if trace:
        sys.settrace(tracer.global_trace)
    try:
        python_loss(values)
    finally:
        sys.settrace(None)
    tapes.live_tapes = {}
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=400_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--compare", metavar="CHECKOUT", help="another checkout whose child is measured too")
    options = parser.parse_args()
    children = {"": load_child()}
    if options.compare:
        children[f" ({options.compare})"] = load_child(os.path.join(options.compare, "gradfix", "runtime", "child"),
                                                       "_gradfix_child_compared")
    values = [float(i % 97) / 97 for i in range(options.lines // 4)]
    ways = {"plain": (False, False, "")}
    for label in children:
        ways.update({f"tracer, no tape{label}": (True, False, label), f"tracer, tape alive{label}": (True, True, label)})
    results: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(options.repeat):
        for name, (trace, tape_alive, label) in ways.items():
            results[name].append(run(values, trace, tape_alive, *children[label]))
    medians = {name: statistics.median(times) for name, times in results.items()}
    lines = 4 * len(values)
    print(f"Python {sys.version.split()[0]}, {lines} line events")
    width = max(len(name) for name in medians) + 2
    print(f"{'run':<{width}}{'median s':>10}{'ratio':>8}{'us/line':>9}")
    for name, value in medians.items():
        extra = (value - medians["plain"]) / lines * 1e6
        print(f"{name:<{width}}{value:>10.3f}{value / medians['plain']:>8.1f}{extra:>9.2f}")


if __name__ == "__main__":
    main()
