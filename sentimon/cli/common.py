"""Shared CLI plumbing: settings from the global options, user errors printed without a traceback."""

from __future__ import annotations

import typer
from rich.console import Console

from sentimon.core.settings import Settings

console = Console(stderr=True)


def settings_of(ctx: typer.Context) -> Settings:
    return ctx.find_root().obj["settings"]


def fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)
