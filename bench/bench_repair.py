"""How many repair fixtures `gradfix diagnose --fix --apply --unsafe-fixes` repairs, fixture by fixture.

    python bench/bench_repair.py [--only NAME ...] [--new-since COMMIT] [--no-intended] [--json OUT]

For each program in fixtures/repair (NAME.py with NAME.expected), in a scratch copy of the folder:
1. `gradfix diagnose --json -q --fix --apply --unsafe-fixes NAME.py` (what a user asking for every fix runs);
2. plain `gradfix diagnose --json -q NAME.py` on what that left (the written fix, or the untouched program);
3. unless --no-intended, plain `gradfix diagnose --json -q NAME.intended.py`: the hand-written fix, whose
   run says which variables the bug really took a gradient from.

Columns:
- vars: the variables the first run names in its causes are exactly those it saw without a gradient, and none of
  them still lacks one in the run of NAME.intended.py (by variable path; "-" without the intended file);
- cause: the `# cause:` of NAME.expected is among the categories the first run names;
- written: a fix was written and every fix in it was verified by a re-run;
- grads: the plain run of what was left gives every trainable variable a gradient (exit 0).
A fixture counts as repaired when written and grads both hold. The totals give the verified-fix rate over the
fixtures whose .expected has `# fix:` (all of them, and those added after --new-since COMMIT, the "new" ones),
the number of `# no-fix:` fixtures where something was written (that must stay 0), and how many of them get a
note saying what the user must decide. --save-written DIR keeps each written program as DIR/NAME.fixed.py.
Each fixture costs one to three child runs plus one re-run per candidate fix tried.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fixture_cases import RepairCase, repair_cases  # noqa: E402


@dataclass
class Outcome:
    name: str
    new: bool
    has_fix: bool
    expected_cause: str
    causes: list[str]
    vars_right: bool | None
    cause_right: bool
    written: bool
    all_gradients: bool
    seconds: float
    explained: bool = False
    note: str = ""

    @property
    def repaired(self) -> bool:
        return self.written and self.all_gradients


def diagnose(program: str, cwd: Path, *options: str) -> tuple[int, dict | None, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-m", "gradfix", "diagnose", "--json", "-q", *options, program],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    try:
        return done.returncode, json.loads(done.stdout), done.stderr
    except json.JSONDecodeError:
        return done.returncode, None, done.stderr[-500:]


def lost(report: dict | None) -> set[str]:
    """The variables the run saw without a gradient (trainable or not: a non-trainable one asked for counts)."""
    if not report:
        return set()
    return {v["path"] for v in report["diagnose"]["variables"] if not v["gradient"]}


def measure(case: RepairCase, new: bool, intended: bool, save_written: Path | None = None) -> Outcome:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_repair_") as scratch:
        folder = Path(scratch)
        for path in case.program.parent.iterdir():
            if path.is_file() and path.name.startswith(case.id + "."):
                shutil.copyfile(path, folder / path.name)
        code, first, err = diagnose(case.program.name, folder, "--fix", "--apply", "--unsafe-fixes")
        if first is None:
            return Outcome(case.id, new, case.has_fix, case.cause, [], None, False, False, False,
                           time.perf_counter() - started, f"no report (exit {code}): {err.strip()[-200:]}")
        causes = [c["category"] for c in first["diagnose"]["causes"]]
        named = {v for c in first["diagnose"]["causes"] for v in c["variables"]}
        patches = [p for p in first["fixes"] if p["applied"]]
        written = bool(patches) and all(f["verified"] is True for p in patches for f in p["fixes"])
        if patches and save_written is not None:
            save_written.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / case.program.name, save_written / f"{case.id}.fixed.py")
        after_code, _after, _ = diagnose(case.program.name, folder)
        vars_right = None
        if intended and case.intended.exists():
            _, hand, _ = diagnose(case.intended.name, folder)
            if hand is not None:
                # right: every variable without a gradient is named, and none of them still lacks one in the
                # hand-written fix (it gains a gradient there, or is no longer asked for)
                vars_right = bool(named) and named == lost(first) and not named & lost(hand)
        notes = [r["note"] for r in first["diagnose"]["repairs"] if r["note"]]
        note = "" if written or not notes else notes[0][:90]
        return Outcome(case.id, new, case.has_fix, case.cause, causes, vars_right, case.cause in causes,
                       written, after_code == 0, time.perf_counter() - started, bool(notes), note)


def added_since(commit: str) -> set[str]:
    """Fixture names whose program was added to fixtures/repair after COMMIT."""
    done = subprocess.run(["git", "diff", "--name-only", "--diff-filter=A", commit, "--", "fixtures/repair"],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    listed = {Path(line).name for line in done.stdout.split()}
    untracked = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "fixtures/repair"],
                               cwd=ROOT, capture_output=True, text=True, check=True)
    listed |= {Path(line).name for line in untracked.stdout.split()}
    return {name[:-3] for name in listed if name.endswith(".py") and not name.endswith((".fixed.py", ".intended.py"))}


def mark(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def rate(outcomes: list[Outcome]) -> str:
    fixable = [o for o in outcomes if o.has_fix]
    done = sum(o.repaired for o in fixable)
    return f"{done}/{len(fixable)} ({100 * done / len(fixable):.0f} %)" if fixable else "0/0"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="measure only these fixtures (names without .py)")
    parser.add_argument("--new-since", metavar="COMMIT", default="ff4156c",
                        help="fixtures added after this commit count as new (default: the commit before the new ones)")
    parser.add_argument("--no-intended", action="store_true", help="skip the run of NAME.intended.py (vars shows -)")
    parser.add_argument("--json", metavar="OUT", help="also write every outcome to OUT as JSON")
    parser.add_argument("--save-written", metavar="DIR", type=Path,
                        help="copy each program a fix was written to into DIR as NAME.fixed.py")
    args = parser.parse_args()

    cases = repair_cases()
    if args.only:
        unknown = set(args.only) - {c.id for c in cases}
        if unknown:
            parser.error(f"no repair fixture named {', '.join(sorted(unknown))}")
        cases = [c for c in cases if c.id in args.only]
    new = added_since(args.new_since)
    outcomes = []
    print("| fixture | new | expected | cause named | vars | cause | verified fix written | all gradients | s |")
    print("|---|---|---|---|---|---|---|---|---:|")
    for case in cases:
        o = measure(case, case.id in new, not args.no_intended, args.save_written)
        outcomes.append(o)
        print(f"| {o.name} | {mark(o.new)} | {'fix' if o.has_fix else 'no-fix'} | {o.expected_cause} | {mark(o.vars_right)} "
              f"| {mark(o.cause_right)} | {mark(o.written)} | {mark(o.all_gradients)} | {o.seconds:.0f} |", flush=True)
    print()
    fresh = [o for o in outcomes if o.new]
    print(f"verified-fix rate, # fix: fixtures: {rate(outcomes)}; new ones: {rate(fresh)}; "
          f"earlier ones: {rate([o for o in outcomes if not o.new])}")
    print(f"cause named: {sum(o.cause_right for o in outcomes)}/{len(outcomes)}; "
          f"vars right: {sum(o.vars_right is True for o in outcomes)}/{sum(o.vars_right is not None for o in outcomes)}; "
          f"written where # no-fix: {sum(o.written for o in outcomes if not o.has_fix)}; "
          f"# no-fix fixtures whose report says what to decide: {sum(o.explained for o in outcomes if not o.has_fix)}"
          f"/{sum(not o.has_fix for o in outcomes)}")
    for o in outcomes:
        if o.note:
            print(f"  {o.name}: {o.note}")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(o) | {"repaired": o.repaired} for o in outcomes], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
