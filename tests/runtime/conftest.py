"""Shared runs: each fixture program is run once per test session (a child run costs seconds), in the
interpreter ``interpreter.PYTHON`` names (``GRADFIX_TEST_PYTHON``, else this one)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest
from interpreter import PYTHON

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "fixtures" / "runtime"
SEED = ROOT / "fixtures" / "seed"


def pytest_configure(config):
    config.addinivalue_line("markers", "tensorflow: runs TensorFlow in a child process")


@functools.lru_cache(maxsize=None)
def _run(target: str, folder: str, args: tuple[str, ...] = (), timeout: float = 120.0):
    from gradfix.runtime.runner import run_step

    return run_step(target, args=args, cwd=folder, timeout=timeout, python=PYTHON)


@pytest.fixture(scope="session")
def run_fixture():
    """run_fixture("outside_tape.py") -> RunFacts, cached for the session."""

    def run(target: str, folder: Path = RUNTIME, args: tuple[str, ...] = (), timeout: float = 120.0):
        return _run(target, os.fspath(folder), tuple(args), timeout)

    return run
