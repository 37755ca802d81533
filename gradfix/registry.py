"""Finding the rules: every ``Rule`` subclass in a module of ``gradfix.rules``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from functools import lru_cache

from gradfix.rule import Rule


@lru_cache(maxsize=None)
def all_rules() -> tuple[type[Rule], ...]:
    import gradfix.rules as package

    found: list[type[Rule]] = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, Rule) and value is not Rule and value.__module__ == module.__name__:
                found.append(value)
    codes = [rule.code for rule in found]
    duplicated = {code for code in codes if codes.count(code) > 1}
    if duplicated:
        raise RuntimeError(f"rule codes used twice: {sorted(duplicated)}")
    return tuple(sorted(found, key=lambda rule: rule.code))


def rule_by_code(code: str) -> type[Rule]:
    """The rule with this code or name, in any case (``gf003``, ``GF003``, ``loss-ignores-prediction``)."""
    key = code.strip().lower()
    for rule in all_rules():
        if rule.code.lower() == key or rule.name.lower() == key:
            return rule
    raise KeyError(code)


