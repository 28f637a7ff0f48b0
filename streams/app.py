"""The thin Faust shell: raw topics -> micro-batches -> ``Pipeline.process`` in an executor -> scored/DLQ topics.

Delivery is at-least-once. ``take_events`` acks a batch only after the loop body finished it, so a crash
re-delivers the batch; the window update is idempotent (dedup by message id inside the Lua script), so counts
stay exact. Scored and DLQ records may be duplicated on re-delivery: their consumers dedupe by ``id``.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentimon.streams.errors import StreamsError
from sentimon.streams.metrics import StreamMetrics
from sentimon.streams.pipeline import BatchResult, Hook, Pipeline, RawRecord

log = logging.getLogger(__name__)

EXIT_BATCH_FAILED = 70  # EX_SOFTWARE: a supervisor (systemd, Kubernetes) restarts the worker


def load_hooks(specs: list[str], settings, registry=None) -> list[Hook]:
    """``"package.module:factory"`` -> ``factory(settings)``, which returns a hook callable.

    A factory that takes a ``registry`` argument gets the worker's Prometheus registry, so its metrics are
    served on the worker's endpoint. A hook with a ``close()`` method is closed when the worker stops.
    """
    hooks = []
    for spec in specs:
        module_name, _, attr = spec.partition(":")
        if not module_name or not attr:
            raise StreamsError(f"stream hook {spec!r} must look like 'package.module:factory' (setting stream_hooks)")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise StreamsError(f"stream hook {spec!r} cannot be imported: {exc} (setting stream_hooks)") from None
        takes_registry = "registry" in inspect.signature(factory).parameters
        hooks.append(factory(settings, registry=registry) if takes_registry else factory(settings))
    return hooks


class BatchPublisher:
    """Publishes a batch's scored and dead-letter records with aiokafka's batch API.

    Faust's per-message ``topic.send`` costs ~0.5 ms of event-loop time per record here, more than scoring;
    ``create_batch``/``send_batch`` builds one record batch per partition in microseconds. Keys are placed
    with Kafka's default (murmur2) partitioner, so a message id lands where the Java client would put it.
    """

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self._producer = None
        self._lock = asyncio.Lock()
        self._partitions: dict[str, list[int]] = {}
        self._round_robin = 0

    async def _ensure(self):
        async with self._lock:
            if self._producer is None:
                from aiokafka import AIOKafkaProducer

                producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=0)
                await producer.start()
                self._producer = producer
        return self._producer

    async def publish(self, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
        """Send ``(key, value)`` records and wait until the broker acknowledged all of them."""
        if not records:
            return
        from aiokafka.partitioner import DefaultPartitioner

        producer = await self._ensure()
        if topic not in self._partitions:
            self._partitions[topic] = sorted(await producer.partitions_for(topic))
        partitions = self._partitions[topic]
        by_partition: dict[int, list[tuple[bytes | None, bytes]]] = {}
        for key, value in records:
            if key is None:
                self._round_robin += 1
                partition = partitions[self._round_robin % len(partitions)]
            else:
                partition = DefaultPartitioner()(key, partitions, partitions)
            by_partition.setdefault(partition, []).append((key, value))
        futures = []
        for partition, items in by_partition.items():
            batch = producer.create_batch()
            for key, value in items:
                if batch.append(key=key, value=value, timestamp=None) is None:  # batch full: ship it
                    futures.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*futures)

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


def faust_broker(kafka_servers: str) -> str:
    # Kafka lists hosts with commas; faust URLs separate them with semicolons.
    return ";".join(f"kafka://{h.strip()}" for h in kafka_servers.split(",") if h.strip())


@dataclass
class Worker:
    """What the agents share: the pipeline, its executor and metrics; built by ``build_app``."""

    pipeline: Pipeline
    executor: ThreadPoolExecutor
    metrics: StreamMetrics
    lag: dict[tuple[str, int], int] = field(default_factory=dict)

    exit: Callable[[int], Any] = os._exit

    def run_batch(self, records: list[RawRecord]) -> tuple[BatchResult, list[bytes], list[bytes]]:
        """Executor side: process and serialize (JSON encoding stays off the event loop too).

        An unexpected error stops the process at once (crash-only): raising instead would end the loop body
        and ``take_events`` would then acknowledge the failed batch, losing it. Exiting without an ack is a
        kill -9 as far as Kafka is concerned -- the tested, lossless path: the batch is re-delivered to the
        restarted worker (or another one in the group). Bad input never gets here: it is dead-lettered.
        """
        try:
            result = self.pipeline.process(records)
            scored = [json.dumps(ev.to_dict(), ensure_ascii=False).encode() for ev in result.events]
            dead = [json.dumps(d.to_dict()).encode() for d in result.dead_letters]
        except Exception:
            log.critical("batch of %d records failed; exiting without acknowledging it", len(records), exc_info=True)
            logging.shutdown()
            self.exit(EXIT_BATCH_FAILED)
            raise
        return result, scored, dead


def build_app(settings, pipeline: Pipeline, metrics: StreamMetrics) -> Any:
    """A Faust app with one agent per raw topic, configured from settings."""
    import faust

    data_dir = Path(settings.worker_data_dir or settings.state_dir / "worker")
    data_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.worker_id,
        broker=faust_broker(settings.kafka_servers),
        datadir=str(data_dir),
        # Faust's web server binds 0.0.0.0 even when unused: keep it on loopback.
        web_enabled=False,
        web_bind="127.0.0.1",
        web_port=settings.web_port,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        topic_disable_leader=True,
        topic_allow_declare=False,
        producer_acks=-1,
        broker_session_timeout=settings.worker_session_timeout_s,
        broker_heartbeat_interval=settings.worker_heartbeat_s,
        broker_rebalance_timeout=settings.worker_rebalance_timeout_s,
        broker_request_timeout=max(90.0, settings.worker_session_timeout_s + 10),
        broker_commit_interval=settings.worker_commit_interval_s,
        stream_wait_empty=True,
        # A batch may legitimately wait on a restarting Redis; don't report it as stuck too early.
        stream_processing_timeout=300.0,
        worker_redirect_stdouts=False,
    )
    worker = Worker(pipeline, ThreadPoolExecutor(settings.worker_threads, thread_name_prefix="sentimon"), metrics)
    app.sentimon_worker = worker  # type: ignore[attr-defined]
    publisher = BatchPublisher(settings.kafka_servers)

    @app.on_before_shutdown.connect
    async def _close_publisher(app, **kwargs) -> None:
        # Sent after the consumer (and so every agent's last batch) stopped.
        await publisher.stop()

    async def handle(events) -> None:
        records = [
            RawRecord(
                value=e.message.value,
                topic=e.message.topic,
                partition=e.message.partition,
                offset=e.message.offset,
                timestamp_ms=int(e.message.timestamp * 1000) if e.message.timestamp else None,
            )
            for e in events
        ]
        loop = asyncio.get_running_loop()
        task = loop.run_in_executor(worker.executor, worker.run_batch, records)
        try:
            result, scored, dead = await asyncio.shield(task)
        except asyncio.CancelledError:
            # Shutting down mid-batch: finish it, so the acks take_events sends are true.
            await task
            raise
        # Delivered (acks=all) before take_events acks the source offsets; if Kafka refuses them past the
        # producer's own retries, stop unacknowledged like run_batch does (dead letters must not vanish).
        try:
            await asyncio.gather(
                publisher.publish(
                    settings.topic_scored,
                    [(ev.message_id.encode(), payload) for ev, payload in zip(result.events, scored, strict=True)],
                ),
                publisher.publish(settings.topic_dlq, [(None, payload) for payload in dead]),
            )
        except Exception:
            log.critical("publishing a batch's results failed; exiting without acknowledging it", exc_info=True)
            logging.shutdown()
            worker.exit(EXIT_BATCH_FAILED)
            raise
        _update_lag(app, worker, records)

    def make_agent(topic_name: str):
        topic = app.topic(topic_name, value_serializer="raw", key_serializer="raw")

        async def consume(stream):
            async for events in stream.take_events(settings.stream_max_batch, within=settings.stream_batch_within_s):
                await handle(events)

        consume.__name__ = f"consume_{topic_name.replace('.', '_').replace('-', '_')}"
        return app.agent(topic, name=f"sentimon.{topic_name}", concurrency=1)(consume)

    for name in dict.fromkeys([settings.topic_social, settings.topic_market]):
        make_agent(name)

    return app


def _update_lag(app, worker: Worker, records: list[RawRecord]) -> None:
    from faust.types import TP

    last: dict[tuple[str, int], int] = {}
    for rec in records:
        last[(rec.topic, rec.partition)] = max(last.get((rec.topic, rec.partition), -1), rec.offset)
    for (topic, partition), offset in last.items():
        try:
            high = app.consumer.highwater(TP(topic, partition))
        except Exception:  # consumer mid-rebalance: keep the previous value
            continue
        if high is not None:
            worker.lag[(topic, partition)] = max(int(high) - offset - 1, 0)
    try:
        assigned = {(tp.topic, tp.partition) for tp in app.consumer.assignment()}
        for gone in set(worker.lag) - assigned:  # revoked by a rebalance: another worker reports it now
            del worker.lag[gone]
    except Exception:
        pass
    per_topic: dict[str, int] = {topic: 0 for topic, _ in last}
    for (topic, _), lag in worker.lag.items():
        per_topic[topic] = per_topic.get(topic, 0) + lag
    for topic, lag in per_topic.items():
        worker.metrics.consumer_lag.labels(topic=topic).set(lag)
