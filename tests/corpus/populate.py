"""Copy the corpus's files out of local git copies of their repositories, checking each against the manifest.

    python tests/corpus/populate.py --keras-io GIT_DIR --tensorflow-docs GIT_DIR

GIT_DIR is a git directory (bare or ``.git``) holding the commit the manifest names for that source; files
are read with ``git show COMMIT:PATH`` and written under ``tests/corpus/SOURCE/PATH``. A file whose bytes do
not match the manifest's sha256 is refused (exit 2) and nothing more is written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import subprocess
import sys

CORPUS = pathlib.Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keras-io", dest="keras-io", metavar="GIT_DIR")
    parser.add_argument("--tensorflow-docs", dest="tensorflow-docs", metavar="GIT_DIR")
    args = vars(parser.parse_args(argv))
    manifest = json.loads((CORPUS / "manifest.json").read_text())
    for source in manifest["sources"]:
        git_dir = args.get(source["name"])
        if not git_dir:
            continue
        for entry in source["files"]:
            data = subprocess.run(["git", "--git-dir", git_dir, "show", f"{source['commit']}:{entry['path']}"],
                                  capture_output=True, check=True).stdout
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                print(f"{source['name']}/{entry['path']}: not the file the manifest names (sha256 differs)",
                      file=sys.stderr)
                return 2
            target = CORPUS / source["name"] / entry["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
