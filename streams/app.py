"""The thin Faust shell: raw topics -> micro-batches -> ``Pipeline.process`` in an executor -> scored/DLQ topics.

Delivery is at-least-once. ``take_events`` acks a batch only after the loop body finished it, so a crash
re-delivers the batch; the window update is idempotent (dedup by message id inside the Lua script), so counts
stay exact. Scored and DLQ records may be duplicated on re-delivery: their consumers dedupe by ``id``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import inspect
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sentimon.streams.errors import StreamsError
from sentimon.streams.metrics import StreamMetrics
from sentimon.streams.microbatch import BatchController
from sentimon.streams.pipeline import BatchResult, Hook, Pipeline, RawRecord

log = logging.getLogger(__name__)

EXIT_BATCH_FAILED = 70  # EX_SOFTWARE: a supervisor (systemd, Kubernetes) restarts the worker


# The project's top-level import names before they became subpackages of `sentimon`.
_PRE_NAMESPACE_PACKAGES = frozenset({"alerts", "compression", "inference", "infra", "streams"})


def load_hooks(specs: list[str], settings, registry=None, publish: Publish | None = None) -> list[Hook]:
    """``"package.module:factory"`` -> ``factory(settings)``, which returns a hook callable.

    A factory that takes a ``registry`` argument gets the worker's Prometheus registry, so its metrics are
    served on the worker's endpoint; one that takes ``publish`` gets ``Publisher.publish``, so it writes to
    Kafka through the worker's own producer. A hook with a ``close()`` method is closed when the worker stops.
    """
    offered = {"registry": registry, "publish": publish}
    hooks = []
    for spec in specs:
        module_name, _, attr = spec.partition(":")
        if module_name.partition(".")[0] in _PRE_NAMESPACE_PACKAGES:
            # Configs written before every part moved under `sentimon.` name the bare package: keep them working.
            log.warning("stream hook %r: the module is now sentimon.%s; update the setting", spec, module_name)
            module_name = f"sentimon.{module_name}"
        if not module_name or not attr:
            raise StreamsError(f"stream hook {spec!r} must look like 'package.module:factory' (setting stream.hooks)")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise StreamsError(f"stream hook {spec!r} cannot be imported: {exc} (setting stream.hooks)") from None
        takes = inspect.signature(factory).parameters
        hooks.append(factory(settings, **{name: value for name, value in offered.items() if name in takes}))
    return hooks


def close_hooks(hooks: list[Hook]) -> None:
    for hook in hooks:
        close = getattr(hook, "close", None)
        if callable(close):
            try:
                close()
            except Exception:
                log.exception("closing hook %r failed", hook)


# ``publish(topic, key, value)``: returns once the broker acknowledged the record, raises if it did not.
Publish = Callable[[str, bytes | None, bytes], None]


class Publisher:
    """The worker's one Kafka producer -- Faust's own (aiokafka) -- for the agents and for hooks' threads.

    Records go through aiokafka's send: its default partitioner places them (murmur2 of the key, where the
    Java client would put it; without a key, any available partition) and its accumulator batches them per
    partition. Made before the app, so hook factories can take ``publish``; the agents bind it to the app and
    its event loop when they start, before their first batch.
    """

    def __init__(self) -> None:
        self._app: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, app: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._app, self._loop = app, loop

    async def send(self, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
        """Send ``(key, value)`` records (on the event loop) and wait until the broker acknowledged all of them."""
        producer = self._app.producer
        acks = [await producer.send(topic, key, value, None, None, None) for key, value in records]
        await asyncio.gather(*acks)

    def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        """``Publish`` for other threads (after-batch hooks run in the executor): waits for the broker's ack,
        at most a broker request timeout; raises at once when the worker's event loop is not running."""
        loop = self._loop
        if loop is None or not loop.is_running():
            raise StreamsError("the worker's Kafka producer is not running (the worker has not started or has stopped)")
        if _running_loop() is loop:
            # Blocking here would stop the very loop that has to send the record: a deadlock.
            raise StreamsError("Publisher.publish blocks until Kafka acknowledges; on the event loop await send()")
        sending = self.send(topic, [(key, value)])
        try:
            ack = asyncio.run_coroutine_threadsafe(sending, loop)
        except RuntimeError:  # the loop closed since the check above
            sending.close()
            raise StreamsError(f"record for {topic} not published: the worker's event loop is closed") from None
        timeout_s = self._app.conf.broker_request_timeout
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                ack.result(min(_LOOP_CHECK_S, max(deadline - time.monotonic(), 0.0)))
                return
            except concurrent.futures.TimeoutError:
                if ack.done():  # the send itself failed with a timeout: that is the answer
                    raise
                # A loop that stopped (worker crashed or shut down) never resolves the future: fail now instead
                # of holding the executor -- and the worker's exit -- for a whole request timeout.
                stopped = not loop.is_running()
                if stopped or time.monotonic() >= deadline:
                    ack.cancel()
                    why = "the worker's event loop stopped" if stopped else f"no broker ack within {timeout_s:.0f} s"
                    raise StreamsError(f"record for {topic} not published: {why}") from None


_LOOP_CHECK_S = 1.0  # how often a waiting publish checks that the worker's loop still runs


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class ReadyFile:
    """The worker's readiness signal (for supervisors and tests): the file exists while the worker holds a
    consumer-group assignment, and names its partitions and how many assignments this process received. An
    assignment of no partitions (more workers than partitions) still counts: that worker is a ready standby."""

    def __init__(self, path: Path):
        self.path = path
        self.assignments = 0

    def watch(self, app: Any) -> None:
        """Follow ``app``: written on each assignment, removed when partitions are revoked and at shutdown."""
        if not self.path.parent.is_dir():
            # Found here, not as a crash inside Faust's rebalance callback at the first assignment.
            raise StreamsError(f"ready file {self.path}: directory {self.path.parent} does not exist; create it")
        self.clear()  # one left by a killed predecessor is not this worker's signal
        app.on_partitions_assigned.connect(self._assigned)
        app.on_partitions_revoked.connect(self._revoked)
        app.on_before_shutdown.connect(self._revoked)

    async def _assigned(self, app: Any, assigned: Iterable[Any], **kwargs: Any) -> None:
        self.assignments += 1
        body = {"pid": os.getpid(), "assignments": self.assignments,
                "partitions": sorted(f"{tp.topic}:{tp.partition}" for tp in assigned)}  # fmt: skip
        tmp = self.path.with_name(f"{self.path.name}.tmp")
        tmp.write_text(json.dumps(body))
        tmp.replace(self.path)  # readers never see a half-written file

    async def _revoked(self, app: Any, *args: Any, **kwargs: Any) -> None:
        self.clear()

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


class GroupWatchdog:
    """Exits the worker (crash-only, for its supervisor to restart) when it has held no consumer-group assignment
    for ``limit_s``: after a broker outage aiokafka can find the coordinator again yet never rejoin the group
    (faust-streaming/faust#523), a worker that neither consumes nor exits. A daemon thread, so a stuck event loop
    cannot stop it. An empty assignment (a standby beyond the partition count) counts as held."""

    def __init__(
        self, limit_s: float, exit: Callable[[int], Any] = os._exit, clock: Callable[[], float] = time.monotonic
    ):
        self.limit_s, self.exit, self.clock = limit_s, exit, clock
        self.assigned = False
        self.since = clock()

    def watch(self, app: Any) -> None:
        app.on_partitions_assigned.connect(self._assigned)
        app.on_partitions_revoked.connect(self._revoked)
        threading.Thread(target=self._run, name="sentimon-group-watchdog", daemon=True).start()

    async def _assigned(self, app: Any, assigned: Iterable[Any], **kwargs: Any) -> None:
        self.assigned, self.since = True, self.clock()

    async def _revoked(self, app: Any, *args: Any, **kwargs: Any) -> None:
        self.assigned, self.since = False, self.clock()

    def stuck_s(self) -> float:
        """Seconds without an assignment (0 while one is held)."""
        return 0.0 if self.assigned else self.clock() - self.since

    def _run(self) -> None:
        while True:
            time.sleep(min(5.0, self.limit_s / 4))
            if self.stuck_s() > self.limit_s:
                log.critical("no consumer-group assignment for %.0f s (setting worker.unassigned_exit_s): "
                             "exiting so that the supervisor restarts this worker", self.stuck_s())  # fmt: skip
                self.exit(EXIT_BATCH_FAILED)
                return


@dataclass
class Worker:
    """What the agents share: the pipeline, its executor and metrics; built by ``build_app``."""

    pipeline: Pipeline
    executor: ThreadPoolExecutor
    metrics: StreamMetrics

    exit: Callable[[int], Any] = os._exit

    def run_batch(self, records: list[RawRecord]) -> BatchResult:
        """Executor side: process and serialize (JSON encoding stays off the event loop too).

        ``Pipeline.process`` dead-letters bad data and isolates unexpected per-record failures, so only an
        infrastructure fault gets here. That stops the process at once (crash-only): raising instead would end
        the loop body and ``take_events`` would then acknowledge the failed batch, losing it. Exiting without an
        ack is a kill -9 as far as Kafka is concerned -- the tested, lossless path: the batch is re-delivered to
        the restarted worker (or another one in the group).
        """
        try:
            return self.pipeline.process(records)
        except Exception:
            log.critical("batch of %d records failed; exiting without acknowledging it", len(records), exc_info=True)
            logging.shutdown()
            self.exit(EXIT_BATCH_FAILED)
            raise


T = TypeVar("T")


async def run_to_completion(work: Awaitable[T]) -> tuple[T, bool]:
    """Await ``work`` to its end even when the awaiting task is cancelled meanwhile (a worker told to stop):
    returns its result and whether a cancellation arrived, which the caller re-raises once it is safe."""
    future = asyncio.ensure_future(work)
    cancelled = False
    while True:
        try:
            return await asyncio.shield(future), cancelled
        except asyncio.CancelledError:
            if future.cancelled():  # the work itself was cancelled, not just this wait
                raise
            cancelled = True


async def run_and_publish(
    worker: Worker, publisher: Publisher, scored_topic: str, dlq_topic: str, records: list[RawRecord]
) -> tuple[BatchResult, bool]:
    """Process a batch in the executor, then publish its scored and dead-letter records (acks=all). Returns the
    result and whether the worker was told to stop meanwhile, which the caller re-raises once done.

    A batch once started is processed and published even when its task is cancelled (a stopping worker):
    ``take_events`` acknowledges the batch whatever the loop body does, so stopping between the window update
    and the publish would lose the batch's scored records and dead letters.
    """
    loop = asyncio.get_running_loop()
    result, stopping = await run_to_completion(loop.run_in_executor(worker.executor, worker.run_batch, records))
    # Delivered before take_events acks the source offsets; if Kafka refuses them past the producer's own
    # retries, stop unacknowledged like run_batch does (dead letters must not vanish).
    publishing = asyncio.gather(
        publisher.send(
            scored_topic,
            [(ev.message_id.encode(), payload) for ev, payload in zip(result.events, result.scored, strict=True)],
        ),
        publisher.send(dlq_topic, [(None, payload) for payload in result.dead]),
    )
    try:
        _, cancelled = await run_to_completion(publishing)
    except Exception:
        log.critical("publishing a batch's results failed; exiting without acknowledging it", exc_info=True)
        logging.shutdown()
        worker.exit(EXIT_BATCH_FAILED)
        raise
    return result, stopping or cancelled


def build_app(
    settings,
    pipeline: Pipeline,
    executor: ThreadPoolExecutor,
    metrics: StreamMetrics,
    publisher: Publisher,
    ready_file: Path | None = None,
) -> Any:
    """A Faust app with one agent per raw topic, configured from settings, running batches on ``executor`` (the
    caller shuts it down) and publishing through ``publisher``; ``ready_file`` tracks its partition assignment."""
    import faust

    from sentimon.infra import kafka_clients

    data_dir = Path(settings.worker.data_dir or settings.stack.state_dir / "worker")
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # Faust's offsets and tables: ours alone
    app = faust.App(
        settings.worker.id,
        # broker and broker_credentials (TLS, SASL): Faust's producer and consumers are aiokafka clients.
        **kafka_clients.faust_args(settings),
        datadir=str(data_dir),
        # Faust's web server binds 0.0.0.0 even when unused: keep it on loopback.
        web_enabled=False,
        web_bind="127.0.0.1",
        web_port=settings.worker.web_port,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        topic_disable_leader=True,
        topic_allow_declare=False,
        producer_acks=-1,
        broker_session_timeout=settings.worker.session_timeout_s,
        broker_heartbeat_interval=settings.worker.heartbeat_s,
        broker_rebalance_timeout=settings.worker.rebalance_timeout_s,
        broker_request_timeout=max(90.0, settings.worker.session_timeout_s + 10),
        broker_commit_interval=settings.worker.commit_interval_s,
        stream_wait_empty=True,
        # A batch may legitimately wait on a restarting Redis; don't report it as stuck too early.
        stream_processing_timeout=300.0,
        worker_redirect_stdouts=False,
    )
    worker = Worker(pipeline, executor, metrics)

    if ready_file is not None:
        ReadyFile(ready_file).watch(app)
    if settings.worker.unassigned_exit_s > 0:
        GroupWatchdog(settings.worker.unassigned_exit_s, worker.exit).watch(app)

    # mode declares handlers with mypy_extensions' NamedArg("BaseSignalT"), a string mypy never matches.
    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def _close_hooks(app: Any, **kwargs: Any) -> None:
        # Sent after the consumer (and so every agent's last batch) stopped, while the producer still runs:
        # hooks flush through it from the executor, so the loop must stay free to serve their publishes.
        await asyncio.get_running_loop().run_in_executor(worker.executor, close_hooks, pipeline.hooks)

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
        _, stopping = await run_and_publish(worker, publisher, settings.topics.scored, settings.topics.dlq, records)
        _update_lag(app, worker, records)
        if stopping:
            raise asyncio.CancelledError

    def make_agent(topic_name: str):
        topic = app.topic(topic_name, value_serializer="raw", key_serializer="raw")

        async def consume(stream):
            loop = asyncio.get_running_loop()
            publisher.bind(app, loop)
            # Before the first batch: a cold ONNX Runtime session would make the first records wait seconds.
            took_s = await loop.run_in_executor(worker.executor, pipeline.warm_up)
            if took_s:
                log.info("scorer warmed up in %.2f s", took_s)
            s = settings.stream
            limit = BatchLimit(BatchController(s.max_batch, adaptive=s.adaptive_batch, headroom=s.batch_headroom))
            # take_events reads the limit at each record, so every batch gets the controller's latest size.
            batches = stream.take_events(limit, within=s.batch_within_s)
            last_start = time.monotonic()
            try:
                async for events in batches:
                    started = time.monotonic()
                    await handle(events)
                    limit.observe(len(events), started - last_start, time.monotonic() - started)
                    last_start = started
            except asyncio.CancelledError:
                # handle finished and published the batch before letting the cancellation through: closing the
                # generator runs take_events' ack of that batch now, before the consumer's final commit.
                await batches.aclose()
                raise

        consume.__name__ = f"consume_{topic_name.replace('.', '_').replace('-', '_')}"
        return app.agent(topic, name=f"sentimon.{topic_name}", concurrency=1)(consume)

    for name in dict.fromkeys([settings.topics.social, settings.topics.market]):
        make_agent(name)

    return app


class BatchLimit:
    """The ``max_`` of Faust's ``take_events``, chosen per batch by a ``BatchController``.

    ``take_events`` closes a batch when ``len(buffer) >= max_``, read at each record; ``int >= BatchLimit`` lands
    in ``__le__`` here, so the limit can change between batches without re-creating the generator (which would
    strand a record already taken into the old one's buffer).
    """

    def __init__(self, controller: BatchController):
        self.controller = controller
        self.value = controller.size()

    def observe(self, n: int, cycle_s: float, processing_s: float) -> None:
        self.controller.observe(n, cycle_s, processing_s)
        self.value = self.controller.size()

    def __le__(self, size: object) -> bool:
        if not isinstance(size, int):
            return NotImplemented
        return size >= self.value

    def __repr__(self) -> str:
        return f"BatchLimit({self.value})"


def _update_lag(app, worker: Worker, records: list[RawRecord]) -> None:
    from faust.types import TP

    try:
        assigned: set[tuple[str, int]] | None = {(tp.topic, tp.partition) for tp in app.consumer.assignment()}
    except Exception:  # consumer mid-rebalance: keep every partition's previous value
        assigned = None
    worker.metrics.observe_positions(records, lambda t, p: app.consumer.highwater(TP(t, p)), assigned)
