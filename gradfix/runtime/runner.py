"""The parent side of a diagnosis run: start the child, bound it, read its facts back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Mapping, Sequence

from gradfix.runtime import warm
from gradfix.runtime.child.schema import FACTS_ENV, STEPS_ENV
from gradfix.runtime.containment import CGROUP_ENV, RUN_ENV, RunCgroup, live_runs
from gradfix.runtime.facts import FACTS_VERSION, ErrorInfo, RunFacts

# Run by path, not with -m: the user's interpreter may lack gradfix's dependencies, and gradfix's
# folder must not be put on the program's sys.path (the entry loads its package by itself).
CHILD_MAIN = Path(__file__).with_name("child") / "__main__.py"
FORWARDED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
STOP_GRACE = 2.0  # seconds the program has to end after a forwarded signal, before everything it started is killed
DEFAULT_TIMEOUT = 120.0
OUTPUT_TAIL = 8000

INSTALL_HINT = (
    "Install TensorFlow into that interpreter, for example:\n"
    "    {python} -m pip install tensorflow        (or tensorflow-cpu)\n"
    "or point gradfix at the interpreter of your project with --python PATH."
)


def child_path() -> str:
    return str(CHILD_MAIN)


def child_command(target: str, args: Sequence[str] = (), python: str = sys.executable) -> list[str]:
    return [python, str(CHILD_MAIN), target, *args]


def run_step(
    target: str,
    args: Sequence[str] = (),
    python: str = sys.executable,
    timeout: float = DEFAULT_TIMEOUT,
    steps: int = 1,
    cwd: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    quiet: bool = True,
    cancel=None,
) -> RunFacts:
    """Run TARGET's first ``steps`` training steps in a child process and return what it saw.

    TARGET is ``train.py``, ``train.py:function`` or ``package.module:function``; a
    relative file is taken relative to ``cwd``. The program's output passes
    through unless ``quiet``; the facts travel in a JSON file, never on stdout.
    The child runs in its own process group, which is killed when it ends or
    times out, so that nothing it started is left running. ``cancel`` (a
    ``threading.Event``) stops the child early; the facts then have status "cancelled".

    The child is forked from a warm server that imported TensorFlow already where that gives the same run
    (``gradfix.runtime.warm``), else it is a fresh interpreter; ``facts.start`` says which ("warm", "cold").
    """
    with _gate.holding():
        return _run_step(target, args, python, timeout, steps, cwd, env, quiet, cancel)


def _run_step(target, args, python, timeout, steps, cwd, env, quiet, cancel) -> RunFacts:
    started = time.monotonic()
    workdir = os.fspath(cwd) if cwd is not None else os.getcwd()
    base_env = dict(os.environ if env is None else env)
    base_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    base_env.setdefault("PYTHONUNBUFFERED", "1")
    try:
        with _forwarding_signals():
            plan = warm.prepare(target, python, workdir, base_env, started + timeout, cancel)
    except _Stopped as stop:
        raise KeyboardInterrupt() if stop.signum == signal.SIGINT else SystemExit(128 + stop.signum)
    run = dict(target=target, args=args, python=python, timeout=timeout, steps=steps, workdir=workdir,
               base_env=base_env, quiet=quiet, cancel=cancel, started=started)
    facts = _run(plan, **run)
    if facts is None:
        # the warm server died under the run: what the run did is unknown, so it runs again in a fresh interpreter
        plan = warm.Plan(None, "the warm server ended during the run")
        facts = _run(plan, **run)
        assert facts is not None, "a cold start gives its facts"
    facts.start = "warm" if plan.launched else "cold"
    facts.start_reason = plan.reason
    return facts


def _run(plan, target, args, python, timeout, steps, workdir, base_env, quiet, cancel, started) -> RunFacts | None:
    """One start of the run (warm when ``plan`` has a server that forks it, else cold); None when the warm
    server died before the run ended."""
    with tempfile.TemporaryDirectory(prefix="gradfix-run-") as scratch:
        facts_path = os.path.join(scratch, "facts.json")
        output_path = os.path.join(scratch, "output.txt")
        child_env = dict(base_env)
        child_env[FACTS_ENV] = facts_path
        child_env[STEPS_ENV] = str(max(1, int(steps)))
        marker = child_env[RUN_ENV] = uuid.uuid4().hex
        cgroup = RunCgroup.create(f"gradfix-run-{marker}")
        if cgroup is not None:
            child_env[CGROUP_ENV] = cgroup.path
        command = child_command(target, args, python)
        shell = cgroup is not None and os.path.exists("/bin/sh")
        if shell and cgroup is not None:  # shell says it is not None
            command = cgroup.joining(command)
        output = open(output_path, "wb") if quiet else None
        try:
            # forked by the server, the run joins its cgroup itself before anything of it runs
            descriptor = None if output is None else output.fileno()
            process = plan.launch(python, target, args, str(CHILD_MAIN), child_env, workdir, descriptor, descriptor, shell)
            try:
                process = process or subprocess.Popen(
                    command,
                    cwd=workdir,
                    env=child_env,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT if quiet else None,
                    start_new_session=True,
                )
            except OSError as problem:
                if cgroup is not None:
                    cgroup.remove()
                    cgroup = None
                return RunFacts(
                    status="could-not-start",
                    target=target,
                    args=tuple(args),
                    python=python,
                    error=ErrorInfo("OSError", f"cannot run {python}: {problem.strerror or problem}", ""),
                    elapsed=time.monotonic() - started,
                )
            if cgroup is not None and not plan.launched and not cgroup.add(process.pid):
                cgroup.remove()  # cannot move processes here: the /proc scan alone finds them
                cgroup = None
            live_runs.started(marker, process, cgroup, scratch)
            timed_out = cancelled = False
            stopped_by = None
            try:
                with _forwarding_signals():
                    returncode = _wait(process, timeout, cancel)
            except _Stopped as stop:
                # gradfix itself got SIGINT, SIGTERM or SIGHUP: pass it on, give the program a moment, then end it all
                stopped_by = stop.signum
                _signal_group(process, stop.signum)
                try:
                    returncode = process.wait(timeout=STOP_GRACE)
                except subprocess.TimeoutExpired:
                    _kill_group(process)
                    returncode = process.wait()
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(process)
                returncode = process.wait()
            except _Cancelled:
                cancelled = True
                _kill_group(process)
                returncode = process.wait()
            finally:
                _kill_group(process, quietly=True)
                # by its pid only while it is unreaped: after that the pid may belong to someone else
                kill_run(process.pid if process.returncode is None else None, marker, cgroup=cgroup, session=process.pid)
                live_runs.ended(marker)
        finally:
            if cgroup is not None:
                cgroup.remove()
            if output is not None:
                output.close()
        if stopped_by is not None:
            # the temporary folder goes when this block is left; then gradfix stops as the signal asked
            raise KeyboardInterrupt() if stopped_by == signal.SIGINT else SystemExit(128 + stopped_by)
        if getattr(process, "lost", False) and not timed_out and not cancelled:
            return None
        tail = ""
        if quiet and os.path.exists(output_path):
            with open(output_path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - OUTPUT_TAIL))
                tail = handle.read().decode("utf-8", "replace")
        data = _read_facts(facts_path)
    elapsed = time.monotonic() - started
    if cancelled:
        return RunFacts(status="cancelled", target=target, args=tuple(args), python=python, returncode=returncode,
                        elapsed=elapsed, error=ErrorInfo("Cancelled", "the run was cancelled", ""))
    common = dict(target=target, args=tuple(args), python=python, returncode=returncode, elapsed=elapsed, output_tail=tail)
    if data is None and not timed_out and returncode is not None and returncode < 0:
        message = f"the program was killed by {signal_name(-returncode)} before gradfix could read what it did"
        return RunFacts(status="crashed", error=ErrorInfo("Signal", message, tail[-3000:]), **common)
    if data is None:
        status = "timeout" if timed_out else "could-not-start"
        message = (
            f"the program was still running after {timeout:g} s and was stopped"
            if timed_out
            else f"the interpreter ended (exit code {returncode}) before gradfix could start the program"
        )
        return RunFacts(status=status, error=ErrorInfo("Timeout" if timed_out else "ChildFailed", message, tail[-3000:]), **common)
    if data.get("version") != FACTS_VERSION:
        return RunFacts(status="could-not-start", error=ErrorInfo(
            "FactsVersion", f"the child sent facts of version {data.get('version')}, gradfix reads version {FACTS_VERSION}", ""),
            **common)
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
        if returncode < 0 and facts.error is None:
            facts.error = ErrorInfo("Signal", f"the program was killed by {signal_name(-returncode)}", "")
    if facts.status == "no-tensorflow" and facts.error is not None:
        facts.error = ErrorInfo(
            facts.error.type,
            facts.error.message,
            facts.error.traceback + "\n" + INSTALL_HINT.format(python=python),
        )
    return facts


class _Cancelled(Exception):
    pass


def _wait(process: subprocess.Popen, timeout: float, cancel) -> int:
    if cancel is None:
        return process.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while True:
        if cancel.is_set():
            raise _Cancelled()
        left = deadline - time.monotonic()
        if left <= 0:
            raise subprocess.TimeoutExpired(process.args, timeout)
        try:
            return process.wait(timeout=min(0.1, left))
        except subprocess.TimeoutExpired:
            continue


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


def signal_name(number: int) -> str:
    try:
        return f"{signal.Signals(number).name} (signal {number})"
    except ValueError:
        return f"signal {number}"


class _Stopped(BaseException):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class _SignalGate:
    """SIGINT, SIGTERM and SIGHUP sent to gradfix during a run (main thread only): raised as _Stopped while gradfix
    waits (``forwarding``), held while it starts the child or cleans up after it. Without the hold, a signal in
    between would end gradfix by its default action with the child still running, and holding gradfix's pipes."""

    def __init__(self) -> None:
        self.open = False
        self.raising = False
        self.held: list[int] = []

    def receive(self, signum, frame) -> None:
        if self.raising:
            self.raising = False  # one _Stopped per wait: the handler of the first is running
            raise _Stopped(signum)
        self.held.append(signum)

    @contextmanager
    def holding(self):
        """Over a whole run; a signal still held at its end stops gradfix as the signal asks, once it has cleaned up."""
        if threading.current_thread() is not threading.main_thread() or self.open:
            yield
            return
        previous = {}
        self.open, self.held = True, []
        try:
            for number in FORWARDED_SIGNALS:
                previous[number] = signal.signal(number, self.receive)
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
            self.open = self.raising = False
        if self.held:
            signum = self.held[0]
            raise KeyboardInterrupt() if signum == signal.SIGINT else SystemExit(128 + signum)

    @contextmanager
    def forwarding(self):
        """While gradfix waits: a signal, or one held since the run began, raises _Stopped."""
        if not self.open:
            yield
            return
        if self.held:
            raise _Stopped(self.held.pop(0))
        self.raising = True
        try:
            yield
        finally:
            self.raising = False


_gate = _SignalGate()
_forwarding_signals = _gate.forwarding


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except OSError:
        pass


def _proc_parents() -> tuple[dict[int, int], dict[int, int]]:
    """Each process's parent, and its session."""
    parents, sessions = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
            sessions[int(entry)] = int(fields[3])
        except (OSError, IndexError, ValueError):
            continue
    return parents, sessions


def _marked(marker: str) -> set[int]:
    needle = f"{RUN_ENV}={marker}".encode()
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                if needle in handle.read().split(b"\0"):
                    found.add(int(entry))
        except OSError:
            continue
    return found


def run_processes(root: int | None, marker: str | None = None, session: int | None = None) -> set[int]:
    """The processes a run started: ``root``'s descendants (found in /proc, whatever their session), those in
    ``session`` (the run's first process's pid: it started one), and every process that inherited the run's
    mark; gradfix's own process never."""
    if not os.path.isdir("/proc"):
        return set()
    parents, sessions = _proc_parents()
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found, queue = set(), [root] if root is not None and root in parents else []
    while queue:
        pid = queue.pop()
        if pid not in found:
            found.add(pid)
            queue.extend(children.get(pid, ()))
    if session is not None:
        found |= {pid for pid, sid in sessions.items() if sid == session}
    if marker:
        found |= _marked(marker)
    found.discard(os.getpid())
    return found


def kill_run(root: int | None, marker: str | None = None, rounds: int = 10, cgroup: RunCgroup | None = None,
             session: int | None = None) -> None:
    """SIGKILL every process the run started, until none is left (a process may fork while it is being killed):
    all of its cgroup at once where it has one, then what /proc shows of it.

    ``session`` is the id of the session the run's first process started (its pid): once that process is
    reaped its pid is free again, but the kernel hands pids out in turn up to ``pid_max`` before it reuses
    one, so no other process leads a session of that id moments later."""
    if cgroup is not None:
        cgroup.kill()
    for _ in range(rounds):
        pids = run_processes(root, marker, session)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.02)


def _read_facts(path: str) -> dict | None:
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None
