"""PostgreSQL down while alerts fire, on the real services with a real worker: the negative burst's firing and
resolved alerts reach the webhook receiver and the Kafka alerts topic at once, each exactly once; the history,
written nowhere while the database is down, gets the episode (marked delivered) after it came back, and the
retries resend nothing."""

from __future__ import annotations

import json
import time

import pytest
import redis

from sentimon.alerts.history import History
from sentimon.streams.windows import WindowStore
from tests.alerts.receiver import Receiver
from tests.alerts.test_stream_alerts import rules, run_timeline
from tests.streams.conftest import StreamEnv, read_topic, wait_for

from .conftest import dedicated, restart, stop

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_postgres_down_while_alerts_fire(stack_settings, unique, make_topic, tmp_path):
    ruleset = "s" + unique[-8:]
    (tmp_path / "rules.yaml").write_text(rules(ruleset))
    rule = f"{ruleset}/negative-share"
    receiver = Receiver()
    with dedicated("database") as own:
        env = StreamEnv(stack_settings, unique, tmp_path)
        env.extra_env = {
            "SENTIMON_STREAM_HOOKS": '["sentimon.alerts:stream_hook"]',
            "SENTIMON_ALERTS_RULES": json.dumps([str(tmp_path / "rules.yaml")]),
            "SENTIMON_ALERTS_PREFIX": f"{unique}:alerts",
            "SENTIMON_ALERTS_WEBHOOKS": json.dumps([receiver.url]),
            "SENTIMON_ALERTS_SILENCE_INTERVAL_S": "1",  # the retry round (wall clock), short here
            "SENTIMON_DATABASE_URL": own.stack.database,
        }
        for kind, topic in env.topics.items():
            make_topic(topic, partitions=4 if kind in ("social", "market") else 1)
        client = redis.Redis.from_url(stack_settings.stack.redis)
        store = WindowStore(client, prefix=env.name, bucket_ms=stack_settings.windows.bucket_ms)
        try:
            worker = env.start_worker()
            worker.wait_ready()
            stop(own, "database")
            run_timeline(env, store)  # the burst fires and resolves while the database is down

            bootstrap = stack_settings.stack.kafka_servers
            wait_for(lambda: len(receiver.keys()) >= 2, 60, "both alerts at the webhook receiver")
            kinds = [k.rsplit("|", 1)[1] for k in receiver.keys()]
            assert kinds == ["firing", "resolved"] and all(k.startswith(f"{rule}|AAPL|") for k in receiver.keys())
            on_kafka = read_topic(bootstrap, env.topics["alerts"], 2, timeout_s=30)
            assert [json.loads(r.value)["notification_id"] for r in on_kafka] == receiver.keys()
            assert worker.sample('sentimon_alert_errors_total{stage="history"') > 0  # the database really was down

            restart(own, "database")
            history = History(own.stack.database)

            def recorded() -> list[dict]:
                return [r for r in history.list(limit=100) if r["rule"] == rule]

            wait_for(lambda: [r["delivered_at"] is not None for r in recorded()] == [True], 60,
                     "the history written after the database came back")  # fmt: skip
            (row,) = recorded()
            assert (row["entity"], row["state"], row["notifications"]) == ("AAPL", "resolved", 2)
            time.sleep(3)  # further retry rounds must resend nothing
            assert len(receiver.keys()) == 2
            assert len(read_topic(bootstrap, env.topics["alerts"], 3, timeout_s=5)) == 2
            assert client.keys(f"{unique}:alerts:claimed:*") == [] or all(
                client.llen(k) == 0 for k in client.keys(f"{unique}:alerts:claimed:*")
            )
            history.close()
        finally:
            env.stop_all()
            client.close()
            receiver.close()
