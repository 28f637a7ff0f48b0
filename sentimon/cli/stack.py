"""`sentimon up | down | status | topics create`: the local stack."""

from __future__ import annotations

import json
import time

import typer
from rich.table import Table

from sentimon.cli.common import console, out, settings_of
from sentimon.infra import SERVICE_NAMES, Stack, ensure_topics, pipeline_topics

topics_app = typer.Typer(help="Kafka topics of the pipeline.", no_args_is_help=True)


def _only(only: str | None) -> tuple[str, ...]:
    return tuple(s.strip() for s in only.split(",")) if only else SERVICE_NAMES


def up(
    ctx: typer.Context,
    only: str = typer.Option(None, help="Comma-separated subset of kafka,redis,database."),
) -> None:
    """Start Kafka, Redis and PostgreSQL locally (idempotent); services given by URL are left alone."""
    settings = settings_of(ctx)
    started = time.monotonic()
    Stack(settings, _only(only)).up(lambda name, what: console.print(f"[cyan]{name:>8}[/] {what}"))
    console.print(f"stack ready in {time.monotonic() - started:.1f} s (state in {settings.stack.state_dir})")


def down(
    ctx: typer.Context,
    only: str = typer.Option(None, help="Comma-separated subset of kafka,redis,database."),
) -> None:
    """Stop the services `sentimon up` started (by pid file); nothing else is touched."""
    Stack(settings_of(ctx), _only(only)).down(lambda name, what: console.print(f"[cyan]{name:>8}[/] {what}"))


def status(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show whether each service answers; exit 1 when any is down."""
    statuses = Stack(settings_of(ctx)).status()
    if as_json:
        typer.echo(json.dumps({name: s.as_dict() for name, s in statuses.items()}, indent=2))
    else:
        table = Table("service", "endpoint", "up", "managed", "pid")
        for s in statuses.values():
            table.add_row(s.name, s.url, "[green]yes[/]" if s.up else "[red]no[/]", str(s.managed), str(s.pid or "-"))
        out.print(table)
    if not all(s.up for s in statuses.values()):
        raise typer.Exit(1)


@topics_app.command("create")
def topics_create(ctx: typer.Context) -> None:
    """Create the raw, scored, dead-letter and alerts topics; fix partitions/retention of existing ones."""
    settings = settings_of(ctx)
    for name, action in ensure_topics(settings.stack.kafka_servers, pipeline_topics(settings)).items():
        out.print(f"{name:<28} {action}")


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(down)
    app.command()(status)
    app.add_typer(topics_app, name="topics")
