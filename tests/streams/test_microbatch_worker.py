"""A real worker sizes its batches adaptively (the first one holds a single record, however many wait) unless
`stream.adaptive_batch` pins them to `stream.max_batch` / `stream.batch_within_s`; counts are the same."""

from __future__ import annotations

import json

import pytest

from tests.streams.conftest import message, read_topic, send

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("adaptive", [True, False])
def test_first_batch_size_follows_the_setting(stream_env, stack_settings, adaptive):
    bootstrap = stack_settings.stack.kafka_servers
    # A long wait, so a pinned batch takes everything that is there instead of closing on a 20 ms timer.
    stream_env.extra_env = {
        "SENTIMON_STREAM_ADAPTIVE_BATCH": str(adaptive).lower(),
        "SENTIMON_STREAM_BATCH_WITHIN_S": "1",
    }
    send(bootstrap, stream_env.topics["social"], [message(i, ["ACME"]) for i in range(40)])  # waiting before start
    stream_env.start_worker().wait_ready()
    events = [json.loads(r.value) for r in read_topic(bootstrap, stream_env.topics["scored"], 40, timeout_s=60)]
    assert len({e["id"] for e in events}) == 40
    first = min(events, key=lambda e: e["timings"]["batch_start_ms"])
    if adaptive:
        assert first["timings"]["batch_size"] == 1
    else:
        assert first["timings"]["batch_size"] > 1
