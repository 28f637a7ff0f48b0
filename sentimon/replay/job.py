"""`sentimon replay` end to end: a time range of a topic through one or more models, each in its own namespace,
scored events published to the namespace's topic, and the report written."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sentimon.core.redact import mask_url
from sentimon.replay import report as reporting
from sentimon.replay.errors import ReplayError
from sentimon.replay.reader import TopicRange
from sentimon.replay.run import ModelRun, build_runs, namespaced, replay
from sentimon.replay.timeline import Episode
from sentimon.streams.pipeline import ScoredEvent


@dataclass(frozen=True)
class ReplayRequest:
    topic: str
    models: list[str]  # the first is the baseline of the comparison
    namespace: str
    report_path: Path  # .json; the .md and .png go beside it, each model's alert history in its folder
    start_ms: int | None = None
    end_ms: int | None = None  # exclusive
    speed: float | None = None  # None: as fast as possible
    batch_size: int = 256
    publish: bool = True  # scored events to each namespace's own scored topic
    episodes: list[Episode] | None = None  # planted episodes to score the alerts on


@dataclass(frozen=True)
class ReplayOutcome:
    report: dict[str, Any]
    paths: dict[str, Path]  # json, markdown, plot


class TopicReplay:
    """Opening reads the range's size, so a wrong topic or an empty range fails before any model loads; ``run``
    does the rest."""

    def __init__(self, settings, request: ReplayRequest):
        self.settings, self.request = settings, request
        self.source = TopicRange(settings, request.topic, request.start_ms, request.end_ms)
        self.source.require_records()

    @property
    def total(self) -> int:
        return self.source.total

    def run(self, on_batch: Callable[[int], None] = lambda n: None) -> ReplayOutcome:
        req = self.request
        self._record()  # before anything is written: an interrupted replay can be cleaned too
        req.report_path.parent.mkdir(parents=True, exist_ok=True)
        runs = build_runs(self.settings, req.models, req.namespace, req.report_path.parent)
        producer = None
        try:
            producer = _scored_producer(self.settings, runs) if req.publish else None
            stats = replay(self.source, runs, batch_size=req.batch_size, speed=req.speed,
                           publish=_publisher(producer) if producer else None, on_batch=on_batch)  # fmt: skip
        finally:
            try:
                if producer:
                    producer.flush()
                    producer.close()
            finally:
                for run in runs:
                    run.close()
        report = reporting.build(runs, stats, topic=req.topic, episodes=req.episodes)
        return ReplayOutcome(report, reporting.write(report, req.report_path, req.episodes))

    def _record(self) -> None:
        """Note in the replay registry what this replay will create (``sentimon replay clean`` removes it)."""
        import redis

        from sentimon.infra.redis_client import connect
        from sentimon.replay.clean import DB_SUFFIXES, Leftovers, created_dirs, record

        req = self.request
        folder = req.report_path.parent
        leftovers = Leftovers(req.namespace, dirs=set(created_dirs(folder)))
        base = req.report_path.resolve()
        leftovers.files.update(str(base.with_suffix(s)) for s in (".json", ".md", ".png"))
        for model in req.models:
            ns = namespaced(self.settings, req.namespace, model, folder)
            leftovers.tags.add(ns.windows.prefix.split(":", 1)[1])
            if req.publish:
                leftovers.topics.add(ns.topics.scored)
            db = ns.stack.database_url.removeprefix("sqlite:///")
            leftovers.files.update(db + suffix for suffix in DB_SUFFIXES)
        client = connect(self.settings.stack)
        try:
            record(client, leftovers)
        except redis.RedisError as exc:  # the first Redis call of a replay: say what to do, no traceback
            raise ReplayError(
                f"Redis at {mask_url(self.settings.stack.redis)} is unreachable ({exc}); run `sentimon up`"
            ) from None
        finally:
            client.close()


def _scored_producer(settings, runs: list[ModelRun]):
    from sentimon.infra import TopicSpec, ensure_topics, kafka_clients

    specs = [TopicSpec(run.settings.topics.scored, 1, settings.topics.scored_retention_ms) for run in runs]
    ensure_topics(settings, specs)
    return kafka_clients.producer(settings, linger_ms=20)


def _publisher(producer) -> Callable[[ModelRun, list[ScoredEvent]], None]:
    def publish(run: ModelRun, events: list[ScoredEvent]) -> None:
        for ev in events:
            producer.send(run.settings.topics.scored, json.dumps(ev.to_dict()).encode())

    return publish
