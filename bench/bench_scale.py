"""Peak memory and time of `gradfix check` over a generated tree of many files.

    python bench/bench_scale.py [--files 3000] [--jobs 1]

Half the files hold a training loop with one finding (GF006), half are plain modules;
the tree also holds a venv/ and a .gitignore'd folder that must be passed over.
Peak memory is the largest resident set of gradfix's process (and its workers).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
TRAINING = (ROOT / "fixtures" / "all-variables-as-sources" / "batchnorm_custom_loop.py").read_text()
PLAIN = "import os\n\n\ndef helper(x):\n    return os.path.join(x, 'a')\n" * 20


def build(root: pathlib.Path, files: int) -> None:
    for index in range(files):
        folder = root / f"pkg{index // 100}"
        folder.mkdir(exist_ok=True)
        (folder / f"m{index}.py").write_text(TRAINING if index % 2 else PLAIN)
    for skipped in ("venv", "ignored"):
        (root / skipped).mkdir()
        for index in range(200):
            (root / skipped / f"s{index}.py").write_text(TRAINING)
    (root / "venv" / "pyvenv.cfg").write_text("home = /usr\n")
    (root / ".gitignore").write_text("ignored/\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--jobs", type=int, default=1)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = pathlib.Path(scratch)
        build(root, options.files)
        started = time.monotonic()
        completed = subprocess.run([sys.executable, "-m", "gradfix", "check", "--no-progress", "--format", "json",
                                    "--jobs", str(options.jobs), str(root)], capture_output=True, text=True)
        elapsed = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    findings = [f for f in json.loads(completed.stdout)["findings"] if f["rule"] == "GF006"]
    with_finding = len({finding["span"]["path"] for finding in findings})
    print(f"files={options.files} jobs={options.jobs} exit={completed.returncode} files_with_a_finding={with_finding} "
          f"seconds={elapsed:.1f} peak_rss_mb={peak:.0f}")


if __name__ == "__main__":
    main()
