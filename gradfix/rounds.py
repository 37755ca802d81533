"""Further rounds of the repair: fix one cause, run again, fix what the run shows next.

A program can lose gradients for two reasons at once, and the second often shows only once the first is
fixed (two variables assigned from a model's two heads: the run names the first `assign`, and the second
head looks unused until the first is repaired). After the first round, the causes left without a verified
fix are looked at again in a scratch copy with the verified fixes written in: that copy is run, its causes
for the same variables are named, and their candidates verified there, by copies of that copy. A fix found
so is the file's whole text with the earlier fixes in it; ``repair.patches_to_write`` writes it in their
place and verifies everything together once more, on a copy of the project, before anything is written.
"""

from __future__ import annotations

from typing import Callable, Sequence

from gradfix.edits import line_edits
from gradfix.model import Applicability
from gradfix.repair import (
    MAX_CANDIDATES,
    Attempt,
    CannotVerify,
    Fix,
    Repair,
    Run,
    candidates,
    chosen_by_file,
    merged_text,
    patched_copy,
    verify_texts,
)
from gradfix.repair_site import Candidate
from gradfix.runtime.runner import run_step
from gradfix.source import SourceError, read_source

MAX_ROUNDS = 2  # rounds after the first; each costs one run plus one per candidate tried


def further_rounds(diagnosis, repairs: Sequence[Repair], run: Run, cancel=None,
                   progress: Callable[[str], None] | None = None) -> None:
    """Give the causes the first round left unfixed a fix made on top of the verified ones, where one verifies."""
    from gradfix.diagnose import diagnose

    _set_aside_overlaps(repairs)
    for number in range(2, 2 + MAX_ROUNDS):
        unfixed = [found for found in repairs if found.chosen is None]
        texts = _texts_so_far(repairs)
        if not unfixed or not texts or (cancel is not None and cancel.is_set()):
            return
        wanted = {key: found for found in unfixed for key in diagnosis.causes[found.index].keys}
        if progress is not None:
            progress(f"running the program with {_count(repairs)} verified fix(es) written in, round {number}")
        progress_made = False
        try:
            with patched_copy(texts, run) as copy:
                facts = run_step(copy.run.target, args=run.args, python=run.python, timeout=run.timeout,
                                 steps=run.steps, cwd=copy.run.cwd, env=copy.env)
                again = diagnose(facts)
                for index, cause in enumerate(again.causes):
                    owners = [wanted[k] for k in cause.keys if k in wanted]
                    if not owners or (cancel is not None and cancel.is_set()):
                        continue
                    attempt = _verified_in_copy(again, index, copy, progress)
                    if attempt is None:
                        continue
                    attempt.round = number
                    owners[0].attempts.append(attempt)
                    owners[0].note = ""
                    for earlier in owners[0].attempts[:-1]:
                        if earlier.set_aside:
                            earlier.set_aside = "made again, with the other verified fixes written in (round {})".format(number)
                    progress_made = True
        except CannotVerify:
            return
        if not progress_made:
            return


def _verified_in_copy(again, index: int, copy, progress) -> Attempt | None:
    """The first candidate for a cause of the copy's run that verifies, as a fix of the project's file."""
    cause = again.causes[index]
    tried = 0
    for candidate in candidates(again, index):
        if tried >= MAX_CANDIDATES:
            break
        if candidate.applicability is Applicability.DISPLAY_ONLY:
            continue
        tried += 1
        if progress is not None:
            progress(f"verifying: {candidate.description}")
        verification = verify_texts(again, {candidate.path: candidate.new_text}, list(cause.keys), copy.run,
                                    cause.category)
        if not verification.verified:
            continue
        path = copy.original(candidate.path)
        try:
            source = read_source(path)
        except SourceError:
            return None
        description = f"{candidate.description} (made, and verified, with the other verified fixes written in)"
        whole = Candidate(candidate.rule, description, candidate.applicability, path, candidate.new_text,
                          candidate.reason, source)
        fix = Fix(candidate.rule, description, candidate.applicability,
                  line_edits(source.text, candidate.new_text), reason=candidate.reason, verified=True)
        return Attempt(whole, fix, verification)
    return None


def _set_aside_overlaps(repairs: Sequence[Repair]) -> None:
    """First-round fixes that edit the same lines as another's cannot both be written: keep the first, and let
    a later round redo the others on top of it (two variables assigned on consecutive lines and read on one)."""
    for text, attempts in chosen_by_file(repairs).values():
        _, _, overlapping = merged_text(text, attempts)
        for found in repairs:
            chosen = found.chosen
            if chosen is not None and any(chosen.fix is fix for fix in overlapping):
                chosen.set_aside = "it overlaps another finding's fix, so it was made again with that fix written in"
                found.note = ("its verified fix overlaps another finding's fix; run diagnose again once that one is "
                              "applied")


def _texts_so_far(repairs: Sequence[Repair]) -> dict[str, str]:
    """Each file's text with every verified fix so far written in, as ``patches_to_write`` would write it."""
    return {path: merged_text(text, attempts)[0] for path, (text, attempts) in chosen_by_file(repairs).items()}


def _count(repairs: Sequence[Repair]) -> int:
    return sum(1 for found in repairs if found.chosen is not None)
