"""Shared CLI plumbing: settings from the global options, option values parsed with errors naming the option,
user errors printed without a traceback."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.console import Console

from sentimon.core.durations import UNIT_MS, DurationError, parse_duration_ms
from sentimon.core.errors import UserError
from sentimon.core.settings import Settings, setting_name

# Data and tables go to stdout (`> file` and `| less` get them, never wrapped at the terminal's width); logs,
# progress and errors go to stderr.
out = Console(soft_wrap=True)
if not out.is_terminal:  # a pipe or a file: rich would cut tables at 80 columns
    out = Console(soft_wrap=True, width=240)
console = Console(stderr=True, soft_wrap=True)


def settings_of(ctx: typer.Context) -> Settings:
    return ctx.find_root().obj["settings"]


def fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def window_option(text: str, option: str = "--window", max_ms: int | None = None) -> int:
    """A window length such as 5m, 1h or 1h30m -> milliseconds (more than zero, at most ``max_ms``: the windows'
    retention, beyond which there is no data to read)."""
    try:
        ms = parse_duration_ms(text)
    except DurationError as exc:
        raise UserError(f"{option} {exc}") from None
    if ms <= 0:
        raise UserError(f"{option} {text!r} is not a duration longer than zero; use e.g. 5m, 1h, 24h or 7d")
    if max_ms is not None and ms > max_ms:
        raise UserError(
            f"{option} {text} is longer than the {format_ms(max_ms)} the windows keep; use at most {format_ms(max_ms)} "
            f"or raise setting {setting_name('windows', 'retention_ms')}"
        )
    return ms


def format_ms(ms: int) -> str:
    """Milliseconds as the largest whole unit: 691200000 -> '8d', 5400000 -> '90m'."""
    for unit in ("w", "d", "h", "m", "s"):
        if ms % UNIT_MS[unit] == 0:
            return f"{ms // UNIT_MS[unit]}{unit}"
    return f"{ms}ms"


def window_phrase(window: str, end_ms: int, now_ms: int) -> str:
    """'the last 1h', or 'the 1h before 2020-01-01 00:00 UTC' when the window does not end now."""
    if abs(now_ms - end_ms) < 60_000:
        return f"the last {window}"
    return f"the {window} before {datetime.fromtimestamp(end_ms / 1000, UTC):%Y-%m-%d %H:%M} UTC"


def time_option(text: str, option: str) -> int:
    """ISO 8601 or epoch milliseconds -> epoch milliseconds."""
    from sentimon.streams.schema import parse_ts

    try:
        return parse_ts(text)
    except ValueError as exc:
        raise UserError(f"{option} {text!r}: {exc}") from None
