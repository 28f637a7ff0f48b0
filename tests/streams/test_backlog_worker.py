"""The issue's outage in a real `sentimon worker`: while it was stopped, 1,000 social and 100 market messages
with ascending event times over the last 40 minutes piled up (4 partitions each, more than the 10-minute
allowed lateness). Started, it counts every one of them and drops none as late, although the low-volume
market topic reaches "now" long before the social backlog is consumed."""

from __future__ import annotations

import json
import random
import time

import pytest

from tests.streams.conftest import send, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MIN = 60_000


def test_backlog_after_an_outage_is_counted_not_dropped_as_late(stream_env, store, stack_settings):
    bootstrap = stack_settings.stack.kafka_servers
    # Small batches: the social backlog takes many batches, the market one a couple.
    stream_env.extra_env = {"SENTIMON_STREAM_MAX_BATCH": "64"}
    now = int(time.time() * 1000)
    start = now - 40 * MIN
    rng = random.Random(12)

    def batch(prefix: str, n: int, entity: str) -> list[dict]:
        step = 40 * MIN // n
        return [{"id": f"{prefix}{i}", "ts": start + i * step, "source": "test", "entities": [entity],
                 "text": rng.choice(["what a great day", "awful, terrible", "it is out"])}
                for i in range(n)]  # fmt: skip

    social, market = batch("s", 1000, "BRAND"), batch("k", 100, "TICK")
    # Keyed by id: spread over the 4 partitions, ascending event time within each.
    for topic, msgs in ((stream_env.topics["market"], market), (stream_env.topics["social"], social)):
        send(bootstrap, topic, [json.dumps(m).encode() for m in msgs], keys=[m["id"].encode() for m in msgs])

    worker = stream_env.start_worker()
    worker.wait_ready()

    def counted(entity: str) -> int:
        return store.stats(entity, 45 * MIN, now + MIN).count

    wait_for(lambda: counted("BRAND") + worker.sample('sentimon_messages_total{outcome="late"') >= 1000
             and counted("TICK") >= 100, 120, "the backlog consumed")  # fmt: skip
    wait_for(lambda: worker.sample("sentimon_messages_total{") >= 1100, 30, "metrics of every message")
    assert worker.sample('sentimon_messages_total{outcome="late"') == 0
    assert (counted("BRAND"), counted("TICK")) == (1000, 100)
    assert worker.sample('sentimon_messages_total{outcome="applied"') == 1100
    marks = store.watermarks()
    assert len([tp for tp in marks if tp.startswith(stream_env.topics["social"] + ":")]) == 4
    assert max(wm for wm, _ in marks.values()) == max(m["ts"] for m in social + market)
