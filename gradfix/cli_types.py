"""Option types the commands share, kept apart from the commands so that loading one command loads no other."""

from __future__ import annotations

import math

import click


class OneLineBadParameter(click.BadParameter):
    """A refused option value said in one line, as gradfix says every error (click would add its usage text)."""

    def show(self, file=None) -> None:
        click.echo(f"gradfix: error: {self.format_message()}", file=file, err=file is None)


class Seconds(click.ParamType):
    """A number of seconds above 0: ``nan`` (which compares false with everything) and ``inf`` never time out."""

    name = "seconds"

    def convert(self, value, param, ctx):
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            seconds = math.nan
        if not math.isfinite(seconds) or seconds <= 0:
            raise OneLineBadParameter(f"{value!r} is not a finite number of seconds above 0", ctx, param)
        return seconds
