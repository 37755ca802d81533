from __future__ import annotations

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"

# TensorFlow's start-up chatter stays out of the children gradfix runs in the tests.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture
def repo() -> pathlib.Path:
    return REPO
