"""Chaos on the real services, each fault on a dedicated instance (tests/chaos/conftest.py) or on the test's own
workers: the Kafka broker restarted mid-stream, Redis killed with SIGKILL and restarted, a worker frozen with
SIGSTOP until the group rebalanced and then resumed. Each checks exact window counts, a complete scored topic
(dedup by id allowed: it is at-least-once) and a complete dead-letter topic (one bad record in a hundred)."""

from __future__ import annotations

import base64
import json
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from sentimon.infra import TopicSpec, ensure_topics
from sentimon.streams.windows import WindowStore
from tests.streams.conftest import StreamEnv, hour_count, message, read_topic, wait_for

from .conftest import dedicated, kill9, restart, stop

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BAD_EVERY = 100


def traffic(n: int, entity: str) -> tuple[list[bytes], set[str], set[bytes]]:
    """``n`` records, one in ``BAD_EVERY`` not JSON; the ids of the good ones and the bad values."""
    values, good, bad = [], set(), set()
    for i in range(n):
        if i % BAD_EVERY == BAD_EVERY // 2:
            values.append(f"bad-{entity}-{i} {{not json".encode())
            bad.add(values[-1])
        else:
            values.append(message(i, [entity]))
            good.add(f"m{i}")
    return values, good, bad


def steady_send(bootstrap: str, topic: str, values: list[bytes], rate: float) -> threading.Thread:
    """Produce at ``rate``/s in the background; each record is retried until the broker acknowledged it, so a
    broker outage delays the stream but never drops from it (a retry may duplicate: consumers dedupe by id)."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    def run() -> None:
        producer = None
        started = time.monotonic()
        for i, value in enumerate(values):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            while True:
                try:
                    if producer is None:
                        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", max_block_ms=5000,
                                                 request_timeout_ms=5000)  # fmt: skip
                    producer.send(topic, value=value).get(timeout=10)
                    break
                except KafkaError:
                    time.sleep(0.5)  # the same producer reconnects once the broker is back
        if producer is not None:
            producer.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def check_outputs(bootstrap: str, env: StreamEnv, good: set[str], bad: set[bytes]) -> None:
    scored = read_topic(bootstrap, env.topics["scored"], len(good), timeout_s=60)
    ids = [json.loads(r.value)["id"] for r in scored]
    assert set(ids) == good, f"missing {len(good - set(ids))}, unexpected {len(set(ids) - good)}"
    dead = read_topic(bootstrap, env.topics["dlq"], len(bad), timeout_s=30)
    originals = {base64.b64decode(json.loads(r.value)["original_b64"]) for r in dead}
    assert originals == bad and {json.loads(r.value)["reason"] for r in dead} == {"invalid_json"}


def make_env(settings, name: str, tmp, kafka: str, redis_url: str) -> StreamEnv:
    env = StreamEnv(settings, name, tmp)
    env.extra_env = {"SENTIMON_KAFKA_BOOTSTRAP": kafka, "SENTIMON_REDIS_URL": redis_url}
    specs = [TopicSpec(t, 4 if k in ("social", "market") else 1, 3_600_000) for k, t in env.topics.items()]
    ensure_topics(settings.replace(kafka_bootstrap=kafka), specs)
    return env


@pytest.fixture
def envs() -> Iterator[list[StreamEnv]]:
    made: list[StreamEnv] = []
    yield made
    for env in made:
        env.stop_all()


def window_store(redis_url: str, env: StreamEnv, bucket_ms: int) -> WindowStore:
    return WindowStore(redis.Redis.from_url(redis_url, socket_timeout=5), prefix=env.name, bucket_ms=bucket_ms)


def counted(store: WindowStore, entity: str) -> int:
    try:
        return hour_count(store, entity)
    except redis.RedisError:  # Redis is down right now
        return -1


def test_kafka_broker_restarted_mid_stream(stack_settings, unique, tmp_path, envs):
    with dedicated("kafka") as own:
        kafka = own.stack.kafka_servers
        env = make_env(stack_settings, unique, tmp_path, kafka, stack_settings.stack.redis)
        envs.append(env)
        store = window_store(stack_settings.stack.redis, env, stack_settings.windows.bucket_ms)
        worker = env.start_worker()
        worker.wait_ready()
        values, good, bad = traffic(3000, "KAFKA")
        producer = steady_send(kafka, env.topics["social"], values, rate=500)
        wait_for(lambda: hour_count(store, "KAFKA") >= 600, 60, "600 messages before the broker restart")
        stop(own, "kafka")
        time.sleep(10)  # longer than the session timeout (6 s): the worker must rejoin the group afterwards
        restart(own, "kafka")
        producer.join(120)
        assert not producer.is_alive()
        workers = [worker]

        def supervised_count() -> int:
            # Crash-only on an infrastructure fault: the supervisor restarts a worker that exited. One that rejoins
            # nothing after the outage (faust-streaming/faust#523, seen under load) exits through its group
            # watchdog (worker.unassigned_exit_s, 45 s here) instead of hanging.
            if workers[-1].proc.poll() is not None:
                assert workers[-1].proc.returncode == 70, workers[-1].proc.returncode
                workers.append(env.start_worker())
            return hour_count(store, "KAFKA")

        wait_for(lambda: supervised_count() >= len(good), 150, f"all {len(good)} messages counted")
        time.sleep(2)  # a straggling re-delivery would land now
        assert hour_count(store, "KAFKA") == len(good)
        check_outputs(kafka, env, good, bad)
        env.stop_all()


def test_redis_killed_9_and_restarted_loses_no_acknowledged_update(stack_settings, unique, tmp_path, envs):
    with dedicated("redis") as own:
        assert own.stack.redis_appendfsync == "always"  # the documented setting this test stands on
        redis_url = own.stack.redis
        kafka = stack_settings.stack.kafka_servers
        env = make_env(stack_settings, unique, tmp_path, kafka, redis_url)
        envs.append(env)
        store = window_store(redis_url, env, stack_settings.windows.bucket_ms)
        assert store.redis.config_get("appendfsync") == {"appendfsync": "always"}
        worker = env.start_worker()
        worker.wait_ready()
        values, good, bad = traffic(3000, "REDIS9")
        producer = steady_send(kafka, env.topics["social"], values, rate=600)
        wait_for(lambda: counted(store, "REDIS9") >= 800, 60, "800 messages before killing Redis")
        kill9(own, "redis")
        time.sleep(2)  # the worker keeps polling and must retry its batch, not acknowledge it
        restart(own, "redis")
        producer.join(60)
        wait_for(lambda: counted(store, "REDIS9") >= len(good), 120, f"all {len(good)} messages after the restart")
        time.sleep(2)
        assert hour_count(store, "REDIS9") == len(good)
        assert worker.proc.poll() is None  # it rode out the outage
        assert worker.sample("sentimon_redis_errors_total") > 0  # ...and really met it
        check_outputs(kafka, env, good, bad)
        env.stop_all()


def test_worker_frozen_until_the_group_rebalanced_then_resumed_counts_once(stack_settings, unique, tmp_path, envs):
    kafka, redis_url = stack_settings.stack.kafka_servers, stack_settings.stack.redis
    env = make_env(stack_settings, unique, tmp_path, kafka, redis_url)
    envs.append(env)
    store = window_store(redis_url, env, stack_settings.windows.bucket_ms)
    frozen, other = env.start_worker(), env.start_worker()
    frozen.wait_ready()
    other.wait_ready()
    wait_for(lambda: len((frozen.ready() or {}).get("partitions", [])) > 0, 60, "both workers to own partitions")
    before = (other.ready() or {})["assignments"]
    frozen_before = (frozen.ready() or {})["assignments"]
    values, good, bad = traffic(3000, "STOP")
    producer = steady_send(kafka, env.topics["social"], values, rate=500)
    wait_for(lambda: hour_count(store, "STOP") >= 600, 60, "600 messages before freezing a worker")
    os.kill(frozen.proc.pid, signal.SIGSTOP)
    try:
        # Frozen past its session timeout: the group gives every partition to the other worker.
        def took_over() -> bool:
            ready = other.ready() or {}
            return ready.get("assignments", 0) > before and len(ready.get("partitions", [])) == 8

        wait_for(took_over, 60, "the group to rebalance around the frozen worker")
        time.sleep(2)  # the other worker processes the frozen one's partitions meanwhile
    finally:
        os.kill(frozen.proc.pid, signal.SIGCONT)  # resumes mid-batch with partitions it no longer owns
    producer.join(60)
    wait_for(lambda: hour_count(store, "STOP") >= len(good), 120, f"all {len(good)} messages")
    wait_for(lambda: (frozen.ready() or {}).get("assignments", 0) > frozen_before, 60, "the resumed worker to rejoin")
    time.sleep(2)  # anything the resumed worker re-applied would land now
    assert hour_count(store, "STOP") == len(good)
    assert frozen.proc.poll() is None and other.proc.poll() is None
    check_outputs(kafka, env, good, bad)
