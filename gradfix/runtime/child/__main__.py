"""The child's entry, run by path in the user's interpreter: ``python .../child/__main__.py TARGET [ARGS...]``.

The package is loaded under a name of its own, from this folder, so that neither gradfix (whose
``__init__`` and dependencies the user's interpreter may lack) nor the folder holding it is put
on the program's ``sys.path``. The warm server (``server.py``) loads this file by path too and
calls the same two functions in each run it forks.
"""

import importlib
import importlib.util
import os
import sys

PACKAGE = "_gradfix_child"


def load_entry():
    here = os.path.dirname(os.path.abspath(__file__))
    # Python put this script's folder first on sys.path: its module names (state, ops, ...) would shadow the program's
    if sys.path and sys.path[0] and os.path.realpath(sys.path[0]) == os.path.realpath(here):
        del sys.path[0]
    spec = importlib.util.spec_from_file_location(PACKAGE, os.path.join(here, "__init__.py"),
                                                  submodule_search_locations=[here])
    package = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = package
    spec.loader.exec_module(package)
    return importlib.import_module(PACKAGE + ".entry")


def join_cgroup():
    """Enter the run's cgroup (made by gradfix) before the program runs: nothing it starts can leave it."""
    path = os.environ.pop("GRADFIX_CGROUP", None)
    if path:
        try:
            with open(os.path.join(path, "cgroup.procs"), "w") as handle:
                handle.write("0\n")
        except OSError:
            pass  # gradfix moved this process already, or finds its processes through /proc


if __name__ == "__main__":
    join_cgroup()
    entry = load_entry()
    code = entry.main(sys.argv)
    entry.flush_output()
    # Skip interpreter teardown (TensorFlow's can be slow or hang): the facts are written.
    os._exit(code)
