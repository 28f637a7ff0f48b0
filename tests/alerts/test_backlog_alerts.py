"""The issue's repro in a real `sentimon worker` with the default rules: three hours of chatter plus a
30-minute all-negative burst at 5x volume for one brand, produced with `sentimon produce --keep-ts` and
consumed as a backlog by a running worker, fires the alert -- exactly the alerts the same history gives when
evaluated live-paced (the pure evaluation, fed the worker's own scores in 2-second batches)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sentimon.alerts.schema import load_rulesets
from tests.streams.conftest import StreamEnv, read_topic, wait_for

from .test_event_time import alerts, as_events, history, live

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MIN = 60_000


@pytest.fixture
def env(stack_settings, unique, make_topic, tmp_path):
    e = StreamEnv(stack_settings, unique, tmp_path)
    e.extra_env = {
        "SENTIMON_STREAM_HOOKS": '["sentimon.alerts:stream_hook"]',
        "SENTIMON_ALERTS_PREFIX": f"{unique}:alerts",
        "SENTIMON_DATABASE_URL": stack_settings.stack.database,
    }
    for kind, topic in e.topics.items():
        make_topic(topic, partitions=4 if kind in ("social", "market") else 1)
    try:
        yield e
    finally:
        e.stop_all()


def produce_keep_ts(env: StreamEnv, path: Path) -> None:
    run_env = {**{k: v for k, v in os.environ.items() if not k.startswith("SENTIMON_")},
               "SENTIMON_KAFKA_BOOTSTRAP": env.settings.stack.kafka_servers,
               "SENTIMON_STATE_DIR": str(env.tmp / "state")}  # fmt: skip
    command = [sys.executable, "-m", "sentimon", "produce", "--file", str(path), "--topic", env.topics["social"]]
    done = subprocess.run([*command, "--keep-ts"], env=run_env, capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_backlog_fires_the_same_alerts_as_live_with_the_default_rules(env):
    bootstrap = env.settings.stack.kafka_servers
    now = int(time.time() * 1000)
    messages = history(now - now % MIN - 3 * 3_600_000 - 32 * MIN)  # ends ~2 minutes ago
    path = env.tmp / "history.jsonl"
    path.write_text("".join(json.dumps({k: v for k, v in m.items() if k != "label"}) + "\n" for m in messages))

    worker = env.start_worker()
    worker.wait_ready()  # running: the history arrives as a backlog, not before the worker started
    produce_keep_ts(env, path)

    def applied() -> int:
        return int(worker.sample('sentimon_messages_total{outcome="applied"'))

    wait_for(lambda: applied() >= len(messages), 180, "the backlog consumed")
    assert worker.sample('sentimon_messages_total{outcome="late"') == 0

    # The same history, scored by the worker, evaluated live-paced in memory.
    scored = {}
    for record in read_topic(bootstrap, env.topics["scored"], len(messages)):
        doc = json.loads(record.value)
        scored[doc["id"]] = doc
    assert len(scored) == len(messages)
    replayed = [{**m, "label": scored[m["id"]]["label"], "score": scored[m["id"]]["score"]} for m in messages]
    expected = alerts(live(as_events(replayed)), load_rulesets())
    assert ("Acme", "opinion/negative-share-high", "firing") in [a[:3] for a in expected]

    def on_kafka() -> list[tuple]:
        records = read_topic(bootstrap, env.topics["alerts"], len(expected), timeout_s=5)
        return [(r.key.decode(), json.loads(r.value)["rule"], json.loads(r.value)["kind"], json.loads(r.value)["at"])
                for r in records]  # fmt: skip

    wait_for(lambda: len(on_kafka()) >= len(expected), 90, f"{len(expected)} alerts", interval_s=2)
    time.sleep(3)  # a duplicate or an extra alert would be there by now
    assert sorted(on_kafka()) == sorted(expected)
