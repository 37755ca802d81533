"""The workspace's gradfix configuration, as the server needs it: rules per file, the diagnose target."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from gradfix.config import ConfigError, clear_cache, settings_for
from gradfix.engine import select_rules
from gradfix.rule import Rule

log = logging.getLogger(__name__)


def rules_for(path: str) -> list[Rule]:
    """The rules ``gradfix check`` would run on ``path``; the defaults when the configuration is broken."""
    return rules_and_problem(path)[0]


def rules_and_problem(path: str) -> tuple[list[Rule], ConfigError | None]:
    """The rules for ``path``, and the error of the pyproject.toml that applies to it when it cannot be used
    (the default rules run then, and the server says so)."""
    try:
        settings = settings_for(path)
        return select_rules(select=settings.rule_codes(os.path.abspath(path))), None
    except ConfigError as error:
        log.warning("gradfix: %s; using the default rules", error)
        return select_rules(), error


def config_problem(config_path: str) -> ConfigError | None:
    """The error of one pyproject.toml as it is now (None once it can be used, or is gone)."""
    try:
        settings_for(os.path.dirname(os.path.abspath(config_path)))
    except ConfigError as error:
        if os.path.abspath(error.path) == os.path.abspath(config_path):
            return error
    return None


@dataclass(frozen=True)
class DiagnoseSettings:
    target: str | None
    timeout: float | None
    root: str  # the folder the target is relative to (that of the pyproject.toml, else the workspace)
    unsafe_fixes: bool = False


def diagnose_settings(folder: str) -> DiagnoseSettings:
    """``[tool.gradfix] diagnose.target`` and ``diagnose.timeout`` for the workspace folder."""
    try:
        settings = settings_for(folder)
    except ConfigError as error:
        log.warning("gradfix: %s", error)
        return DiagnoseSettings(None, None, folder)
    return DiagnoseSettings(settings.diagnose_target, settings.diagnose_timeout, settings.root or folder, settings.unsafe_fixes)


def reload() -> None:
    """Forget cached configuration (a pyproject.toml was saved)."""
    clear_cache()
