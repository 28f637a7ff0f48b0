"""Re-score a stream of historical records with one or more models, each in its own namespace.

A namespace isolates everything a run writes: Redis window and alert-state prefixes, the alert history
database and the output topic. Production keys, topics and alerts are never touched. The records are read
once and every batch goes through each model's pipeline, so the comparison sees identical input.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentimon.core.pacing import Pacer
from sentimon.streams.pipeline import Pipeline, RawRecord, ScoredEvent

SILENCE_CHECK_EVERY_MS = 5 * 60_000  # event time between silence checks (the live worker uses a wall timer)


KEY_ROOT = "replay"  # every Redis key a replay writes starts with "replay:<tag>:" (``sentimon replay clean``)
TOPIC_INFIX = ".replay."  # a replay's scored topic: <topics.scored>.replay.<tag>


def tag_of(namespace: str, model: str) -> str:
    """The sub-namespace of one model in a replay: ``<namespace>.<model file name>``, with no ':' or '*'."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{namespace}.{Path(model).name}")


def namespaced(settings, namespace: str, model: str, out_dir: Path):
    """A copy of ``settings`` whose every write target lives in ``namespace`` (one per model)."""
    tag = tag_of(namespace, model)
    return settings.replace(
        inference={"model": model},
        windows={"prefix": f"{KEY_ROOT}:{tag}"},
        stack={"database_url": f"sqlite:///{(out_dir / f'alerts-{tag}.db').resolve()}"},
        topics={"scored": f"{settings.topics.scored}{TOPIC_INFIX}{tag}"},
        alerts={
            "prefix": f"{KEY_ROOT}:{tag}:alerts",
            "kafka": False,  # alerts of a replay go to its own history, never to the live alerts topic
            "webhooks": [],  # and never page anyone
        },
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
    dead_letters: Counter = field(default_factory=Counter)  # reason (sentimon.core.reasons) -> records
    statuses: Counter = field(default_factory=Counter)  # window status of every scored delivery: applied, ...
    busy_s: float = 0.0
    client: Any = None  # the Redis client the run opened (closed by ``close``)

    def close(self) -> None:
        """Close the alert service (and its history) and the Redis client this run opened."""
        try:
            if self.alerts is not None:
                self.alerts.close()
                history = getattr(self.alerts, "history", None)
                if history is not None and self.client is not None:  # build_run opened it: close it too
                    history.close()
        finally:
            if self.client is not None:
                self.client.close()


def build_runs(settings, models: list[str], namespace: str, out_dir: Path) -> list[ModelRun]:
    """One isolated ModelRun per model (same namespace, a sub-namespace each); ``close()`` each run."""
    from sentimon import inference

    runs: list[ModelRun] = []
    try:
        for model in models:
            scorer = inference.load(model, settings.inference)
            name = scorer.name
            if any(r.name == name for r in runs):
                name = f"{name} ({model})"
            runs.append(build_run(settings, model, scorer, namespace, out_dir, name=name))
    except BaseException:
        for run in runs:  # the second model failed to load: do not leak the first one's clients
            run.close()
        raise
    return runs


def build_run(
    settings, model: str, scorer, namespace: str, out_dir: Path, name: str | None = None, topic_scorers=None
) -> ModelRun:
    """One isolated ModelRun around a loaded ``scorer`` (``model`` names its namespace); ``close()`` it.
    ``topic_scorers``: records of these topics are scored by their own model (``Pipeline``)."""
    from sentimon.alerts import AlertService, History
    from sentimon.infra.redis_client import connect
    from sentimon.streams.windows import WindowStore

    ns_settings = namespaced(settings, namespace, model, out_dir)
    client = connect(settings.stack)
    try:
        store = WindowStore.from_settings(client, ns_settings.windows)
        history = History(ns_settings.stack.database)
        service = AlertService.from_settings(ns_settings, redis_client=client, history=history)
        pipeline = Pipeline.from_settings(ns_settings.stream, scorer, store, topic_scorers=topic_scorers)
    except BaseException:
        client.close()
        raise
    return ModelRun(name or scorer.name, ns_settings, pipeline, service, client=client)


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
    pacer = Pacer(clock, sleep)
    first_ts = last_ts = None
    next_silence: int | None = None
    count = 0
    for batch in batched(records, batch_size, max_span_ms):
        ts = [r.timestamp_ms for r in batch if r.timestamp_ms is not None]
        if ts:
            first_ts = ts[0] if first_ts is None else first_ts
            last_ts = max(ts[-1], last_ts or ts[-1])
            pacer.at_event_time(ts[0], speed)
        for run in runs:
            t0 = clock()
            result = run.pipeline.process(batch)
            # Evaluated here rather than as a pipeline hook, at the batch's event time like the live worker's
            # hook: a failure then stops the replay instead of leaving a report with alerts silently missing.
            if run.alerts is not None:
                run.notifications.extend(run.alerts.on_batch(result.events, run.pipeline.store))
            run.busy_s += clock() - t0
            # Bad records never stop a replay: each is counted under the worker's dead-letter reason.
            run.dead_letters.update(d.reason for d in result.dead_letters)
            run.statuses.update(getattr(ev, "status", "applied") for ev in result.events)
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
    return ReplayStats(count, pacer.elapsed_s(), first_ts, last_ts)
