"""Re-score a stream of historical records with one or more models, each in its own namespace.

A namespace isolates everything a run writes: Redis window and alert-state prefixes, the alert history
database and the output topic. Production keys, topics and alerts are never touched. The records are read
once and every batch goes through each model's pipeline, so the comparison sees identical input.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentimon.streams.pipeline import Pipeline, RawRecord, ScoredEvent

SILENCE_CHECK_EVERY_MS = 5 * 60_000  # event time between silence checks (the live worker uses a wall timer)


def namespaced(settings, namespace: str, model: str, out_dir: Path):
    """A copy of ``settings`` whose every write target lives in ``namespace`` (one per model)."""
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{namespace}.{Path(model).name}")
    return settings.model_copy(
        update={
            "model": model,
            "window_prefix": f"replay:{tag}",
            "alerts_prefix": f"replay:{tag}:alerts",
            "database_url": f"sqlite:///{(out_dir / f'alerts-{tag}.db').resolve()}",
            "topic_scored": f"{settings.topic_scored}.replay.{tag}",
            "alerts_kafka": False,  # alerts of a replay go to its own history, never to the live alerts topic
            "alerts_webhooks": [],  # and never page anyone
        }
    )


@dataclass
class ModelRun:
    """One model's replay: its pipeline, its alert service, and what came out."""

    name: str
    settings: Any
    pipeline: Pipeline
    alerts: Any  # alerts.AlertService or None
    events: dict[str, ScoredEvent] = field(default_factory=dict)  # message id -> first scored delivery
    notifications: list[dict] = field(default_factory=list)
    dead_letters: int = 0
    busy_s: float = 0.0

    def hook(self, events: list[ScoredEvent], store) -> None:
        if self.alerts is not None:
            self.notifications.extend(self.alerts.on_batch(events, store))


@dataclass
class ReplayStats:
    records: int
    wall_s: float
    first_ts_ms: int | None
    last_ts_ms: int | None


def batched(records: Iterable[RawRecord], size: int, max_span_ms: int | None = None) -> Iterator[list[RawRecord]]:
    """Batches of at most ``size`` records spanning at most ``max_span_ms`` of event time.

    Rules are evaluated once per batch at its last event time; bounding the span keeps a replay's evaluation
    points as fine-grained as a live worker's, whatever the replay speed, so both fire the same alerts.
    """
    batch: list[RawRecord] = []
    for record in records:
        if batch and (
            len(batch) >= size
            or (max_span_ms is not None and record.timestamp_ms is not None and batch[0].timestamp_ms is not None
                and record.timestamp_ms - batch[0].timestamp_ms >= max_span_ms)
        ):  # fmt: skip
            yield batch
            batch = []
        batch.append(record)
    if batch:
        yield batch


def replay(
    records: Iterable[RawRecord],
    runs: list[ModelRun],
    *,
    batch_size: int = 256,
    max_span_ms: int | None = 60_000,
    speed: float | None = None,
    publish: Callable[[ModelRun, list[ScoredEvent]], None] | None = None,
    on_batch: Callable[[int], None] = lambda n: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplayStats:
    """Feed ``records`` (in event-time order) through every run. ``speed`` N replays N times faster than the
    records' own timestamps (None: as fast as possible)."""
    started = clock()
    first_ts = last_ts = None
    next_silence: int | None = None
    count = 0
    for batch in batched(records, batch_size, max_span_ms):
        ts = [r.timestamp_ms for r in batch if r.timestamp_ms is not None]
        if ts:
            first_ts = ts[0] if first_ts is None else first_ts
            last_ts = max(ts[-1], last_ts or ts[-1])
            if speed:
                wait = started + (ts[0] - first_ts) / 1000 / speed - clock()
                if wait > 0:
                    sleep(wait)
        for run in runs:
            t0 = clock()
            result = run.pipeline.process(batch)
            run.busy_s += clock() - t0
            run.dead_letters += len(result.dead_letters)
            for ev in result.events:
                run.events.setdefault(ev.message_id, ev)
            if publish is not None:
                publish(run, result.events)
        if last_ts is not None and (next_silence is None or last_ts >= next_silence):
            for run in runs:
                if run.alerts is not None:
                    run.notifications.extend(run.alerts.check_silence(run.pipeline.store, last_ts))
            next_silence = last_ts + SILENCE_CHECK_EVERY_MS
        count += len(batch)
        on_batch(len(batch))
    return ReplayStats(count, clock() - started, first_ts, last_ts)
