"""`sentimon alerts list | check`: the alert history and rule files."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from sentimon.cli.common import console, out, settings_of
from sentimon.core.errors import UserError

alerts_app = typer.Typer(help="Stock and public-opinion alerts.", no_args_is_help=True)


class State(StrEnum):
    pending = "pending"
    firing = "firing"
    resolved = "resolved"
    all = "all"


@alerts_app.command("list")
def list_alerts(
    ctx: typer.Context,
    state: Annotated[
        State, typer.Option("--state", help="pending (held in Redis, not yet fired), firing, resolved, or all.")
    ] = State.all,
    entity: Annotated[str | None, typer.Option("--entity", help="Only this entity (e.g. AAPL).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many, newest first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """Alert episodes, newest first: pending ones from the shared alert states in Redis (since when, and when they
    fire if the condition holds), firing and resolved ones from the history database (`stack.database_url`)."""
    from rich.table import Table

    from sentimon.alerts.history import History

    settings = settings_of(ctx)
    rows: list[dict] = []
    if state is State.pending:
        rows += _pending(settings, entity)
    elif state is State.all:
        try:
            rows += _pending(settings, entity)
        except UserError as exc:  # the history alone still answers; say what is missing
            console.print(f"[yellow]pending alerts not shown:[/] {exc}", highlight=False)
    if state is not State.pending:
        history = History(settings.stack.database)
        try:
            rows += history.list(None if state is State.all else state.value, entity, limit)
        finally:
            history.close()
    rows = sorted(rows, key=lambda r: r.get("started_at") or r.get("pending_since") or "", reverse=True)[:limit]
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        what = "alerts" if state is State.all else f"{state.value} alerts"
        out.print(f"no {what}{f' for {entity}' if entity else ''}")
        return
    columns = ("since (UTC)", "state", "severity", "rule", "entity", "value", "baseline", "resolved / fires at (UTC)")
    table = Table(*columns)
    for r in rows:
        if r["state"] == "pending":
            table.add_row(r["pending_since"], "pending", r["severity"], r["rule"], r["entity"], _num(r["value"]),
                          _num(r["baseline"]), f"fires at {r['fires_at']} if it holds")  # fmt: skip
        else:
            table.add_row(r["started_at"], r["state"], r["severity"], r["rule"], r["entity"], _num(r["value"]),
                          _num(r["baseline"]), r["resolved_at"] or "-")  # fmt: skip
    out.print(table)


def _pending(settings, entity: str | None) -> list[dict]:
    """Pending states: breaching, waiting out the rule's `for` in event time."""
    from sentimon.alerts.payload import iso
    from sentimon.alerts.schema import find_rule, load_rulesets
    from sentimon.alerts.store import RedisStates
    from sentimon.streams.worker import connect_redis

    client = connect_redis(settings)
    try:
        states = RedisStates(client, settings.alerts.prefix).stored()
    finally:
        client.close()
    rulesets = load_rulesets(list(settings.alerts.rules) or None)
    rows = []
    for rule_id, name, st in states:
        rule = find_rule(rulesets, rule_id, name)
        if st.phase != "pending" or rule is None or (entity is not None and name != entity):
            continue
        since = st.pending_since_ms or st.last_eval_ms or 0
        rows.append({"state": "pending", "rule": rule_id, "entity": name, "severity": rule.severity,
                     "pending_since": iso(since), "fires_at": iso(since + rule.for_ms), "for_ms": rule.for_ms,
                     "value": st.value, "baseline": st.baseline, "last_evaluated": iso(st.last_eval_ms)})  # fmt: skip
    return rows


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
