"""The parent side of a diagnosis run: start the child, bound it, read its facts back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Mapping, Sequence

from gradfix.runtime.facts import ErrorInfo, RunFacts

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
FACTS_ENV = "GRADFIX_FACTS"
STEPS_ENV = "GRADFIX_STEPS"
DEFAULT_TIMEOUT = 120.0
OUTPUT_TAIL = 8000

INSTALL_HINT = (
    "Install TensorFlow into that interpreter, for example:\n"
    "    {python} -m pip install tensorflow        (or tensorflow-cpu)\n"
    "or point gradfix at the interpreter of your project with --python PATH."
)


def bootstrap_path() -> str:
    return str(BOOTSTRAP)


def child_command(target: str, args: Sequence[str] = (), python: str = sys.executable) -> list[str]:
    return [python, str(BOOTSTRAP), target, *args]


def run_step(
    target: str,
    args: Sequence[str] = (),
    python: str = sys.executable,
    timeout: float = DEFAULT_TIMEOUT,
    steps: int = 1,
    cwd: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    quiet: bool = True,
) -> RunFacts:
    """Run TARGET's first ``steps`` training steps in a child process and return what it saw.

    TARGET is ``train.py``, ``train.py:function`` or ``package.module:function``; a
    relative file is taken relative to ``cwd``. The program's output passes
    through unless ``quiet``; the facts travel in a JSON file, never on stdout.
    The child runs in its own process group, which is killed when it ends or
    times out, so that nothing it started is left running.
    """
    started = time.monotonic()
    workdir = os.fspath(cwd) if cwd is not None else os.getcwd()
    with tempfile.TemporaryDirectory(prefix="gradfix-run-") as scratch:
        facts_path = os.path.join(scratch, "facts.json")
        output_path = os.path.join(scratch, "output.txt")
        child_env = dict(os.environ if env is None else env)
        child_env[FACTS_ENV] = facts_path
        child_env[STEPS_ENV] = str(max(1, int(steps)))
        child_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        child_env.setdefault("PYTHONUNBUFFERED", "1")
        command = child_command(target, args, python)
        output = open(output_path, "wb") if quiet else None
        try:
            try:
                process = subprocess.Popen(
                    command,
                    cwd=workdir,
                    env=child_env,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT if quiet else None,
                    start_new_session=True,
                )
            except OSError as problem:
                return RunFacts(
                    status="could-not-start",
                    target=target,
                    args=tuple(args),
                    python=python,
                    error=ErrorInfo("OSError", f"cannot run {python}: {problem.strerror or problem}", ""),
                    elapsed=time.monotonic() - started,
                )
            timed_out = False
            try:
                returncode = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(process)
                returncode = process.wait()
            finally:
                _kill_group(process, quietly=True)
        finally:
            if output is not None:
                output.close()
        tail = ""
        if quiet and os.path.exists(output_path):
            with open(output_path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - OUTPUT_TAIL))
                tail = handle.read().decode("utf-8", "replace")
        data = _read_facts(facts_path)
    elapsed = time.monotonic() - started
    common = dict(target=target, args=tuple(args), python=python, returncode=returncode, elapsed=elapsed, output_tail=tail)
    if data is None:
        status = "timeout" if timed_out else "could-not-start"
        message = (
            f"the program was still running after {timeout:g} s and was stopped"
            if timed_out
            else f"the interpreter ended (exit code {returncode}) before gradfix could start the program"
        )
        return RunFacts(status=status, error=ErrorInfo("Timeout" if timed_out else "ChildFailed", message, tail[-3000:]), **common)
    facts = RunFacts.from_dict(data, **common)
    if timed_out:
        # facts written before the hang still tell something, but the run did not finish
        facts.notes.append({"kind": "timeout", "message": f"stopped after {timeout:g} s"})
        if facts.status != "ok":
            facts.status = "timeout"
            facts.error = ErrorInfo("Timeout", f"the program was still running after {timeout:g} s and was stopped", "")
    elif facts.status == "exited-before-gradient" and data.get("exit_code") is None and returncode not in (0, None):
        # the child died without writing a final record (os._exit, a signal, a native crash)
        facts.exit_code = returncode
    if facts.status == "no-tensorflow" and facts.error is not None:
        facts.error = ErrorInfo(
            facts.error.type,
            facts.error.message,
            facts.error.traceback + "\n" + INSTALL_HINT.format(python=python),
        )
    return facts


def _kill_group(process: subprocess.Popen, quietly: bool = False) -> None:
    try:
        pgid = os.getpgid(process.pid)
    except (ProcessLookupError, PermissionError, OSError):
        pgid = process.pid
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        if not quietly:
            try:
                process.kill()
            except OSError:
                pass


def _read_facts(path: str) -> dict | None:
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None
