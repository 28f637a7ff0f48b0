"""`sentimon rollout start | status | abort`: a registered version as a shadow or a sticky canary, analysed every
interval against the champion, promoted after the last step or rolled back (README "Rollout")."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from sentimon.cli.common import console, settings_of
from sentimon.core.errors import UserError

if TYPE_CHECKING:
    from sentimon.streams.rollout import Analysis, RolloutState
    from sentimon.streams.rollout_control import RolloutControl

rollout_app = typer.Typer(
    help="Roll a registered model version out: shadow, or a sticky canary with automatic promotion or rollback.",
    no_args_is_help=True,
)


def _control(ctx: typer.Context) -> RolloutControl:
    from sentimon.inference import registry
    from sentimon.infra.redis_client import connect
    from sentimon.streams.rollout_control import RolloutControl

    settings = settings_of(ctx)
    redis = connect(settings.stack)
    return RolloutControl(registry.from_settings(settings, redis), redis, settings.inference.registry_prefix,
                          alert=lambda payload: _alert(ctx, payload))  # fmt: skip


def _alert(ctx: typer.Context, payload: dict[str, Any]) -> None:
    """The rollback alert, on the alerts topic (key ``rollout:NAME``); a failure is reported, not fatal: the
    rollback itself is done."""
    from sentimon.infra import kafka_clients

    settings = settings_of(ctx)
    try:
        producer = kafka_clients.producer(settings, acks="all")
        try:
            key = f"rollout:{payload['model']}".encode()
            producer.send(settings.topics.alerts, key=key, value=json.dumps(payload).encode()).get(timeout=15)
        finally:
            producer.close(5)
    except Exception as exc:
        console.print(f"[yellow]warning:[/] the rollback alert was not written to {settings.topics.alerts}: {exc}")


def _name(ctx: typer.Context, control: RolloutControl, name: str | None) -> str:
    from sentimon.inference.registry import is_ref, parse_ref

    if name:
        return parse_ref(name).name if is_ref(name) else name
    names = control.names()
    if len(names) == 1:
        return names[0]
    model = settings_of(ctx).inference.model
    if is_ref(model):
        return parse_ref(model).name
    raise UserError("name the model: " + (", ".join(names) if names else "no rollout has been started"))


def _line(state: RolloutState, analysis: Analysis) -> str:
    def show(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    checks = "  ".join(
        f"{c.name} {show(c.value)} ({'ok' if c.ok else 'FAIL' if c.ok is False else 'n/a'})" for c in analysis.checks
    )
    last = state.analyses[-1]  # the step analysed: the state may have moved on since
    return (f"step {last['step'] + 1}/{len(state.steps)} at {last['percent']}%: {analysis.verdict} -> "
            f"{last['action']}  compared {analysis.shadow.compared}  {checks}")  # fmt: skip


def _summary(state: RolloutState) -> dict[str, Any]:
    body = dataclasses.asdict(state)
    body["last_analysis"] = state.analyses[-1] if state.analyses else None
    body.pop("analyses")
    return body


@rollout_app.command("start")
def start(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME@VERSION, as `sentimon models register` prints it."),
    canary: int = typer.Option(None, "--canary", metavar="PCT", help="Start a canary at this percent of entities."),
    shadow: bool = typer.Option(False, "--shadow", help="Only score a copy of the traffic (on <scored>.shadow)."),
    steps: str = typer.Option(None, "--steps", metavar="PCTS", help="Canary steps, e.g. 5,25,50,100 (default)."),
    interval: str = typer.Option(None, "--interval", metavar="DURATION", help="Time between analyses (default 1m)."),
    failure_limit: int = typer.Option(None, "--failure-limit", metavar="N", min=1, help="Failures before rollback."),
    analysis: Path = typer.Option(None, "--analysis", metavar="FILE", help="YAML analysis file (README 'Rollout')."),
    why: str = typer.Option("", "--why", help="Reason, kept in the registry history."),
) -> None:  # fmt: skip
    """Make NAME@VERSION the candidate and run its rollout in the foreground: an analysis every interval (one line
    each on stdout) until the last step passes (promoted: exit 0) or failure-limit analyses fail (rolled back:
    traffic back to the champion, candidate cleared, an alert on the alerts topic; exit 1). A shadow runs until
    `sentimon rollout abort` or Ctrl-C; Ctrl-C also ends a canary, rolling it back."""
    from sentimon.cli.common import window_option
    from sentimon.streams.rollout import AnalysisConfig, parse_steps

    config = AnalysisConfig.from_file(analysis) if analysis else AnalysisConfig()
    changes: dict[str, Any] = {}
    if steps is not None:
        changes["steps"] = tuple(parse_steps(steps))
    if interval is not None:
        changes["interval_s"] = window_option(interval, "--interval") / 1000
    if failure_limit is not None:
        changes["failure_limit"] = failure_limit
    config = dataclasses.replace(config, **changes)
    settings = settings_of(ctx)
    if shadow:
        from sentimon.infra.topics import TopicSpec, ensure_topics

        ensure_topics(settings, [TopicSpec(f"{settings.topics.scored}.shadow", settings.topics.partitions,
                                           settings.topics.scored_retention_ms)])  # fmt: skip
    control = _control(ctx)
    state = control.start(ref, config, canary=canary, shadow=shadow, why=why)
    what = "shadow" if shadow else f"canary, steps {state.steps}%"
    console.print(f"rollout {state.id}: {state.name}@{state.candidate} against champion {state.name}@{state.champion}"
                  f" ({what}); an analysis every {config.interval_s:g} s", highlight=False)  # fmt: skip
    try:
        final = control.run(state.name, config, lambda s, a: typer.echo(_line(s, a)))
    except KeyboardInterrupt:
        current = control.read(state.name)
        if current is None or not current.active:
            raise typer.Exit(1) from None
        final = control.abort(current, "stopped by the operator (Ctrl-C)")
    typer.echo(f"{final.state} {final.name}@{final.candidate}" + (f": {final.reason}" if final.reason else ""))
    if final.state != "promoted":
        raise typer.Exit(1)


@rollout_app.command("status")
def status(
    ctx: typer.Context,
    name: str = typer.Argument(None, help="The model (default: every model with a rollout)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (with the last analysis in full)."),
) -> None:
    """State (running, promoted, rolled_back), champion, candidate, percent and the last analysis of a rollout."""
    control = _control(ctx)
    names = [_name(ctx, control, name)] if name else control.names()
    states = [s for s in (control.read(n) for n in names) if s is not None]
    if as_json:
        typer.echo(json.dumps([_summary(s) for s in states] if not name else _summary(states[0]) if states else None,
                              indent=2))  # fmt: skip
        return
    if not states:
        console.print("no rollout; start one with `sentimon rollout start NAME@VERSION --canary 5`")
        return
    for s in states:
        typer.echo(f"{s.name}: {s.state} ({s.mode}) candidate {s.candidate} vs champion {s.champion}, {s.percent}% "
                   f"(step {s.step + 1}/{len(s.steps)}), failed analyses {s.failures}"
                   + (f"; {s.reason}" if s.reason else ""))  # fmt: skip
        if s.analyses:
            last = s.analyses[-1]
            checks = ", ".join(f"{c['name']} {c['value'] if c['value'] is None else round(c['value'], 3)}"
                               f" ({'ok' if c['ok'] else 'FAIL' if c['ok'] is False else 'n/a'})"
                               for c in last["checks"])  # fmt: skip
            typer.echo(f"  last analysis: {last['verdict']} -> {last['action']}: {checks}")


@rollout_app.command("abort")
def abort(
    ctx: typer.Context,
    name: str = typer.Argument(None, help="The model (default: the one rollout there is)."),
    why: str = typer.Option("aborted by the operator", "--why", help="Reason, kept in the history and the alert."),
) -> None:
    """Roll the running rollout back now: traffic back to the champion, candidate alias cleared, an alert."""
    control = _control(ctx)
    model = _name(ctx, control, name)
    state = control.read(model)
    if state is None or not state.active:
        raise UserError(f"no rollout of {model} is running (see `sentimon rollout status {model}`)")
    final = control.abort(state, why)
    typer.echo(f"{final.state} {final.name}@{final.candidate}: {final.reason}")


def register(app: typer.Typer) -> None:
    app.add_typer(rollout_app, name="rollout")
