"""SIGTERM mid-batch on the real stack: the batch in flight is finished, its scored and dead-letter records are
published, and only then is it acknowledged -- so everything the stopped worker committed has its outputs, and
after a restart every record is accounted for exactly once."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.streams.conftest import hour_count, read_topic, send, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MARKER_ENV = "SIGTERM_TEST_MARKER"  # not SENTIMON_*: settings reject unknown names
SLOW_BATCH_S = 4.0


def slow_first_batch(settings):
    """Hook (loaded by the worker subprocess): the first batch signals that it has been applied to the windows
    -- its outputs not yet published -- and then takes a while, so the test's SIGTERM lands mid-batch."""
    state = {"first": True}

    def hook(events, store) -> None:
        if state["first"] and events:
            state["first"] = False
            Path(os.environ[MARKER_ENV]).write_text(json.dumps([e.message_id for e in events]))
            time.sleep(SLOW_BATCH_S)

    return hook


def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets({group: None})[group]
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0}


def _outputs(bootstrap: str, env, scored_at_least: int, dead_at_least: int) -> tuple[set[str], set[tuple[int, int]]]:
    scored = read_topic(bootstrap, env.topics["scored"], scored_at_least, timeout_s=20)
    dlq = read_topic(bootstrap, env.topics["dlq"], dead_at_least, timeout_s=20)
    ids = {json.loads(r.value)["id"] for r in scored}
    positions = {(json.loads(r.value)["source"]["partition"], json.loads(r.value)["source"]["offset"]) for r in dlq}
    return ids, positions


def test_sigterm_mid_batch_publishes_and_acknowledges_the_batch(stream_env, store, stack_settings, tmp_path):
    from kafka import KafkaConsumer

    bootstrap = stack_settings.stack.kafka_servers
    marker = tmp_path / "first-batch"
    stream_env.extra_env.update(
        {
            "SENTIMON_STREAM_HOOKS": json.dumps(["tests.streams.test_sigterm:slow_first_batch"]),
            "SENTIMON_STREAM_MAX_BATCH": "60",
            # Only the shutdown commit can record the in-flight batch as done.
            "SENTIMON_WORKER_COMMIT_INTERVAL_S": "120",
            MARKER_ENV: str(marker),
        }
    )
    n = 600
    now = int(time.time() * 1000)
    values = [
        b'{"id": "x%d", "text": "NaN as a number", "meta": {"v": NaN}}' % i if i % 5 == 0
        else json.dumps({"id": f"v{i}", "ts": now, "text": "fine", "entities": ["TERM"]}).encode()
        for i in range(n)
    ]  # fmt: skip
    n_valid = sum(1 for i in range(n) if i % 5)
    send(bootstrap, stream_env.topics["social"], values)

    first = stream_env.start_worker()
    wait_for(lambda: marker.exists() or first.proc.poll() is not None, 60, "the first batch to be applied")
    assert first.terminate(timeout_s=60) == 0, first.log.read_text()[-3000:]
    in_flight = json.loads(marker.read_text())
    at_stop = hour_count(store, "TERM")

    # Everything the stopped worker acknowledged has its scored or dead-letter record -- the in-flight batch too.
    committed = _committed(bootstrap, f"{stream_env.name}-group", stream_env.topics["social"])
    consumer = KafkaConsumer(stream_env.topics["social"], bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=2000)  # fmt: skip
    raw = list(consumer)
    consumer.close()
    assert len(raw) == n
    acked = [r for r in raw if r.offset < committed.get(r.partition, 0)]
    acked_valid = {json.loads(r.value)["id"] for r in acked if not r.value.startswith(b'{"id": "x')}
    acked_bad = {(r.partition, r.offset) for r in acked if r.value.startswith(b'{"id": "x')}
    assert set(in_flight) <= acked_valid  # the batch SIGTERM interrupted was acknowledged...
    assert at_stop == len(acked_valid)  # ...and nothing was applied that was not acknowledged
    ids, positions = _outputs(bootstrap, stream_env, len(acked_valid), len(acked_bad))
    assert acked_valid <= ids  # ...and its outputs were published before that
    assert acked_bad <= positions

    second = stream_env.start_worker()
    second.wait_ready()
    wait_for(lambda: hour_count(store, "TERM") >= n_valid, 60, f"all {n_valid} valid messages after the restart")
    ids, positions = _outputs(bootstrap, stream_env, n_valid, n - n_valid)
    time.sleep(1)
    assert hour_count(store, "TERM") == n_valid
    assert ids == {f"v{i}" for i in range(n) if i % 5}
    assert positions == {(r.partition, r.offset) for r in raw if r.value.startswith(b'{"id": "x')}
    assert second.sample('sentimon_messages_total{outcome="duplicate"') == 0
    assert second.sample('sentimon_messages_total{outcome="applied"') == n_valid - at_stop
