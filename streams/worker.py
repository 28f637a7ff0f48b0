"""``run_worker(settings)``: wire scorer, Redis windows, metrics and the Faust app, then run until stopped.

Every check that a user can fix (Redis unreachable, topics missing, metrics port taken) fails here, before
Faust starts, with one line naming the fix.
"""

from __future__ import annotations

import logging

from sentimon.streams.errors import StreamsError
from sentimon.streams.pipeline import Hook

log = logging.getLogger(__name__)


def check_topics(settings) -> None:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=settings.kafka_servers, client_id="sentimon-worker-check", request_timeout_ms=10000
        )
    except KafkaError as exc:
        raise StreamsError(
            f"Kafka at {settings.kafka_servers} is unreachable ({exc}); start it with `sentimon up` "
            "or set SENTIMON_KAFKA_BOOTSTRAP"
        ) from None
    try:
        existing = set(admin.list_topics())
    finally:
        admin.close()
    needed = [settings.topic_social, settings.topic_market, settings.topic_scored, settings.topic_dlq]
    missing = [t for t in needed if t not in existing]
    if missing:
        raise StreamsError(
            f"Kafka topic(s) {', '.join(missing)} do not exist; create them with `sentimon topics create`"
        )


def connect_redis(settings):
    import redis

    client = redis.Redis.from_url(settings.redis, socket_timeout=10, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise StreamsError(
            f"Redis at {settings.redis} is unreachable ({exc}); start it with `sentimon up` or set SENTIMON_REDIS_URL"
        ) from None
    return client


def run_worker(settings, hooks: list[Hook] | None = None, loglevel: str = "info") -> None:
    """Run one streaming worker until SIGTERM/SIGINT (the current batch finishes and is committed)."""
    import faust
    from prometheus_client import CollectorRegistry

    import sentimon.inference
    from sentimon.streams.app import build_app, load_hooks
    from sentimon.streams.metrics import StreamMetrics, serve
    from sentimon.streams.pipeline import Pipeline
    from sentimon.streams.windows import WindowStore

    check_topics(settings)
    client = connect_redis(settings)
    scorer = inference.load(
        settings.model, settings, threads=settings.worker_inference_threads or settings.inference_threads
    )
    registry = CollectorRegistry()
    metrics = StreamMetrics(registry)
    try:
        server = serve(registry, settings.metrics_port)
    except OSError as exc:
        raise StreamsError(
            f"metrics port 127.0.0.1:{settings.metrics_port} is unavailable ({exc}); "
            "set SENTIMON_METRICS_PORT (each worker on a host needs its own)"
        ) from None
    store = WindowStore.from_settings(client, settings)
    all_hooks = [*(hooks or []), *load_hooks(settings.stream_hooks, settings, registry)]
    pipeline = Pipeline.from_settings(settings, scorer, store, hooks=all_hooks, metrics=metrics)
    app = build_app(settings, pipeline, metrics)
    log.warning(
        "worker %s: model %s %s, metrics on http://127.0.0.1:%d/metrics",
        settings.worker_id, scorer.name, scorer.version, settings.metrics_port,
    )  # fmt: skip
    try:
        faust.Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
    finally:
        app.sentimon_worker.executor.shutdown(wait=True)
        for hook in all_hooks:
            close = getattr(hook, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    log.exception("closing hook %r failed", hook)
        server.shutdown()
        client.close()
