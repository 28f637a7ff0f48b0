"""The pure core of the worker: one micro-batch of raw records -> scored events, window update, hooks.

No Kafka here: records are plain ``RawRecord`` values, so any stage can be tested with a list. The Faust
shell (``streams.app``) feeds batches in an executor thread and publishes what ``process`` returns.

Data never stops the worker: what validation lets through is safe to encode and store, and a batch that still
fails unexpectedly is re-run record by record, so only the records that fail on their own are dead-lettered
(``processing_failed``). Only infrastructure faults (``is_infrastructure_error``) escape ``process``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sentimon.core.parts import StreamSettings
from sentimon.streams.entities import EntityExtractor
from sentimon.streams.metrics import StreamMetrics
from sentimon.streams.schema import (
    DEFAULT_MAX_DEPTH,
    NON_FINITE_SCORE,
    PROCESSING_FAILED,
    SCORING_FAILED,
    UNSUPPORTED_LANGUAGE,
    Message,
    Rejection,
    parse_message,
)
from sentimon.streams.windows import STATUS_NAMES, WindowStore

log = logging.getLogger(__name__)


class ScorerLike(Protocol):
    name: str
    version: str

    def score(self, texts: list[str]) -> list[Any]: ...


class Router(Protocol):
    """Chooses the scorer of each message of a batch (a rollout: ``streams.follow.Follower``)."""

    def score(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        entities: Sequence[Sequence[str]],
        score: Callable[[list[str], Any], list[Any]],
    ) -> tuple[list[Any], list[Any]]: ...


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
        return {**self._body(), "status": self.status, "timings": self.timings}

    def _body(self) -> dict[str, Any]:
        # Everything but the fields the window update sets, so the body is encoded before it (see encode_body).
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
            "origin": {
                "topic": self.topic,
                "partition": self.partition,
                "offset": self.offset,
                "timestamp_ms": self.record_ts_ms,
            },  # fmt: skip
            "lang": self.lang,
            "meta": self.meta,
            **({"extra": self.extra} if self.extra else {}),
        }

    def encode_body(self) -> bytes:
        """The record without ``status`` and ``timings``, as strict JSON (no NaN) in UTF-8; raises on anything
        that cannot be encoded. Done before the window update, so a record that cannot be written is never
        counted."""
        return json.dumps(self._body(), ensure_ascii=False, allow_nan=False).encode("utf-8")

    def finish(self, body: bytes) -> bytes:
        """``encode_body()``'s bytes completed with ``status`` and ``timings`` (plain strings and numbers)."""
        tail = json.dumps({"status": self.status, "timings": self.timings}, allow_nan=False).encode()
        return body[:-1] + b", " + tail[1:]


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

    def to_dict(self, max_original_bytes: int = 64 * 1024) -> dict[str, Any]:
        """The DLQ record. The original is kept up to ``max_original_bytes`` (base64), with its length and sha256,
        so the dead letter of a record of any size fits under the broker's message limit."""
        value = self.value
        return {
            "reason": self.reason,
            "detail": _printable(self.detail)[:_MAX_DETAIL_CHARS],
            "original_b64": base64.b64encode(value[:max_original_bytes]).decode("ascii") if value is not None else None,
            "original_bytes": len(value) if value is not None else None,
            "original_sha256": hashlib.sha256(value).hexdigest() if value is not None else None,
            "original_truncated": value is not None and len(value) > max_original_bytes,
            "source": {"topic": self.topic, "partition": self.partition, "offset": self.offset},
            "record_timestamp_ms": self.timestamp_ms,
        }

    def encode(self, max_original_bytes: int = 64 * 1024) -> bytes:
        return json.dumps(self.to_dict(max_original_bytes)).encode("ascii")


_MAX_DETAIL_CHARS = 500


def _printable(text: str) -> str:
    # A detail may quote the input: lone surrogates become escapes, so the dead letter itself always encodes.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# A hook runs after each batch's window update, in the worker's executor thread. It receives every valid
# event of the batch (``status`` says whether this delivery applied it) and the store to read windows from.
Hook = Callable[[list[ScoredEvent], WindowStore], None]


@dataclass
class BatchResult:
    """``scored`` holds the JSON of each event (same order), ``dead`` that of each dead letter."""

    events: list[ScoredEvent]
    dead_letters: list[DeadLetter]
    inference_s: float = 0.0
    window_s: float = 0.0
    total_s: float = 0.0
    window_done_ms: int = 0
    scored: list[bytes] = field(default_factory=list)
    dead: list[bytes] = field(default_factory=list)

    def extend(self, other: BatchResult) -> None:
        self.events += other.events
        self.dead_letters += other.dead_letters
        self.scored += other.scored
        self.dead += other.dead
        self.inference_s += other.inference_s
        self.window_s += other.window_s
        self.window_done_ms = max(self.window_done_ms, other.window_done_ms)


def is_infrastructure_error(exc: BaseException) -> bool:
    """A fault of the services the worker depends on, not of the data: the worker stops unacknowledged
    (crash-only) and the batch is re-delivered, instead of dead-lettering good records."""
    import redis

    if isinstance(exc, redis.ResponseError):
        return _is_redis_transient(exc)  # any other reply is about the command, i.e. the data
    return isinstance(
        exc, redis.ConnectionError | redis.TimeoutError | redis.AuthenticationError | OSError | MemoryError
    )


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
        max_json_depth: int = DEFAULT_MAX_DEPTH,
        dlq_original_max_bytes: int = 64 * 1024,
        dead_letter_unsupported: bool = False,
        hooks: Sequence[Hook] = (),
        metrics: StreamMetrics | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        retry_backoff_s: tuple[float, float] = (0.05, 2.0),
        router: Router | None = None,
        topic_scorers: Mapping[str, ScorerLike] | None = None,
    ):
        self.scorer = scorer
        self.store = store
        self.extractor = extractor
        self.max_message_bytes = max_message_bytes
        self.max_entities = max_entities
        self.max_future_ms = max_future_ms
        self.max_json_depth = max_json_depth
        self.dlq_original_max_bytes = dlq_original_max_bytes
        self.dead_letter_unsupported = dead_letter_unsupported
        self.hooks = list(hooks)
        self.metrics = metrics
        self.clock = clock
        self.sleep = sleep
        self.retry_backoff_s = retry_backoff_s
        self.router = router  # a rollout: the scorer(s) of each batch come from it (streams.follow)
        # Records of these topics are scored by their own model (inference.market_model), never by the router.
        self.topic_scorers = dict(topic_scorers or {})
        self._warm = False
        if metrics is not None:
            metrics.set_scorer(scorer)
            for fixed in self.topic_scorers.values():
                metrics.add_fixed_scorer(fixed)

    @classmethod
    def from_settings(cls, settings: StreamSettings, scorer: ScorerLike, store: WindowStore, **kwargs: Any) -> Pipeline:
        return cls(
            scorer,
            store,
            EntityExtractor.from_file(settings.watchlist),
            max_message_bytes=settings.max_message_bytes,
            max_entities=settings.max_entities,
            max_future_ms=settings.max_future_ms,
            max_json_depth=settings.max_json_depth,
            dlq_original_max_bytes=settings.dlq_original_max_bytes,
            **kwargs,
        )

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def warm_up(self, batch_sizes: Sequence[int] = (1, 8, 64)) -> float:
        """Score synthetic texts of several lengths in batches of ``batch_sizes`` once (nothing is written or
        published): a fresh ONNX Runtime session's first calls cost several times a warm one's, which would put a
        start-up backlog in front of the first records. Once per pipeline; returns the seconds it took."""
        if self._warm:
            return 0.0
        started = time.perf_counter()
        try:
            for scorer in [self.scorer, *self.topic_scorers.values()]:
                warm_up(scorer, batch_sizes)
        except Exception:  # a scorer that fails here fails on real records too, where it is dead-lettered
            log.warning("warming the scorer up failed", exc_info=True)
        self._warm = True
        return time.perf_counter() - started

    def _extract(self, text: str) -> tuple[str, ...]:
        # A long text can name many cashtags: keep the first max_entities, as a message may list.
        return tuple(self.extractor.extract(text)[: self.max_entities])

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
                max_depth=self.max_json_depth,
            )
            if isinstance(parsed, Rejection):
                bad.append(_dead(rec, parsed.reason, parsed.detail))
            else:
                good.append((rec, parsed))
        return good, bad

    def score(self, texts: list[str], scorer: ScorerLike | None = None) -> list[Any | Exception]:
        """Predictions in order; when the batch fails, texts are scored one by one to isolate the bad ones."""
        scorer = scorer or self.scorer
        try:
            preds = scorer.score(texts)
        except Exception:
            log.exception("scorer failed on a batch of %d; scoring one by one", len(texts))
            if self.metrics:
                self.metrics.scorer_errors.inc()
            preds = []
            for text in texts:
                try:
                    preds.append(scorer.score([text])[0])
                except Exception as exc:  # a per-message failure is data for the DLQ, not a crash
                    preds.append(exc)
        if len(preds) != len(texts):
            raise RuntimeError(f"scorer {scorer.name} returned {len(preds)} predictions for {len(texts)} texts")
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
        """Run one micro-batch end to end. Never raises on data: bad records are dead-lettered, and a batch that
        fails unexpectedly is re-run record by record (the window update dedupes by id, so records the failed
        attempt applied are not counted twice). Redis outages are retried until Redis answers; other
        infrastructure errors (``is_infrastructure_error``) propagate."""
        started = time.perf_counter()
        try:
            result = self._process(records)
        except Exception as exc:
            if is_infrastructure_error(exc):
                raise
            log.exception("batch of %d records failed; processing them one by one", len(records))
            result = BatchResult([], [])
            for rec in records:
                result.extend(self._process_alone(rec))
        result.total_s = time.perf_counter() - started
        if self.metrics:
            self._observe(self.metrics, records, result)
        return result

    def _process_alone(self, rec: RawRecord) -> BatchResult:
        try:
            return self._process([rec])
        except Exception as exc:
            if is_infrastructure_error(exc):
                raise
            log.warning("record %s[%d]@%d dead-lettered: %r", rec.topic, rec.partition, rec.offset, exc)
            dead = _dead(rec, PROCESSING_FAILED, f"{type(exc).__name__}: {exc}")
            return BatchResult([], [dead], dead=[dead.encode(self.dlq_original_max_bytes)])

    def _score_routed(
        self, good: list[tuple[RawRecord, Message]], texts: list[str], ents: list[tuple[str, ...]]
    ) -> tuple[list[Any | Exception], list[ScorerLike]]:
        """Predictions and the scorer of each: a topic's own model for its records, else the router (a rollout:
        one snapshot per batch, so a new model version takes over between batches) or the pipeline's scorer."""
        if not texts:
            return [], []
        preds: list[Any | Exception] = [None] * len(texts)
        by: list[ScorerLike] = [self.scorer] * len(texts)
        groups: dict[str | None, list[int]] = {}
        if not self.topic_scorers:  # the common case: one group, no per-record lookup
            groups[None] = list(range(len(texts)))
        else:
            for i, (rec, _) in enumerate(good):
                groups.setdefault(rec.topic if rec.topic in self.topic_scorers else None, []).append(i)
        for topic, idx in groups.items():
            part = [texts[i] for i in idx]
            if topic is not None:
                scorer = self.topic_scorers[topic]
                got, who = self.score(part, scorer), [scorer] * len(idx)
            elif self.router is not None:
                got, who = self.router.score([good[i][1].id for i in idx], part, [ents[i] for i in idx], self.score)
            else:
                got, who = self.score(part), [self.scorer] * len(idx)
            for i, pred, scorer in zip(idx, got, who, strict=True):
                preds[i], by[i] = pred, scorer
        return preds, by

    def _process(self, records: Sequence[RawRecord]) -> BatchResult:
        started_ms = self.now_ms()
        good, dead = self.parse(records)

        texts = [msg.text for _, msg in good]
        # Listed by the producer, else found in the text: once per message (a canary routes by them too).
        ents = [msg.entities if msg.entities is not None else self._extract(msg.text) for _, msg in good]
        t0 = time.perf_counter()
        preds, by = self._score_routed(good, texts, ents)
        inference_s = time.perf_counter() - t0

        events: list[ScoredEvent] = []
        bodies: list[bytes] = []
        timings = {
            "batch_start_ms": started_ms,
            "inference_ms": round(inference_s * 1000, 3),
            "batch_size": len(records),
        }
        for (rec, msg), entities, pred, scorer in zip(good, ents, preds, by, strict=True):
            if isinstance(pred, Exception):
                dead.append(_dead(rec, SCORING_FAILED, f"{type(pred).__name__}: {pred}"[:300]))
                continue
            detected = getattr(pred, "lang", None)
            if self.dead_letter_unsupported and getattr(pred, "unsupported", False):
                dead.append(_dead(rec, UNSUPPORTED_LANGUAGE, f"language {detected} is not one the model reads"))
                continue
            score, probs = float(pred.score), {k: float(v) for k, v in pred.probs.items()}
            if not (math.isfinite(score) and all(math.isfinite(p) for p in probs.values())):
                # Redis refuses HINCRBYFLOAT NaN midway through the script; the model's output is the bad data.
                dead.append(_dead(rec, NON_FINITE_SCORE, f"model {scorer.name} gave score {score}, probs {probs}"))
                continue
            event = ScoredEvent(
                message_id=msg.id,
                ts_ms=msg.ts_ms,
                source=msg.source,
                entities=tuple(entities),
                text=msg.text,
                label=pred.label,
                score=score,
                probs=probs,
                model=scorer.name,
                model_version=scorer.version,
                topic=rec.topic,
                partition=rec.partition,
                offset=rec.offset,
                record_ts_ms=rec.timestamp_ms,
                timings=timings,
                lang=detected or msg.lang,  # what the scorer identified, else what the producer declared
                meta=msg.meta,
                extra=msg.extra,
            )
            try:
                body = event.encode_body()
            except (ValueError, TypeError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
                dead.append(_dead(rec, PROCESSING_FAILED, f"{type(exc).__name__}: {exc}"))
                continue
            events.append(event)
            bodies.append(body)

        t1 = time.perf_counter()
        events = self.apply(events) if events else []
        window_s = time.perf_counter() - t1
        done_ms = self.now_ms()
        for ev in events:
            ev.timings = _final_timings(ev, done_ms)
        scored = [ev.finish(body) for ev, body in zip(events, bodies, strict=True)]
        encoded_dead = [d.encode(self.dlq_original_max_bytes) for d in dead]
        self.run_hooks(events)
        return BatchResult(events, dead, inference_s, window_s, 0.0, done_ms, scored, encoded_dead)

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


# English words (the language check lets them through to the model); texts of 5 to all 73 of them cover short
# tweets to texts longer than a 64-token model window.
_WARM_UP_WORDS = (
    "the service was not good and the staff did not care about us at all so we left early and will not be "
    "back again this year because the food was cold the room was dirty and nobody answered the phone when we "
    "called to ask what had happened to our order which never came even after we waited for more than two hours "
    "in the rain outside the shop that had promised"
).split()


def warm_up(scorer: ScorerLike, batch_sizes: Sequence[int] = (1, 8, 64)) -> None:
    """Score synthetic texts of several lengths in batches of ``batch_sizes`` (raises what the scorer raises)."""
    texts = [" ".join(_WARM_UP_WORDS[:n]) for n in (5, 10, 20, 40, len(_WARM_UP_WORDS))]
    for size in batch_sizes:
        scorer.score([texts[i % len(texts)] for i in range(size)])


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
