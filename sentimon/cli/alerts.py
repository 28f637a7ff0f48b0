"""`sentimon alerts list | check`: the alert history and rule files."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from sentimon.cli.common import out, settings_of

alerts_app = typer.Typer(help="Stock and public-opinion alerts.", no_args_is_help=True)


class State(StrEnum):
    firing = "firing"
    resolved = "resolved"


@alerts_app.command("list")
def list_alerts(
    ctx: typer.Context,
    state: Annotated[State | None, typer.Option("--state", help="Only firing or only resolved episodes.")] = None,
    entity: Annotated[str | None, typer.Option("--entity", help="Only this entity (e.g. AAPL).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many, newest first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """Alert episodes from the history database (setting `stack.database_url`), newest first."""
    from rich.table import Table

    from sentimon.alerts.history import History

    history = History(settings_of(ctx).stack.database)
    try:
        rows = history.list(state.value if state else None, entity, limit)
    finally:
        history.close()
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        out.print("no alerts")
        return
    table = Table("started (UTC)", "state", "severity", "rule", "entity", "value", "baseline", "resolved (UTC)")
    for r in rows:
        table.add_row(r["started_at"], r["state"], r["severity"], r["rule"], r["entity"], _num(r["value"]),
                      _num(r["baseline"]), r["resolved_at"] or "-")  # fmt: skip
    out.print(table)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


@alerts_app.command("check")
def check(files: Annotated[list[Path], typer.Argument(help="YAML rule files to validate.")]) -> None:
    """Validate rule files; print each rule set's rules, or the first problem (exit 2)."""
    from sentimon.alerts.schema import load_rulesets

    for rs in load_rulesets(files):
        out.print(f"[green]ok[/] {rs.name}: {len(rs.rules)} rules")
        for rule in rs.rules:
            extra = f", {len(rule.overrides)} entity overrides" if rule.overrides else ""
            out.print(f"  {rule.name:<28} {rule.kind:<8} {rule.severity}{extra}")


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
