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
    secure: bool = typer.Option(
        False,
        "--secure",
        help="Lock the stack down: Kafka on SASL_SSL only, Redis with TLS and a password, PostgreSQL with "
        "scram-sha-256 and an application role that is no superuser. Passwords and certificates are generated "
        "at first start; clients use --config <state dir>/client.toml. A state dir made secure stays secure.",
    ),
) -> None:
    """Start Kafka, Redis and PostgreSQL locally (idempotent); services given by URL are left alone."""
    settings = settings_of(ctx)
    started = time.monotonic()
    stack = Stack(settings, _only(only))
    stack.up(lambda name, what: console.print(f"[cyan]{name:>8}[/] {what}", highlight=False), secure=secure)
    console.print(f"stack ready in {time.monotonic() - started:.1f} s (state in {settings.stack.state_dir})")
    if stack.client_config is not None:
        console.print(f"clients: sentimon --config {stack.client_config} ...", highlight=False)


def down(
    ctx: typer.Context,
    only: str = typer.Option(None, help="Comma-separated subset of kafka,redis,database."),
) -> None:
    """Stop the services `sentimon up` started (by pid file); nothing else is touched."""
    Stack(settings_of(ctx), _only(only)).down(lambda name, what: console.print(f"[cyan]{name:>8}[/] {what}"))


def status(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show whether each service answers; exit 1 when any is down. A secure stack's JSON adds client_config,
    the path of its client settings file (a plain stack's JSON is as it always was: one object per service)."""
    stack = Stack(settings_of(ctx))
    statuses = stack.status()
    client_config = str(stack.client_config) if stack.client_config else None
    if as_json:
        report: dict = {name: s.as_dict() for name, s in statuses.items()}
        report["kafka"]["security_protocol"] = stack.settings.kafka.security_protocol
        if client_config:
            report["client_config"] = client_config
        typer.echo(json.dumps(report, indent=2))
    else:
        table = Table("service", "endpoint", "up", "managed", "pid")
        for s in statuses.values():
            table.add_row(s.name, s.url, "[green]yes[/]" if s.up else "[red]no[/]", str(s.managed), str(s.pid or "-"))
        if client_config:
            table.caption = f"secure stack: clients use --config {client_config}"
        out.print(table)
    if not all(s.up for s in statuses.values()):
        raise typer.Exit(1)


@topics_app.command("create")
def topics_create(ctx: typer.Context) -> None:
    """Create the raw, scored, dead-letter and alerts topics; fix partitions/retention of existing ones."""
    settings = settings_of(ctx)
    for name, action in ensure_topics(settings, pipeline_topics(settings)).items():
        out.print(f"{name:<28} {action}")


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(down)
    app.command()(status)
    app.add_typer(topics_app, name="topics")
