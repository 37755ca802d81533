"""Modules loaded when first used, by the standard library's ``importlib.util.LazyLoader``.

LibCST's matchers take about a fifth of a second to import (its codemod package loads them too), as long as
importing LibCST itself, and only some fixes and the runtime's repairs use them: a check of a file with no such
fix never does. The language server imports them at its start, as any module: ``LazyLoader`` is not thread-safe
before Python 3.12, and the server's analysis and diagnose threads may both reach them first.
"""

from __future__ import annotations

import importlib.util
import sys
import types


def lazy_module(name: str) -> types.ModuleType:
    """The module ``name``, executed on its first attribute access (at once if it is already loaded)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.loader is not None, f"{name} is installed with gradfix"
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
