"""A cause seen from the frames that called the helper it sits in.

The repair operators look for what surrounds the cut: the tape block, the gradient call, the loss.
When the run places the cut, or the gradient call, inside a helper function (``compute(model, x)``
returning ``model(x)``; ``grads(tape, loss, model)`` returning ``tape.gradient(...)``), that context
is in the caller, where the helper is called. The run records the user's frames that called each
site (``Site.callers``, innermost first); a lifted cause puts the site on the caller's call of the
helper, and keeps the helper's site in ``lifted_from`` so that an operator can read the helper
through the call's arguments (``transforms._helper_call``).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Iterator

from gradfix.causes import Cause
from gradfix.runtime.facts import Site

MAX_LEVELS = 3  # callers followed out: a helper of a helper of a helper


def lifted_causes(cause: Cause) -> Iterator[Cause]:
    """The cause seen from each caller out, nearest first: the cut's callers when the cut sits in a function the
    gradient call is not in, then the gradient call's callers when the gradient is asked for inside a helper."""
    yield from _cut_seen_from_callers(cause)
    yield from _call_seen_from_callers(cause)


def _cut_seen_from_callers(cause: Cause) -> Iterator[Cause]:
    where = cause.call.where if cause.call is not None else None
    site = cause.site
    if site is None or not site.callers or (where is not None and _same_function(site, where)):
        return
    inner = site
    for caller in site.callers[:MAX_LEVELS]:
        if not _same_file(caller.file, inner.file):
            return
        yield dataclasses.replace(cause, site=_without_callers(caller), cut=_cut_at(cause.cut, caller), lifted_from=inner)
        if where is not None and _same_function(caller, where):
            return  # out to the gradient call's own function: further out holds neither the tape nor the loss
        inner = caller


def _call_seen_from_callers(cause: Cause) -> Iterator[Cause]:
    where = cause.call.where if cause.call is not None else None
    if where is None or not where.callers or not _user_file(where.file):
        return
    assert cause.call is not None, "where is the call's"
    inner = where
    for caller in where.callers[:MAX_LEVELS]:
        if not _same_file(caller.file, inner.file):
            return
        site = caller if cause.site is None or _same_function(cause.site, where) else cause.site
        call = dataclasses.replace(cause.call, user_site=_without_callers(caller))
        yield dataclasses.replace(cause, site=_without_callers(site), call=call,
                                  cut=_cut_at(cause.cut, site) if site is caller else cause.cut, lifted_from=inner)
        inner = caller


def _cut_at(cut: dict | None, site: Site) -> dict | None:
    """The run's fact at the cut, placed on the caller's call: its op and kind stay, its place is the call."""
    if not cut:
        return cut
    moved = {key: value for key, value in cut.items() if key not in ("span", "line", "file", "code")}
    moved.update(file=site.file, line=site.line, code=site.code)
    if site.column is not None and site.end_column is not None:
        moved["span"] = {"line": site.line, "column": site.column, "end_line": site.end_line or site.line,
                         "end_column": site.end_column, "exact": True, "text": site.text}
    return moved


def _without_callers(site: Site) -> Site:
    return dataclasses.replace(site, callers=())


def _same_function(a: Site, b: Site) -> bool:
    return _same_file(a.file, b.file) and a.function == b.function


def _same_file(a: str, b: str) -> bool:
    if not a or not b:
        return False
    return os.path.abspath(a) == os.path.abspath(b)


def _user_file(path: str) -> bool:
    return bool(path) and os.path.isfile(path)
