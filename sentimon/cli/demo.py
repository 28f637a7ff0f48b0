"""`sentimon demo`: the whole system on a planted trading day, live in the terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import asdict
from pathlib import Path

import typer
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sentimon.infra import procs
from sentimon.cli.common import console, settings_of
from sentimon.core.errors import UserError

HOUR_MS = 3_600_000


def _table(store, history, entities: list[str], now_ms: int, sent: int, total: int) -> Table:
    firing: dict[str, list[str]] = {}
    for alert in history.list(state="firing", limit=200):
        firing.setdefault(alert["entity"], []).append(alert["rule"].split("/")[-1])
    clock = time.strftime("%H:%M", time.gmtime(now_ms / 1000)) if now_ms else "--:--"
    table = Table(title=f"event time {clock} UTC  -  {sent:,}/{total:,} messages sent", title_justify="left")
    for col in ("entity", "1h mentions", "mean score", "negative", "positive", "firing alerts"):
        table.add_column(col, justify="left" if col in ("entity", "firing alerts") else "right")
    for entity in entities:
        s = store.stats(entity, HOUR_MS, now_ms + 1) if now_ms else None
        neg = s.share("negative") if s and s.count else None
        pos = s.share("positive") if s and s.count else None
        mean = f"{s.mean_score:+.2f}" if s and s.mean_score is not None else "-"
        table.add_row(
            entity,
            str(s.count if s else 0),
            mean,
            Text(f"{neg:.0%}" if neg is not None else "-", style="red" if neg is not None and neg > 0.4 else ""),
            f"{pos:.0%}" if pos is not None else "-",
            Text(", ".join(firing.get(entity, [])), style="bold red"),
        )
    return table


def demo(
    ctx: typer.Context,
    minutes: int = typer.Option(390, min=10, help="Length of the planted trading session in event-time minutes."),
    lead_in: int = typer.Option(0, min=0, help="Minutes of quieter overnight chatter before the open. Volume "
                                "spikes are judged against a one-day baseline, so without it the NVDA spike is "
                                "missed; with it the open itself is a volume spike against the quiet night."),
    duration: float = typer.Option(90.0, min=5, help="Wall seconds to play the whole timeline in."),
    model: str = typer.Option(None, help="Model (default: setting `model`, the shipped student)."),
    live: bool = typer.Option(True, help="Live terminal table (--no-live for plain output)."),
    seed: int = typer.Option(7, help="Timeline seed."),
    out: Path = typer.Option(None, help="Where the timeline, alert history and report go (default: state dir)."),
) -> None:
    """Start the local stack and a worker, play a trading day with planted episodes (a TSLA sell-off, an NVDA
    volume spike, an 'acme air' brand crisis) through Kafka, show windows and alerts live, and score the alerts
    against what was planted."""
    import redis
    from kafka import KafkaProducer

    from sentimon.alerts import History
    from sentimon.infra import Stack, ensure_topics, pipeline_topics
    from sentimon.replay.corpus import demo_pool
    from sentimon.replay.demo import demo_settings, pace, scored_count, settings_env
    from sentimon.replay.timeline import generate, score_detection, trading_day
    from sentimon.streams.windows import WindowStore

    base = settings_of(ctx)
    run_id = uuid.uuid4().hex[:8]
    out = (out or base.state_dir / "demo" / run_id).resolve()
    out.mkdir(parents=True, exist_ok=True)
    settings = demo_settings(base, run_id, out, model)

    console.print("[bold]1/5[/] local stack")
    Stack(settings).up(lambda name, what: console.print(f"  {name:>8} {what}"))
    ensure_topics(settings.kafka_servers, pipeline_topics(settings))

    console.print("[bold]2/5[/] planted trading day (held-out tweets, synthetic times and entities)")
    spec = trading_day(minutes=minutes, seed=seed, lead_in_min=lead_in)
    messages = generate(spec, demo_pool(settings.cache_dir))
    with open(out / "timeline.jsonl", "w") as f:
        f.writelines(json.dumps(m) + "\n" for m in messages)
    (out / "episodes.json").write_text(json.dumps([e.as_dict() for e in spec.episodes], indent=2))
    entities = [e.name for e in spec.entities]
    console.print(f"  {len(messages):,} messages for {', '.join(entities)} -> {out / 'timeline.jsonl'}")

    console.print(f"[bold]3/5[/] worker (model {settings.model}, metrics http://{settings.metrics_host}:{settings.metrics_port}/metrics)")
    log_path = out / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "sentimon", "worker"],
        env={**os.environ, **settings_env(settings)},
        stdout=open(log_path, "ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    client = redis.Redis.from_url(settings.redis)
    store = WindowStore.from_settings(client, settings)
    history = History(settings.database)
    try:
        _wait_for_worker(worker, log_path, settings)
        console.print(f"[bold]4/5[/] playing {lead_in + minutes} minutes of event time in ~{duration:.0f} s")
        producer = KafkaProducer(bootstrap_servers=settings.kafka_servers, linger_ms=5)
        state = {"sent": 0, "ts": 0}

        def send(m: dict) -> None:
            value = json.dumps(m).encode()
            producer.send(settings.topic_social, key=m["id"].encode(), value=value, timestamp_ms=m["ts"])

        speed = (spec.end_ms - spec.start_ms) / 1000 / duration
        started = time.monotonic()
        view = Live(console=console, refresh_per_second=4) if live else None
        with view or _Null():
            def progress(sent: int, ts: int) -> None:
                state.update(sent=sent, ts=ts)
                if view:
                    view.update(_table(store, history, entities, ts, sent, len(messages)))

            pace(messages, send, speed, on_progress=progress)
            producer.flush()
            deadline = time.monotonic() + max(60.0, duration)
            while scored_count(settings.kafka_servers, settings.topic_scored) < len(messages):
                if worker.poll() is not None:
                    raise UserError(f"the worker stopped (exit {worker.returncode}); see {log_path}")
                if time.monotonic() > deadline:
                    raise UserError(f"the worker did not catch up within {max(60.0, duration):.0f} s; see {log_path}")
                if view:
                    view.update(_table(store, history, entities, spec.end_ms, len(messages), len(messages)))
                time.sleep(0.5)
            elapsed = time.monotonic() - started
            time.sleep(1.0)  # the last batch's alert evaluation
            if view:
                view.update(_table(store, history, entities, spec.end_ms, len(messages), len(messages)))
        producer.close()
        if not live:
            console.print(_table(store, history, entities, spec.end_ms, len(messages), len(messages)))

        console.print("[bold]5/5[/] summary")
        alerts = [{**a, "started_at_ms": _ms(a["started_at"])} for a in history.list(limit=1000)]
        report = score_detection(alerts, list(spec.episodes))
        summary = {"alerts": alerts, "detection": asdict(report), "messages": len(messages), "seconds": elapsed}
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        _print_summary(report, alerts, len(messages), elapsed, settings, out)
    finally:
        procs.stop(worker.pid, timeout_s=30)  # SIGTERM: the worker finishes its batch and commits
        history.close()
        client.close()


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


def _ms(iso: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def _wait_for_worker(worker: subprocess.Popen, log_path: Path, settings, timeout_s: float = 120.0) -> None:
    """Ready when its metrics endpoint answers (it starts serving once the scorer is loaded)."""
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise UserError(f"the worker exited (code {worker.returncode}) during start-up; see {log_path}:\n"
                            + "\n".join(log_path.read_text(errors="replace").splitlines()[-10:]))  # fmt: skip
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{settings.metrics_port}/metrics", timeout=1).read()
            return
        except OSError:
            time.sleep(0.5)
    raise UserError(f"the worker did not start within {timeout_s:.0f} s; see {log_path}")


def _print_summary(report, alerts: list[dict], n: int, elapsed: float, settings, out: Path) -> None:
    pct = lambda x: "-" if x is None else f"{x:.0%}"  # noqa: E731
    console.print(f"  {n:,} messages scored and windowed in {elapsed:.1f} s ({n / elapsed:,.0f} msg/s end to end)")
    console.print(f"  alerts: {len(alerts)} episodes; vs planted: precision {pct(report.precision)}, "
                  f"recall {pct(report.recall)}")  # fmt: skip
    for key, delay in report.delays_s.items():
        console.print(f"    detected {key.split('@')[0]} after {delay / 60:.1f} min of event time")
    for missed in report.missed:
        console.print(f"    [yellow]missed[/] {missed['entity']}/{missed['kind']}")
    for alert in report.false_alerts[:8]:
        console.print(f"    [yellow]not planted[/] {alert['rule']} on {alert['entity']} at {alert['started_at']}")
    console.print("\n  where to look next:")
    console.print(f"    alerts:  SENTIMON_DATABASE_URL={settings.database} sentimon alerts list")
    console.print(f"    windows: SENTIMON_WINDOW_PREFIX={settings.window_prefix} sentimon windows TSLA --window 1h "
                  f"--end {_last_ts(out)}")
    console.print(f"    replay:  sentimon replay --topic {settings.topic_social} --model static --compare default "
                  f"--episodes {out / 'episodes.json'}")  # fmt: skip
    console.print("    metrics: the worker serves Prometheus metrics on 127.0.0.1:<metrics port> while it runs")
    console.print("    stop the stack: sentimon down")


def _last_ts(out: Path) -> str:
    last = None
    with open(out / "timeline.jsonl") as f:
        for line in f:
            last = line
    return str(json.loads(last)["ts"]) if last else "now"


def register(app: typer.Typer) -> None:
    app.command()(demo)
