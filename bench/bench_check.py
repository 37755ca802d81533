"""Static analysis speed and memory: `gradfix check` against bare LibCST parsing and `fixit lint`, on the same files.

    python bench/bench_check.py [--all] [--repeat N] [FOLDER ...]

Without folders it reads the installed TensorFlow and Keras sources: by default the files that contain
``GradientTape`` (the files a training-loop checker is for), with ``--all`` every file. Each run is a fresh
process given the same file list (copies in a scratch folder), so no run profits from another's caches or imports:

- baseline: ``libcst.parse_module`` of every file, one process; and the same in two processes, the files
  dealt out largest first (what a second core gives this work on this machine, to set ``--jobs 2`` against);
- ``gradfix check --jobs 1`` and ``--jobs 2``;
- ``fixit lint`` with its own rules, one process, when fixit is found (``--fixit PATH``, or on PATH;
  fixit pins an older click than gradfix's, so give it a virtual environment of its own:
  ``python -m venv /tmp/fixit && /tmp/fixit/bin/pip install fixit``).

The runs are interleaved round by round; the table gives the median wall time and CPU time (user and
system, of all the run's processes), their ratios to the baseline's, and the peak resident memory of the run's
largest process. The CPU ratio is the one to read on a machine other work shares.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

PARSE = """
import sys, libcst
for path in open(sys.argv[1]).read().split("\\n"):
    if path:
        try:
            libcst.parse_module(open(path, "rb").read())
        except Exception:
            pass
"""

# the same parse in two processes, the files dealt out largest first: what a second core gives this work here
PARSE_TWO = """
import os, subprocess, sys
files = sorted((p for p in open(sys.argv[1]).read().split("\\n") if p), key=os.path.getsize, reverse=True)
halves, sizes = ([], []), [0, 0]
for path in files:
    side = sizes.index(min(sizes))
    halves[side].append(path)
    sizes[side] += os.path.getsize(path)
parse = "import sys, libcst\\nfor p in sys.argv[1:]:\\n    try:\\n        libcst.parse_module(open(p, 'rb').read())\\n    except Exception:\\n        pass\\n"
children = [subprocess.Popen([sys.executable, "-c", parse, *half]) for half in halves]
sys.exit(max(child.wait() for child in children))
"""

# runs one command and reports its wall time, the peak RSS of its largest process and the CPU time of all its processes
MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
used = resource.getrusage(resource.RUSAGE_CHILDREN)
print(time.perf_counter() - start, used.ru_maxrss, code, used.ru_utime + used.ru_stime)
"""


def default_folders() -> list[str]:
    folders = []
    for package in ("tensorflow", "keras"):
        spec = importlib.util.find_spec(package)
        if spec and spec.submodule_search_locations:
            folders.extend(spec.submodule_search_locations)
    return folders


def python_files(folders: list[str], every: bool) -> list[str]:
    found = []
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(root, name)
                if not name.endswith(".py") or not os.path.getsize(path):
                    continue
                if every or b"GradientTape" in open(path, "rb").read():
                    found.append(path)
    return found


def lines_given_to_libcst(files: list[str]) -> int:
    """The lines of ``files`` that ``gradfix check`` parses with LibCST, counted in this process (not timed)."""
    from gradfix.engine import lines_analysed
    from gradfix.source import SourceError, read_source

    total = 0
    for path in files:
        try:
            total += lines_analysed(read_source(path))
        except SourceError:
            pass
    return total


def measure(command: list[str]) -> tuple[float, int, int, float]:
    output = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, check=True).stdout
    seconds, kilobytes, code, cpu = output.split()
    return float(seconds), int(kilobytes), int(code), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*")
    parser.add_argument("--all", action="store_true", help="every .py file, not only those with GradientTape")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--fixit", help="the fixit command (fixit pins an older click: keep it in a venv of its own)")
    options = parser.parse_args()
    folders = options.folders or default_folders()
    # every tool reads the same copies, outside any virtual environment (which fixit passes over)
    scratch = tempfile.mkdtemp(prefix="gradfix-bench-check-")
    files = []
    for path in python_files(folders, options.all):
        copy = os.path.join(scratch, os.path.relpath(path, os.path.dirname(os.path.commonpath(folders))))
        os.makedirs(os.path.dirname(copy), exist_ok=True)
        shutil.copyfile(path, copy)
        files.append(copy)
    lines = sum(open(path, "rb").read().count(b"\n") for path in files)
    analysed = lines_given_to_libcst(files)
    listing = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
    listing.write("\n".join(files))
    listing.close()
    gradfix = [sys.executable, "-m", "gradfix", "check", "--format", "json"]
    runs = {
        "baseline: LibCST parse, 1 process": [sys.executable, "-c", PARSE, listing.name],
        "baseline: LibCST parse, 2 processes": [sys.executable, "-c", PARSE_TWO, listing.name],
        "gradfix check --jobs 1": [*gradfix, "--jobs", "1", *files],
        "gradfix check --jobs 2": [*gradfix, "--jobs", "2", *files],
    }
    fixit = options.fixit or shutil.which("fixit")
    if fixit:
        runs["fixit lint, 1 process"] = [fixit, "lint", *files]
    results: dict[str, list[tuple[float, int, int, float]]] = {name: [] for name in runs}
    for _ in range(options.repeat):
        for name, command in runs.items():
            results[name].append(measure(command))
    os.unlink(listing.name)
    shutil.rmtree(scratch)
    base = statistics.median(seconds for seconds, *_ in results["baseline: LibCST parse, 1 process"])
    base_cpu = statistics.median(m[3] for m in results["baseline: LibCST parse, 1 process"])
    single = statistics.median(seconds for seconds, *_ in results["gradfix check --jobs 1"])
    print(f"{len(files)} files, {lines} lines, in {', '.join(os.path.relpath(f) for f in folders)}; "
          f"medians of {options.repeat}")
    print(f"gradfix gives LibCST {analysed} of those lines ({analysed / lines:.0%}): the regions some rule has a marker in")
    print()
    print("| run | seconds | ratio to baseline | CPU seconds | CPU ratio to baseline | peak RSS |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, measured in results.items():
        seconds = statistics.median(m[0] for m in measured)
        cpu = statistics.median(m[3] for m in measured)
        peak = max(m[1] for m in measured)
        print(f"| {name} | {seconds:.2f} | {seconds / base:.2f} | {cpu:.2f} | {cpu / base_cpu:.2f} | {peak / 1024:.0f} MB |")
    print()
    print(f"--jobs 1 / --jobs 2: {single / statistics.median(m[0] for m in results['gradfix check --jobs 2']):.2f}x; "
          f"the same parse in 1 process / in 2: {base / statistics.median(m[0] for m in results['baseline: LibCST parse, 2 processes']):.2f}x")
    if fixit:
        print(f"fixit lint / gradfix check --jobs 1: "
              f"{statistics.median(m[0] for m in results['fixit lint, 1 process']) / single:.1f}x")


if __name__ == "__main__":
    main()
