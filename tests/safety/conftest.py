from __future__ import annotations

import pathlib

import pytest
from click.testing import CliRunner

from gradfix import config, paths
from gradfix.cli import main

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures"
# a program with one safe fix (GF006: model.variables on lines 23 and 24)
BUGGY = (FIXTURES / "all-variables-as-sources" / "batchnorm_custom_loop.py").read_text()
FIXED = (FIXTURES / "all-variables-as-sources" / "batchnorm_custom_loop.fixed.py").read_text()


@pytest.fixture(autouse=True)
def fresh_caches():
    config.clear_cache()
    paths.clear_cache()
    yield
    config.clear_cache()
    paths.clear_cache()


def run(*args, **kwargs):
    return CliRunner().invoke(main, [str(a) for a in args], **kwargs)
