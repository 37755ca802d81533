"""Runs forked from a warm server are the runs a fresh interpreter makes: the same facts, the same world seen
by the program, the same ends (timeout, cancel, signals, descendants), and nothing left running.

Each case that concerns how a run ends is run both ways: warm (the default) and cold (``GRADFIX_WARM=0``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path

import pytest

from gradfix.runtime import warm
from gradfix.runtime.runner import run_step
from tests.safety.test_processes import DETACHER, _alive, _cgroup_available, _children, _kill_left, _wait_for

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
RUNTIME = FIXTURES / "runtime"

pytestmark = pytest.mark.tensorflow

STARTS = {"warm": {}, "cold": {"GRADFIX_WARM": "0"}}


def _env(start: str, **extra: str) -> dict[str, str]:
    inherited = {name: value for name, value in os.environ.items() if name != "GRADFIX_WARM"}
    return {**inherited, **STARTS[start], **extra}


def _run(start: str, target: str, cwd, args=(), timeout: float = 120, env: dict | None = None, **options):
    facts = run_step(target, args=args, cwd=str(cwd), timeout=timeout, env=env or _env(start), **options)
    assert facts.start == start, facts.start_reason
    return facts


def _comparable(facts) -> dict:
    data = dict(facts.raw)
    data.pop("elapsed", None)
    return data


@pytest.mark.parametrize("folder, target", [
    ("seed", "example1.py"),
    ("runtime", "pkg.train:main"),
    ("repair", "gan_generator_numpy_moments.py"),
    ("repair", "metric_instance_in_custom_loss.py"),
])
def test_a_warm_run_gives_the_facts_of_a_cold_run(folder, target):
    from gradfix.diagnose import diagnose

    cold = _run("cold", target, FIXTURES / folder)
    assert cold.start_reason == "GRADFIX_WARM=0"
    hot = _run("warm", target, FIXTURES / folder)
    assert hot.status == cold.status == "ok"
    assert _comparable(hot) == _comparable(cold)
    lost = [sorted(source.key for _, source in facts.variables_without_gradient()) for facts in (cold, hot)]
    assert lost[0] and lost[0] == lost[1]
    causes = [[(cause.category, sorted(source.key for source in cause.variables)) for cause in diagnose(facts).causes]
              for facts in (cold, hot)]
    assert causes[0] and causes[0] == causes[1]


PROBE = textwrap.dedent("""
    import json, os, random, re, signal, sys, tempfile, threading
    import numpy, tensorflow as tf, keras


    def descriptor(fd):
        try:
            target = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            return fd + " (gone)"
        return fd + " " + re.sub(r"[0-9a-f]{32}|[\\w-]*gradfix-run-[\\w-]*|[0-9]+", "N", target)


    def seen():
        streams = [[s.name, s.encoding, s.errors, s.line_buffering, s.write_through, type(s.buffer).__name__]
                   for s in (sys.stdin, sys.stdout, sys.stderr)]
        return {
            "argv": sys.argv, "orig_argv": getattr(sys, "orig_argv", None), "path": sys.path, "cwd": os.getcwd(),
            "tmp": tempfile.gettempdir(), "env": {k: v for k, v in os.environ.items() if k not in ("GRADFIX_RUN", "GRADFIX_FACTS")},
            "streams": streams, "stdin": sys.stdin.read(), "leader": [os.getsid(0), os.getpgid(0)] == [os.getpid()] * 2,
            "cgroup": "gradfix-run-" in open("/proc/self/cgroup").read(),
            "modules": sorted(name for name in sys.modules if name.startswith("_gradfix")),
            "signals": [str(signal.getsignal(n)) for n in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGCHLD)],
            "threads": threading.active_count(),  # native ones differ: OpenBLAS starts its worker again when needed
            "descriptors": sorted(descriptor(fd) for fd in os.listdir("/proc/self/fd")),
            "random": [random.random(), float(numpy.random.rand()), float(tf.random.uniform([])),
                       float(keras.layers.Dense(1)(tf.ones((1, 1)))[0, 0])],
        }
""")


def test_a_warm_run_sees_what_a_cold_run_sees(tmp_path):
    run_folder = tmp_path / "project"
    run_folder.mkdir()
    # the probe is a module of the run's own PYTHONPATH entry, as the project's modules are in a verification run
    (run_folder / "probe.py").write_text(PROBE)
    (run_folder / "train.py").write_text("import json, sys\nimport probe\njson.dump(probe.seen(), open(sys.argv[1], 'w'))\n")
    seen = {}
    for name, start in (("cold", "cold"), ("warm", "warm"), ("again", "warm")):
        temporary = tmp_path / f"tmp-{name}"
        temporary.mkdir()
        pythonpath = os.pathsep.join([str(run_folder), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])
        env = _env(start, TMPDIR=str(temporary), PYTHONPATH=pythonpath)
        out = tmp_path / f"{name}.json"
        facts = _run(start, "train.py", run_folder, args=(str(out),), env=env)
        assert facts.status == "no-gradient-call", facts.error
        seen[name] = json.loads(out.read_text())
        assert seen[name]["tmp"] == str(temporary)  # the run's TMPDIR, not the one the server's import cached
        assert seen[name]["env"].pop("TMPDIR") == str(temporary)
        seen[name]["env"].pop("GRADFIX_WARM", None)  # how the cold run was asked for
        seen[name]["argv"][1] = seen[name]["orig_argv"][-1] = seen[name]["tmp"] = None
    assert seen["cold"]["leader"] and seen["cold"]["cgroup"] == _cgroup_available()
    assert seen["cold"]["path"][:2] == [str(run_folder)] * 2  # the program's folder, then the PYTHONPATH entry
    randoms = [seen[name].pop("random") for name in ("cold", "warm", "again")]
    assert seen["warm"] == seen["cold"] and seen["again"] == seen["cold"]
    # fresh seeds in every run, as in a fresh interpreter: no draw repeats the one before
    assert all(a != b for a, b in zip(randoms[1], randoms[2]))


def test_the_runs_of_a_process_share_one_server():
    first = _run("warm", "example2.py", FIXTURES / "seed")
    servers = warm.pool.pids()
    second = _run("warm", "missing_watch.py", RUNTIME)
    assert first.status == second.status == "ok"
    assert servers and warm.pool.pids() == servers


def test_a_program_that_sets_its_environment_before_importing_tensorflow_starts_cold(tmp_path):
    (tmp_path / "train.py").write_text(
        "import os\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'\nimport tensorflow as tf\n"
        "v = tf.Variable(1.0)\nwith tf.GradientTape() as tape:\n    y = v * 2.0\nprint(tape.gradient(y, v))\n")
    facts = _run("cold", "train.py", tmp_path, env=_env("warm"))
    assert facts.status == "ok" and facts.all_variables_get_gradients()
    assert "environ" in facts.start_reason


def test_a_module_of_the_run_that_would_shadow_the_servers_import_starts_cold(tmp_path):
    (tmp_path / "train.py").write_text("pass\n")
    (tmp_path / "sitecustomize.py").write_text("")
    pythonpath = os.pathsep.join([str(tmp_path), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])
    facts = _run("cold", "train.py", tmp_path, env=_env("warm", PYTHONPATH=pythonpath))
    assert "sitecustomize.py" in facts.start_reason


def _hang(tmp_path):
    return "faults/hangs.py", (str(tmp_path / "pids.txt"),)


@pytest.mark.parametrize("start", STARTS)
def test_a_timeout_kills_everything(tmp_path, start):
    target, args = _hang(tmp_path)
    facts = _run(start, target, RUNTIME, args=args, timeout=25)
    assert facts.status == "timeout"
    pids = [int(pid) for pid in (tmp_path / "pids.txt").read_text().split()]
    _wait_for(lambda: not any(_alive(pid) for pid in pids), seconds=10, what="the end of the program and its helper")


@pytest.mark.parametrize("start", STARTS)
def test_a_cancel_kills_everything(tmp_path, start):
    target, args = _hang(tmp_path)
    cancel = threading.Event()
    result = {}
    runner = threading.Thread(target=lambda: result.update(facts=_run(start, target, RUNTIME, args=args, cancel=cancel)))
    runner.start()
    try:
        text = _wait_for(lambda: (tmp_path / "pids.txt").exists() and (tmp_path / "pids.txt").read_text().strip(),
                         seconds=120, what="the program's start")
    finally:
        cancel.set()
        runner.join(60)
    assert result["facts"].status == "cancelled"
    pids = [int(pid) for pid in text.split()]
    _wait_for(lambda: not any(_alive(pid) for pid in pids), seconds=10, what="the end of the program and its helper")


ESCAPER = textwrap.dedent("""
    import subprocess, sys
    # a descendant in a new session, as a data loader or a TensorBoard server might start
    child = subprocess.Popen([sys.executable, "-c", "import time\\nwhile True: time.sleep(1)"], start_new_session=True)
    open(sys.argv[1], "w").write(str(child.pid))
""")


@pytest.mark.parametrize("start", STARTS)
def test_a_descendant_in_a_new_session_is_killed_when_the_program_ends(tmp_path, start):
    (tmp_path / "train.py").write_text(ESCAPER)
    facts = _run(start, "train.py", tmp_path, args=(str(tmp_path / "descendant.pid"),))
    assert facts.status == "no-gradient-call"
    descendant = int((tmp_path / "descendant.pid").read_text())
    try:
        _wait_for(lambda: not _alive(descendant), seconds=10, what="the descendant's end")
    finally:
        _kill_left([descendant])


@pytest.mark.skipif(not _cgroup_available(), reason="needs a cgroup v2 gradfix can write to")
@pytest.mark.parametrize("start", STARTS)
def test_a_descendant_that_double_forks_starts_a_session_and_drops_the_mark_is_killed(tmp_path, start):
    (tmp_path / "train.py").write_text(DETACHER.format(setsid="os.setsid()", setsid_note=" and setsid",
                                                      session_note="a session of its own"))
    _run(start, "train.py", tmp_path, args=(str(tmp_path / "descendant.pid"),))
    descendant = int((tmp_path / "descendant.pid").read_text())
    try:
        _wait_for(lambda: not _alive(descendant), seconds=10, what="the descendant's end")
    finally:
        _kill_left([descendant])


DAEMON = textwrap.dedent("""
    import os, sys, time
    # a daemon made by forks alone (no exec), in a session of its own: without a cgroup, only its mark finds it
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            open(sys.argv[1], "w").write(str(os.getpid()))
            while True:
                time.sleep(1)
        os._exit(0)
    os.wait()
    while not os.path.exists(sys.argv[1]):
        time.sleep(0.05)
""")


@pytest.mark.parametrize("start", STARTS)
def test_without_a_cgroup_a_daemon_forked_without_exec_is_found_by_the_runs_mark(tmp_path, monkeypatch, start):
    from gradfix.runtime import containment

    monkeypatch.setattr(containment.RunCgroup, "create", classmethod(lambda cls, name: None))
    (tmp_path / "train.py").write_text(DAEMON)
    _run(start, "train.py", tmp_path, args=(str(tmp_path / "daemon.pid"),))
    daemon = int((tmp_path / "daemon.pid").read_text())
    try:
        _wait_for(lambda: not _alive(daemon), seconds=10, what="the daemon's end")
    finally:
        _kill_left([daemon])


@pytest.mark.parametrize("start", STARTS)
def test_a_death_by_signal_is_named(tmp_path, start):
    (tmp_path / "train.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    facts = _run(start, "train.py", tmp_path)
    assert facts.status == "exited-before-gradient" and facts.returncode == -signal.SIGSEGV
    assert "killed by SIGSEGV (signal 11)" in facts.error.message


SLEEPER = textwrap.dedent("""
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time\\nwhile True: time.sleep(1)"], start_new_session=True)
    open(sys.argv[1], "w").write(str(child.pid))
    while True:
        time.sleep(0.1)
""")


@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, 130)])
def test_a_signal_to_gradfix_ends_the_program_all_it_started_and_the_server(tmp_path, start, signum, code):
    (tmp_path / "train.py").write_text(SLEEPER)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    driver = subprocess.Popen(
        [sys.executable, "-m", "gradfix", "diagnose", "train.py", "--timeout", "120", "--", str(tmp_path / "pid")],
        cwd=tmp_path, env={**_env(start), "TMPDIR": str(scratch)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    descendant = None
    try:
        descendant = int(_wait_for(lambda: (tmp_path / "pid").exists() and (tmp_path / "pid").read_text(),
                                   seconds=120, what="the program's descendant"))
        started = _children(driver.pid)  # the warm server, or the cold start's interpreter
        driver.send_signal(signum)
        _, stderr = driver.communicate(timeout=60)
        assert driver.returncode == code, stderr
        _wait_for(lambda: not _alive(descendant) and not any(_alive(pid) for pid in started), seconds=10,
                  what="the end of the program, its descendant and the server")
        assert list(scratch.iterdir()) == []
    finally:
        driver.kill()
        if descendant is not None:
            _kill_left([descendant])


PARENT = textwrap.dedent("""
    import os, sys, time
    from gradfix.runtime import warm
    from gradfix.runtime.runner import run_step
    facts = run_step("example2.py", cwd=sys.argv[1])
    print(facts.start, *warm.pool.pids(), flush=True)
    if sys.argv[2] == "hang":
        run_step("faults/hangs.py", args=(sys.argv[3],), cwd=sys.argv[4], timeout=600)
""")


@pytest.mark.parametrize("ending", ["exits", "killed during a run"])
def test_the_server_ends_with_its_parent_and_leaves_no_run_behind(tmp_path, ending):
    pids_file = tmp_path / "pids.txt"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(FIXTURES / "seed"),
                               "hang" if ending != "exits" else "end", str(pids_file), str(RUNTIME)],
                              env=_env("warm"), stdout=subprocess.PIPE, text=True)
    left = []
    try:
        start, *servers = parent.stdout.readline().split()
        assert start == "warm" and len(servers) == 1
        left = [int(servers[0])]
        if ending != "exits":
            left += [int(pid) for pid in _wait_for(lambda: pids_file.exists() and pids_file.read_text().strip(),
                                                   seconds=60, what="the hanging program").split()]
            parent.kill()
        assert parent.wait(timeout=60) in (0, -signal.SIGKILL)
        _wait_for(lambda: not any(_alive(pid) for pid in left), seconds=20, what="the end of the server and its runs")
    finally:
        parent.kill()
        _kill_left(left)


def _server_of(run) -> int:
    before = set(warm.pool.pids())
    facts = run()
    assert facts.start == "warm", facts.start_reason
    (pid,) = set(warm.pool.pids()) - before
    return pid


LOST = textwrap.dedent("""
    import os, sys, time
    if not os.path.exists(sys.argv[1]):
        open(sys.argv[1], "w").write(str(os.getpid()))
        time.sleep(600)
""")


def test_a_run_whose_server_dies_under_it_is_run_again_cold_and_so_are_the_later_runs(tmp_path):
    # a server of its own, so that killing it leaves the other tests' server alone
    env = _env("warm", GRADFIX_TEST_SERVER=uuid.uuid4().hex)
    server = _server_of(lambda: run_step("example2.py", cwd=str(FIXTURES / "seed"), env=env))
    (tmp_path / "train.py").write_text(LOST)
    mark = tmp_path / "first.pid"
    result = {}
    runner = threading.Thread(target=lambda: result.update(
        facts=run_step("train.py", args=(str(mark),), cwd=str(tmp_path), env=env, timeout=120)))
    runner.start()
    first = None
    try:
        first = int(_wait_for(lambda: mark.exists() and mark.read_text(), seconds=60, what="the first run"))
        assert first in _children(server)
        os.kill(server, signal.SIGKILL)
        runner.join(120)
        facts = result["facts"]
        assert facts.start == "cold" and "ended during the run" in facts.start_reason
        assert facts.status == "no-gradient-call"  # the second start found the mark and ended
        _wait_for(lambda: not _alive(first), seconds=10, what="the first run's end")
    finally:
        if first is not None:
            _kill_left([first])
    later = _run("cold", "example2.py", FIXTURES / "seed", env=env)
    assert later.status == "ok" and "could not start, or ended" in later.start_reason
