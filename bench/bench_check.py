"""Static analysis speed: `gradfix check` over a large tree against bare LibCST parsing of the same files.

    python bench/bench_check.py [FOLDER ...]

Without folders it reads the installed TensorFlow and Keras sources. It prints the file count, the
baseline (parse every file with LibCST, nothing else, in one process), gradfix's time in one process and
in one per core, and their ratios to the baseline, all from one run.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time

import libcst as cst

from gradfix.engine import check_paths


def default_folders() -> list[str]:
    folders = []
    for package in ("tensorflow", "keras"):
        spec = importlib.util.find_spec(package)
        if spec and spec.submodule_search_locations:
            folders.extend(spec.submodule_search_locations)
    return folders


def python_files(folders: list[str]) -> list[str]:
    """Every .py file under the folders, found with os.walk: the same list for the baseline and for gradfix,
    named one by one (a folder inside a git-ignored virtual environment would otherwise be passed over)."""
    found = []
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            found.extend(os.path.join(root, name) for name in sorted(files) if name.endswith(".py"))
    return found


def baseline(files: list[str]) -> float:
    start = time.perf_counter()
    for path in files:
        with open(path, "rb") as handle:
            try:
                cst.parse_module(handle.read())
            except Exception:
                pass
    return time.perf_counter() - start


def gradfix_check(files: list[str], jobs: int) -> tuple[float, int, int]:
    start = time.perf_counter()
    findings = errors = 0
    for result in check_paths(files, jobs=jobs):
        findings += len(result.findings)
        errors += result.error is not None
    return time.perf_counter() - start, findings, errors


def main(argv: list[str]) -> None:
    folders = argv or default_folders()
    files = [path for path in python_files(folders) if os.path.getsize(path)]  # empty files are an error when named
    jobs = os.cpu_count() or 1
    parsed = baseline(files)
    single, findings, errors = gradfix_check(files, jobs=1)
    parallel, _, _ = gradfix_check(files, jobs=jobs)
    print(f"files: {len(files)} in {', '.join(os.path.relpath(f) for f in folders)}")
    print(f"baseline, LibCST parse of every file, one process: {parsed:.2f} s")
    print(f"gradfix check, one process: {single:.2f} s ({findings} findings, {errors} files not read); ratio {single / parsed:.3f}")
    print(f"gradfix check, {jobs} processes: {parallel:.2f} s; ratio {parallel / parsed:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
