"""The static fix of a bug spelled across a one-statement helper and its caller.

``grads = compute_grads(tape, loss, model)`` with ``compute_grads`` returning ``tape.gradient(loss,
model.variables)``: the static rules see a gradient call whose sources and whose optimizer's list are in two
functions, and pair neither. Read where the run saw it called, the helper's one expression is the
caller's (``transforms._helper_call``); written in at that call, the rules see the whole bug and fix it.
The candidate is the helper's expression written in at the call with the rules' fix made after it:
unsafe, since the call no longer goes through the helper.
"""

from __future__ import annotations

import libcst as cst

from gradfix.edits import ReplaceNodes
from gradfix.model import Applicability
from gradfix.repair_site import Candidate, RepairSite
from gradfix.source import SourceFile

REASON = "`{name}` is no longer called here: its expression is written in at the call, then fixed"
NEAR = 8  # lines after the call where a finding still belongs to it (the optimizer's apply of the gradients)


def inlined_static_candidate(site: RepairSite) -> Candidate | None:
    from gradfix.diagnose import COMPATIBLE, _rules_by_code
    from gradfix.engine import analyze, fix_source
    from gradfix.transforms._operator import Context

    through = Context.of_site(site).through
    inner = through.lone_statement() if through is not None else None
    if not isinstance(inner, cst.Return) or inner.value is None:
        return None
    line = site.lines_of(through.call)[0]
    text = site.module.visit(ReplaceNodes({through.call: through.substituted(inner.value)})).code
    inlined = SourceFile(site.path, text, site.source.encoding)
    rules = _rules_by_code()
    wanted = COMPATIBLE.get(site.cause.category, frozenset({site.cause.category}))
    near = [f for f in analyze(inlined) if f.fix is not None and line <= f.span.start_line <= line + NEAR
            and set(getattr(rules.get(f.rule), "categories", ())) & wanted]
    if not near:
        return None
    outcome = fix_source(inlined, only=near, include_unsafe=True)
    if not outcome.applied:
        return None
    name = through.function.name.value
    then = outcome.applied[0].description
    description = f"Write `{name}`'s expression in at its call, then {then[:1].lower()}{then[1:]}"
    return site.candidate(outcome.applied[0].rule, description, Applicability.UNSAFE, outcome.new_text,
                          REASON.format(name=name))
