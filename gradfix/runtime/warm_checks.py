"""When a run forked from a warm server is the run a fresh interpreter would make: the checks made before it.

A warm server imported TensorFlow and Keras in the run's interpreter and environment, less the variables
that differ from run to run (``PER_RUN``: gradfix's own, the scratch copy's TMPDIR, the PYTHONPATH
entries inside the run's folder, and the name of the test a test suite is running), which the forked run gets back before anything of it runs. A cold start
imports TensorFlow before the program too, so the two import alike, except where:

- the run's environment has ``GRADFIX_WARM=0``, or the platform lacks fork or passing descriptors;
- the interpreter is a script, a wrapper that may pick another interpreter per folder or run anything;
- the program's file (for ``package.module:function``, the module's file and its packages' ``__init__.py``)
  changes its environment, ``sys.path`` or ``sys.modules``, or names ``tf_keras``, ``TF_USE_LEGACY_KERAS`` or
  ``KERAS_BACKEND``: a textual check, and a conservative one, so that a program that chooses its TensorFlow
  or Keras by itself always gets a fresh interpreter (an unfound module file counts as such a mention);
- a PYTHONPATH entry of the run's own holds a module by a name the server's start-up or import looked for
  (``shadowing``): in a cold start it would have been imported in place of the one the server has.
"""

from __future__ import annotations

import os
import re
import socket
from typing import Mapping

from gradfix.runtime.child.schema import FACTS_ENV, READ_ONLY_ENV, STEPS_ENV
from gradfix.runtime.child.target import resolve_target
from gradfix.runtime.containment import CGROUP_ENV, RUN_ENV

WARM_ENV = "GRADFIX_WARM"  # "0": every run starts a fresh interpreter
# PYTEST_CURRENT_TEST names the test being run: a run made from a test suite differs from the next in it alone
PER_RUN = frozenset({FACTS_ENV, STEPS_ENV, READ_ONLY_ENV, CGROUP_ENV, RUN_ENV, WARM_ENV, "TMPDIR", "PYTHONPATH",
                     "PYTEST_CURRENT_TEST"})

MENTIONS = re.compile(r"\b(sys\s*\.\s*(path|modules)|putenv|unsetenv|addsitedir|setdlopenflags|tf_keras"
                      r"|TF_USE_LEGACY_KERAS|KERAS_BACKEND)\b|\bfrom\s+sys\s+import\b[^\n]*\b(path|modules)\b")
ENVIRON = re.compile(r"\benviron\b")
# what may follow ``environ`` without changing it: one variable read, a copy, a listing
ENVIRON_READ = re.compile(r"\s*(\.\s*(get|copy|keys|items|values)\s*\(|\[[^\]\n]*\](?!\s*[-+|]?=(?!=)))")
DELETION = re.compile(r"\bdel\s+[\w.\s]*$")
MEMBERSHIP = re.compile(r"\b(not\s+)?in\s+(os\s*\.\s*)?$")


def platform_reason() -> str | None:
    if os.name != "posix" or not hasattr(os, "fork"):
        return "this platform has no fork"
    if not hasattr(socket, "send_fds") or not hasattr(socket, "SOCK_SEQPACKET"):
        return "this platform cannot pass descriptors over a Unix socket"
    return None


def interpreter_reason(python: str, env: Mapping[str, str]) -> str | None:
    import shutil

    found = shutil.which(python, path=env.get("PATH", os.defpath)) if os.sep not in python else python
    if not found or not os.path.isfile(found):
        return f"{python} is not found"
    try:
        with open(os.path.realpath(found), "rb") as handle:
            script = handle.read(2) == b"#!"
    except OSError:
        return f"{python} cannot be read"
    return f"{python} is a script: it may choose another interpreter each time" if script else None


def program_reason(target: str, workdir: str, pythonpath: list[str]) -> str | None:
    """Why the program's own source may change what TensorFlow's import sees, or None."""
    files = target_files(target, workdir, pythonpath)
    if files is None:
        return f"the source of {target} is not found"
    for path in files:
        try:
            with open(path, "rb") as handle:
                text = handle.read().decode("utf-8", "replace")
        except OSError:
            return f"{path} cannot be read"
        found = changes_imports(text)
        if found:
            return f"{os.path.basename(path)} {found}"
    return None


def changes_imports(text: str) -> str | None:
    match = MENTIONS.search(text)
    if match:
        return f"mentions {match.group(0).strip()}"
    for match in ENVIRON.finditer(text):
        before = text[max(0, match.start() - 40):match.start()]
        if DELETION.search(before):
            return "deletes from os.environ"
        if MEMBERSHIP.search(before) or ENVIRON_READ.match(text, match.end()):
            continue
        return "may change os.environ"
    return None


def target_files(target: str, workdir: str, pythonpath: list[str]) -> list[str] | None:
    """The files of the program that run first: the target file, or a module's packages' ``__init__.py`` and
    the module's file (its ``__main__.py`` too when it is a package run as a program); None if not found."""
    kind, spec, function = resolve_target(target, cwd=workdir)
    if kind == "file":
        return [spec] if os.path.isfile(spec) else None
    parts = spec.split(".")
    for root in [workdir, *pythonpath]:
        files, folder = [], root
        for part in parts[:-1]:
            folder = os.path.join(folder, part)
            if not os.path.isdir(folder):
                break
            if os.path.isfile(os.path.join(folder, "__init__.py")):
                files.append(os.path.join(folder, "__init__.py"))
        else:
            module = os.path.join(folder, parts[-1])
            if os.path.isfile(module + ".py"):
                return files + [module + ".py"]
            if os.path.isdir(module):
                inside = [os.path.join(module, "__init__.py")]
                if function is None:
                    inside.append(os.path.join(module, "__main__.py"))
                return files + [path for path in inside if os.path.isfile(path)]
    return None


def pythonpath_entries(env: Mapping[str, str], workdir: str) -> list[str]:
    """The run's PYTHONPATH as a fresh interpreter started in ``workdir`` puts it on ``sys.path`` (absolute)."""
    value = env.get("PYTHONPATH")
    if not value:
        return []
    return [os.path.abspath(os.path.join(workdir, entry)) for entry in value.split(os.pathsep)]


def is_inside(path: str, folder: str) -> bool:
    folder = folder.rstrip(os.sep) or os.sep
    return path == folder or path.startswith(folder + os.sep if folder != os.sep else folder)


def server_environment(env: Mapping[str, str], workdir: str) -> tuple[tuple, dict[str, str]]:
    """The key of the server a run may be forked from, and that server's environment: the run's, less what
    differs from run to run. PYTHONPATH entries inside the run's folder (a scratch copy's) are the run's own;
    the others are the server's, and part of its key."""
    shared = [entry for entry in pythonpath_entries(env, workdir) if not is_inside(entry, workdir)]
    server_env = {name: value for name, value in env.items() if name not in PER_RUN}
    if shared:
        server_env["PYTHONPATH"] = os.pathsep.join(shared)
    if "TMPDIR" in os.environ:
        server_env["TMPDIR"] = os.environ["TMPDIR"]
    key = tuple(sorted((name, value) for name, value in server_env.items() if name != "TMPDIR"))
    return key, server_env


def shadowing(entries: list[str], server_entries: list[str], names: frozenset[str]) -> str | None:
    """Whether a PYTHONPATH entry the server lacks holds a module the server's start-up or import looked for."""
    for entry in entries:
        if entry in server_entries:
            continue
        if not os.path.isdir(entry):
            if os.path.exists(entry):
                return f"{entry} (on PYTHONPATH) is not a folder"
            continue
        try:
            listing = os.listdir(entry)
        except OSError:
            return f"{entry} (on PYTHONPATH) cannot be listed"
        for name in listing:
            if name.split(".", 1)[0] in names:
                return f"{os.path.join(entry, name)} would shadow a module TensorFlow's import looked for"
    return None


def cold_reason(target: str, python: str, workdir: str, env: Mapping[str, str]) -> str | None:
    """Why this run must start in a fresh interpreter, before any server is asked; None if it may start warm."""
    if env.get(WARM_ENV, "").strip() == "0":
        return f"{WARM_ENV}=0"
    if not os.path.isdir(workdir):
        return f"{workdir} is not a folder"
    return (platform_reason() or interpreter_reason(python, env)
            or program_reason(target, workdir, pythonpath_entries(env, workdir)))

