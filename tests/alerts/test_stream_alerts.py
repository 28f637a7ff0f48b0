"""The alert hook inside real `sentimon worker` processes (Kafka -> VADER -> Redis windows -> alerts):
a negative burst for one ticker gives exactly one firing and one resolved alert, the control entity none;
the same with two workers, one of them killed (SIGKILL) in the middle of the burst."""

from __future__ import annotations

import json
import time

import pytest
import redis

from sentimon.alerts.history import History
from sentimon.streams.windows import WindowStore
from tests.streams.conftest import StreamEnv, read_topic, send, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MIN = 60_000
MINUTES = 30
BURST = range(8, 18)


def rules(name: str, for_: str = "2m") -> str:
    return f"""
name: {name}
entities: {{match: "[A-Z]{{1,5}}"}}
rules:
  - name: negative-share
    kind: level
    metric: negative_share
    window: 5m
    min_volume: 10
    op: above
    threshold: 0.5
    clear: 0.3
    for: {for_}
    severity: critical
"""


@pytest.fixture
def env(stack_settings, unique, make_topic, tmp_path):
    ruleset = "s" + unique[-8:]
    (tmp_path / "rules.yaml").write_text(rules(ruleset))
    e = StreamEnv(stack_settings, unique, tmp_path)
    e.extra_env = {
        "SENTIMON_STREAM_HOOKS": '["sentimon.alerts:stream_hook"]',
        "SENTIMON_ALERTS_RULES": json.dumps([str(tmp_path / "rules.yaml")]),
        "SENTIMON_ALERTS_PREFIX": f"{unique}:alerts",
        "SENTIMON_DATABASE_URL": stack_settings.stack.database,
    }
    for kind, topic in e.topics.items():
        make_topic(topic, partitions=4 if kind in ("social", "market") else 1)
    e.ruleset = ruleset
    try:
        yield e
    finally:
        e.stop_all()


def minute_messages(m: int, ts: int) -> list[dict]:
    out = [{"id": f"{e}-{m}-{j}", "ts": ts + j * 1000, "source": "news" if j % 2 else "twitter",
            "text": f"{e} quarterly report is out today", "entities": [e]}
           for e in ("AAPL", "MSFT") for j in range(4)]  # fmt: skip
    if m in BURST:
        out += [{"id": f"AAPL-neg-{m}-{j}", "ts": ts + j * 1000 + 500, "source": "twitter",
                 "text": f"AAPL recall, awful and terrible, fraud probe {j}", "entities": ["AAPL"]}
                for j in range(8)]  # fmt: skip
    return out


def run_timeline(env: StreamEnv, store: WindowStore, kill_at: int | None = None, workers=()) -> None:
    bootstrap = env.settings.stack.kafka_servers
    base = (int(time.time() * 1000) - 40 * MIN) // MIN * MIN
    for m in range(MINUTES):
        ts = base + m * MIN
        msgs = minute_messages(m, ts)
        send(bootstrap, env.topics["social"], [json.dumps(x).encode() for x in msgs],
             keys=[x["id"].encode() for x in msgs])  # fmt: skip
        want = {"AAPL": 4 + (8 if m in BURST else 0), "MSFT": 4}

        def applied(ts=ts, want=want) -> bool:
            return all(store.stats(e, MIN, ts + MIN).count == n for e, n in want.items())

        wait_for(applied, 90, f"minute {m} applied")
        if kill_at == m:
            assert workers[0].sample('sentimon_messages_total{outcome="applied"') > 0  # it owned partitions
            workers[0].kill9()


def check_alerts(env: StreamEnv) -> None:
    records = read_topic(env.settings.stack.kafka_servers, env.topics["alerts"], 2, timeout_s=30)
    time.sleep(3)  # anything late (a duplicate) would be here by now
    records = read_topic(env.settings.stack.kafka_servers, env.topics["alerts"], len(records), timeout_s=5)
    got = [(r.key.decode(), json.loads(r.value)["kind"], json.loads(r.value)["rule"]) for r in records]
    rule = f"{env.ruleset}/negative-share"
    assert got == [("AAPL", "firing", rule), ("AAPL", "resolved", rule)]
    firing = json.loads(records[0].value)
    assert firing["direction"] == "up" and "recall" in firing["top_terms"] and firing["examples"]
    history = History(env.settings.stack.database)
    rows = [r for r in history.list(limit=1000) if r["rule"] == rule]
    history.close()
    assert [(r["entity"], r["state"], r["notifications"]) for r in rows] == [("AAPL", "resolved", 2)]


@pytest.fixture
def store(stack_settings, env):
    client = redis.Redis.from_url(stack_settings.stack.redis)
    yield WindowStore(client, prefix=env.name, bucket_ms=stack_settings.windows.bucket_ms)
    client.close()


def test_negative_burst_one_worker(env, store):
    worker = env.start_worker()
    worker.wait_ready()
    run_timeline(env, store)
    check_alerts(env)


def test_negative_burst_two_workers_one_killed_mid_burst(env, store):
    a, b = env.start_worker(), env.start_worker()
    a.wait_ready()
    b.wait_ready()
    run_timeline(env, store, kill_at=11, workers=[a, b])
    check_alerts(env)
    assert a.proc.poll() is not None and b.proc.poll() is None
