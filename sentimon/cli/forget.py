"""`sentimon forget`: drop the windows of some entities, or every window of a prefix (test data, earlier runs)."""

from __future__ import annotations

import sys

import typer

from sentimon.cli.common import console, settings_of
from sentimon.core.errors import UserError


def forget(
    ctx: typer.Context,
    entities: list[str] = typer.Argument(None, help="Entities as `sentimon windows` finds them (any case, $, alias)."),
    prefix: str = typer.Option(None, help="Windows key prefix (default: setting `windows.prefix`)."),
    every: bool = typer.Option(False, "--all", help="Drop every window of the prefix (all entities)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (needed when not on a terminal)."),
) -> None:
    """Delete the window buckets and rollups of ENTITY..., or with --all every window key of the prefix (buckets,
    entity index, watermarks, dedup sets; alert states stay). Prints how many keys were deleted."""
    from sentimon.cli.worker import _find, _store

    settings = settings_of(ctx)
    if prefix:
        settings = settings.replace(windows={"prefix": prefix})
    if every == bool(entities):
        raise UserError("name the entities to forget, or pass --all to drop every window of the prefix (not both)")
    store = _store(settings)
    names = [] if every else list(dict.fromkeys(_find(settings, store, typed) for typed in entities))
    what = (f"every window under prefix {store.prefix!r}" if every
            else f"the windows of {', '.join(names)} under prefix {store.prefix!r}")  # fmt: skip
    if not yes:
        if not sys.stdin.isatty():
            raise UserError(f"refusing to delete {what} without confirmation: stdin is not a terminal; pass --yes")
        # Asked on stderr, answer read here: click's confirm writes part of its prompt to stdout (the data).
        console.print(f"Delete {what}? [y/N] ", end="", highlight=False)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            console.print("nothing deleted")
            raise typer.Exit(1)
    deleted = store.drop_all() if every else store.forget(names)
    typer.echo(f"deleted {deleted:,} keys: {what}")


def register(app: typer.Typer) -> None:
    app.command()(forget)
