"""`sentimon demo` without the terminal: start the local stack and a worker, play a planted trading day through
Kafka, wait until the worker has finished it, and score its alerts against what was planted.

What the terminal shows comes back through a ``DemoScreen`` (numbered steps, detail lines, live views of the
windows and alerts) and a ``DemoResult``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sentimon.core.pacing import Pacer
from sentimon.replay.corpus import demo_pool, market_pool
from sentimon.replay.demo import DemoWorker, demo_settings
from sentimon.replay.timeline import (
    DAY_MIN,
    MARKET_SOURCE,
    SESSION_MIN,
    DetectionReport,
    TimelineSpec,
    generate,
    score_detection,
    trading_day,
)

HOUR_MS = 3_600_000  # the window the live view shows
PROGRESS_EVERY = 50  # messages between live views while playing
CATCH_UP_MIN_S = 60.0  # the worker may commit nothing for this long (or the play's duration) before the demo gives up
ALERTS_READ_LIMIT = 1000


@dataclass(frozen=True)
class DemoOptions:
    minutes: int = SESSION_MIN  # the trading session, event time
    history_min: int = DAY_MIN  # the day before the open (sent as fast as the worker takes it, not paced)
    date: str | None = None  # the session's date (ISO); None: the most recent session that has ended
    duration_s: float = 90.0  # wall seconds to play the session in
    model: str | None = None  # None: the settings' model
    seed: int = 7
    out_dir: Path | None = None  # None: <state_dir>/demo/<run id>


@dataclass(frozen=True)
class EntityView:
    entity: str
    count: int  # mentions in the last hour of event time
    mean_score: float | None
    negative: float | None  # share of the mentions; None without mentions
    positive: float | None
    firing: list[str]  # names of the rules firing on it


@dataclass(frozen=True)
class DemoView:
    now_ms: int  # event time of the last message sent (0: none yet)
    sent: int
    total: int
    entities: list[EntityView]


@dataclass(frozen=True)
class DemoResult:
    settings: Any  # the demo's namespaced settings
    out_dir: Path
    messages: int
    elapsed_s: float  # first send to the worker's last commit
    alerts: list[dict]
    detection: DetectionReport
    final: DemoView
    last_ts_ms: int | None
    spec: TimelineSpec  # what was played: the session's open, the planted episodes


class DemoScreen(Protocol):
    live: bool  # whether views are wanted while playing (each one reads Redis and the alert history)

    def step(self, number: int, text: str) -> None: ...

    def detail(self, text: str) -> None: ...

    def show(self, view: DemoView) -> None: ...

    def ready(self, settings: Any) -> None:
        """The demo's stack, topics and worker are up (``settings``: the demo's own namespace)."""


def run_demo(settings, options: DemoOptions, screen: DemoScreen) -> DemoResult:
    """Steps 1-4 (stack, timeline, worker, play); the result carries what the summary needs, also written to
    ``summary.json`` beside the timeline."""
    run_id = uuid.uuid4().hex[:8]
    out = (options.out_dir or settings.stack.state_dir / "demo" / run_id).resolve()
    out.mkdir(parents=True, exist_ok=True)
    settings = demo_settings(settings, run_id, out, options.model)

    screen.step(1, "local stack")
    _start_stack(settings, screen.detail)
    screen.step(2, "planted trading day (held-out tweets, synthetic times and entities)")
    spec = trading_day(date=options.date, minutes=options.minutes, seed=options.seed,
                       history_min=options.history_min)  # fmt: skip
    messages = _write_timeline(settings, spec, out)
    open_ms = spec.session_start_ms if spec.session_start_ms is not None else spec.start_ms
    history = [m for m in messages if m["ts"] < open_ms]
    session = messages[len(history) :]
    screen.detail(f"session {_iso(open_ms)} to {_iso(spec.end_ms)} after {options.history_min} min of history: "
                  f"{len(messages):,} messages for {', '.join(e.name for e in spec.entities)} -> "
                  f"{out / 'timeline.jsonl'}")  # fmt: skip
    market = settings.inference.market_model or settings.inference.model
    screen.step(3, f"worker (model {settings.inference.model}, market topic: {market}, "
                   f"metrics http://{settings.metrics.host}:{settings.metrics.port}/metrics)")  # fmt: skip
    n = len(messages)
    with ExitStack() as cleanup:
        watch = _Watch(settings, [e.name for e in spec.entities], n)
        cleanup.callback(watch.close)
        worker = DemoWorker(settings, out / "worker.log")
        cleanup.callback(worker.stop)

        def show(now_ms: int, sent: int) -> None:
            if screen.live:
                screen.show(watch.view(now_ms, sent))

        worker.wait_ready()
        raw_topics = [settings.topics.social, settings.topics.market]
        screen.ready(settings)
        started = time.monotonic()
        screen.step(4, f"playing the {options.minutes}-minute session in ~{options.duration_s:.0f} s"
                       + (f", after {options.history_min} min of history" if history else ""))  # fmt: skip
        if history:
            # The rules' baselines need the day before (see ``trading_day``); nobody wants to watch it.
            _send_paced(settings, history, None, lambda sent, ts: None)  # views while it waits, not per send
            worker.wait_done(raw_topics, timeout_s=CATCH_UP_MIN_S, on_wait=lambda: show(open_ms, len(history)))
            screen.detail(f"history: {len(history):,} messages, taken in {time.monotonic() - started:.0f} s")
        speed = (spec.end_ms - open_ms) / 1000 / options.duration_s
        _send_paced(settings, session, speed, lambda sent, ts: show(ts, len(history) + sent))
        worker.wait_done(raw_topics, timeout_s=max(CATCH_UP_MIN_S, options.duration_s),
                         on_wait=lambda: show(spec.end_ms, n))  # fmt: skip
        elapsed_s = time.monotonic() - started
        final = watch.view(spec.end_ms, n)
        if screen.live:
            screen.show(final)
        alerts = watch.alerts()
    detection = score_detection(session_alerts(alerts, spec), list(spec.episodes))
    summary = {"alerts": alerts, "detection": asdict(detection), "messages": n, "seconds": elapsed_s,
               "session_start_ms": open_ms}  # fmt: skip
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    last_ts_ms = messages[-1]["ts"] if messages else None
    return DemoResult(settings, out, n, elapsed_s, alerts, detection, final, last_ts_ms, spec)


def session_alerts(alerts: list[dict], spec: TimelineSpec) -> list[dict]:
    """The alerts the played session is scored on: those started at or after its open. The history before it
    only gives the rules their baselines; its alerts are shown, not scored."""
    open_ms = spec.session_start_ms if spec.session_start_ms is not None else spec.start_ms
    return [a for a in alerts if a["started_at_ms"] >= open_ms]


def pace(
    messages: list[dict],
    send: Callable[[dict], None],
    speed: float | None,
    *,
    on_progress: Callable[[int, int], None] = lambda sent, ts: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Send ``messages`` (sorted by ts) so event time runs ``speed`` times faster than wall time (None: as fast
    as possible); returns the wall seconds spent."""
    pacer = Pacer(clock, sleep)
    for i, message in enumerate(messages, 1):
        pacer.at_event_time(message["ts"], speed)
        send(message)
        if i % PROGRESS_EVERY == 0 or i == len(messages):
            on_progress(i, message["ts"])
    return pacer.elapsed_s()


def _start_stack(settings, say: Callable[[str], None]) -> None:
    from sentimon.infra import Stack, ensure_topics, pipeline_topics

    Stack(settings).up(lambda name, what: say(f"{name:>8} {what}"))
    ensure_topics(settings, pipeline_topics(settings))


def _write_timeline(settings, spec: TimelineSpec, out: Path) -> list[dict]:
    messages = generate(spec, demo_pool(settings.stack.cache_dir), market_pool(settings.stack.cache_dir))
    with open(out / "timeline.jsonl", "w") as f:
        f.writelines(json.dumps(m) + "\n" for m in messages)
    (out / "episodes.json").write_text(json.dumps([e.as_dict() for e in spec.episodes], indent=2))
    return messages


def _send_paced(settings, messages: list[dict], speed: float | None, on_progress: Callable[[int, int], None]) -> None:
    """The timeline onto the raw topics (tickers' messages on the market topic, which inference.market_model
    scores), keyed by id and stamped with its event time."""
    from sentimon.infra import kafka_clients

    producer = kafka_clients.producer(settings, linger_ms=5)

    def send(m: dict) -> None:
        value = json.dumps(m).encode()
        topic = settings.topics.market if m["source"] == MARKET_SOURCE else settings.topics.social
        producer.send(topic, key=m["id"].encode(), value=value, timestamp_ms=m["ts"])

    try:
        pace(messages, send, speed, on_progress=on_progress)
        producer.flush()
    finally:
        producer.close()


class _Watch:
    """The demo's windows and alert history, read for the views and the summary."""

    def __init__(self, settings, entities: list[str], total: int):
        from sentimon.alerts import History
        from sentimon.infra.redis_client import connect
        from sentimon.streams.windows import WindowStore

        self.entities, self.total = entities, total
        self.client = connect(settings.stack)
        self.store = WindowStore.from_settings(self.client, settings.windows)
        self.history = History(settings.stack.database)

    def view(self, now_ms: int, sent: int) -> DemoView:
        firing: dict[str, list[str]] = {}
        for alert in self.history.list(state="firing", limit=200):
            firing.setdefault(alert["entity"], []).append(alert["rule"].split("/")[-1])
        rows = []
        for entity in self.entities:
            stats = self.store.stats(entity, HOUR_MS, now_ms + 1) if now_ms else None
            if stats is None or not stats.count:
                rows.append(EntityView(entity, 0, None, None, None, firing.get(entity, [])))
                continue
            negative, positive = stats.share("negative"), stats.share("positive")
            rows.append(EntityView(entity, stats.count, stats.mean_score, negative, positive, firing.get(entity, [])))
        return DemoView(now_ms, sent, self.total, rows)

    def alerts(self) -> list[dict]:
        return [{**a, "started_at_ms": _ms(a["started_at"])} for a in self.history.list(limit=ALERTS_READ_LIMIT)]

    def close(self) -> None:
        self.history.close()
        self.client.close()


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
