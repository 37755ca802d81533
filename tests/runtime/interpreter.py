"""The interpreter the runtime tests run the programs in: ``GRADFIX_TEST_PYTHON``, else the one running the tests.

Pointing it at an environment with another TensorFlow runs the runtime tests on that release:
``GRADFIX_TEST_PYTHON=/path/to/tf216/bin/python pytest tests/runtime/test_rt_diagnose.py``."""

from __future__ import annotations

import os
import sys

PYTHON = os.environ.get("GRADFIX_TEST_PYTHON") or sys.executable
