"""Warm starts: runs forked from a server that imported TensorFlow once, in place of a fresh interpreter each.

``prepare`` (called by ``run_step``) finds or starts the server for a run's interpreter and environment, and
``Plan.launch`` asks it for the run: a Popen-like ``WarmProcess``, or None, and the run starts cold as
before. One server per (interpreter, environment less gradfix's variables of each run), started by the first
run that needs it and kept for every later run of this gradfix process: the diagnosis, each candidate fix's
verification, the rounds, the language server's runs, at most ``MAX_SERVERS`` at once. The server is
``child/server.py``; what makes a run fit for it, ``warm_checks``.

A server that cannot start, or dies, leaves every later run of its key to the cold path for the rest of the
process; a run whose server died under it is lost (``WarmProcess.lost``) and run again cold by ``run_step``.
When gradfix ends, however it ends, its end of the socket closes and the server kills what it still runs.
"""

from __future__ import annotations

import atexit
import collections
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from gradfix.runtime.containment import RUN_ENV, RunCgroup
from gradfix.runtime.warm_checks import cold_reason, pythonpath_entries, server_environment, shadowing

SERVER = Path(__file__).with_name("child") / "server.py"
MAX_SERVERS = 2  # each holds an interpreter with TensorFlow imported (about 500 MB)
PACKET = 1 << 20
FAILED = "the warm server of this interpreter and environment could not start, or ended"
FORK_WAIT = 60.0  # seconds a server has to answer a run (a fork takes milliseconds)
CLOSE_WAIT = 5.0  # seconds a closed server has to kill its runs and end, before it is killed


class WarmProcess:
    """A run a server forked, as ``run_step`` uses a ``Popen``: ``pid``, ``args``, ``poll``, ``wait``, ``kill``.

    ``returncode`` stays None until ``wait`` or ``poll`` has seen the end, and the server keeps the run
    unreaped until then: while it is None, the pid names the run and nothing else (as a Popen's does)."""

    def __init__(self, server: "WarmServer", pid: int, args: list[str]):
        self.server = server
        self.pid = pid
        self.args = args
        self.returncode: int | None = None
        self.lost = False  # the server died before the run ended: its result is not the run's
        self._status: int | None = None
        self._ended = threading.Event()

    def poll(self) -> int | None:
        if self.returncode is None and self._ended.is_set():
            self._release()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            assert timeout is not None, "a wait without a timeout returns only once the run ended"
            raise subprocess.TimeoutExpired(self.args, timeout)
        if self.returncode is None:
            self._release()
        assert self.returncode is not None, "set with the end"
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass

    def ended(self, status: int, lost: bool = False) -> None:
        self._status, self.lost = status, lost
        self._ended.set()

    def _release(self) -> None:
        self.returncode = self._status
        if not self.lost:
            self.server.reap(self.pid)


@dataclass
class _Request:
    args: list[str]
    answer: WarmProcess | None = None
    done: threading.Event = field(default_factory=threading.Event)


class WarmServer:
    """One server: its process, the socket to it, and the runs it forked that have not ended yet."""

    def __init__(self, python: str, env: Mapping[str, str]):
        self.python = python
        self.env = dict(env)
        self.marker = uuid.uuid4().hex
        self.state = "starting"  # then "ready", "failed" (could not start, or died) or "closed"
        self.died = False  # the socket ended without gradfix closing it: the key's runs start cold from now on
        self.changed = threading.Condition()
        self.watch: dict[str, int] = {}
        self.names: frozenset[str] = frozenset()
        self.pythonpath: list[str] = []
        self.environ_changes: dict[str, list] = {}  # what TensorFlow's import set or removed: [before, after]
        self.output: tuple[str, ...] = ("", "")
        self.process: subprocess.Popen | None = None
        self.cgroup: RunCgroup | None = None
        self.used = time.monotonic()
        self._channel: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._pending: collections.deque[_Request] = collections.deque()
        self._runs: dict[int, WarmProcess] = {}
        self._captured: tuple = ()

    def start(self) -> bool:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.cgroup = RunCgroup.create(f"gradfix-warm-{self.marker}")
        command = [self.python, str(SERVER), str(theirs.fileno())]
        if self.cgroup is not None:
            command = self.cgroup.joining([*command, self.cgroup.path])
        env = dict(self.env)
        env[RUN_ENV] = self.marker  # the server's processes are found by it, as a run's are
        # what the import writes goes to each run's output, where a cold start's import writes it
        self._captured = (tempfile.TemporaryFile(), tempfile.TemporaryFile())
        try:
            self.process = subprocess.Popen(command, cwd="/", env=env, stdin=subprocess.DEVNULL,
                                            stdout=self._captured[0], stderr=self._captured[1],
                                            pass_fds=(theirs.fileno(),), start_new_session=True)
        except OSError:
            ours.close()
            self._failed()
            return False
        finally:
            theirs.close()
        self._channel = ours
        threading.Thread(target=self._read, name="gradfix-warm-server", daemon=True).start()
        return True

    def wait_ready(self, deadline: float, cancel=None) -> bool:
        with self.changed:
            while self.state == "starting":
                left = deadline - time.monotonic()
                if left <= 0 or (cancel is not None and cancel.is_set()):
                    return False
                self.changed.wait(min(left, 0.1))
            return self.state == "ready"

    def stale(self) -> bool:
        """Whether a folder on the server's sys.path changed since its start (a package installed or removed)."""
        for folder, mtime in self.watch.items():
            try:
                if os.stat(folder).st_mtime_ns != mtime:
                    return True
            except OSError:
                return True
        return False

    def unusable(self) -> bool:
        """It could not start, died, or was ended for not answering."""
        return self.died or self.state in ("failed", "closed")

    def busy(self) -> bool:
        return bool(self._runs or self._pending)

    def run(self, request: dict, fds: Sequence[int], args: list[str]) -> WarmProcess | None:
        """Fork the run; None if the server refused it or is gone (the run then starts cold)."""
        waiting = _Request(args)
        with self._send_lock:
            if self.state != "ready" or self.died:
                return None
            self._pending.append(waiting)
            assert self._channel is not None, "a ready server has its channel"
            try:
                socket.send_fds(self._channel, [json.dumps({"run": request}).encode("utf-8")], list(fds))
            except OSError:
                self._pending.remove(waiting)
                return None
        self.used = time.monotonic()
        if not waiting.done.wait(FORK_WAIT):
            # a server that does not answer is ended, and what it forked with it, before the run starts cold
            self.close()
            return None
        return waiting.answer

    def reap(self, pid: int) -> None:
        self._send({"reap": pid})

    def close(self) -> None:
        """End the server: it kills what it still runs; then anything of it that is left is killed."""
        from gradfix.runtime.runner import kill_run

        with self.changed:
            if self.state == "closed":
                return
            self.state = "closed"
            self.changed.notify_all()
        if self._channel is not None:
            try:
                self._channel.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self.process is not None:
            try:
                self.process.wait(timeout=CLOSE_WAIT)
            except subprocess.TimeoutExpired:
                pass
            pid = self.process.pid
            kill_run(pid if self.process.poll() is None else None, self.marker, cgroup=self.cgroup, session=pid)
            self.process.poll()
        if self.cgroup is not None:
            self.cgroup.remove()
        for handle in self._captured:
            handle.close()

    def _send(self, message: dict) -> None:
        assert self._channel is not None, "only a started server is sent to"
        with self._send_lock:
            try:
                self._channel.send(json.dumps(message).encode("utf-8"))
            except OSError:
                pass

    def _read(self) -> None:
        assert self._channel is not None, "read once started"
        try:
            while True:
                data = self._channel.recv(PACKET)
                if not data:
                    break
                self._receive(json.loads(data.decode("utf-8")))
        except (OSError, ValueError):
            pass
        self._lose()

    def _receive(self, message: dict) -> None:
        if "hello" in message:
            self.watch = dict(message["hello"].get("watch", {}))
        elif "ready" in message:
            self.names = frozenset(message["ready"].get("names", ()))
            self.pythonpath = list(message["ready"].get("pythonpath", ()))
            self.environ_changes = dict(message["ready"].get("environ", {}))
            self.output = tuple(_read_all(handle) for handle in self._captured)
            self._set_state("ready")
        elif "failed" in message:
            self._failed()
        elif ("started" in message or "refused" in message) and self._pending:
            waiting = self._pending.popleft()
            if "started" in message:
                waiting.answer = self._runs[message["started"]] = WarmProcess(self, message["started"], waiting.args)
            waiting.done.set()
        elif "exited" in message:
            process = self._runs.pop(message["exited"], None)
            if process is not None:
                process.ended(message["status"])

    def _lose(self) -> None:
        """The socket ended: every run still waited for is lost, and the server (unless gradfix closed it) died."""
        with self._send_lock:
            closed = self.state == "closed"
            self.died = not closed
            while self._pending:
                self._pending.popleft().done.set()
        self._failed()
        for process in list(self._runs.values()):
            process.ended(-signal.SIGKILL, lost=True)
        self._runs.clear()
        if not closed and self.process is not None:
            threading.Thread(target=self.close, name="gradfix-warm-close", daemon=True).start()

    def _failed(self) -> None:
        self._set_state("failed")

    def _set_state(self, state: str) -> None:
        with self.changed:
            if self.state not in ("closed", "failed"):
                self.state = state
            self.changed.notify_all()


def _read_all(handle) -> str:
    handle.seek(0)
    return handle.read().decode("latin-1")


class Pool:
    """The servers of this process, by key; the keys whose server failed (cold from then on)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._servers: dict[tuple, WarmServer] = {}
        self._failed: set[tuple] = set()
        self._retired: list[WarmServer] = []

    def server(self, python: str, key: tuple, env: Mapping[str, str], deadline: float,
               cancel=None) -> tuple[WarmServer | None, str]:
        """The ready server of ``key``, started if there is none; else None and why."""
        closing: list[WarmServer] = []
        with self._lock:
            if key in self._failed:
                return None, FAILED
            server = self._servers.get(key)
            if server is not None and server.unusable():
                del self._servers[key]
                self._failed.add(key)
                return None, FAILED
            if server is not None and server.state == "ready" and server.stale():
                del self._servers[key]
                (self._retired if server.busy() else closing).append(server)
                server = None
            if server is None:
                server = WarmServer(python, env)
                if not server.start():
                    self._failed.add(key)
                    return None, FAILED
                self._servers[key] = server
                closing += self._evicted(key)
            server.used = time.monotonic()
        for old in closing:
            old.close()
        if server.wait_ready(deadline, cancel):
            return server, ""
        if server.unusable():
            with self._lock:
                self._failed.add(key)
            return None, FAILED
        return None, "the warm server was not ready within the run's time"

    def _evicted(self, keep: tuple) -> list[WarmServer]:
        out = []
        for key, server in list(self._servers.items()):
            if server.unusable():
                self._failed.add(key)
                out.append(self._servers.pop(key))
        idle = sorted((server.used, key) for key, server in self._servers.items() if key != keep and not server.busy())
        while len(self._servers) > MAX_SERVERS and idle:
            _, key = idle.pop(0)
            out.append(self._servers.pop(key))
        return out

    def pids(self) -> list[int]:
        """The servers' processes (for the tests)."""
        with self._lock:
            return [server.process.pid for server in self._servers.values()
                    if server.process is not None and server.state in ("starting", "ready") and not server.died]

    def close(self) -> None:
        with self._lock:
            servers = list(self._servers.values()) + self._retired
            self._servers.clear()
            self._retired = []
        for server in servers:
            server.close()


pool = Pool()
atexit.register(pool.close)


@dataclass
class Plan:
    """How a run starts: ``server`` None means cold, and ``reason`` says why (empty when the choice was the user's)."""

    server: WarmServer | None
    reason: str = ""
    pythonpath: list[str] = field(default_factory=list)
    launched: bool = False  # the server forked the run

    def launch(self, python: str, target: str, args: Sequence[str], child_main: str, env: Mapping[str, str],
               workdir: str, stdout: int | None, stderr: int | None, shell: bool) -> WarmProcess | None:
        """The run forked by the server (stdout and stderr: descriptors, None for gradfix's own); None: start cold.
        ``shell``: a cold start would run /bin/sh first (to join the cgroup), which sets PWD."""
        if self.server is None:
            return None
        argv = [child_main, target, *args]
        request = {"env": dict(env), "cwd": os.path.abspath(workdir), "argv": argv, "pythonpath": self.pythonpath,
                   "output": list(self.server.output), "shell": shell}
        with open(os.devnull, "rb") as stdin:
            fds = [stdin.fileno(), 1 if stdout is None else stdout, 2 if stderr is None else stderr]
            process = self.server.run(request, fds, [python, *argv])
        if process is None:
            self.reason = "the warm server could not fork the run"
        self.launched = process is not None
        return process


def prepare(target: str, python: str, workdir: str, env: Mapping[str, str], deadline: float, cancel=None) -> Plan:
    """The warm server a run may be forked from, started and waited for if need be; or why the run starts cold."""
    workdir = os.path.abspath(workdir)
    reason = cold_reason(target, python, workdir, env)
    if reason is not None:
        return Plan(None, reason)
    key, server_env = server_environment(env, workdir)
    server, reason = pool.server(python, (python, key), server_env, deadline, cancel)
    if server is None:
        return Plan(None, reason)
    entries = pythonpath_entries(env, workdir)
    reason = shadowing(entries, server.pythonpath, server.names)
    if reason is not None:
        return Plan(None, reason)
    for name, (before, _) in server.environ_changes.items():
        if env.get(name) != before:
            # the import decided with the server's value of a variable this run sets otherwise (a per-run one)
            return Plan(None, f"TensorFlow's import set {name}, which this run has otherwise")
    return Plan(server, "", entries)
