"""Finding the rules (every ``Rule`` subclass in a module of ``gradfix.rules``) and the repair operators
(every ``Operator`` subclass in a module of ``gradfix.transforms``, installed from ``transforms/``)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from functools import lru_cache
from types import ModuleType
from typing import TYPE_CHECKING

from gradfix.rule import Rule

if TYPE_CHECKING:
    from gradfix.transforms._operator import Operator


@lru_cache(maxsize=None)
def all_rules() -> tuple[type[Rule], ...]:
    import gradfix.rules as package

    found: list[type[Rule]] = [value for value in _classes_in(package) if issubclass(value, Rule) and value is not Rule]
    codes = [rule.code for rule in found]
    duplicated = {code for code in codes if codes.count(code) > 1}
    if duplicated:
        raise RuntimeError(f"rule codes used twice: {sorted(duplicated)}")
    return tuple(sorted(found, key=lambda rule: rule.code))


@lru_cache(maxsize=None)
def all_operators() -> tuple[type[Operator], ...]:
    import gradfix.transforms as package
    from gradfix.transforms._operator import Operator

    found: list[type[Operator]] = [value for value in _classes_in(package) if issubclass(value, Operator) and value is not Operator]
    names = [operator.name for operator in found]
    duplicated = {name for name in names if names.count(name) > 1}
    if duplicated:
        raise RuntimeError(f"operator names used twice: {sorted(duplicated)}")
    return tuple(sorted(found, key=lambda operator: operator.name))


def operators_for(category: str, op: str = "") -> list[Operator]:
    """An instance of every operator that repairs cuts of this category and op type."""
    return [operator for operator in (kind() for kind in all_operators()) if operator.repairs(category, op)]


def _classes_in(package: ModuleType) -> list[type]:
    found: list[type] = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        found.extend(value for _, value in inspect.getmembers(module, inspect.isclass) if value.__module__ == module.__name__)
    return found


def rule_by_code(code: str) -> type[Rule]:
    """The rule with this code or name, in any case (``gf003``, ``GF003``, ``loss-ignores-prediction``)."""
    key = code.strip().lower()
    for rule in all_rules():
        if rule.code.lower() == key or rule.name.lower() == key:
            return rule
    raise KeyError(code)


