"""Record a program's run once, into ``NAME.facts.json`` beside it: what the run saw, readable without TensorFlow.

    python -m gradfix.runtime.record_facts [--candidates] fixtures/repair [NAME ...]

Each repair fixture's facts are kept so that what the repair makes of them (the causes, the expression the
run pinned each cut to, the candidate fixes) is tested in the fast lane, without running TensorFlow. The file
also holds the first candidate of each cause as the recording made it: a change to the repairs that changes
it shows in that test, and the recording is made again with this command; ``--candidates`` keeps the recorded
run and makes only the first candidates again (no TensorFlow needed), for a change to the repairs alone.

Paths are written relative to the program's folder (and gradfix's own, the interpreter's libraries under
placeholders), so that the file reads the same wherever the project is checked out.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
import sysconfig
from pathlib import Path
from typing import Any, Iterable

from gradfix.runtime.facts import RunFacts

RECORD_FORMAT = 1
SUFFIX = ".facts.json"
# what changes from run to run without saying anything about the program
UNSTABLE = ("elapsed", "executable")


def facts_path(program: Path) -> Path:
    return program.with_name(program.stem + SUFFIX)


def _places(folder: Path) -> list[tuple[str, str]]:
    """(absolute prefix, placeholder), longest first: the program's folder becomes relative paths."""
    import gradfix

    places = {str(folder.resolve()) + os.sep: "", str(Path(gradfix.__file__).resolve().parent) + os.sep: "<gradfix>/"}
    for key in ("purelib", "platlib", "stdlib", "platstdlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            places.setdefault(str(Path(path).resolve()) + os.sep, f"<{key}>/")
    for path in sys.path:  # libraries a .pth file adds (TensorFlow may live in another environment)
        if path.rstrip(os.sep).endswith(("site-packages", "dist-packages")):
            places.setdefault(str(Path(path).resolve()) + os.sep, "<site-packages>/")
    return sorted(places.items(), key=lambda item: -len(item[0]))


def _portable(value: Any, places: list[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        if (value + os.sep, "") in places:
            return "."  # the folder itself (the child names a file it could not tell by the working folder)
        for prefix, placeholder in places:
            value = value.replace(prefix, placeholder)
        return value
    if isinstance(value, list):
        return [_portable(item, places) for item in value]
    if isinstance(value, dict):
        return {key: _portable(item, places) for key, item in value.items() if key not in UNSTABLE}
    return value


def _rooted(value: Any, folder: Path) -> Any:
    """The recorded facts with the program's files as absolute paths in ``folder`` again."""
    if isinstance(value, list):
        return [_rooted(item, folder) for item in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "file" and isinstance(item, str) and item and not item.startswith("<") and not os.path.isabs(item):
                out[key] = str(folder / item)
            else:
                out[key] = _rooted(item, folder)
        return out
    return value


def first_candidates(facts: RunFacts, folder: Path) -> list[dict[str, Any] | None]:
    """For each cause of the run, in order: its first candidate fix (rule, description, applicability, diff)."""
    from gradfix.diagnose import diagnose
    from gradfix.repair import candidates

    diagnosis = diagnose(facts)
    found: list[dict[str, Any] | None] = []
    for index, cause in enumerate(diagnosis.causes):
        options = candidates(diagnosis, index)
        if not options:
            found.append(None)
            continue
        first = options[0]
        old = Path(first.path).read_text(encoding="utf-8")
        name = os.path.relpath(first.path, folder)
        diff = "".join(difflib.unified_diff(old.splitlines(True), first.new_text.splitlines(True), name, name))
        found.append({"category": cause.category, "rule": first.rule, "description": first.description,
                      "applicability": first.applicability.value, "diff": diff})
    return found


def record(program: Path, timeout: float = 300.0) -> dict[str, Any]:
    """Run ``program``'s first step (from its folder, as the repair tests do) and return its record."""
    from gradfix.runtime.runner import run_step

    program = program.resolve()
    facts = run_step(program.name, cwd=str(program.parent), timeout=timeout)
    places = _places(program.parent)
    return {
        "format": RECORD_FORMAT,
        "program": program.name,
        "facts": _portable(facts.raw, places),
        "first_candidates": _portable(first_candidates(facts, program.parent), places),
    }


def load(path: Path) -> tuple[RunFacts, dict[str, Any]]:
    """The recorded run beside a program, as the facts a run gives, and the whole record."""
    path = path.resolve()
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != RECORD_FORMAT:
        raise ValueError(f"{path}: a record of format {data.get('format')}, this gradfix reads {RECORD_FORMAT}")
    return facts_of(data, path.parent), data


def facts_of(data: dict[str, Any], folder: Path) -> RunFacts:
    """A record's facts, its program's files in ``folder``."""
    return RunFacts.from_dict(_rooted(data["facts"], folder), target=str(folder / data["program"]))


def write(program: Path, data: dict[str, Any]) -> Path:
    target = facts_path(program)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(temporary, target)
    return target


def programs(folder: Path, names: Iterable[str] = ()) -> list[Path]:
    """The fixture programs of ``folder`` (those with a NAME.expected), or the ones named."""
    wanted = {Path(name).stem for name in names}
    return [path for path in sorted(folder.glob("*.py"))
            if not path.name.endswith((".fixed.py", ".intended.py")) and path.with_suffix(".expected").exists()
            and (not wanted or path.stem in wanted)]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    candidates_only = "--candidates" in argv
    argv = [arg for arg in argv if arg != "--candidates"]
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[2].strip())
        return 0 if argv else 2
    folder = Path(argv[0])
    if not folder.is_dir():
        print(f"gradfix: {folder}: not a folder", file=sys.stderr)
        return 2
    chosen = programs(folder, argv[1:])
    for program in chosen:
        if candidates_only:
            facts, data = load(facts_path(program))
            data["first_candidates"] = _portable(first_candidates(facts, program.parent.resolve()), _places(program.parent.resolve()))
            print(f"{write(program, data)}: candidates made again")
            continue
        data = record(program)
        status = data["facts"].get("status")
        print(f"{write(program, data)}: {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
