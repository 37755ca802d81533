"""The interpreter the runtime tests run the programs in: ``GRADFIX_TEST_PYTHON``, else the one running the tests.

Pointing it at an environment with another TensorFlow runs the runtime tests on that release:
``GRADFIX_TEST_PYTHON=/path/to/tf216/bin/python pytest tests/runtime/test_rt_diagnose.py``."""

from __future__ import annotations

import os
import subprocess
import sys

PYTHON = os.environ.get("GRADFIX_TEST_PYTHON") or sys.executable


def _version() -> tuple[int, int]:
    if PYTHON == sys.executable:
        return sys.version_info[:2]
    done = subprocess.run([PYTHON, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True, text=True,
                          check=True)
    major, minor = done.stdout.split()
    return int(major), int(minor)


VERSION = _version()
# Python 3.11 and later record each instruction's columns (co_positions); 3.10 only its line
COLUMNS = VERSION >= (3, 11)
