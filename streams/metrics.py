"""Prometheus metrics of the streaming worker, built in one place from a registry (tests pass a fresh one).

Conventions (client_python / Prometheus): ``sentimon_<noun>_<unit>``, base units (seconds), ``_total`` on
counters, labels of bounded cardinality only: topic, partition (of this worker's assignment), outcome,
reason, hook, and the model's name/version/tier -- never entity ids or message ids.

Histogram buckets follow what BENCHMARKS.md measured on this hardware: a scorer call takes 0.15 ms (static
tier, one text) to ~2 s (transformer student, 256 texts); a Redis window update a few ms; ingest-to-window
30 ms at a light load up to a minute behind a backlog; batches are capped by ``stream.max_batch`` (256).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from sentimon.core.parts import MetricsSettings
from sentimon.streams.errors import StreamsError

OUTCOMES = ("applied", "duplicate", "late", "rejected")

SCORER_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WINDOW_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
INGEST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class _Position(Protocol):
    # Read-only: the records (RawRecord) are frozen.
    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp_ms(self) -> int | None: ...


@dataclass
class _PartitionLag:
    messages: int
    last_ts_ms: int | None  # Kafka timestamp of the last record consumed


def lag_seconds(messages: int, last_ts_ms: int | None, now_ms: float) -> float:
    """How far behind in time a partition is: the age of the last record consumed while records wait behind
    it (0 when caught up). An upper bound of the oldest waiting record's age, and it keeps growing while a
    stalled worker consumes nothing -- which is when an operator needs it to."""
    if messages <= 0 or last_ts_ms is None:
        return 0.0
    return max(now_ms - last_ts_ms, 0.0) / 1000


class _LagCollector(Collector):
    """Exports lag per (topic, partition) at scrape time, so lag seconds grow while nothing is consumed."""

    def __init__(self, clock: Callable[[], float]):
        self.clock = clock
        self.lock = threading.Lock()
        self.partitions: dict[tuple[str, int], _PartitionLag] = {}
        self.topics: dict[str, int] = {}  # from the per-topic call (``consumer_lag.labels(topic=...).set(n)``)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        msgs = GaugeMetricFamily(
            "sentimon_consumer_lag_messages",
            "Records behind the high watermark, per topic and partition this worker consumes.",
            labels=["topic", "partition"],
        )
        secs = GaugeMetricFamily(
            "sentimon_consumer_lag_seconds",
            "Age of the last consumed record while records wait behind it (0 when caught up), per partition.",
            labels=["topic", "partition"],
        )
        now_ms = self.clock() * 1000
        with self.lock:
            partitions = dict(self.partitions)
            topics = dict(self.topics)
        for (topic, partition), lag in sorted(partitions.items()):
            msgs.add_metric([topic, str(partition)], lag.messages)
            secs.add_metric([topic, str(partition)], lag_seconds(lag.messages, lag.last_ts_ms, now_ms))
        for topic, n in sorted(topics.items()):
            if not any(t == topic for t, _ in partitions):
                # Only a per-topic total is known (a caller of ``consumer_lag``): partition "all", and seconds
                # only when they are certain -- 0 when caught up, unknown (NaN) while records wait.
                msgs.add_metric([topic, "all"], n)
                secs.add_metric([topic, "all"], 0.0 if n == 0 else math.nan)
        yield msgs
        yield secs


class _TopicLagChild:
    def __init__(self, lag: _LagCollector, topic: str):
        self._lag, self._topic = lag, topic

    def set(self, value: float) -> None:
        with self._lag.lock:
            self._lag.topics[self._topic] = int(value)


class _TopicLag:
    """Keeps ``metrics.consumer_lag.labels(topic=...).set(n)`` working; ``observe_positions`` supersedes it."""

    def __init__(self, lag: _LagCollector):
        self._lag = lag

    def labels(self, topic: str) -> _TopicLagChild:
        return _TopicLagChild(self._lag, topic)


class StreamMetrics:
    def __init__(self, registry: CollectorRegistry, clock: Callable[[], float] = time.time):
        self.registry = registry
        self.messages = Counter(
            "sentimon_messages_total",
            "Raw messages handled, by source topic and outcome (applied, duplicate, late, rejected).",
            ["topic", "outcome"],
            registry=registry,
        )
        self.batch_size = Histogram(
            "sentimon_batch_size_messages", "Records per micro-batch.", buckets=BATCH_BUCKETS, registry=registry
        )
        self.inference_seconds = Histogram(
            "sentimon_inference_seconds", "Scorer time per micro-batch.", buckets=SCORER_BUCKETS, registry=registry
        )
        self.window_update_seconds = Histogram(
            "sentimon_window_update_seconds",
            "Redis window update (one Lua script) per micro-batch, retries included.",
            buckets=WINDOW_BUCKETS,
            registry=registry,
        )
        self.ingest_to_window_seconds = Histogram(
            "sentimon_ingest_to_window_seconds",
            "From the record's Kafka timestamp (append) to its window update.",
            buckets=INGEST_BUCKETS,
            registry=registry,
        )
        self.dlq = Counter(
            "sentimon_dlq_messages_total", "Records sent to the dead-letter topic, by reason.", ["reason"],
            registry=registry,
        )  # fmt: skip
        self._lag = _LagCollector(clock)
        registry.register(self._lag)
        self.consumer_lag = _TopicLag(self._lag)
        self.hook_errors = Counter(
            "sentimon_hook_errors_total", "Exceptions raised by after-batch hooks.", ["hook"], registry=registry
        )
        self.redis_errors = Counter(
            "sentimon_redis_errors_total", "Failed window updates (retried until Redis answers).", registry=registry
        )
        self.scorer_errors = Counter(
            "sentimon_scorer_errors_total", "Batches the scorer failed on (then scored text by text).",
            registry=registry,
        )  # fmt: skip
        self.model_info = Gauge(
            "sentimon_model_info",
            "The scorers in use (value 1 each): name, version and tier (transformer, static, cascade, lexicon).",
            ["name", "version", "tier"],
            registry=registry,
        )
        self._fixed_models: list[tuple[str, str, str]] = []

    def set_model(self, name: str, version: str, tier: str = "") -> None:
        """The model scoring now (a rollout swaps it); the fixed models (``add_fixed_scorer``) stay listed."""
        self.model_info.clear()
        for listed in [(name, version, tier), *self._fixed_models]:
            self._list_model(*listed)

    def _list_model(self, name: str, version: str, tier: str) -> None:
        self.model_info.labels(name=name, version=version, tier=tier or _tier_of(name)).set(1)

    def set_scorer(self, scorer: Any) -> None:
        """``set_model`` from a loaded scorer (its ``kind`` is the tier)."""
        self.set_model(scorer.name, scorer.version, getattr(scorer, "kind", ""))

    def add_fixed_scorer(self, scorer: Any) -> None:
        """A model that scores for the worker's whole life besides the swappable one (inference.market_model)."""
        fixed = (scorer.name, scorer.version, getattr(scorer, "kind", ""))
        self._fixed_models.append(fixed)
        self._list_model(*fixed)

    def observe_positions(
        self,
        records: Iterable[_Position],
        highwater: Callable[[str, int], int | None],
        assigned: set[tuple[str, int]] | None = None,
    ) -> None:
        """After a batch: lag of each partition in ``records`` from its high watermark (``highwater`` may raise
        or return None mid-rebalance: the previous value stays); partitions not in ``assigned`` (revoked:
        another worker reports them now) are dropped."""
        last: dict[tuple[str, int], _Position] = {}
        for rec in records:
            key = (rec.topic, rec.partition)
            if key not in last or rec.offset > last[key].offset:
                last[key] = rec
        updates: dict[tuple[str, int], _PartitionLag] = {}
        for (topic, partition), rec in last.items():
            try:
                high = highwater(topic, partition)
            except Exception:  # consumer mid-rebalance: keep the previous value
                continue
            if high is not None:
                updates[(topic, partition)] = _PartitionLag(max(int(high) - rec.offset - 1, 0), rec.timestamp_ms)
        with self._lag.lock:
            self._lag.partitions.update(updates)
            if assigned is not None:
                for gone in set(self._lag.partitions) - assigned:
                    del self._lag.partitions[gone]


def _tier_of(name: str) -> str:
    # Until every caller passes the scorer's kind: the two scorers whose name says their tier.
    return {"vader": "lexicon", "cascade": "cascade"}.get(name, "unknown")


def serve(registry: CollectorRegistry, port: int, addr: str = "127.0.0.1"):
    """Serve /metrics on ``addr`` (loopback unless told); returns the server (``.shutdown()`` to stop)."""
    server, _thread = start_http_server(port, addr=addr, registry=registry)
    return server


def serve_metrics(registry: CollectorRegistry, settings: MetricsSettings):
    """The worker's /metrics on ``settings.host`` (loopback by default; 0.0.0.0 inside a container, for Prometheus
    to scrape) and ``settings.port``; a taken port or an address not on this host raises StreamsError naming the
    setting."""
    try:
        return serve(registry, settings.port, settings.host)
    except OSError as exc:
        raise StreamsError(
            f"metrics port {settings.host}:{settings.port} is unavailable ({exc}); set metrics.port "
            "(SENTIMON_METRICS_PORT; each worker on a host needs its own) or metrics.host (SENTIMON_METRICS_HOST)"
        ) from None
