"""A warm start for the child: TensorFlow and Keras imported once, then one fork per run.

Run by path in the user's interpreter, like ``__main__.py``: ``python .../child/server.py FD [CGROUP]``, FD
being a Unix SOCK_SEQPACKET socket to gradfix (``gradfix.runtime.warm``) and CGROUP the server's own cgroup
folder, if gradfix made one. Standard library only, nothing of gradfix outside this folder. It imports
TensorFlow and Keras, nothing of the program; each run it is asked for is a fork that becomes what
``__main__.py`` is in a fresh interpreter: a session of its own, the run's cgroup joined first, then the run's
environment, folder, ``sys.argv``, ``sys.path`` and standard streams, fresh random seeds, and the same
``entry.main``.

Messages are JSON, one a packet:

- to gradfix, ``{"hello": {"watch": {folder: mtime}}}`` before the import (the folders on ``sys.path``: once
  a package is installed or removed gradfix starts another server), then ``{"ready": {"names": [...],
  "pythonpath": [...], "environ": {name: [before, after]}}}`` (every top-level module name the start-up and the
  import looked for, found or not; the variables the import set or removed) or ``{"failed": message}``;
- from gradfix, ``{"run": {"env", "cwd", "argv", "pythonpath", "output", "shell"}}`` with three descriptors (stdin,
  stdout, stderr), answered with ``{"started": pid}`` or ``{"refused": message}``; once the run ends,
  ``{"exited": pid, "status": code}`` (as ``Popen.returncode``: the exit code, or minus the signal's number).
  The run stays a zombie, so that its pid names no other process, until gradfix sends ``{"reap": pid}``.

The end of the socket (gradfix ended, however it ended) ends the server, and every run still going with it.
"""

import json
import os
import select
import signal
import socket
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
MARK = "GRADFIX_RUN"  # gradfix's mark of a run's processes, read from /proc/PID/environ
PACKET = 1 << 20  # the largest message: a request carries the run's whole environment
POLL = 0.05  # seconds between looks at the runs whose end no pidfd tells (kernels before 5.3)


def send(channel, message):
    channel.send(json.dumps(message).encode("utf-8"))


class Lookups(object):
    """A finder that finds nothing and remembers each top-level name asked for: a module of the run's own
    PYTHONPATH by one of these names would have changed a cold start's import."""

    def __init__(self):
        self.names = set()

    def find_spec(self, name, path=None, target=None):
        self.names.add(name.partition(".")[0])
        return None


def top_level_names():
    return {name.partition(".")[0] for name in list(sys.modules)}


def folder_times():
    times = {}
    for folder in sys.path:
        try:
            times[folder] = os.stat(folder).st_mtime_ns
        except OSError:
            continue
    return times


def own_pythonpath():
    value = os.environ.get("PYTHONPATH")
    return [os.path.abspath(entry) for entry in value.split(os.pathsep)] if value else []


def load_boot():
    """``__main__.py``, loaded under a private name: its ``load_entry`` and ``join_cgroup`` are the cold start's."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("_gradfix_child_main", os.path.join(HERE, "__main__.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv):
    if len(argv) not in (2, 3) or not argv[1].isdigit():
        sys.stderr.write("usage: %s FD [CGROUP] (gradfix starts it)\n" % (argv[0] if argv else "server.py"))
        return 2
    if sys.path and sys.path[0] and os.path.realpath(sys.path[0]) == os.path.realpath(HERE):
        del sys.path[0]
    channel = socket.socket(fileno=int(argv[1]))
    if not hasattr(socket, "recv_fds") or not hasattr(os, "fork"):
        send(channel, {"failed": "this interpreter cannot pass descriptors or fork"})
        return 1
    boot = load_boot()
    names = top_level_names() | {"sitecustomize", "usercustomize"}
    send(channel, {"hello": {"watch": folder_times()}})
    lookups = Lookups()
    before = dict(os.environ)
    sys.meta_path.insert(0, lookups)
    try:
        import tensorflow  # noqa: F401
        try:
            import keras  # noqa: F401
        except Exception:
            pass  # the run's own import of keras fails the same way, as in a cold start
    except BaseException as problem:
        send(channel, {"failed": "%s: %s" % (type(problem).__name__, problem)})
        return 1
    finally:
        sys.meta_path.remove(lookups)
    names |= lookups.names | top_level_names()
    pythonpath = own_pythonpath()
    # TensorFlow's import sets variables of its own (TF2_BEHAVIOR, TPU_ML_PLATFORM, ...): each run gets them again
    changes = {name: [before.get(name), os.environ.get(name)] for name in set(before) | set(os.environ)
               if before.get(name) != os.environ.get(name)}
    send(channel, {"ready": {"names": sorted(names), "pythonpath": pythonpath, "environ": changes}})
    Server(channel, boot, pythonpath, changes, argv[2] if len(argv) == 3 else None).serve()
    return 0


class Server(object):
    def __init__(self, channel, boot, pythonpath, environ_changes, cgroup):
        self.channel = channel
        self.boot = boot
        self.pythonpath = pythonpath
        self.environ_changes = environ_changes
        self.cgroup = cgroup
        self.pid = os.getpid()
        self.running = {}  # pid -> its pidfd (None without one), for the runs whose end was not told yet
        self.ended = set()  # the runs told of, not reaped yet
        self.run_cgroups = {}  # pid -> the run's cgroup folder, killed with it if the server ends first

    def serve(self):
        try:
            while True:
                pidfds = [fd for fd in self.running.values() if fd is not None]
                polling = len(pidfds) < len(self.running)
                readable = select.select([self.channel] + pidfds, [], [], POLL if polling else None)[0]
                if self.channel in readable and not self.message():
                    break
                self.report_ends()
        except OSError:
            pass  # gradfix is gone: its end of the socket is closed
        self.end()

    def message(self):
        data, fds, _, _ = socket.recv_fds(self.channel, PACKET, 3)
        if not data:
            for fd in fds:
                os.close(fd)
            return False
        message = json.loads(data.decode("utf-8"))
        if "run" in message:
            self.start(message["run"], fds)
        elif "reap" in message and message["reap"] in self.ended:
            self.ended.discard(message["reap"])
            self.run_cgroups.pop(message["reap"], None)
            reap(message["reap"])
        return True

    def start(self, request, fds):
        try:
            with warnings.catch_warnings():
                # Python 3.12 warns of a fork while other threads exist: the one left after the import is NumPy's
                # OpenBLAS worker, which OpenBLAS starts again in the fork when it needs it
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
        except OSError as problem:
            for fd in fds:
                os.close(fd)
            send(self.channel, {"refused": "fork: %s" % problem})
            return
        if pid == 0:
            self.become_run(request, fds)
        for fd in fds:
            os.close(fd)
        self.running[pid] = pidfd(pid)
        self.run_cgroups[pid] = request["env"].get("GRADFIX_CGROUP")
        send(self.channel, {"started": pid})

    def report_ends(self):
        for pid, fd in list(self.running.items()):
            status = exit_status(pid)
            if status is None:
                continue
            if fd is not None:
                os.close(fd)
            del self.running[pid]
            self.ended.add(pid)
            send(self.channel, {"exited": pid, "status": status})

    def end(self):
        """Kill every run not reaped yet (each in its session, its process group and its cgroup), then leave."""
        pids = list(self.running) + list(self.ended)
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            folder = self.run_cgroups.get(pid)
            if folder:
                try:
                    with open(os.path.join(folder, "cgroup.kill"), "w") as handle:
                        handle.write("1\n")
                except OSError:
                    pass
        for pid in pids:
            reap(pid)
        remove_folders([folder for folder in self.run_cgroups.values() if folder])
        if self.cgroup:
            # out of its own cgroup, so that the folder can go even when gradfix died without removing it
            try:
                with open(os.path.join(os.path.dirname(self.cgroup), "cgroup.procs"), "w") as handle:
                    handle.write("0\n")
                os.rmdir(self.cgroup)
            except OSError:
                pass
        os._exit(0)

    def become_run(self, request, fds):
        """In the fork: become the cold start's ``__main__.py`` for this run, run it, and never return."""
        code = 1
        try:
            os.setsid()
            os.environ.clear()
            os.environ.update(request["env"])
            self.boot.join_cgroup()
            relabel(os.environ.get(MARK))
            for name, (_, value) in self.environ_changes.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            if os.getppid() != self.pid:
                os._exit(1)  # the server died before this run began: nothing would end it
            self.channel.close()
            for fd in self.running.values():
                if fd is not None:
                    os.close(fd)
            take_streams(fds)
            replay(request.get("output") or ("", ""))
            os.chdir(request["cwd"])
            if request.get("shell"):
                shell_pwd()
            sys.argv = list(request["argv"])
            if hasattr(sys, "orig_argv"):
                sys.orig_argv = sys.orig_argv[:1] + sys.argv
            sys.path[:] = run_path(request["pythonpath"], self.pythonpath)
            fresh_state()
            self.boot.__name__ = "__main__"
            sys.modules["__main__"] = self.boot
            entry = self.boot.load_entry()
            code = entry.main(sys.argv)
            entry.flush_output()
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        except KeyboardInterrupt:
            # an uncaught Ctrl-C ends a fresh interpreter by SIGINT itself
            print_exception()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        except BaseException:
            print_exception()
        finally:
            os._exit(code)


def relabel(mark):
    """Put the run's mark in place of the server's in the environment /proc shows for this process (the one it
    was started with, which a fork keeps): then every process the run forks without exec carries it, as in a
    cold start, and gradfix finds them by it where there is no cgroup. The two marks have the same length."""
    if not mark:
        return
    try:
        with open("/proc/self/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        start = int(fields[47])  # env_start, the 50th field
        with open("/proc/self/environ", "rb") as handle:
            block = handle.read()
        prefix = (MARK + "=").encode()
        at = 0 if block.startswith(prefix) else block.find(b"\0" + prefix) + 1
        if at == 0 and not block.startswith(prefix):
            return
        at += len(prefix)
        end = block.find(b"\0", at)
        if (end if end >= 0 else len(block)) - at != len(mark):
            return
        with open("/proc/self/mem", "r+b", buffering=0) as memory:
            memory.seek(start + at)
            memory.write(mark.encode())
    except (OSError, ValueError, IndexError):
        pass  # without it, the cgroup, the session and the tree still find the run's processes


def remove_folders(folders, tries=50):
    """Remove the runs' killed cgroups once their processes have left them (gradfix is not there to)."""
    for _ in range(tries):
        folders = [folder for folder in folders if os.path.isdir(folder)]
        for folder in folders:
            try:
                os.rmdir(folder)
            except OSError:
                pass
        if not folders:
            return
        time.sleep(0.02)


def print_exception():
    try:
        import traceback
        traceback.print_exc()
        sys.stderr.flush()
    except BaseException:
        pass


def take_streams(fds):
    """The run's descriptors as 0, 1 and 2, and sys.stdin, stdout and stderr made on them as Python makes them."""
    import io
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    for number, fd in enumerate(fds):
        if fd != number:
            os.dup2(fd, number)
    for fd in set(fds):
        if fd > 2:
            os.close(fd)
    # -u or PYTHONUNBUFFERED (the run's, as the server's environment is the run's): the server's own streams tell
    buffered = not getattr(sys.__stdout__, "write_through", False)
    for number, name in enumerate(("stdin", "stdout", "stderr")):
        old = getattr(sys, name)
        writing = number > 0
        buffering = 0 if writing and not buffered else -1
        stream = io.open(number, "wb" if writing else "rb", buffering=buffering, closefd=False)
        raw = stream.raw if buffering else stream
        raw.name = "<%s>" % name
        text = io.TextIOWrapper(stream, encoding=getattr(old, "encoding", None), errors=getattr(old, "errors", None),
                                newline="\n", line_buffering=buffered and (raw.isatty() or number == 2),
                                write_through=not buffered)
        text.mode = "w" if writing else "r"
        setattr(sys, name, text)
        setattr(sys, "__%s__" % name, text)


def shell_pwd():
    """PWD as /bin/sh exports it: a cold start runs the shell first (to join the cgroup before exec), which keeps an
    inherited PWD naming the current folder and otherwise sets the folder's physical path."""
    inherited = os.environ.get("PWD")
    try:
        if inherited and os.path.isabs(inherited) and os.path.samestat(os.stat(inherited), os.stat(".")):
            return
    except OSError:
        pass
    os.environ["PWD"] = os.getcwd()


def replay(output):
    """What TensorFlow's import wrote (TensorFlow's start-up notices), where a cold start's import writes it."""
    for fd, text in zip((1, 2), output):
        data = text.encode("latin-1")
        while data:
            data = data[os.write(fd, data):]


def run_path(entries, own):
    """``sys.path`` as a fresh interpreter makes it with the run's PYTHONPATH: its entries, then what follows the
    server's own PYTHONPATH entries (the standard library, site-packages)."""
    rest = list(sys.path)
    while rest and rest[0] in own:
        del rest[0]
    path = []
    for entry in list(entries) + rest:
        if entry not in path:
            path.append(entry)
    return path


def fresh_state():
    """Undo what the import left that a fresh interpreter would not have."""
    import importlib
    tempfile = sys.modules.get("tempfile")
    if tempfile is not None:
        tempfile.tempdir = None  # cached by the import: the run's TMPDIR (a scratch copy's) decides again
    random = sys.modules.get("random")
    if random is not None:
        random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        try:
            numpy.random.seed()
        except Exception:
            pass
    importlib.invalidate_caches()


def pidfd(pid):
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def exit_status(pid):
    """The run's end as ``Popen.returncode`` gives it, leaving it unreaped; None while it runs."""
    if not hasattr(os, "waitid"):
        return reap(pid, block=False)
    try:
        result = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return -signal.SIGKILL
    if result is None:
        return None
    return result.si_status if result.si_code == os.CLD_EXITED else -result.si_status


def reap(pid, block=True):
    try:
        done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return None
    if done == 0:
        return None
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # a half-done import of TensorFlow may hang in the interpreter's teardown
