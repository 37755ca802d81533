"""Nothing left running: pool workers end with `check`, a server's run ends with the server, and a descendant
that double-forks, starts a new session or drops gradfix's mark from its environment is still found and stopped.

The user's program is a stand-in run by a shell script in place of the interpreter, so no TensorFlow is needed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from gradfix.runtime.runner import run_step
from tests.safety.conftest import FIXTURES

STOPPING = [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGHUP, 128 + signal.SIGHUP)]


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def _alive(pid: int) -> bool:
    return _state(pid) not in (None, "Z", "X")


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    if int(handle.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError):
                continue
    return found


def _wait_for(predicate, seconds=60.0, what="the condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} never came")


def _kill_left(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


@pytest.mark.parametrize("signum, code", STOPPING)
def test_a_signal_to_check_with_jobs_stops_the_pool_workers(tmp_path, signum, code):
    # enough files for the pool (24 or more), each taking a moment to analyse
    module = (FIXTURES / "all-variables-as-sources" / "batchnorm_custom_loop.py").read_text()
    module += "".join(f"\n\ndef helper_{i}(x):\n    with tf.GradientTape() as tape:\n        y = x * {i}\n"
                      f"    return tape.gradient(y, x)\n" for i in range(200))
    for index in range(60):
        (tmp_path / f"module_{index}.py").write_text(module)
    driver = subprocess.Popen([sys.executable, "-m", "gradfix", "check", "--jobs", "2", "."], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = []
    try:
        workers = _wait_for(lambda: len(_children(driver.pid)) >= 2 and _children(driver.pid), what="two pool workers")
        time.sleep(0.5)
        driver.send_signal(signum)
        assert driver.wait(timeout=60) == code
        _wait_for(lambda: not any(_alive(pid) for pid in workers), seconds=10, what="the workers' end")
    finally:
        driver.kill()
        _kill_left(workers)


ESCAPER = textwrap.dedent("""
    import os, subprocess, sys, time
    # a descendant in a new session, as a data loader or a TensorBoard server might start
    child = subprocess.Popen([sys.executable, "-c", "import time\\nwhile True: time.sleep(1)"], start_new_session=True)
    open(sys.argv[1], "w").write(str(child.pid))
    while True:
        time.sleep(0.1)
""")


def _fake_python(tmp_path, program: str) -> str:
    script = tmp_path / "program.py"
    script.write_text(program)
    fake = tmp_path / "fake-python"
    fake.write_text(f"#!/bin/sh\nexec {sys.executable} {script} {tmp_path / 'descendant.pid'}\n")
    fake.chmod(0o755)
    return str(fake)


def _message(payload: dict) -> bytes:
    body = json.dumps(payload).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


@pytest.mark.parametrize("signum, code", STOPPING)
def test_a_signal_to_the_server_during_a_diagnosis_ends_the_program_its_children_and_its_folders(tmp_path, signum, code):
    fake = _fake_python(tmp_path, ESCAPER)
    (tmp_path / "train.py").write_text("pass\n")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    server = subprocess.Popen([sys.executable, "-m", "gradfix", "lsp"], cwd=tmp_path, stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "TMPDIR": str(scratch)})
    descendant = None
    try:
        server.stdin.write(_message({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "processId": os.getpid(), "rootUri": tmp_path.as_uri(), "capabilities": {},
            "workspaceFolders": [{"uri": tmp_path.as_uri(), "name": "work"}]}}))
        server.stdin.write(_message({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
        server.stdin.write(_message({"jsonrpc": "2.0", "id": 2, "method": "workspace/executeCommand", "params": {
            "command": "gradfix.diagnose", "arguments": [{"target": "train.py", "python": fake, "timeout": 120}]}}))
        server.stdin.flush()
        pid_file = tmp_path / "descendant.pid"
        descendant = int(_wait_for(lambda: pid_file.exists() and pid_file.read_text(), what="the program's descendant"))
        program = [pid for pid in _children(server.pid)]
        assert _alive(descendant) and any(os.listdir(scratch))  # the run's folder is there while it runs
        server.send_signal(signum)
        assert server.wait(timeout=60) == code
        _wait_for(lambda: not _alive(descendant) and not any(_alive(pid) for pid in program), seconds=10,
                  what="the end of the program and its descendant")
        assert list(scratch.iterdir()) == []  # the run's temporary folder is gone
    finally:
        server.kill()
        if descendant is not None:
            _kill_left([descendant])


DETACHER = textwrap.dedent("""
    import os, sys, time
    # a double fork{setsid_note}, then a fresh environment: no parent, {session_note}, no GRADFIX_RUN mark
    if os.fork() == 0:
        {setsid}
        if os.fork() == 0:
            code = "import os, sys, time\\nopen(sys.argv[1], 'w').write(str(os.getpid()))\\nwhile True: time.sleep(1)"
            os.execve(sys.executable, [sys.executable, "-c", code, sys.argv[1]], {{}})
        os._exit(0)
    os.wait()
    while not os.path.exists(sys.argv[1]):
        time.sleep(0.05)
    sys.exit(0)
""")


def _cgroup_available() -> bool:
    """Whether this process's cgroup v2 folder can hold a new cgroup (what gradfix needs to make one per run)."""
    try:
        with open("/proc/self/mountinfo") as handle:
            mounts = [line.split(" - ")[0].split()[4] for line in handle if " - cgroup2 " in line]
        with open("/proc/self/cgroup") as handle:
            own = next(line[3:].strip() for line in handle if line.startswith("0::"))
    except (OSError, StopIteration):
        return False
    if not mounts:
        return False
    probe = os.path.join(mounts[0], own.lstrip("/"), f"gradfix-probe-{os.getpid()}")
    try:
        os.mkdir(probe)
        os.rmdir(probe)
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _cgroup_available(),
                    reason="needs a cgroup v2 gradfix can write to; without one a process that leaves the session and "
                           "drops the mark is not found, as the README says")
def test_a_descendant_that_double_forks_starts_a_session_and_drops_the_mark_is_stopped(tmp_path):
    program = DETACHER.format(setsid="os.setsid()", setsid_note=" and setsid", session_note="a session of its own")
    fake = _fake_python(tmp_path, program)
    descendant = None
    try:
        run_step("train.py", python=fake, cwd=str(tmp_path), timeout=60)
        descendant = int((tmp_path / "descendant.pid").read_text())
        _wait_for(lambda: not _alive(descendant), seconds=10, what="the descendant's end")
    finally:
        if descendant is not None:
            _kill_left([descendant])


def test_without_a_cgroup_a_descendant_in_the_run_session_is_stopped_without_the_mark(tmp_path, monkeypatch):
    try:
        from gradfix.runtime import containment
    except ImportError:  # a gradfix without cgroups: the fallback is all it has
        pass
    else:
        monkeypatch.setattr(containment.RunCgroup, "create", classmethod(lambda cls, name: None))
    program = DETACHER.format(setsid="os.setpgid(0, 0)", setsid_note=" into a process group of its own",
                              session_note="still in the run's session")
    fake = _fake_python(tmp_path, program)
    descendant = None
    try:
        run_step("train.py", python=fake, cwd=str(tmp_path), timeout=60)
        descendant = int((tmp_path / "descendant.pid").read_text())
        _wait_for(lambda: not _alive(descendant), seconds=10, what="the descendant's end")
    finally:
        if descendant is not None:
            _kill_left([descendant])
