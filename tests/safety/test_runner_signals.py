"""The user's program cannot escape: signals are forwarded, everything it started is killed, nothing is left behind.

A stand-in interpreter (a shell script) runs the program instead of the child (gradfix/runtime/child), so no TensorFlow is needed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from gradfix.runtime import runner
from gradfix.runtime.runner import run_step

ESCAPER = textwrap.dedent("""
    import os, subprocess, sys, time
    # a descendant in a new session, as a data loader or a TensorBoard server might start
    child = subprocess.Popen([sys.executable, "-c", "import time\\nwhile True: pass"], start_new_session=True)
    open(sys.argv[1], "w").write(str(child.pid))
    while True:
        pass
""")


def _fake_python(tmp_path, program: str) -> str:
    script = tmp_path / "program.py"
    script.write_text(program)
    fake = tmp_path / "fake-python"
    fake.write_text(f"#!/bin/sh\nexec {sys.executable} {script} {tmp_path / 'grandchild.pid'}\n")
    fake.chmod(0o755)
    return str(fake)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for(path, seconds=20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return int(path.read_text())
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGHUP, 128 + signal.SIGHUP),
                                          (signal.SIGINT, 130)])
def test_signal_to_gradfix_ends_the_program_and_all_it_started(tmp_path, signum, code):
    fake = _fake_python(tmp_path, ESCAPER)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    (tmp_path / "train.py").write_text("pass\n")
    driver = subprocess.Popen(
        [sys.executable, "-m", "gradfix", "diagnose", "train.py", "--python", fake, "--timeout", "60"],
        cwd=tmp_path, env={**os.environ, "TMPDIR": str(scratch)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    grandchild = _wait_for(tmp_path / "grandchild.pid")
    assert _alive(grandchild)
    driver.send_signal(signum)
    stdout, stderr = driver.communicate(timeout=30)  # returns: nothing holds gradfix's pipes open
    assert driver.returncode == code, stderr
    time.sleep(0.2)
    assert not _alive(grandchild)
    assert list(scratch.iterdir()) == []  # the run's temporary folder is gone


def test_a_signal_while_the_child_is_started_stops_gradfix_once_the_child_is_ended(tmp_path, monkeypatch):
    # the signal lands between the child's start and gradfix's wait for it, where gradfix used to die by the
    # signal's default action and leave the child running (and holding its pipes)
    fake = _fake_python(tmp_path, ESCAPER)
    (tmp_path / "train.py").write_text("pass\n")
    started = []
    popen = subprocess.Popen

    def start_then_signal(*args, **kwargs):
        process = popen(*args, **kwargs)
        started.append(process)
        os.kill(os.getpid(), signal.SIGTERM)
        return process

    monkeypatch.setattr(runner.subprocess, "Popen", start_then_signal)
    with pytest.raises(SystemExit) as stopped:
        run_step("train.py", python=fake, cwd=str(tmp_path), timeout=60)
    assert stopped.value.code == 128 + signal.SIGTERM
    [child] = started
    assert child.poll() is not None  # ended and reaped before gradfix stopped
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # gradfix's handler is gone with the run


def test_a_new_session_left_behind_after_a_normal_exit_is_killed(tmp_path):
    program = ESCAPER.replace("while True:\n    pass\n", "sys.exit(0)\n")
    fake = _fake_python(tmp_path, program)
    facts = run_step("train.py", python=fake, cwd=str(tmp_path), timeout=30)
    grandchild = int((tmp_path / "grandchild.pid").read_text())
    time.sleep(0.2)
    assert not _alive(grandchild)
    assert facts.status != "ok"


def test_death_by_signal_is_named(tmp_path):
    fake = _fake_python(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    facts = run_step("train.py", python=fake, cwd=str(tmp_path), timeout=30)
    assert facts.status == "crashed"
    assert "killed by SIGSEGV (signal 11)" in facts.error.message


def test_diagnose_exits_2_on_a_signal_death(tmp_path):
    fake = _fake_python(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    (tmp_path / "train.py").write_text("pass\n")
    completed = subprocess.run([sys.executable, "-m", "gradfix", "diagnose", "train.py", "--python", fake],
                               cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 2
    assert "exit code -11" not in completed.stdout + completed.stderr
