"""Fault injection on real services: a worker killed with SIGKILL mid-stream and restarted, and Redis
restarted mid-stream. Afterwards every window count is exact: nothing lost, nothing counted twice."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from tests.streams.conftest import hour_count, message, send, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _produce_in_background(settings, topic: str, values: list[bytes], rate: float) -> threading.Thread:
    thread = threading.Thread(target=send, args=(settings.stack.kafka_servers, topic, values, rate), daemon=True)
    thread.start()
    return thread


def _count(store, entity: str) -> int:
    try:
        return hour_count(store, entity)
    except redis.RedisError:  # Redis is being restarted by the test
        return -1


def test_kill9_mid_stream_then_restart_loses_and_double_counts_nothing(stream_env, store, stack_settings):
    # Commit rarely, so the killed worker leaves applied-but-uncommitted batches to be re-delivered.
    stream_env.extra_env["SENTIMON_WORKER_COMMIT_INTERVAL_S"] = "5"
    first = stream_env.start_worker()
    first.wait_ready()
    n = 4000
    values = [message(i, ["KILL"] if i % 2 else ["KILL", "NINE"]) for i in range(n)]
    producer = _produce_in_background(stack_settings, stream_env.topics["social"], values, rate=800)

    wait_for(lambda: hour_count(store, "KILL") >= 600, 60, "the first worker to apply 600 messages")
    first.kill9()
    at_kill = hour_count(store, "KILL")
    assert 0 < at_kill < n

    second = stream_env.start_worker()
    second.wait_ready()
    producer.join(60)
    wait_for(lambda: hour_count(store, "KILL") >= n, 120, f"all {n} messages after the restart")
    time.sleep(2)  # let any straggling re-delivery land before checking for double counts
    assert hour_count(store, "KILL") == n
    assert hour_count(store, "NINE") == n // 2
    # The restarted worker really did receive the killed one's uncommitted batches, and skipped them.
    wait_for(lambda: second.sample('sentimon_messages_total{outcome="duplicate"') > 0, 10, "re-delivered duplicates")
    assert second.sample('sentimon_messages_total{outcome="applied"') == n - at_kill


def test_redis_restart_mid_stream_keeps_counts_exact(stream_env, store, stack_settings):
    from sentimon.infra import Stack

    if stack_settings.stack.redis_url is not None:
        pytest.skip("Redis is external (SENTIMON_REDIS_URL): this test restarts the launcher's own Redis")
    worker = stream_env.start_worker()
    worker.wait_ready()
    n = 3000
    values = [message(i, ["REDIS"]) for i in range(n)]
    producer = _produce_in_background(stack_settings, stream_env.topics["social"], values, rate=600)

    wait_for(lambda: _count(store, "REDIS") >= 500, 60, "500 messages applied before the restart")
    redis_stack = Stack(stack_settings, only=("redis",))
    redis_stack.down()
    time.sleep(2)  # the worker keeps consuming and must retry, not drop
    redis_stack.up()

    producer.join(60)
    wait_for(lambda: _count(store, "REDIS") >= n, 120, f"all {n} messages after the Redis restart")
    time.sleep(2)
    assert hour_count(store, "REDIS") == n
    assert worker.sample("sentimon_redis_errors_total") > 0
    assert worker.proc.poll() is None  # the worker survived the outage


def test_sigterm_finishes_the_batch_and_commits(stream_env, store, stack_settings):
    # Commit interval far beyond the test: only the shutdown commit can save the restarted worker any re-work.
    stream_env.extra_env["SENTIMON_WORKER_COMMIT_INTERVAL_S"] = "120"
    first = stream_env.start_worker()
    first.wait_ready()
    n = 3000
    producer = _produce_in_background(
        stack_settings, stream_env.topics["social"], [message(i, ["TERM"]) for i in range(n)], rate=600
    )
    wait_for(lambda: hour_count(store, "TERM") >= 800, 60, "800 messages before SIGTERM")
    assert first.terminate() == 0
    at_stop = hour_count(store, "TERM")

    second = stream_env.start_worker()
    second.wait_ready()
    producer.join(60)
    wait_for(lambda: hour_count(store, "TERM") >= n, 120, f"all {n} messages after the restart")
    time.sleep(2)
    assert hour_count(store, "TERM") == n
    assert second.sample('sentimon_messages_total{outcome="applied"') == n - at_stop
    assert second.sample('sentimon_messages_total{outcome="duplicate"') == 0
