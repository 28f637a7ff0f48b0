"""The pure core of the worker: one micro-batch of raw records -> scored events, window update, hooks.

No Kafka here: records are plain ``RawRecord`` values, so any stage can be tested with a list. The Faust
shell (``streams.app``) feeds batches in an executor thread and publishes what ``process`` returns.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sentimon.core.parts import StreamSettings
from sentimon.streams.entities import EntityExtractor
from sentimon.streams.metrics import StreamMetrics
from sentimon.streams.schema import SCORING_FAILED, Message, Rejection, parse_message
from sentimon.streams.windows import STATUS_NAMES, WindowStore

log = logging.getLogger(__name__)


class ScorerLike(Protocol):
    name: str
    version: str

    def score(self, texts: list[str]) -> list[Any]: ...


@dataclass(frozen=True)
class RawRecord:
    """One Kafka record as the pipeline sees it."""

    value: bytes | None
    topic: str
    partition: int = 0
    offset: int = 0
    timestamp_ms: int | None = None  # the record's Kafka timestamp (producer create / broker append time)


@dataclass(slots=True)
class ScoredEvent:
    """One scored message. ``status``: "applied" | "duplicate" | "late" once windows were updated.

    The pipeline fills ``status`` and the final ``timings`` in place (copying every event cost more than
    the window update); hooks receive finished events and should treat them as read-only.
    """

    message_id: str
    ts_ms: int
    source: str
    entities: tuple[str, ...]
    text: str
    label: str
    score: float
    probs: dict[str, float]
    model: str
    model_version: str
    topic: str
    partition: int
    offset: int
    timings: dict[str, float] = field(default_factory=dict)
    status: str = "pending"
    record_ts_ms: int | None = None  # the Kafka record timestamp
    lang: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The scored topic's JSON record."""
        return {
            "id": self.message_id,
            "ts": self.ts_ms,
            "source": self.source,
            "entities": list(self.entities),
            "text": self.text,
            "label": self.label,
            "score": self.score,
            "probs": self.probs,
            "model": {"name": self.model, "version": self.model_version},
            "status": self.status,
            "origin": {
                "topic": self.topic,
                "partition": self.partition,
                "offset": self.offset,
                "timestamp_ms": self.record_ts_ms,
            },  # fmt: skip
            "timings": self.timings,
            "lang": self.lang,
            "meta": self.meta,
            **({"extra": self.extra} if self.extra else {}),
        }


@dataclass(frozen=True)
class DeadLetter:
    """A record the worker could not use: what the DLQ topic receives."""

    reason: str
    detail: str
    value: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "detail": self.detail,
            "original_b64": base64.b64encode(self.value).decode("ascii") if self.value is not None else None,
            "source": {"topic": self.topic, "partition": self.partition, "offset": self.offset},
            "record_timestamp_ms": self.timestamp_ms,
        }


# A hook runs after each batch's window update, in the worker's executor thread. It receives every valid
# event of the batch (``status`` says whether this delivery applied it) and the store to read windows from.
Hook = Callable[[list[ScoredEvent], WindowStore], None]


@dataclass
class BatchResult:
    events: list[ScoredEvent]
    dead_letters: list[DeadLetter]
    inference_s: float = 0.0
    window_s: float = 0.0
    total_s: float = 0.0
    window_done_ms: int = 0


class Pipeline:
    """Parse -> extract entities -> score -> window update -> hooks, for one batch at a time.

    Thread-safe as long as the scorer is (inference scorers are). Redis failures are retried with backoff
    until Redis answers: a batch is never acknowledged before its window update, so nothing is lost.
    """

    def __init__(
        self,
        scorer: ScorerLike,
        store: WindowStore,
        extractor: EntityExtractor,
        *,
        max_message_bytes: int = 64 * 1024,
        max_entities: int = 32,
        max_future_ms: int = 5 * 60 * 1000,
        hooks: Sequence[Hook] = (),
        metrics: StreamMetrics | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        retry_backoff_s: tuple[float, float] = (0.05, 2.0),
    ):
        self.scorer = scorer
        self.store = store
        self.extractor = extractor
        self.max_message_bytes = max_message_bytes
        self.max_entities = max_entities
        self.max_future_ms = max_future_ms
        self.hooks = list(hooks)
        self.metrics = metrics
        self.clock = clock
        self.sleep = sleep
        self.retry_backoff_s = retry_backoff_s
        if metrics is not None:
            metrics.set_model(scorer.name, scorer.version)

    @classmethod
    def from_settings(cls, settings: StreamSettings, scorer: ScorerLike, store: WindowStore, **kwargs: Any) -> Pipeline:
        return cls(
            scorer,
            store,
            EntityExtractor.from_file(settings.watchlist),
            max_message_bytes=settings.max_message_bytes,
            max_entities=settings.max_entities,
            max_future_ms=settings.max_future_ms,
            **kwargs,
        )

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- stages
    def parse(self, records: Sequence[RawRecord]) -> tuple[list[tuple[RawRecord, Message]], list[DeadLetter]]:
        now = self.now_ms()
        good, bad = [], []
        for rec in records:
            parsed = parse_message(
                rec.value,
                fallback_ts_ms=rec.timestamp_ms if rec.timestamp_ms is not None else now,
                now_ms=now,
                max_bytes=self.max_message_bytes,
                max_entities=self.max_entities,
                max_future_ms=self.max_future_ms,
            )
            if isinstance(parsed, Rejection):
                bad.append(_dead(rec, parsed.reason, parsed.detail))
            else:
                good.append((rec, parsed))
        return good, bad

    def score(self, texts: list[str]) -> list[Any | Exception]:
        """Predictions in order; when the batch fails, texts are scored one by one to isolate the bad ones."""
        try:
            preds = self.scorer.score(texts)
        except Exception:
            log.exception("scorer failed on a batch of %d; scoring one by one", len(texts))
            if self.metrics:
                self.metrics.scorer_errors.inc()
            preds = []
            for text in texts:
                try:
                    preds.append(self.scorer.score([text])[0])
                except Exception as exc:  # a per-message failure is data for the DLQ, not a crash
                    preds.append(exc)
        if len(preds) != len(texts):
            raise RuntimeError(f"scorer {self.scorer.name} returned {len(preds)} predictions for {len(texts)} texts")
        return preds

    def apply(self, events: list[ScoredEvent]) -> list[ScoredEvent]:
        """Window update with retry until Redis answers; returns the events with their status."""
        delay, cap = self.retry_backoff_s
        while True:
            try:
                result = self.store.apply_detailed(events)
                break
            except (ConnectionError, OSError, TimeoutError) as exc:
                self._redis_retry(exc, delay)
            except Exception as exc:
                # redis.exceptions.* (ConnectionError, BusyLoadingError while the AOF loads, ...).
                if not _is_redis_transient(exc):
                    raise
                self._redis_retry(exc, delay)
            delay = min(delay * 2, cap)
        for ev, status in zip(events, result.statuses, strict=True):
            ev.status = STATUS_NAMES[status]
        return events

    def _redis_retry(self, exc: Exception, delay: float) -> None:
        log.warning("window update failed (%s: %s); retrying in %.2f s", type(exc).__name__, exc, delay)
        if self.metrics:
            self.metrics.redis_errors.inc()
        self.sleep(delay)

    def run_hooks(self, events: list[ScoredEvent]) -> None:
        for hook in self.hooks:
            try:
                hook(events, self.store)
            except Exception:
                name = getattr(hook, "__name__", type(hook).__name__)
                log.exception("hook %s failed", name)
                if self.metrics:
                    self.metrics.hook_errors.labels(hook=name).inc()

    # -- the batch
    def process(self, records: Sequence[RawRecord]) -> BatchResult:
        """Run one micro-batch end to end. Never raises on bad input; retries Redis until it answers."""
        started = time.perf_counter()
        started_ms = self.now_ms()
        good, dead = self.parse(records)

        texts = [msg.text for _, msg in good]
        t0 = time.perf_counter()
        preds = self.score(texts) if texts else []
        inference_s = time.perf_counter() - t0

        events: list[ScoredEvent] = []
        timings = {
            "batch_start_ms": started_ms,
            "inference_ms": round(inference_s * 1000, 3),
            "batch_size": len(records),
        }
        for (rec, msg), pred in zip(good, preds, strict=True):
            if isinstance(pred, Exception):
                dead.append(_dead(rec, SCORING_FAILED, f"{type(pred).__name__}: {pred}"[:300]))
                continue
            entities = msg.entities if msg.entities is not None else tuple(self.extractor.extract(msg.text))
            events.append(
                ScoredEvent(
                    message_id=msg.id,
                    ts_ms=msg.ts_ms,
                    source=msg.source,
                    entities=tuple(entities),
                    text=msg.text,
                    label=pred.label,
                    score=float(pred.score),
                    probs=dict(pred.probs),
                    model=self.scorer.name,
                    model_version=self.scorer.version,
                    topic=rec.topic,
                    partition=rec.partition,
                    offset=rec.offset,
                    record_ts_ms=rec.timestamp_ms,
                    timings=timings,
                    lang=msg.lang,
                    meta=msg.meta,
                    extra=msg.extra,
                )
            )

        t1 = time.perf_counter()
        events = self.apply(events) if events else []
        window_s = time.perf_counter() - t1
        done_ms = self.now_ms()
        for ev in events:
            ev.timings = _final_timings(ev, done_ms)
        self.run_hooks(events)
        result = BatchResult(events, dead, inference_s, window_s, time.perf_counter() - started, done_ms)
        if self.metrics:
            self._observe(self.metrics, records, result)
        return result

    @staticmethod
    def _observe(m: StreamMetrics, records: Sequence[RawRecord], result: BatchResult) -> None:
        m.batch_size.observe(len(records))
        m.inference_seconds.observe(result.inference_s)
        m.window_update_seconds.observe(result.window_s)
        for ev in result.events:
            m.messages.labels(topic=ev.topic, outcome=ev.status).inc()
        for d in result.dead_letters:
            m.messages.labels(topic=d.topic, outcome="rejected").inc()
            m.dlq.labels(reason=d.reason).inc()
        for rec in records:
            if rec.timestamp_ms is not None:
                m.ingest_to_window_seconds.observe(max(result.window_done_ms - rec.timestamp_ms, 0) / 1000)


def _final_timings(ev: ScoredEvent, done_ms: int) -> dict[str, float]:
    timings = {**ev.timings, "window_done_ms": done_ms}
    if ev.record_ts_ms is not None:
        timings["ingest_to_window_ms"] = done_ms - ev.record_ts_ms
        timings["queue_ms"] = timings["batch_start_ms"] - ev.record_ts_ms  # Kafka + consumer + batching
    return timings


def _dead(rec: RawRecord, reason: str, detail: str) -> DeadLetter:
    return DeadLetter(reason, detail, rec.value, rec.topic, rec.partition, rec.offset, rec.timestamp_ms)


def _is_redis_transient(exc: Exception) -> bool:
    import redis

    return isinstance(exc, redis.ConnectionError | redis.TimeoutError | redis.BusyLoadingError) or (
        # OOM: maxmemory reached -- wait for memory (TTL expiry, an operator) rather than drop the batch.
        isinstance(exc, redis.ResponseError)
        and str(exc).startswith(("LOADING", "MASTERDOWN", "TRYAGAIN", "OOM", "READONLY", "CLUSTERDOWN"))
    )
