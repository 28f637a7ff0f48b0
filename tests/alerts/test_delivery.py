"""At-least-once alert delivery on the real services (Redis states, Kafka alerts topic, PostgreSQL history, a
real HTTP receiver): the claim is acknowledged only after every sink confirmed; a worker that dies mid-delivery
(``os._exit``: no atexit, no flush) leaves its notification to any other worker, which sends it only to the
sinks that missed it; receivers get the notification id and episode to dedupe by."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest
import redis

from sentimon.alerts.dispatch import Dispatcher
from sentimon.alerts.engine import AlertEngine
from sentimon.alerts.evaluate import Observation
from sentimon.alerts.history import History
from sentimon.alerts.schema import parse_ruleset
from sentimon.alerts.sinks import KafkaPublisher, KafkaSink, LogSink, WebhookSink, webhook_key
from sentimon.alerts.store import RedisStates

from .fakes import MIN, T0
from .receiver import Receiver
from .test_integration import consume

pytestmark = pytest.mark.integration

RULESET = {"name": "dl", "rules": [{"name": "neg", "kind": "level", "metric": "negative_share", "window": "5m",
                                    "op": "above", "threshold": 0.5, "clear": 0.3}]}  # fmt: skip


def sinks(settings, topic: str, url: str, attempts: int = 3) -> list:
    webhook = WebhookSink(url, timeout_s=2, attempts=attempts, backoff_s=0.05, backoff_max_s=0.1)
    return [LogSink(), KafkaSink(topic, KafkaPublisher(settings)), webhook]


def wait_until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.05)


def rows(history: History, rule: str) -> list[dict]:
    return [r for r in history.list(limit=1000) if r["rule"] == rule]


def test_every_sink_confirms_then_the_claim_is_acked_and_the_row_marked_delivered(stack_settings, make_topic, unique):
    rs = parse_ruleset({**RULESET, "name": "r" + unique[-8:]})
    rule_id = f"{rs.name}/neg"
    topic = make_topic(unique)
    receiver = Receiver()
    client = redis.Redis.from_url(stack_settings.stack.redis)
    history = History(stack_settings.stack.database)
    states = RedisStates(client, unique)
    dispatcher = Dispatcher(history, sinks(stack_settings, topic, receiver.url))
    engine = AlertEngine([rs], states, dispatcher)
    note = states.apply(rs.rules[0], rule_id, Observation("AAPL", T0, "breach", 0.8, 0.2, 30))
    assert note is not None
    assert engine.recover() == []  # claimed by this process and in flight: recovery leaves it alone
    states.release(note)  # as if its first delivery had failed before reaching any sink
    engine.recover()
    wait_until(lambda: client.llen(f"{unique}:claimed:{states.owner}") == 0, 10, "the claim to be acknowledged")
    headers, body = receiver.accepted[0]
    assert receiver.keys() == [note.dedup_key] and body["notification_id"] == note.dedup_key
    assert headers["X-Sentimon-Episode"] == f"{rule_id}|AAPL|{T0}" == body["episode"]
    records = consume(stack_settings, topic, 1)
    assert [json.loads(r.value)["notification_id"] for r in records] == [note.dedup_key]
    (row,) = rows(history, rule_id)
    assert row["delivered_at"] is not None
    assert history.deliveries(note.dedup_key) == {"log", f"kafka:{topic}", webhook_key(receiver.url)}
    assert engine.recover() == []  # nothing left: delivered once
    dispatcher.close()
    receiver.close()
    client.close()


DIES = """
import os, sys, time
import redis
from sentimon.alerts.dispatch import Dispatcher
from sentimon.alerts.evaluate import Observation
from sentimon.alerts.history import History
from sentimon.alerts.payload import build_payload
from sentimon.alerts.schema import parse_ruleset
from sentimon.alerts.sinks import KafkaPublisher, KafkaSink, LogSink, WebhookSink
from sentimon.alerts.store import RedisStates
from sentimon.core.settings import load_settings

redis_url, db, bootstrap, topic, url, prefix, ruleset, t0 = sys.argv[1:]
rs = parse_ruleset(__import__("json").loads(ruleset))
states = RedisStates(redis.Redis.from_url(redis_url), prefix, lease_s=1, owner="dead")
webhook = WebhookSink(url, timeout_s=2, attempts=1)
publish = KafkaPublisher(load_settings(stack={"kafka_bootstrap": bootstrap}))
dispatcher = Dispatcher(History(db), [LogSink(), KafkaSink(topic, publish), webhook])
note = states.apply(rs.rules[0], rs.name + "/neg", Observation("AAPL", int(t0), "breach", 0.8, 0.2, 30))
ok = dispatcher.submit(note, build_payload(rs.rules[0], note), ledger=states).result(30)
print("delivered" if ok else "undelivered", flush=True)
os._exit(0)  # dies with the claim unacknowledged: no atexit, no flush, no release
"""


def test_a_worker_that_dies_mid_delivery_is_redelivered_only_to_the_sinks_that_missed_it(
    stack_settings, make_topic, unique
):
    ruleset = {**RULESET, "name": "r" + unique[-8:]}
    rs = parse_ruleset(ruleset)
    rule_id = f"{rs.name}/neg"
    topic = make_topic(unique)
    receiver = Receiver(fail_first=1)  # down while the first worker delivers
    s = stack_settings.stack
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DIES), s.redis, s.database, s.kafka_servers, topic, receiver.url,
         unique, json.dumps(ruleset), str(T0)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "undelivered", done.stderr[-3000:]
    history = History(s.database)
    (row,) = rows(history, rule_id)
    assert row["delivered_at"] is None  # recorded, but the webhook never confirmed: not "done"
    client = redis.Redis.from_url(s.redis)
    assert client.llen(f"{unique}:claimed:dead") == 1

    states = RedisStates(client, unique, owner="alive")
    dispatcher = Dispatcher(history, sinks(stack_settings, topic, receiver.url))
    engine = AlertEngine([rs], states, dispatcher)
    time.sleep(1.1)  # the dead worker's lease runs out
    assert [p["notification_id"] for p in engine.recover()] != []
    wait_until(lambda: client.llen(f"{unique}:claimed:alive") == 0, 15, "the recovered claim to be acknowledged")
    note_id = f"{rule_id}|AAPL|{T0}|firing"
    assert receiver.keys() == [note_id] and receiver.refused == 1
    records = consume(stack_settings, topic, 2)  # the Kafka sink confirmed in the first life: not sent again
    assert [json.loads(r.value)["notification_id"] for r in records] == [note_id]
    (row,) = rows(history, rule_id)
    assert row["delivered_at"] is not None and row["notifications"] == 1
    assert engine.recover() == [] and client.llen(f"{unique}:claimed:dead") == 0
    dispatcher.close()
    receiver.close()
    client.close()


def test_a_receiver_down_for_a_while_gets_the_alert_once_it_is_back(stack_settings, make_topic, unique):
    rs = parse_ruleset({**RULESET, "name": "r" + unique[-8:]})
    topic = make_topic(unique)
    receiver = Receiver(fail_first=4)  # attempts=2 per round: two rounds fail, the third gets through
    client = redis.Redis.from_url(stack_settings.stack.redis)
    states = RedisStates(client, unique)
    dispatcher = Dispatcher(None, sinks(stack_settings, topic, receiver.url, attempts=2))
    engine = AlertEngine([rs], states, dispatcher)
    evaluated = [Observation("AAPL", T0, "breach", 0.8, 0.2, 30), Observation("AAPL", T0 + MIN, "clear", 0.1, 0.2, 30)]
    for obs in evaluated:
        note = states.apply(rs.rules[0], f"{rs.name}/neg", obs)
        assert note is not None
        engine._send(rs.rules[0], note)  # what evaluate() does for a transition
    for _ in range(10):
        if client.llen(f"{unique}:claimed:{states.owner}") == 0:
            break
        time.sleep(0.3)  # the timer's retry rounds
        engine.recover()
    assert client.llen(f"{unique}:claimed:{states.owner}") == 0
    assert sorted(k.rsplit("|", 1)[1] for k in receiver.keys()) == ["firing", "resolved"]
    assert len(consume(stack_settings, topic, 3)) == 2  # Kafka confirmed at once: never re-sent
    dispatcher.close()
    receiver.close()
    client.close()


def test_closing_flushes_queued_webhooks_and_acknowledges_their_claims(stack_settings, unique):
    rs = parse_ruleset({**RULESET, "name": "r" + unique[-8:]})
    receiver = Receiver(fail_first=2)  # the first POSTs fail: still being retried when the worker stops
    client = redis.Redis.from_url(stack_settings.stack.redis)
    states = RedisStates(client, unique)
    dispatcher = Dispatcher(None, [WebhookSink(receiver.url, timeout_s=2, attempts=5, backoff_s=0.2)])
    engine = AlertEngine([rs], states, dispatcher)
    for i, obs in enumerate([Observation("AAPL", T0, "breach", 0.8, 0.2, 30),
                             Observation("MSFT", T0, "breach", 0.8, 0.2, 30)]):  # fmt: skip
        note = states.apply(rs.rules[0], f"{rs.name}/neg", obs)
        assert note is not None, i
        engine._send(rs.rules[0], note)
    assert client.llen(f"{unique}:claimed:{states.owner}") == 2  # queued, not confirmed yet
    dispatcher.close(timeout_s=20)  # what the worker does on SIGTERM
    assert sorted(k.split("|")[1] for k in receiver.keys()) == ["AAPL", "MSFT"]
    assert client.llen(f"{unique}:claimed:{states.owner}") == 0
    receiver.close()
    client.close()
