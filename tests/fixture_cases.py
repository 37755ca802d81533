"""Discovering fixture programs: adding a case is adding files."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"


@dataclass(frozen=True)
class FixtureCase:
    buggy: pathlib.Path

    @property
    def id(self) -> str:
        return str(self.buggy.relative_to(FIXTURES).with_suffix(""))

    @property
    def fixed(self) -> pathlib.Path | None:
        path = self.buggy.with_name(self.buggy.stem + ".fixed.py")
        return path if path.exists() else None

    @property
    def expected_path(self) -> pathlib.Path:
        return self.buggy.with_suffix(".expected")

    @property
    def is_valid_program(self) -> bool:
        return not self.expected_path.exists()

    def expected(self) -> list[tuple[int, str]]:
        """(line, rule code) pairs, from lines such as ``14 GF001``."""
        if not self.expected_path.exists():
            return []
        pairs = []
        for raw in self.expected_path.read_text().splitlines():
            raw = raw.split("#", 1)[0].strip()
            if raw:
                line, code = raw.split()
                pairs.append((int(line), code))
        return sorted(pairs)

    def _directive(self, name: str) -> str | None:
        """The text of a comment line ``# <name>: <text>`` in the .expected file, if there is one."""
        if not self.expected_path.exists():
            return None
        for raw in self.expected_path.read_text().splitlines():
            raw = raw.strip()
            if not raw.startswith("#"):
                continue
            key, sep, value = raw[1:].partition(":")
            if sep and key.strip() == name and value.strip():
                return value.strip()
        return None

    def runtime_reason(self) -> str | None:
        """Why running the program legitimately shows every gradient flowing (``# runtime: <reason>``).

        The static bug is real, but it does not take a gradient away (each model trains on the
        other's loss; frozen weights passed explicitly still get one), so `gradfix diagnose` has
        nothing to report."""
        return self._directive("runtime")

    def run_target(self) -> tuple[str, pathlib.Path]:
        """(TARGET, working folder) for `gradfix diagnose`: the file itself, or ``# target: pkg.mod:fn``.

        A module target is run from the folder that holds its top-level package."""
        target = self._directive("target")
        if target is None:
            return self.buggy.name, self.buggy.parent
        module = target.split(":", 1)[0]
        depth = len(module.split("."))
        return target, self.buggy.parents[depth - 1]


# Programs that cannot be diagnosed (they crash, exit early, hang, or never ask for a gradient).
FAULTS = FIXTURES / "runtime" / "faults"


# Programs from real bug reports for the runtime repair: their expectations are the run's cause and
# fix (see RepairCase), not static findings.
REPAIR = FIXTURES / "repair"


def all_cases() -> list[FixtureCase]:
    return [
        FixtureCase(path)
        for path in sorted(FIXTURES.rglob("*.py"))
        if not path.name.endswith((".fixed.py", ".intended.py")) and "__pycache__" not in path.parts and path.stat().st_size
        and REPAIR not in path.parents
    ]


@dataclass(frozen=True)
class RepairCase:
    """``fixtures/repair/NAME.py``: a program reduced from a public bug report (its header cites it).

    ``NAME.expected`` holds ``# cause:``, ``# break:``, ``# cut:`` (the expression the run pins the cut to,
    where it pins one) and either ``# fix:`` (a fix is general: gradfix must write a verified one, and
    ``NAME.fixed.py`` is what it writes; with ``# pending:``, why it does not write it yet) or ``# no-fix:``
    (what the user must decide: nothing may be written). ``NAME.intended.py`` is the fix a careful engineer wrote by hand. ``NAME.facts.json`` is the
    run, recorded for the tests without TensorFlow.
    """

    program: pathlib.Path

    @property
    def id(self) -> str:
        return self.program.stem

    def _directive(self, name: str) -> str | None:
        for raw in self.program.with_suffix(".expected").read_text().splitlines():
            key, sep, value = raw.lstrip("# ").partition(":")
            if raw.startswith("#") and sep and key.strip() == name:
                return value.strip()
        return None

    @property
    def cause(self) -> str:
        return self._directive("cause") or ""

    @property
    def break_line(self) -> int | None:
        value = self._directive("break")
        return int(value) if value else None

    @property
    def pending(self) -> str | None:
        """``# pending: <why>``: the fix is general (``# fix:``) but gradfix does not make it yet; its repair
        test is expected to fail, strictly, so that the day it passes the line must go."""
        return self._directive("pending")

    @property
    def cut(self) -> str | None:
        """``# cut: <expression>``: the source text of the expression the run pins the cut to."""
        return self._directive("cut")

    @property
    def facts(self) -> pathlib.Path:
        """NAME.facts.json: the run recorded once (``python -m gradfix.runtime.record_facts fixtures/repair``)."""
        return self.program.with_name(self.program.stem + ".facts.json")

    @property
    def static(self) -> list[tuple[str, int]] | None:
        """``# static: GF009 20, GF009 21``: what ``gradfix check`` reports on the program, rule and line, each
        finding judged by hand; ``# static: none: <why>`` where it reports nothing; None without the line."""
        value = self._directive("static")
        if value is None or value.startswith("none"):
            return None if value is None else []
        return sorted((code, int(line)) for code, line in (item.split() for item in value.split(",")))

    @property
    def has_fix(self) -> bool:
        return self._directive("fix") is not None

    @property
    def no_fix_reason(self) -> str | None:
        return self._directive("no-fix")

    @property
    def fixed(self) -> pathlib.Path:
        return self.program.with_name(self.program.stem + ".fixed.py")

    @property
    def intended(self) -> pathlib.Path:
        return self.program.with_name(self.program.stem + ".intended.py")


def repair_cases() -> list[RepairCase]:
    return [RepairCase(path) for path in sorted(REPAIR.glob("*.py"))
            if not path.name.endswith((".fixed.py", ".intended.py")) and path.with_suffix(".expected").exists()]


def buggy_cases() -> list[FixtureCase]:
    return [case for case in all_cases() if not case.is_valid_program]


def fixed_programs() -> list[pathlib.Path]:
    """Every program that must train with a gradient for every trainable variable."""
    programs = [case.fixed for case in buggy_cases() if case.fixed]
    programs += [case.buggy for case in all_cases() if case.is_valid_program and FAULTS not in case.buggy.parents]
    return sorted(programs)


def assert_every_trainable_variable_gets_a_gradient(program: pathlib.Path, timeout: float = 180) -> None:
    """Run the program's first step in a child under TensorFlow: it must ask for a gradient and get one for every variable."""
    from gradfix.runtime.runner import run_step

    facts = run_step(str(program), cwd=str(program.parent), timeout=timeout)
    assert facts.status == "ok", f"{facts.status}: {facts.error}"
    assert facts.gradient_calls, "the program asked for no gradient"
    assert facts.variables_without_gradient() == []
