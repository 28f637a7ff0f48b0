"""Shared CLI plumbing: settings from the global options, option values parsed with errors naming the option,
user errors printed without a traceback."""

from __future__ import annotations

import typer
from rich.console import Console

from sentimon.core.durations import DurationError, parse_duration_ms
from sentimon.core.errors import UserError
from sentimon.core.settings import Settings

console = Console(stderr=True)


def settings_of(ctx: typer.Context) -> Settings:
    return ctx.find_root().obj["settings"]


def fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def window_option(text: str, option: str = "--window") -> int:
    """A window length such as 5m, 1h or 1h30m -> milliseconds (more than zero)."""
    try:
        ms = parse_duration_ms(text)
    except DurationError as exc:
        raise UserError(f"{option} {exc}") from None
    if ms <= 0:
        raise UserError(f"{option} {text!r} is not a duration longer than zero; use e.g. 5m, 1h, 24h or 7d")
    return ms


def time_option(text: str, option: str) -> int:
    """ISO 8601 or epoch milliseconds -> epoch milliseconds."""
    from sentimon.streams.schema import parse_ts

    try:
        return parse_ts(text)
    except ValueError as exc:
        raise UserError(f"{option} {text!r}: {exc}") from None
