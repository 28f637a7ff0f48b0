"""Prometheus metrics of the streaming worker, built in one place from a registry (tests pass a fresh one).

Labels stay low-cardinality: topic, outcome, reason, hook -- never entity ids or message ids.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

OUTCOMES = ("applied", "duplicate", "late", "rejected")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)


class StreamMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.registry = registry
        self.messages = Counter(
            "sentimon_messages_total",
            "Raw messages handled, by source topic and outcome (applied, duplicate, late, rejected).",
            ["topic", "outcome"],
            registry=registry,
        )
        self.batch_size = Histogram(
            "sentimon_batch_size_messages", "Records per micro-batch.", buckets=_BATCH_BUCKETS, registry=registry
        )
        self.inference_seconds = Histogram(
            "sentimon_inference_seconds", "Scorer time per micro-batch.", buckets=_LATENCY_BUCKETS, registry=registry
        )
        self.window_update_seconds = Histogram(
            "sentimon_window_update_seconds",
            "Redis window update (one Lua script) per micro-batch, retries included.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.ingest_to_window_seconds = Histogram(
            "sentimon_ingest_to_window_seconds",
            "From the record's Kafka timestamp (append) to its window update.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.dlq = Counter(
            "sentimon_dlq_messages_total", "Records sent to the dead-letter topic, by reason.", ["reason"],
            registry=registry,
        )  # fmt: skip
        self.consumer_lag = Gauge(
            "sentimon_consumer_lag_messages",
            "Records behind the high watermark on the partitions this worker consumes, by topic.",
            ["topic"],
            registry=registry,
        )
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
            "sentimon_model_info", "The scorer in use (value 1).", ["name", "version"], registry=registry
        )

    def set_model(self, name: str, version: str) -> None:
        self.model_info.clear()
        self.model_info.labels(name=name, version=version).set(1)


def serve(registry: CollectorRegistry, port: int, addr: str = "127.0.0.1"):
    """Serve /metrics on loopback; returns the server (``.shutdown()`` to stop)."""
    server, _thread = start_http_server(port, addr=addr, registry=registry)
    return server
