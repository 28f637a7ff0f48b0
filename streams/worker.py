"""``run_worker(settings)``: wire scorer, Redis windows, metrics and the Faust app, then run until stopped.

Every check that a user can fix (Redis unreachable, topics missing, metrics port taken) fails here, before
Faust starts, with one line naming the fix.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sentimon.core.redact import mask_url, mask_urls_in
from sentimon.streams.errors import StreamsError
from sentimon.streams.pipeline import Hook

log = logging.getLogger(__name__)

DRIFT_HOOK = "sentimon.streams.drift:stream_hook"


def check_topics(settings) -> None:
    import ssl

    from aiokafka.errors import KafkaError

    from sentimon.infra import kafka_clients

    async def list_topics() -> set[str]:
        admin = kafka_clients.aiokafka_admin(settings, client_id="sentimon-worker-check", request_timeout_ms=10000)
        try:
            await admin.start()
            return set(await admin.list_topics())
        finally:
            await admin.close()

    # aiokafka, as Faust uses: one Kafka client library per worker process. The loop is a private one, closed
    # before Faust sets up the worker's.
    loop = asyncio.new_event_loop()
    try:
        existing = loop.run_until_complete(list_topics())
    except (KafkaError, ssl.SSLError) as exc:  # a refused certificate is no KafkaError
        raise StreamsError(
            f"Kafka at {settings.stack.kafka_servers} is unreachable ({exc}); start it with `sentimon up` "
            f"or set stack.kafka_bootstrap (SENTIMON_KAFKA_BOOTSTRAP); {kafka_clients.settings_to_check(settings)}"
        ) from None
    finally:
        loop.close()
    needed = [settings.topics.social, settings.topics.market, settings.topics.scored, settings.topics.dlq]
    missing = [t for t in needed if t not in existing]
    if missing:
        raise StreamsError(
            f"Kafka topic(s) {', '.join(missing)} do not exist; create them with `sentimon topics create`"
        )


def connect_redis(settings):
    import redis

    from sentimon.infra.redis_client import connect

    client = connect(settings.stack)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise StreamsError(
            f"Redis at {mask_url(settings.stack.redis)} is unreachable ({mask_urls_in(str(exc))}); start it with "
            "`sentimon up` "
            "or set stack.redis_url (SENTIMON_REDIS_URL)"
        ) from None
    return client


# At --loglevel info the worker tells what it does (start, model, signals, stop) without Faust's and aiokafka's
# service-by-service start-up chatter; --loglevel debug shows everything.
LIBRARY_LOGGERS = ("faust", "mode", "aiokafka", "kafka")


def quiet_libraries(loglevel: str) -> None:
    level = logging.getLevelName(loglevel.upper())
    logging.getLogger("sentimon").setLevel(level)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING) if isinstance(level, int) else logging.WARNING)


def _faust_worker_class():
    import faust

    class FaustWorker(faust.Worker):
        """Faust's worker, saying which signal stops it (the batch in flight is finished and committed first)."""

        def _on_sigterm(self) -> None:
            log.info("SIGTERM: finishing the batch in flight, committing, then stopping")
            super()._on_sigterm()

        def _on_sigint(self) -> None:
            log.info("SIGINT: finishing the batch in flight, committing, then stopping")
            super()._on_sigint()

    return FaustWorker


def market_scorer(settings, threads: int) -> dict[str, Any]:
    """{topics.market: its scorer} when inference.market_model names a model other than inference.model, else {}.
    A missing bundle is one error naming the setting."""
    from sentimon import inference
    from sentimon.inference.bundle import BundleError

    name = settings.inference.market_model
    if not name or name == settings.inference.model:
        return {}
    try:
        return {settings.topics.market: inference.load(name, settings.inference, threads=threads)}
    except BundleError as exc:
        raise StreamsError(
            f'inference.market_model: {exc} (set SENTIMON_INFERENCE__MARKET_MODEL="" to score '
            "market records with inference.model)"
        ) from None


def run_worker(
    settings, hooks: list[Hook] | None = None, loglevel: str = "info", ready_file: Path | None = None
) -> None:
    """Run one streaming worker until SIGTERM/SIGINT (the current batch finishes and is committed).

    ``ready_file`` exists while the worker holds a partition assignment (``streams.app.ReadyFile``).
    """
    from prometheus_client import CollectorRegistry

    from sentimon import inference
    from sentimon.streams.app import Publisher, build_app, load_hooks
    from sentimon.streams.follow import follower_for
    from sentimon.streams.metrics import StreamMetrics, serve_metrics
    from sentimon.streams.pipeline import Pipeline
    from sentimon.streams.windows import WindowStore

    check_topics(settings)
    client = connect_redis(settings)
    threads = settings.worker.inference_threads or settings.inference.threads
    # ORT threads that spin compete with the event loop, Kafka and Redis for the cores: with two threads in a
    # worker, spinning doubled to quadrupled its latency; without it p99 at 222 msg/s fell to 138 ms from one
    # thread's 218 (BENCHMARKS.md, "Streaming hot path"). One thread never spins.
    settings = settings.model_copy(update={"inference": settings.inference.model_copy(update={"spin_wait": False})})
    # A worker whose model is NAME@champion follows the alias and the model's rollouts (README "Rollout").
    follower = follower_for(settings, client, threads)
    scorer = follower.start().champion if follower else inference.load(settings=settings.inference, threads=threads)
    topic_scorers = market_scorer(settings, threads)
    registry = CollectorRegistry()
    metrics = StreamMetrics(registry)
    server = serve_metrics(registry, settings.metrics)
    store = WindowStore.from_settings(client, settings.windows)
    warning = store.check_memory_policy()  # refuses (one line naming the fix) when Redis may evict window keys
    if warning:
        log.warning(warning)
    publisher = Publisher()
    # The drift monitor (README "Drift") runs in every worker unless drift.enabled is off or stream.hooks lists it.
    drift = [DRIFT_HOOK] if settings.drift.enabled and DRIFT_HOOK not in settings.stream.hooks else []
    specs = [*settings.stream.hooks, *drift]
    all_hooks = [*(hooks or []), *load_hooks(specs, settings, registry, publisher.publish)]
    if follower is not None:
        follower.attach(registry, publisher.publish, metrics)
        all_hooks.append(follower.window_hook)
    pipeline = Pipeline.from_settings(
        settings.stream,
        scorer,
        store,
        hooks=all_hooks,
        metrics=metrics,
        dead_letter_unsupported=settings.inference.unsupported_language == "dead_letter",
        router=follower,
        topic_scorers=topic_scorers,
    )
    executor = ThreadPoolExecutor(settings.worker.threads, thread_name_prefix="sentimon")
    app = build_app(settings, pipeline, executor, metrics, publisher, ready_file)
    quiet_libraries(loglevel)
    log.info(
        "worker %s: model %s %s%s, metrics on http://%s:%d/metrics", settings.worker.id, scorer.name,
        scorer.version, "".join(f"; {t}: {s.name} {s.version}" for t, s in topic_scorers.items()),
        settings.metrics.host, settings.metrics.port,
    )  # fmt: skip
    try:
        _faust_worker_class()(app, loglevel=loglevel, quiet=True).execute_from_commandline()
    finally:
        log.info("worker %s stopped", settings.worker.id)
        # The hooks were closed by the app's shutdown, while its producer still ran.
        executor.shutdown(wait=True)
        if follower is not None:
            follower.close()
        server.shutdown()
        client.close()
