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
    try:
        settings = settings_for(path)
        return select_rules(select=settings.rule_codes(os.path.abspath(path)))
    except ConfigError as error:
        log.warning("gradfix: %s; using the default rules", error)
        return select_rules()


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
