from __future__ import annotations

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"

# TensorFlow's start-up chatter stays out of the children gradfix runs in the tests.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# A rule that raises fails the tests instead of being reported and skipped as it is for users.
os.environ["GRADFIX_STRICT"] = "1"


@pytest.fixture
def repo() -> pathlib.Path:
    return REPO
