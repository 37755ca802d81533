"""How many respelled repair fixtures `gradfix diagnose --fix --apply --unsafe-fixes` repairs.

    python bench/bench_respellings.py [--out results.jsonl] [--jobs N] [--kinds K ...] [--fixtures F ...]
    python bench/bench_respellings.py --summary results.jsonl [more.jsonl ...]

Takes every fixture in fixtures/repair whose ``.expected`` says ``# fix:`` (a general fix exists), and
every respelling of it that tests/respell.py makes (API spelling, import form, operators, where the buggy
expression sits), and runs the repair on each in a scratch folder, as a user would. The originals run
too, as the baseline of the same run.

For each program it records whether the run showed the same bug as the original (the same variables
without a gradient: a respelling that does not is a generator bug, reported apart and left out of the
rate) and whether a verified fix was written whose verification run gave every variable a gradient.
Results go to a JSON-lines file as they come (``--resume`` skips what it holds), so a long run can be
summarised part way: ``--summary`` prints the verified-fix rate per fixture and per kind of respelling.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fixture_cases import RepairCase  # noqa: E402
from respell import KINDS, fixable_cases, variants  # noqa: E402

ORIGINAL = "original"


@dataclass(frozen=True)
class Job:
    case: RepairCase
    kind: str
    source: str

    @property
    def id(self) -> str:
        return f"{self.case.id}[{self.kind}]"


def repair(job: Job, timeout: float) -> dict:
    """Runs the repair on the program in a scratch folder; the facts the summary needs."""
    with tempfile.TemporaryDirectory(prefix="respelled-") as folder:
        program = Path(folder) / job.case.program.name
        program.write_text(job.source)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        started = time.perf_counter()
        try:
            done = subprocess.run([sys.executable, "-m", "gradfix", "diagnose", "--json", "-q", "--fix", "--apply",
                                   "--unsafe-fixes", program.name], cwd=folder, env=env, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"id": job.id, "fixture": job.case.id, "kind": job.kind, "outcome": "timeout",
                    "seconds": round(time.perf_counter() - started, 1)}
        seconds = round(time.perf_counter() - started, 1)
        written = program.read_text() != job.source
    record = {"id": job.id, "fixture": job.case.id, "kind": job.kind, "exit": done.returncode, "seconds": seconds}
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        return record | {"outcome": "no-report", "stderr": done.stderr[-1500:]}
    diagnose = report.get("diagnose") or {}
    gradients = diagnose.get("gradients") or {}
    applied = [patch for patch in report.get("fixes", []) if patch.get("applied")]
    verified = bool(applied) and all(fix.get("verified") is True for patch in applied for fix in patch["fixes"])
    after_all = _every_variable_after(diagnose, report.get("verification"))
    record |= {
        "status": diagnose.get("status"),
        "causes": sorted({c["category"] for c in diagnose.get("causes", [])}),
        "without_gradient": sorted(name for name, has in gradients.items() if not has),
        "written": written,
        "verified": verified,
        "every_variable_after": after_all,
        "notes": [r.get("note") for r in diagnose.get("repairs", []) if r.get("note")][:3],
    }
    record["outcome"] = "fixed" if written and verified and after_all else "not-fixed"
    return record


def _every_variable_after(diagnose: dict, merged: dict | None) -> bool:
    """The verification run of what was written gave every variable a gradient: the run of all the fixes
    together where there were several (each fix's own run covers only its own variables), else the one fix's."""
    chosen = [r["attempts"][r["chosen"]] for r in diagnose.get("repairs", []) if r.get("chosen") is not None]
    afters = ([merged.get("after") or {}] if merged else
              [a.get("verification", {}).get("after") or {} for a in chosen])
    return bool(afters) and all(after and all(after.values()) for after in afters)


def jobs(kinds: list[str] | None, fixtures: list[str] | None) -> list[Job]:
    """The originals first, then the variants one of each kind in turn (so that a run stopped part way
    has measured every kind on some fixtures)."""
    cases = [c for c in fixable_cases() if not fixtures or c.id in fixtures]
    out = [Job(case, ORIGINAL, case.program.read_text()) for case in cases] if not kinds or ORIGINAL in kinds else []
    by_kind = collections.defaultdict(list)
    for variant in variants(cases):
        by_kind[variant.kind].append(Job(variant.case, variant.kind, variant.source))
    queues = [by_kind[kind] for kind in KINDS if not kinds or kind in kinds]
    for turn in range(max(map(len, queues), default=0)):
        out += [queue[turn] for queue in queues if turn < len(queue)]
    return out


def summary(*paths: Path) -> None:
    records = [json.loads(line) for path in paths for line in path.read_text().splitlines() if line.strip()]
    originals = {r["fixture"]: r for r in records if r["kind"] == ORIGINAL}
    variants_run = [r for r in records if r["kind"] != ORIGINAL]
    generator_bugs = []
    counted = []
    for r in variants_run:
        base = originals.get(r["fixture"])
        if base is None:
            continue
        if r.get("without_gradient") != base.get("without_gradient"):
            generator_bugs.append(r)
        else:
            counted.append(r)

    def rate(rows: list[dict]) -> str:
        fixed = sum(r["outcome"] == "fixed" for r in rows)
        return f"{fixed}/{len(rows)} ({100 * fixed / len(rows):.0f} %)" if rows else "-"

    print(f"originals: {rate(list(originals.values()))} repaired with a verified fix")
    print(f"variants with the original's bug: {rate(counted)} repaired with a verified fix")
    print(f"variants that do not show the original's bug (generator bugs, not counted): {len(generator_bugs)}")
    for r in generator_bugs:
        print(f"  {r['id']}: {r.get('outcome')} status={r.get('status')} without gradient {r.get('without_gradient')}"
              f" (original: {originals[r['fixture']].get('without_gradient')})")
    print("\nper kind of respelling")
    for kind in KINDS:
        rows = [r for r in counted if r["kind"] == kind]
        if rows:
            print(f"  {kind:<28}{rate(rows):>16}")
    print("\nper fixture (original, then its variants)")
    for fixture, base in sorted(originals.items()):
        rows = [r for r in counted if r["fixture"] == fixture]
        failed = ", ".join(r["kind"] for r in rows if r["outcome"] != "fixed")
        print(f"  {fixture:<44}{base['outcome']:>10}{rate(rows):>16}   not fixed: {failed or '-'}")
    seconds = sum(r.get("seconds", 0) for r in records)
    print(f"\n{len(records)} runs, {seconds / 60:.0f} min of wall time in the repair runs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("respellings.jsonl"))
    parser.add_argument("--resume", action="store_true", help="skip the programs the output file already holds")
    parser.add_argument("--jobs", type=int, default=1, help="repairs run at once (each is one child process set)")
    parser.add_argument("--kinds", nargs="*", help=f"only these kinds ({ORIGINAL}, {', '.join(KINDS)})")
    parser.add_argument("--fixtures", nargs="*", help="only these fixtures (file stems)")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--summary", type=Path, nargs="+", help="print the summary of results files and stop")
    options = parser.parse_args()
    if options.summary:
        summary(*options.summary)
        return
    done = set()
    if options.resume and options.out.exists():
        done = {json.loads(line)["id"] for line in options.out.read_text().splitlines() if line.strip()}
    todo = [job for job in jobs(options.kinds, options.fixtures) if job.id not in done]
    print(f"{len(todo)} programs to repair", flush=True)
    with options.out.open("a") as out, ThreadPoolExecutor(options.jobs) as pool:
        for record in pool.map(lambda job: repair(job, options.timeout), todo):
            out.write(json.dumps(record) + "\n")
            out.flush()
            print(f"{record['id']}: {record['outcome']} ({record.get('seconds')} s)", flush=True)
    summary(options.out)


if __name__ == "__main__":
    main()
