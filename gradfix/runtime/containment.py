"""Finding every process a run started, to stop them all when it ends.

Where a cgroup v2 can be made under gradfix's own (Linux, with that part of the tree
writable by gradfix's user), each run gets one: a process cannot leave its cgroup by
forking, double-forking, starting a new session or clearing its environment, and
``cgroup.kill`` ends every process in it at once. Elsewhere a run's processes are
found in /proc: the first process's descendants, its session, and every process
whose environment still carries the run's mark (``GRADFIX_RUN``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time

# Every process a run starts inherits this mark, so that those which leave the process
# group or the tree (a new session, a parent that died) are still found and stopped.
RUN_ENV = "GRADFIX_RUN"
CGROUP_ENV = "GRADFIX_CGROUP"  # the run's cgroup folder: the child's entry joins it before the program runs
EMPTY_WAIT = 2.0  # seconds to wait for a killed cgroup to empty before its folder is removed


def _cgroup2_mount() -> str | None:
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                before, _, after = line.partition(" - ")
                if after.split(" ", 1)[0] == "cgroup2":
                    return before.split()[4].replace("\\040", " ")
    except OSError:
        return None
    return None


def _own_cgroup() -> str | None:
    try:
        with open("/proc/self/cgroup", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("0::"):
                    return line[3:].strip()
    except OSError:
        return None
    return None


class RunCgroup:
    """One run's cgroup v2: the processes in it, and the means to end them all."""

    def __init__(self, path: str):
        self.path = path

    @classmethod
    def create(cls, name: str) -> "RunCgroup | None":
        """A new cgroup beside nothing but gradfix's own processes; None where cgroups v2 cannot be used."""
        mount, own = _cgroup2_mount(), _own_cgroup()
        if mount is None or own is None:
            return None
        path = os.path.join(mount, own.lstrip("/"), name)
        try:
            os.mkdir(path)
        except OSError:
            return None
        return cls(path)

    @property
    def procs_path(self) -> str:
        """The file a process's id is written to, to move it in."""
        return os.path.join(self.path, "cgroup.procs")

    def joining(self, command: list[str]) -> list[str]:
        """``command`` run so that its first process joins the cgroup itself, before exec: moved from outside once
        it has started, it could already have forked a descendant that stays outside."""
        return ["/bin/sh", "-c", 'echo $$ > "$0" 2>/dev/null; exec "$@"', self.procs_path, *command]

    def add(self, pid: int) -> bool:
        """Move ``pid`` into the cgroup (and with it, everything it starts from now on)."""
        try:
            with open(os.path.join(self.path, "cgroup.procs"), "w") as handle:
                handle.write(f"{pid}\n")
            return True
        except OSError:
            return False

    def pids(self) -> set[int]:
        try:
            with open(os.path.join(self.path, "cgroup.procs")) as handle:
                return {int(line) for line in handle if line.strip()}
        except (OSError, ValueError):
            return set()

    def kill(self) -> None:
        """SIGKILL every process in the cgroup: at once through ``cgroup.kill`` (Linux 5.14), else one by one until none is left."""
        try:
            with open(os.path.join(self.path, "cgroup.kill"), "w") as handle:
                handle.write("1\n")
        except OSError:
            for _ in range(50):
                pids = self.pids()
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                time.sleep(0.02)

    def remove(self) -> None:
        """Remove the cgroup once the killed processes have left it (a cgroup with processes cannot be removed)."""
        deadline = time.monotonic() + EMPTY_WAIT
        while True:
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.02)


class LiveRuns:
    """The runs under way in this process, so that a signal to a server can end them all (and remove their folders)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, tuple[subprocess.Popen, RunCgroup | None, str]] = {}

    def started(self, marker: str, process: subprocess.Popen, cgroup: RunCgroup | None, scratch: str) -> None:
        with self._lock:
            self._runs[marker] = (process, cgroup, scratch)

    def ended(self, marker: str) -> None:
        with self._lock:
            self._runs.pop(marker, None)

    def kill_all(self) -> None:
        from gradfix.runtime.runner import kill_run

        with self._lock:
            runs = list(self._runs.items())
            self._runs.clear()
        for marker, (process, cgroup, scratch) in runs:
            # by its pid only while it is unreaped: after that the pid may belong to someone else
            kill_run(process.pid if process.returncode is None else None, marker, cgroup=cgroup, session=process.pid)
            if cgroup is not None:
                cgroup.remove()
            shutil.rmtree(scratch, ignore_errors=True)


# One per process: the runs a signal to this process must end.
live_runs = LiveRuns()
