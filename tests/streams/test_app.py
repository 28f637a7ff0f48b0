"""The Faust shell's pure parts: crash-only handling of an unexpected batch failure, publishing from hook threads
through the worker's producer, the ready file."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry

from sentimon.streams.app import EXIT_BATCH_FAILED, Publisher, ReadyFile, Worker
from sentimon.streams.entities import EntityExtractor
from sentimon.streams.errors import StreamsError
from sentimon.streams.metrics import StreamMetrics
from sentimon.streams.pipeline import Pipeline, RawRecord
from tests.streams.test_pipeline import FakeScorer, MemoryStore


class Exited(BaseException):
    pass


def worker_with(store) -> tuple[Worker, list[int]]:
    codes: list[int] = []

    def fake_exit(code: int) -> None:
        codes.append(code)
        raise Exited

    pipeline = Pipeline(FakeScorer(), store, EntityExtractor({}), sleep=lambda s: None)
    return Worker(pipeline, ThreadPoolExecutor(1), StreamMetrics(CollectorRegistry()), exit=fake_exit), codes


def test_infrastructure_error_exits_instead_of_acknowledging():
    # Redis outages are retried inside the pipeline; what escapes it (here: out of memory) is not about the data.
    worker, codes = worker_with(MemoryStore(failures=1, error=MemoryError()))
    with pytest.raises(Exited):
        worker.run_batch([RawRecord(b'{"id": "a", "text": "good"}', "raw")])
    assert codes == [EXIT_BATCH_FAILED]


def test_unexpected_data_error_is_dead_lettered_not_a_crash():
    worker, codes = worker_with(MemoryStore(failures=1, error=ValueError("label 'angry' is not one of ...")))
    result = worker.run_batch([RawRecord(b'{"id": "a", "text": "good"}', "raw")])
    # The batch failed once; re-run alone the record went through (the store's failure was transient).
    assert codes == [] and [e.message_id for e in result.events] == ["a"] and result.dead == []


def test_batch_serializes_scored_and_dead_letters():
    worker, codes = worker_with(MemoryStore())
    result = worker.run_batch([RawRecord(b'{"id": "a", "text": "good"}', "raw"), RawRecord(b"x", "raw")])
    assert codes == [] and len(result.scored) == 1 and len(result.dead) == 1
    assert json.loads(result.scored[0]) == result.events[0].to_dict()
    assert b'"status": "applied"' in result.scored[0] and b'"reason": "invalid_json"' in result.dead[0]


def test_run_to_completion_finishes_the_work_and_reports_the_cancellation():
    from sentimon.streams.app import run_to_completion

    async def main():
        done = asyncio.Event()

        async def work():
            await asyncio.sleep(0.2)
            done.set()
            return 42

        task = asyncio.ensure_future(run_to_completion(work()))
        await asyncio.sleep(0.05)
        task.cancel()  # twice, as a stopping worker may
        await asyncio.sleep(0.01)
        task.cancel()
        return await task, done.is_set()

    assert asyncio.run(main()) == ((42, True), True)


class FakeProducer:
    """Faust's producer ``send``: schedules the record and returns a future the broker's ack resolves."""

    def __init__(self, fail: bool = False):
        self.fail = fail
        self.sent: list[tuple] = []

    async def send(self, topic, key, value, partition, timestamp, headers):
        self.sent.append((topic, key, value, partition, threading.get_ident()))
        ack = asyncio.get_running_loop().create_future()
        if self.fail:
            ack.set_exception(RuntimeError("NotEnoughReplicas"))
        else:
            ack.set_result(None)
        return ack


class SlowStore(MemoryStore):
    def apply_detailed(self, events):
        time.sleep(0.3)
        return super().apply_detailed(events)


def test_a_batch_cancelled_midway_is_finished_and_published_before_the_cancellation():
    from sentimon.streams.app import run_and_publish

    worker, codes = worker_with(SlowStore())
    producer = FakeProducer()
    publisher = Publisher()
    records = [RawRecord(b'{"id": "a", "text": "good"}', "raw"), RawRecord(b"\xff", "raw", 0, 1)]

    async def main():
        publisher.bind(SimpleNamespace(producer=producer), asyncio.get_running_loop())
        task = asyncio.ensure_future(run_and_publish(worker, publisher, "scored", "dlq", records))
        await asyncio.sleep(0.1)  # inside the window update
        task.cancel()
        return await task

    result, stopping = asyncio.run(main())
    assert stopping and codes == []
    assert [(topic, key) for topic, key, *_ in producer.sent] == [("scored", b"a"), ("dlq", None)]
    assert producer.sent[0][2] == result.scored[0] and producer.sent[1][2] == result.dead[0]


def publish_from_a_hook_thread(producer: FakeProducer) -> tuple[int, BaseException | None]:
    app = SimpleNamespace(producer=producer, conf=SimpleNamespace(broker_request_timeout=5.0))
    publisher = Publisher()

    async def main():
        publisher.bind(app, asyncio.get_running_loop())
        try:
            await asyncio.to_thread(publisher.publish, "alerts", b"AAPL", b"{}")
        except Exception as exc:
            return threading.get_ident(), exc
        return threading.get_ident(), None

    return asyncio.run(main())


def test_hooks_publish_through_the_workers_producer_on_its_loop():
    producer = FakeProducer()
    loop_thread, error = publish_from_a_hook_thread(producer)
    assert error is None
    assert producer.sent == [("alerts", b"AAPL", b"{}", None, loop_thread)]  # partition: aiokafka's partitioner


def test_a_refused_record_raises_in_the_hook_thread():
    _, error = publish_from_a_hook_thread(FakeProducer(fail=True))
    assert isinstance(error, RuntimeError) and "NotEnoughReplicas" in str(error)


def test_publishing_before_the_worker_started_is_an_error():
    with pytest.raises(StreamsError, match="not running"):
        Publisher().publish("alerts", b"k", b"v")


def test_publishing_on_the_event_loop_itself_is_refused_not_a_deadlock():
    publisher = Publisher()

    async def main():
        publisher.bind(SimpleNamespace(producer=FakeProducer()), asyncio.get_running_loop())
        publisher.publish("alerts", b"k", b"v")

    with pytest.raises(StreamsError, match="await send"):
        asyncio.run(main())


def test_publishing_after_the_loop_stopped_fails_at_once():
    producer = FakeProducer()
    app = SimpleNamespace(producer=producer, conf=SimpleNamespace(broker_request_timeout=60.0))
    publisher = Publisher()
    loop = asyncio.new_event_loop()
    publisher.bind(app, loop)
    try:
        with pytest.raises(StreamsError, match="not running"):  # a loop that is not running, not yet closed
            publisher.publish("alerts", b"k", b"v")
    finally:
        loop.close()
    with pytest.raises(StreamsError, match="not running"):
        publisher.publish("alerts", b"k", b"v")
    assert producer.sent == []


def test_a_publish_waiting_when_the_loop_stops_fails_fast(monkeypatch):
    monkeypatch.setattr("sentimon.streams.app._LOOP_CHECK_S", 0.05)

    class NeverAcked(FakeProducer):
        async def send(self, topic, key, value, partition, timestamp, headers):
            self.sent.append(topic)
            return asyncio.get_running_loop().create_future()  # the broker never answers

    app = SimpleNamespace(producer=NeverAcked(), conf=SimpleNamespace(broker_request_timeout=60.0))
    publisher = Publisher()
    loop = asyncio.new_event_loop()
    publisher.bind(app, loop)
    outcome: list[BaseException] = []

    def hook_thread():
        try:
            publisher.publish("alerts", b"k", b"v")
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=hook_thread)
    loop.call_soon(thread.start)
    loop.run_until_complete(asyncio.sleep(0.3))  # the record is sent, its ack pending; then the loop stops
    started = time.monotonic()
    thread.join(5)
    loop.run_until_complete(asyncio.sleep(0))  # runs the cancellation the failed publish asked for
    loop.close()
    assert time.monotonic() - started < 2 and not thread.is_alive()  # not the 60 s request timeout
    assert len(outcome) == 1 and isinstance(outcome[0], StreamsError) and "loop stopped" in str(outcome[0])


def test_ready_file_follows_the_assignment(tmp_path):
    path = tmp_path / "ready"
    path.write_text("left by a killed worker")
    signals = {name: [] for name in ("on_partitions_assigned", "on_partitions_revoked", "on_before_shutdown")}
    app = SimpleNamespace(**{name: SimpleNamespace(connect=receivers.append) for name, receivers in signals.items()})
    ready = ReadyFile(path)
    ready.watch(app)
    assert not path.exists()
    tps = [SimpleNamespace(topic="raw", partition=p) for p in (1, 0)]
    asyncio.run(signals["on_partitions_assigned"][0](app, tps))
    assert json.loads(path.read_text())["partitions"] == ["raw:0", "raw:1"]
    asyncio.run(signals["on_partitions_revoked"][0](app, tps))
    assert not path.exists()
    asyncio.run(signals["on_partitions_assigned"][0](app, tps[:1]))
    assert json.loads(path.read_text())["assignments"] == 2
    asyncio.run(signals["on_before_shutdown"][0](app))
    assert not path.exists()


def test_ready_file_in_a_missing_directory_is_refused_before_the_worker_starts(tmp_path):
    with pytest.raises(StreamsError, match="does not exist"):
        ReadyFile(tmp_path / "nope" / "ready").watch(SimpleNamespace())


def test_group_watchdog_exits_a_worker_left_without_assignment():
    import asyncio

    from sentimon.streams.app import GroupWatchdog

    now = [0.0]
    exits: list[int] = []
    dog = GroupWatchdog(45.0, exits.append, clock=lambda: now[0])
    now[0] = 30.0
    assert dog.stuck_s() == 30.0  # still joining after start
    asyncio.run(dog._assigned(None, []))  # an empty assignment (a standby) counts as held
    now[0] = 500.0
    assert dog.stuck_s() == 0.0
    asyncio.run(dog._revoked(None))
    now[0] = 540.0
    assert dog.stuck_s() == 40.0
    now[0] = 546.0
    assert dog.stuck_s() > dog.limit_s  # the thread exits with 70 now (tested through a real worker in tests/chaos)


def test_group_watchdog_thread_exits_with_70_once_the_limit_passes():
    import threading

    from sentimon.streams.app import GroupWatchdog

    exits: list[int] = []
    dog = GroupWatchdog(0.2, exits.append)
    thread = threading.Thread(target=dog._run, daemon=True)
    thread.start()
    thread.join(timeout=5)
    assert exits == [70]
