"""`sentimon demo`: the whole system on a planted trading day, live in the terminal."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import typer
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sentimon.cli.common import console, settings_of, time_option
from sentimon.core.errors import UserError
from sentimon.core.redact import mask_url

if TYPE_CHECKING:
    from sentimon.replay.demo_run import DemoResult, DemoView

STEPS = 5


def demo(
    ctx: typer.Context,
    minutes: int = typer.Option(390, min=10, help="Length of the planted trading session in event-time minutes."),
    history: int = typer.Option(
        1440,
        min=0,
        help="Minutes of history before the open (the day before: a session "
        "and a quiet night), sent as fast as the worker takes it. Volume spikes are judged "
        "against a one-day baseline: with less, the NVDA spike cannot be judged.",
    ),
    date: str = typer.Option(
        None,
        help="Session date, YYYY-MM-DD (default: the most recent Tuesday-Friday "
        "session that has ended, so its records are inside the topics' retention).",
    ),
    duration: float = typer.Option(90.0, min=5, help="Wall seconds to play the session in."),
    model: str = typer.Option(None, help="Model (default: setting `inference.model`, the shipped student)."),
    live: bool = typer.Option(True, help="Live terminal table (--no-live for plain output)."),
    seed: int = typer.Option(7, help="Timeline seed."),
    out: Path = typer.Option(None, help="Where the timeline, alert history and report go (default: state dir)."),
    serve: bool = typer.Option(
        True,
        help="Serve the web console from the start; after the summary keep serving until Ctrl-C when run in "
        "a terminal (--no-serve: no console).",
    ),
) -> None:
    """Start the local stack and a worker, play a trading day with planted episodes (a TSLA sell-off, an NVDA
    volume spike, an 'acme air' brand crisis) through Kafka, show windows and alerts live, and score the alerts
    against what was planted."""
    from sentimon.replay.demo_run import DemoOptions, run_demo

    if date is not None:
        _check_date(date, history, minutes, settings_of(ctx).topics.raw_retention_ms)  # before the stack starts
    options = DemoOptions(minutes=minutes, history_min=history, date=date, duration_s=duration, model=model,
                          seed=seed, out_dir=out)  # fmt: skip
    with _Screen(live, serve) as screen:
        result = run_demo(settings_of(ctx), options, screen)
        screen.stop_view()
        if not live:
            console.print(_table(result.final))
        _step(STEPS, "summary")
        _print_summary(result)
        screen.linger()


def _check_date(date: str, history_min: int, minutes: int, retention_ms: int) -> None:
    from sentimon.replay.timeline import trading_day

    time_option(date, "--date")
    spec = trading_day(date=date, minutes=minutes, history_min=history_min)
    now_ms = time.time() * 1000
    if spec.end_ms > now_ms:
        raise UserError(f"--date {date}: that session has not ended, and the worker rejects events from the future; "
                        "leave --date out to play the most recent session")  # fmt: skip
    if retention_ms > 0 and now_ms - spec.start_ms > retention_ms:
        days = retention_ms / 86_400_000
        raise UserError(f"--date {date}: older than the raw topics' retention ({days:g} days), so Kafka would "
                        "delete its records at once; leave --date out to play the most recent session")  # fmt: skip


def _step(number: int, text: str) -> None:
    console.print(f"[bold]{number}/{STEPS}[/] {text}")


class _Screen:
    """Step lines as they come; the live table from the first view until the demo returns."""

    def __init__(self, live: bool, serve: bool = False):
        self.live, self.serve = live, serve
        self._view: Live | None = None
        self._console_url: str | None = None
        self._stop_console: Callable[[], None] | None = None

    def ready(self, settings: Any) -> None:
        if not self.serve:
            return
        from sentimon.console import ConsoleError, serve_in_background

        try:
            self._console_url, self._stop_console = serve_in_background(settings)
        except ConsoleError as exc:
            console.print(f"  [yellow]console not started:[/] {exc}")
            return
        console.print(f"  console: {self._console_url}", markup=False, highlight=False, soft_wrap=True)

    def linger(self) -> None:
        """In a terminal, keep the console up after the summary until Ctrl-C; otherwise return at once."""
        if self._stop_console is None or not sys.stdin.isatty():
            return
        console.print(f"\n  the console stays at {self._console_url} until Ctrl-C", markup=False, highlight=False)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            console.print("  console stopped")

    def step(self, number: int, text: str) -> None:
        _step(number, text)

    def detail(self, text: str) -> None:
        console.print(f"  {text}")

    def show(self, view: DemoView) -> None:
        if self._view is None:
            self._view = Live(console=console, refresh_per_second=4)
            self._view.start()
        self._view.update(_table(view))

    def __enter__(self) -> _Screen:
        return self

    def stop_view(self) -> None:
        if self._view is not None:
            self._view.stop()
            self._view = None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop_view()
        if self._stop_console is not None:
            self._stop_console()


def _table(view: DemoView) -> Table:
    clock = time.strftime("%H:%M", time.gmtime(view.now_ms / 1000)) if view.now_ms else "--:--"
    table = Table(title=f"event time {clock} UTC  -  {view.sent:,}/{view.total:,} messages sent", title_justify="left")
    for col in ("entity", "1h mentions", "mean score", "negative", "positive", "firing alerts"):
        table.add_column(col, justify="left" if col in ("entity", "firing alerts") else "right")
    for row in view.entities:
        neg = row.negative
        table.add_row(
            row.entity,
            str(row.count),
            f"{row.mean_score:+.2f}" if row.mean_score is not None else "-",
            Text(f"{neg:.0%}" if neg is not None else "-", style="red" if neg is not None and neg > 0.4 else ""),
            f"{row.positive:.0%}" if row.positive is not None else "-",
            Text(", ".join(row.firing), style="bold red"),
        )
    return table


def _print_summary(result: DemoResult) -> None:
    from sentimon.replay.demo_run import session_alerts

    report, settings, n, elapsed = result.detection, result.settings, result.messages, result.elapsed_s
    pct = lambda x: "-" if x is None else f"{x:.0%}"  # noqa: E731
    console.print(f"  {n:,} messages scored and windowed in {elapsed:.1f} s ({n / elapsed:,.0f} msg/s end to end)")
    scored = len(session_alerts(result.alerts, result.spec))
    console.print(f"  alerts: {scored} episodes in the session; vs planted: precision {pct(report.precision)}, "
                  f"recall {pct(report.recall)}")  # fmt: skip
    if len(result.alerts) > scored:
        console.print(f"    {len(result.alerts) - scored} more during the history before the open (not scored)")
    for key, delay in report.delays_s.items():
        console.print(f"    detected {key.split('@')[0]} after {delay / 60:.1f} min of event time")
    for missed in report.missed:
        console.print(f"    [yellow]missed[/] {missed['entity']}/{missed['kind']}")
    for alert in report.false_alerts[:8]:
        console.print(f"    [yellow]not planted[/] {alert['rule']} on {alert['entity']} at {alert['started_at']}")
    console.print("\n  where to look next:")
    for name, command in next_steps(result):
        # One line each, never wrapped at the terminal's width, so it can be copied (and a test can run it).
        console.print(f"    {name + ':':<9}{command}", markup=False, highlight=False, soft_wrap=True)
    console.print("    metrics: the worker serves Prometheus metrics on 127.0.0.1:<metrics port> while it runs")
    console.print("    stop the stack: sentimon down")
    console.print(f"  the demo's records stay on its topics for {settings.topics.raw_retention_ms / 86_400_000:g} days "
                  "(topic retention); replay them before that")  # fmt: skip


def next_steps(result: DemoResult) -> list[tuple[str, str]]:
    """The commands that look into what the demo left behind: its alert history, its windows (TSLA over the
    hour its sell-off ended), and a replay of its market topic (the tickers) comparing the market model with VADER
    (its report beside the demo's)."""
    settings, spec = result.settings, result.spec
    tsla = next((ep for ep in spec.episodes if ep.entity == "TSLA"), None)
    end_ms = tsla.end_ms if tsla else (result.last_ts_ms or spec.end_ms)
    end = datetime.fromtimestamp(end_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    market_model = settings.inference.market_model or settings.inference.model
    return [
        ("alerts", f"SENTIMON_STACK__DATABASE_URL={shlex.quote(mask_url(settings.stack.database))} "
                   "sentimon alerts list"),
        ("windows", f"SENTIMON_WINDOWS__PREFIX={shlex.quote(settings.windows.prefix)} sentimon windows TSLA "
                    f"--window 1h --end {end}"),
        ("replay", f"sentimon replay --topic {settings.topics.market} --model {market_model} --compare vader "
                   f"--episodes {shlex.quote(str(result.out_dir / 'episodes.json'))} "
                   f"--report {shlex.quote(str(result.out_dir / 'replay' / 'report.json'))}"),
    ]  # fmt: skip


def register(app: typer.Typer) -> None:
    app.command()(demo)
