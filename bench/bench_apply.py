"""`gradfix apply` on large patches, against `patch -p1` and `git apply` doing the same work.

    python bench/bench_apply.py [--repeat 1] [--timeout 600] [--scale 1.0]

Two patches, each applied to a fresh copy of its project by each tool in turn (interleaved round by round):

- **many lines**: one module of 150,000 short statements, every one changed: a 5 MB patch of
  300,000 removed and added lines in one hunk;
- **many hunks**: a 1.5 MB module of 80,000 lines, every eighth line changed: 10,000 hunks.

The figures are each command's time and peak memory (its own maximum resident set, from wait4),
and gradfix's time as a ratio to `patch -p1`'s in the same round. `--scale 0.5` halves both
patches (a check that the cost grows in proportion). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_pathological import run  # noqa: E402 - the shared runner: timeout, process group, peak memory


def many_lines(scale: float) -> tuple[str, str, str]:
    """A module and a patch that changes every one of its statements: (path, old text, new text)."""
    count = int(150_000 * scale)
    old = "".join(f"v{i} = {i}\n" for i in range(count))
    new = "".join(f"v{i} = {i} + 1\n" for i in range(count))
    return "big.py", old, new


def many_hunks(scale: float) -> tuple[str, str, str]:
    count = int(80_000 * scale)
    old_lines = [f"v_{i:06d} = f({i}, 1.0)\n" for i in range(count)]
    new_lines = [line.replace("1.0", "2.0") if i % 8 == 0 else line for i, line in enumerate(old_lines)]
    return "hunks.py", "".join(old_lines), "".join(new_lines)


def make_patch(folder: pathlib.Path, name: str, old: str, new: str) -> str:
    """The patch `git diff` makes between the two texts (a/ and b/ prefixes, as `gradfix fix --diff` writes)."""
    with tempfile.TemporaryDirectory() as scratch:
        a, b = pathlib.Path(scratch, "a"), pathlib.Path(scratch, "b")
        a.mkdir()
        b.mkdir()
        (a / name).write_text(old)
        (b / name).write_text(new)
        done = subprocess.run(["git", "diff", "--no-index", "--no-prefix", "a", "b"], cwd=scratch,
                              capture_output=True, text=True)
        return done.stdout


def project(base: pathlib.Path, name: str, old: str) -> pathlib.Path:
    folder = pathlib.Path(tempfile.mkdtemp(dir=base))
    (folder / name).write_text(old)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--scale", type=float, default=1.0)
    options = parser.parse_args()
    base = pathlib.Path(tempfile.mkdtemp(prefix="gradfix-bench-apply-"))
    rows = []
    try:
        for label, make in (("many lines", many_lines), ("many hunks", many_hunks)):
            name, old, new = make(options.scale)
            patch_path = base / f"{name}.patch"
            patch_text = make_patch(base, name, old, new)
            patch_path.write_text(patch_text)
            tools = {
                "patch -p1": lambda folder: run(["patch", "-p1", "-s", "-i", str(patch_path)], options.timeout, cwd=folder),
                "git apply": lambda folder: run(["git", "apply", str(patch_path)], options.timeout, cwd=folder),
                "gradfix apply": lambda folder: run([sys.executable, "-m", "gradfix", "apply", str(patch_path)],
                                                    options.timeout, cwd=folder),
            }
            times: dict[str, list[float]] = {tool: [] for tool in tools}
            peaks: dict[str, list[float]] = {tool: [] for tool in tools}
            ratios: list[float] = []
            for _ in range(options.repeat):
                for tool, apply in tools.items():
                    folder = project(base, name, old)
                    result = apply(folder)
                    ok = result.exit_code == 0 and (folder / name).read_text() == new
                    if not ok:
                        print(f"{label}: {tool} failed (exit {result.exit_code}): {result.stderr[-300:]}", file=sys.stderr)
                    times[tool].append(result.seconds if ok else float("nan"))
                    peaks[tool].append(result.peak_mb)
                    shutil.rmtree(folder)
                ratios.append(times["gradfix apply"][-1] / times["patch -p1"][-1])
            size = len(patch_text.encode()) / 1024 / 1024
            file_size = len(old.encode()) / 1024 / 1024
            lines = patch_text.count("\n")
            hunks = patch_text.count("\n@@ ")
            for tool in tools:
                ratio = statistics.median(ratios) if tool == "gradfix apply" else (
                    1.0 if tool == "patch -p1" else statistics.median(
                        t / p for t, p in zip(times[tool], times["patch -p1"])))
                rows.append((f"{label}: {size:.1f} MB, {lines:,} lines, {hunks:,} hunk{'s' * (hunks != 1)} "
                             f"on a {file_size:.1f} MB file", tool,
                             statistics.median(times[tool]), max(peaks[tool]), ratio))
    finally:
        shutil.rmtree(base)
    print("| patch | tool | median s | peak MB | time / patch -p1 |")
    print("|---|---|---:|---:|---:|")
    last = None
    for patch, tool, seconds, peak, ratio in rows:
        print(f"| {patch if patch != last else ''} | {tool} | {seconds:.2f} | {peak:.0f} | {ratio:.2f} |")
        last = patch


if __name__ == "__main__":
    main()
