"""Repair what a run found: candidate fixes for each cause, each verified alone by a re-run.

    cause ──operators' rewrites + confirmed static fixes──▶ candidates ──apply to a copy, re-run──▶ verified?

A candidate is *verified* only when the patched copy runs its step through the optimizer's
update (or, for a program with no optimizer, past its gradient call) without a new exception,
every variable the fix was for now gets a gradient, none loses one, and every gradient is applied
to the variable it was computed for. The first verified candidate of a cause is chosen; the
others are listed. Only verified fixes are ever written.
"""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator, Mapping, Sequence

from gradfix import categories as cat
from gradfix.edits import apply_edits, line_edits
from gradfix.model import Applicability, Fix, TextEdit
from gradfix.repair_site import Candidate, RepairSite
from gradfix.runtime.facts import NO_OPTIMIZER, RunFacts
from gradfix.runtime.runner import DEFAULT_TIMEOUT, run_step
from gradfix.source import SourceError, SourceFile, read_source

MAX_CANDIDATES = 4  # tried per cause; each try is one run of the program


@dataclass(frozen=True)
class Run:
    """How to run the program again: what diagnose ran, with the same interpreter, arguments and limits."""

    target: str
    args: tuple[str, ...] = ()
    python: str = sys.executable
    timeout: float = DEFAULT_TIMEOUT
    steps: int = 1
    cwd: str = ""


@dataclass
class Verification:
    """What the re-run of one patched copy showed."""

    ran: bool
    status: str = ""
    before: dict[str, bool] = field(default_factory=dict)  # variable key -> got a gradient
    after: dict[str, bool] = field(default_factory=dict)
    still_failing: list[str] = field(default_factory=list)  # variables the fix was for, still without a gradient
    lost: list[str] = field(default_factory=list)  # variables that had a gradient before and not after
    problems: list[str] = field(default_factory=list)  # a new exception, an update that did not run or went wrong
    verified: bool = False
    reason: str = ""  # one line: why it is not verified
    # the patched step's update (RunFacts.update_summary): its kind, whether it ran, its calls, and the
    # variables it gave their own gradient with matching shapes; None when the patched run got no gradient
    update: dict | None = None

    def update_words(self) -> str:
        """The verification line: which update the step ran, and that each variable got its own gradient."""
        update = self.update
        if not update:
            return ""
        if update["kind"] == NO_OPTIMIZER:
            return "no optimizer: the step's gradient call ran" + ("" if update["ran"] else " (not to its end)")
        count = len(update["variables"])
        return (f"the step's update ({update['kind']}: {', '.join(update['calls'])}) "
                f"{'ran' if update['ran'] else 'did not run to its end'}; it gave {count} variable{'s' if count != 1 else ''} "
                "their own gradient, shapes matching")

    def to_dict(self) -> dict:
        return {"ran": self.ran, "status": self.status, "verified": self.verified, "reason": self.reason,
                "before": self.before, "after": self.after, "still_failing": self.still_failing,
                "lost": self.lost, "problems": self.problems, "update": self.update}


@dataclass
class Attempt:
    candidate: Candidate
    fix: Fix  # the candidate as line edits, with ``verified`` filled in once it ran
    verification: Verification | None = None  # None: not tried
    # 1: made from the program as it is; 2 and on (gradfix.rounds): made with the earlier rounds' fixes
    # written in, so that its text holds them too
    round: int = 1
    # why a verified fix is not the one written (it overlaps another finding's fix; a later round redoes it)
    set_aside: str = ""


@dataclass
class Repair:
    """The fixes tried for one finding of a diagnosis, and the one chosen."""

    index: int  # the finding's index in Diagnosis.findings
    attempts: list[Attempt] = field(default_factory=list)
    note: str = ""  # when nothing was verified: why, and what the user must decide

    @property
    def chosen(self) -> Attempt | None:
        for attempt in self.attempts:
            if attempt.verification is not None and attempt.verification.verified and not attempt.set_aside:
                return attempt
        return None


@dataclass
class FilePatch:
    path: str
    old_text: str
    new_text: str
    diff: str
    fixes: list[Fix]
    source: object = None  # the SourceFile, for writing


# --------------------------------------------------------------------------- candidates

def candidates(diagnosis, index: int) -> list[Candidate]:
    """Every candidate for one finding: the operators' rewrites of the cut the run pinned, then the confirmed
    static fix."""
    from gradfix.inlined import inlined_static_candidate
    from gradfix.lift import lifted_causes

    cause = diagnosis.causes[index]
    found: list[Candidate] = []
    site = _site(cause)
    if site is not None:
        found.extend(c for c in _operator_candidates(site) if c is not None)
    if not found:
        # the cut or the gradient call sits in a helper: what the operators look for is where it is called
        for lifted in lifted_causes(cause):
            site = _site(lifted)
            if site is not None:
                found.extend(c for c in _operator_candidates(site) if c is not None)
                if not found:
                    found.extend(c for c in [inlined_static_candidate(site)] if c is not None)
            if found:
                break
    static = _static_candidate(diagnosis, index)
    if static is not None and all(static.new_text != c.new_text for c in found):
        found.append(static)
    unique: list[Candidate] = []
    for candidate in found:
        if all(candidate.new_text != c.new_text or candidate.path != c.path for c in unique):
            unique.append(candidate)
    order = {Applicability.SAFE: 0, Applicability.UNSAFE: 1, Applicability.DISPLAY_ONLY: 2}
    return sorted(unique, key=lambda c: order[c.applicability])


def _operator_candidates(site: RepairSite) -> list[Candidate | None]:
    """Every operator that repairs the run's cut (by category and op type), on each node the cut is pinned to."""
    from gradfix.transforms._operator import Context

    cause = site.cause
    op = (cause.cut or {}).get("op") or ""
    context = Context.of_site(site)
    found = _candidates_for_op(site, context, op)
    pinned = site.pinned_node()
    if not any(found) and pinned is not None:
        # the op ran inside a library function the user's expression called (keras.ops.argmax runs Equal and
        # Where inside): the op that expression spells is the cut to repair
        from gradfix.transforms._spelling import op_type

        spelled = op_type(pinned, context)
        if spelled and spelled != op:
            found = _candidates_for_op(site, context, spelled)
    return found


def _candidates_for_op(site: RepairSite, context, op: str) -> list[Candidate | None]:
    from gradfix.pin import pinned_nodes
    from gradfix.registry import operators_for

    cause = site.cause
    found: list[Candidate | None] = []
    for operator in operators_for(cause.category, op):
        try:
            for node in pinned_nodes(context, operator, context.cut_lines, op, site.pinned_node()):
                for rewrite in operator.rewrite(node, context):
                    found.append(site.candidate(operator.explained_by, rewrite.description, rewrite.applicability,
                                                context.new_text(rewrite), rewrite.reason))
        except Exception as problem:  # noqa: BLE001 - one failing operator must not stop the others
            if os.environ.get("GRADFIX_STRICT"):
                raise
            print(f"gradfix: internal error: the {operator.name} operator failed ({type(problem).__name__}: {problem})",
                  file=sys.stderr)
    return found


def _site(cause) -> RepairSite | None:
    path = cause.site.file if cause.site is not None and cause.site.file else None
    if path is None and cause.call is not None and cause.call.where is not None:
        path = cause.call.where.file
    if not path or not os.path.isfile(path):
        return None
    try:
        return RepairSite(cause, read_source(path))
    except (SourceError, Exception):  # noqa: BLE001 - a file LibCST cannot parse has no repair site
        return None


def _static_candidate(diagnosis, index: int) -> Candidate | None:
    """The fix of the static findings the run confirmed for this cause, applied together."""
    from gradfix.engine import fix_source

    confirmed = [f for f in diagnosis.confirmed[index] if f.fix is not None] if index < len(diagnosis.confirmed) else []
    if not confirmed:
        return None
    path = confirmed[0].span.path
    try:
        source = read_source(path)
    except SourceError:
        return None
    outcome = fix_source(source, only=[f for f in confirmed if f.span.path == path], include_unsafe=True)
    text, applied = outcome.new_text, list(outcome.applied)
    # fix_source matches findings by (rule, line): a second finding of the same rule close by
    # (np.square(pred.numpy())) is taken in further rounds.
    lines = {f.span.start_line for f in confirmed}
    rules = {f.rule for f in confirmed}
    remaining = outcome.remaining
    for _ in range(4):
        more = [f for f in remaining if f.rule in rules and f.fix is not None
                and any(abs(f.span.start_line - line) <= 2 for line in lines)]
        if not more:
            break
        again = fix_source(SourceFile(source.path, text, source.encoding), only=more, include_unsafe=True)
        if not again.changed:
            break
        applied.extend(again.applied)
        text, remaining = again.new_text, again.remaining
    if not applied or text == source.text:
        return None
    worst = max(applied, key=lambda fix: [Applicability.SAFE, Applicability.UNSAFE, Applicability.DISPLAY_ONLY].index(fix.applicability))
    return Candidate(applied[0].rule, applied[0].description, worst.applicability, path, text, worst.reason, source)


# --------------------------------------------------------------------------- verification

def verify_texts(diagnosis, texts: Mapping[str, str], keys: Sequence[str], run: Run, category: str = "") -> Verification:
    """Re-run the step on a copy of the program with ``texts`` written in; never touches the user's files."""
    before = diagnosis.facts.gradient_status()
    try:
        facts = run_patched(texts, run)
    except CannotVerify as problem:
        return Verification(False, before=before, reason=str(problem))
    return judge(diagnosis.facts, facts, keys, category)


def judge(original: RunFacts, patched: RunFacts, keys: Sequence[str], category: str = "") -> Verification:
    """The verdict on a patched run, against the original run and the variables a fix was for."""
    before = original.gradient_status()
    result = Verification(True, status=patched.status, before=before)
    if not patched.diagnosed:
        detail = f": {patched.error.type}: {patched.error.message}" if patched.error is not None else ""
        result.reason = f"the patched program did not get to a gradient ({patched.status}{detail})"
        result.problems.append(result.reason)
        return result
    after = patched.gradient_status()
    result.after = after
    # a non-trainable variable is also fixed by no longer asking for its gradient
    result.still_failing = [k for k in keys if after.get(k) is not True
                            and not (category == cat.NOT_TRAINABLE and k not in after)]
    result.lost = sorted(k for k, ok in before.items() if ok and after.get(k) is False)
    result.update = patched.update_summary()
    problems = list(patched.update_problems())
    if patched.error is not None and not _same_error(original, patched):
        problems.append(f"the patched program raised {patched.error.type}: {patched.error.message}")
    if (original.applies or _failed_in_update(original)) and not patched.update_completed():
        problems.append("the patched step did not run through the optimizer's update")
    elif patched.applies and not patched.update_completed():
        problems.append(f"the patched step did not run through its update ({', '.join(patched.update_calls())})")
    result.problems = list(dict.fromkeys(problems))
    result.verified = not result.still_failing and not result.lost and not result.problems
    if not result.verified:
        if result.still_failing:
            result.reason = "still without a gradient: " + ", ".join(result.still_failing)
        elif result.lost:
            result.reason = "lost their gradient: " + ", ".join(result.lost)
        else:
            result.reason = result.problems[0]
    return result


def _same_error(original: RunFacts, patched: RunFacts) -> bool:
    return (original.error is not None and patched.error is not None and original.error.type == patched.error.type
            and original.error.message == patched.error.message)


def _failed_in_update(facts: RunFacts) -> bool:
    return facts.error is not None and "No gradients provided" in facts.error.message


class CannotVerify(Exception):
    pass


def program_root(target: str, cwd: str) -> str:
    """The folder that holds the program: what the verification copy is made of."""
    from gradfix.runtime.child.target import resolve_target

    kind, spec, _ = resolve_target(os.path.join(cwd, target) if not os.path.isabs(target) and _looks_like_file(target) else target)
    if kind == "file":
        return os.path.dirname(os.path.abspath(spec))
    return os.path.abspath(cwd)


def _looks_like_file(target: str) -> bool:
    head = target.split(":", 1)[0]
    return head.endswith(".py") or os.sep in head


def run_patched(texts: Mapping[str, str], run: Run) -> RunFacts:
    """Run the step in a bounded scratch copy of the program's folder with ``texts`` written in."""
    with patched_copy(texts, run) as copy:
        return run_step(copy.run.target, args=run.args, python=run.python, timeout=run.timeout, steps=run.steps,
                        cwd=copy.run.cwd, env=copy.env)


@dataclass
class PatchedCopy:
    """A scratch copy of the program's folder with patched texts written in, and how to run it there."""

    root: str  # the program's folder, whose copy this is
    path: str  # the copy
    run: Run  # the program's run, retargeted into the copy
    env: dict

    def original(self, path: str) -> str:
        """The project's path of a file of the copy."""
        return os.path.join(self.root, os.path.relpath(os.path.abspath(path), self.path))


@contextmanager
def patched_copy(texts: Mapping[str, str], run: Run) -> Iterator[PatchedCopy]:
    from gradfix.runtime.sandbox import SandboxTooLarge, sandbox_copy

    target, cwd = run.target, os.path.abspath(run.cwd or os.getcwd())
    root = program_root(target, cwd)
    outside = [p for p in texts if not os.path.abspath(p).startswith(root + os.sep)]
    if outside:
        raise CannotVerify(f"{', '.join(outside)} lies outside {root}, the folder the verification copy is made of")
    relatives = [os.path.relpath(os.path.abspath(p), root) for p in texts]
    with ExitStack() as stack:
        try:
            sandbox = stack.enter_context(sandbox_copy(root, keep_real=relatives))
        except SandboxTooLarge as problem:
            raise CannotVerify(str(problem)) from None
        copy = sandbox.path
        for relative, text in zip(relatives, texts.values()):
            _write_in_copy(copy, relative, text, _encoding_of(os.path.join(root, relative)))
        new_cwd = os.path.join(copy, os.path.relpath(cwd, root)) if (cwd + os.sep).startswith(root + os.sep) else copy
        new_target = target
        if _looks_like_file(target):
            head, sep, tail = target.partition(":") if not os.path.exists(os.path.join(cwd, target)) else (target, "", "")
            absolute = os.path.abspath(os.path.join(cwd, head))
            new_target = os.path.join(copy, os.path.relpath(absolute, root)) + (sep + tail if sep else "")
        env = sandbox.environment()
        env["PYTHONPATH"] = os.pathsep.join([new_cwd] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        yield PatchedCopy(root, copy, replace(run, target=new_target, cwd=new_cwd), env)


def _write_in_copy(copy: str, relative: str, text: str, encoding: str) -> None:
    """Write a patched text into the copy, never through a link: the file and every folder above it are the copy's own."""
    destination = os.path.join(copy, relative)
    folder = os.path.realpath(os.path.dirname(destination))
    if not (folder + os.sep).startswith(os.path.realpath(copy) + os.sep):
        raise CannotVerify(f"{relative}: its folder in the verification copy leads back to the project; not written there")
    if os.path.lexists(destination):
        os.unlink(destination)  # a link to the original, or the copy: replaced by a new file
    descriptor = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with open(descriptor, "w", encoding=encoding, newline="") as out:
        out.write(text)


def _encoding_of(path: str) -> str:
    try:
        return read_source(path).encoding
    except SourceError:
        return "utf-8"


# --------------------------------------------------------------------------- choosing

def repair(diagnosis, run: Run, cancel=None, progress: Callable[[str], None] | None = None) -> list[Repair]:
    """For each finding, try its candidates one by one on copies; the first that verifies is chosen."""
    repairs = []
    for index, cause in enumerate(diagnosis.causes):
        found = Repair(index)
        repairs.append(found)
        options = candidates(diagnosis, index)
        if not options:
            found.note = no_fix_note(cause)
            continue
        for candidate in options:
            source_text = candidate.source.text if candidate.source is not None else _text_of(candidate.path)
            fix = Fix(candidate.rule, candidate.description, candidate.applicability,
                      line_edits(source_text, candidate.new_text), reason=candidate.reason)
            attempt = Attempt(candidate, fix)
            found.attempts.append(attempt)
            if candidate.applicability is Applicability.DISPLAY_ONLY:
                continue
            if found.chosen is not None or len([a for a in found.attempts if a.verification]) >= MAX_CANDIDATES:
                continue
            if cancel is not None and cancel.is_set():
                continue
            if progress is not None:
                progress(f"verifying: {candidate.description}")
            attempt.verification = verify_texts(diagnosis, {candidate.path: candidate.new_text}, list(cause.keys), run,
                                                cause.category)
            attempt.fix = replace(attempt.fix, verified=attempt.verification.verified)
        if found.chosen is None:
            tried = [a.verification for a in found.attempts if a.verification is not None]
            found.note = ("no candidate fix verified: " + "; ".join(verification.reason for verification in tried)) if tried else no_fix_note(cause)
    return repairs


def _text_of(path: str) -> str:
    try:
        return read_source(path).text
    except SourceError:
        return ""


def no_fix_note(cause) -> str:
    """What the user must decide when no fix is general."""
    return {
        cat.NEVER_USED: "no general fix: call the layer or model in the step, remove it, or leave its variables out of "
        "the ones trained; which one is right depends on what the program means",
        cat.TARGET_INDEPENDENT: "no general fix: the value differentiated is a constant for this tape; decide what it "
        "should be computed from (tape.watch would not help)",
        cat.LOSS_IGNORES_PREDICTION: "no general fix: decide which tensor the loss should be computed from",
        cat.UNKNOWN: "no fix: gradfix could not name the cause",
    }.get(cause.category, "no fix is known for this shape of the bug")


def best_fix(found: Repair) -> Fix | None:
    """The fix to show for a finding: the verified one, else the first tried, else the first offered."""
    chosen = found.chosen
    if chosen is not None:
        return chosen.fix
    tried = [a for a in found.attempts if a.verification is not None]
    if tried:
        return tried[0].fix
    return found.attempts[0].fix if found.attempts else None


def patches_to_write(diagnosis, repairs: Sequence[Repair], include_unsafe: bool,
                     run: Run) -> tuple[list[FilePatch], Verification | None, list[str]]:
    """The verified fixes that may be written, merged per file; with several, the merge is verified again.

    Returns the patches, the merge's verification (None for a single fix, verified already) and
    what was left out, with why."""
    from gradfix.patch import make_diff

    chosen = []
    left_out = []
    for found in repairs:
        attempt = found.chosen
        if attempt is None:
            continue
        if attempt.fix.applicability is Applicability.UNSAFE and not include_unsafe:
            left_out.append(f"{attempt.fix.rule} ({attempt.fix.description}): unsafe, verified; add --unsafe-fixes to write it")
            continue
        chosen.append(attempt)
    by_file: dict[str, list[Attempt]] = {}
    for attempt in chosen:
        by_file.setdefault(attempt.candidate.path, []).append(attempt)
    patches, texts = [], {}
    for path, attempts in by_file.items():
        # the edits were taken against the text as first read; writing checks that the file is still that text,
        # so that a line saved while the copies ran is never overwritten
        source = next((a.candidate.source for a in attempts if a.candidate.source is not None), None) or read_source(path)
        new_text, taken, overlapping = merged_text(source.text, attempts)
        left_out.extend(f"{fix.rule} ({fix.description}): it overlaps another fix in {os.path.relpath(path)}; run "
                        "diagnose again once that one is applied" for fix in overlapping)
        texts[path] = new_text
        patches.append(FilePatch(path, source.text, new_text, make_diff(path, source.text, new_text), taken, source))
    merged = None
    if sum(len(p.fixes) for p in patches) > 1:
        keys = [k for found in repairs if found.chosen in chosen for k in diagnosis.causes[found.index].keys]
        merged = verify_texts(diagnosis, texts, keys, run)
        if not merged.verified:
            left_out.append(f"the fixes are verified one by one but not together ({merged.reason}); nothing is written")
            patches = []
    return patches, merged, left_out


def chosen_by_file(repairs: Sequence[Repair]) -> dict[str, tuple[str, list[Attempt]]]:
    """The chosen fixes grouped by file, with each file's text as it was read when they were made."""
    grouped: dict[str, list[Attempt]] = {}
    for found in repairs:
        if found.chosen is not None:
            grouped.setdefault(found.chosen.candidate.path, []).append(found.chosen)
    texts = {}
    for path, attempts in grouped.items():
        source = next((a.candidate.source for a in attempts if a.candidate.source is not None), None)
        texts[path] = (source.text if isinstance(source, SourceFile) else _text_of(path), attempts)
    return texts


def merged_text(text: str, attempts: Sequence[Attempt]) -> tuple[str, list[Fix], list[Fix]]:
    """One file's text with the chosen fixes written in: the new text, the fixes it holds, those left out.

    First-round fixes are edits of ``text``, merged when they do not overlap (one fix chosen for two causes,
    both gradient calls of a GAN step, is written once). A later round's fix is the whole text with the
    earlier ones in it: the latest round's text is the file's."""
    later = [a for a in attempts if a.round > 1]
    if later:
        last = max(later, key=lambda a: a.round)
        return last.candidate.new_text, [a.fix for a in attempts], []
    edits: list[TextEdit] = []
    taken: list[Fix] = []
    overlapping: list[Fix] = []
    for attempt in attempts:
        if any(attempt.fix.edits == fix.edits for fix in taken):
            continue
        if any(_overlap(edit, other) for edit in attempt.fix.edits for other in edits):
            overlapping.append(attempt.fix)
            continue
        edits.extend(attempt.fix.edits)
        taken.append(attempt.fix)
    return apply_edits(text, edits), taken, overlapping


def _overlap(a, b) -> bool:
    return a.start_line < max(b.end_line, b.start_line + 1) and b.start_line < max(a.end_line, a.start_line + 1)
