"""Alerts on the real services: Redis shared states (two evaluators, re-delivered batches), the real
WindowStore, PostgreSQL history and the Kafka alerts topic."""

from __future__ import annotations

import json
import threading
import time

import pytest
import redis
from kafka import KafkaConsumer

from sentimon.alerts.engine import AlertEngine
from sentimon.alerts.evaluate import Observation
from sentimon.alerts.history import History
from sentimon.alerts.schema import parse_ruleset
from sentimon.alerts.service import AlertService
from sentimon.alerts.sinks import KafkaPublisher, KafkaSink
from sentimon.alerts.store import RedisStates
from sentimon.streams.pipeline import ScoredEvent
from sentimon.streams.windows import WindowStore

from .fakes import MIN, T0
from .history_cases import episode

pytestmark = pytest.mark.integration

RULES = """
name: it
entities: {match: "[A-Z]{1,5}"}
rules:
  - name: neg
    kind: level
    metric: negative_share
    window: 5m
    min_volume: 10
    op: above
    threshold: 0.5
    clear: 0.3
    for: 2m
    severity: critical
"""


def consume(settings, topic: str, expect: int) -> list:
    consumer = KafkaConsumer(topic, bootstrap_servers=settings.stack.kafka_servers, auto_offset_reset="earliest",
                             consumer_timeout_ms=10_000, group_id=None)  # fmt: skip
    try:
        out = []
        for record in consumer:
            out.append(record)
            if len(out) >= expect:
                break
        return out
    finally:
        consumer.close()


def test_kafka_sink_writes_json_keyed_by_entity(stack_settings, make_topic, unique):
    topic = make_topic(unique)
    sink = KafkaSink(topic, KafkaPublisher(stack_settings))
    for _, payload in episode("AAPL", T0, 2):
        sink.send(payload)
    sink.close()
    records = consume(stack_settings, topic, 2)
    assert [r.key for r in records] == [b"AAPL", b"AAPL"]
    assert [json.loads(r.value)["kind"] for r in records] == ["firing", "resolved"]


def test_two_evaluators_on_redis_notify_once_for_redelivered_observations(stack_settings, unique):
    rs = parse_ruleset({"name": "it", "rules": [{"name": "neg", "kind": "level", "metric": "negative_share",
                        "window": "5m", "op": "above", "threshold": 0.5, "clear": 0.3, "for": "2m"}]})  # fmt: skip
    timeline = [
        Observation("AAPL", T0 + i * MIN, "breach" if 3 <= i < 20 else "clear", 0.7 if 3 <= i < 20 else 0.1, 0.2, 50)
        for i in range(30)
    ]
    sent: list[dict] = []
    lock = threading.Lock()

    def deliver(note, payload):
        with lock:
            sent.append(payload)

    def worker() -> None:
        client = redis.Redis.from_url(stack_settings.stack.redis)
        engine = AlertEngine([rs], RedisStates(client, unique), deliver)
        states = engine.states
        for i, obs in enumerate(timeline):
            # Each worker sees every observation twice (its own re-delivered batch) and races the other.
            for _ in range(2):
                note = states.apply(rs.rules[0], "it/neg", obs)
                if note:
                    deliver(note, {"kind": note.kind, "at": note.at_ms, "worker": threading.get_ident()})
            if i % 7 == 0:
                states.apply(rs.rules[0], "it/neg", timeline[max(i - 3, 0)])  # a stale one from a slow batch
        client.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [(p["kind"], (p["at"] - T0) // MIN) for p in sent] == [("firing", 5), ("resolved", 20)]


def test_a_lagging_worker_cannot_reopen_an_episode_that_ended(stack_settings, unique):
    """After an episode resolved (its state deleted: idle), another worker still evaluating older boundaries of
    the same entity gets no notification: the pair remembers up to when it was settled."""
    rs = parse_ruleset({"name": "it", "rules": [{"name": "neg", "kind": "level", "metric": "negative_share",
                        "window": "5m", "op": "above", "threshold": 0.5, "clear": 0.3, "for": "2m"}]})  # fmt: skip
    client = redis.Redis.from_url(stack_settings.stack.redis)
    states = RedisStates(client, unique)
    rule = rs.rules[0]

    def obs(minute: int, breach: bool) -> Observation:
        return Observation("AAPL", T0 + minute * MIN, "breach" if breach else "clear", 0.7 if breach else 0.1, 0.2, 50)

    notes = [states.apply(rule, "it/neg", obs(i, 3 <= i < 20)) for i in range(21)]
    assert [(n.kind, (n.at_ms - T0) // MIN) for n in notes if n] == [("firing", 5), ("resolved", 20)]
    assert client.get(states.key("it/neg", "AAPL")) is None  # resolved, cooldown 0: idle, no state kept
    assert [states.apply(rule, "it/neg", obs(i, True)) for i in range(16, 21)] == [None] * 5  # the lagging worker
    assert client.get(states.key("it/neg", "AAPL")) is None
    assert 0 < client.ttl(states.settled_key("it/neg", "AAPL")) <= 3600
    # A new breach after the settled time is a new episode.
    later = [states.apply(rule, "it/neg", obs(i, True)) for i in range(21, 25)]
    assert [(n.kind, (n.at_ms - T0) // MIN) for n in later if n] == [("firing", 23)]
    client.close()


def scored(i: int, entity: str, label: str, ts_ms: int, text: str = "") -> ScoredEvent:
    score = {"negative": -0.9, "neutral": 0.0, "positive": 0.8}[label]
    return ScoredEvent(
        message_id=f"{entity}-{i}", ts_ms=ts_ms, source="twitter" if i % 2 else "news", entities=(entity,),
        text=text or f"{entity} message {i}", label=label, score=score, probs={label: 1.0}, model="test",
        model_version="0", topic="t", partition=0, offset=i,
    )  # fmt: skip


def burst_batches(minutes: int = 30) -> list[list[ScoredEvent]]:
    """One batch per minute: background neutral chatter for AAPL and MSFT, an AAPL negative burst in 8..18."""
    batches = []
    for m in range(minutes):
        ts = T0 + m * MIN
        batch = [scored(m * 100 + j, e, "neutral", ts + j * 1000) for e in ("AAPL", "MSFT") for j in range(4)]
        if 8 <= m < 18:
            batch += [scored(m * 100 + 50 + j, "AAPL", "negative", ts + j * 1000 + 500,
                             f"AAPL recall lawsuit fraud probe {j}") for j in range(8)]  # fmt: skip
        batches.append(batch)
    return batches


def service(stack_settings, unique, tmp_path, history: History, topic: str) -> tuple[AlertService, WindowStore]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    settings = stack_settings.replace(alerts={"rules": [rules], "prefix": f"{unique}:alerts"}, topics={"alerts": topic})
    client = redis.Redis.from_url(stack_settings.stack.redis)
    store = WindowStore(client, prefix=unique, allowed_lateness_ms=3600_000)
    return AlertService.from_settings(settings, redis_client=client, history=history), store


def test_negative_burst_fires_once_for_the_ticker_and_never_for_the_control(stack_settings, make_topic, unique,
                                                                             tmp_path):  # fmt: skip
    topic = make_topic(unique)
    history = History(stack_settings.stack.database)
    svc, store = service(stack_settings, unique, tmp_path, history, topic)
    for batch in burst_batches():
        applied = [e for e, s in zip(batch, store.apply_detailed(batch).statuses, strict=True)]
        svc.on_batch(applied, store)
        svc.on_batch(applied, store)  # a re-delivered batch changes nothing
    svc.close()
    mine = [r for r in history.list(entity="AAPL") + history.list(entity="MSFT") if r["rule"] == "it/neg"]
    assert [(r["entity"], r["state"]) for r in mine] == [("AAPL", "resolved")]
    payload = mine[0]["payload"]
    assert payload["direction"] == "up" and payload["severity"] == "critical"
    assert "recall" in payload["top_terms"] and len(payload["examples"]) == stack_settings.alerts.examples
    assert set(payload["sources"]) == {"twitter", "news"}
    on_kafka = consume(stack_settings, topic, 2)
    assert [(r.key, json.loads(r.value)["kind"]) for r in on_kafka] == [(b"AAPL", "firing"), (b"AAPL", "resolved")]


def test_two_services_on_the_same_batches_deliver_each_notification_once(stack_settings, unique, tmp_path):
    history = History(f"sqlite:///{tmp_path / 'h.db'}")
    delivered: list[dict] = []
    lock = threading.Lock()

    class Collect:
        name = "collect"

        def send(self, payload):
            with lock:
                delivered.append(payload)

        def close(self, timeout_s=10.0):
            pass

    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    settings = stack_settings.replace(alerts={"rules": [rules], "prefix": f"{unique}:alerts"})
    batches = burst_batches()
    barrier = threading.Barrier(2)

    def worker() -> None:
        client = redis.Redis.from_url(stack_settings.stack.redis)
        store = WindowStore(client, prefix=unique, allowed_lateness_ms=3600_000)
        svc = AlertService.from_settings(settings, redis_client=client, history=history, sinks=[Collect()])
        for batch in batches:
            barrier.wait(30)
            store.apply(batch)  # both apply the same batch (re-delivery after a rebalance): counted once
            svc(batch, store)
        client.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert [(p["entity"], p["kind"]) for p in delivered] == [("AAPL", "firing"), ("AAPL", "resolved")]
    assert [(r["entity"], r["state"]) for r in history.list()] == [("AAPL", "resolved")]


def test_hook_failure_is_logged_and_counted_never_raised(stack_settings, unique, tmp_path, caplog):
    from prometheus_client import CollectorRegistry

    from sentimon.alerts.metrics import AlertMetrics

    class BrokenStore:
        def stats(self, *args):
            raise redis.ConnectionError("redis went away")

        def watermark(self):
            return None

    registry = CollectorRegistry()
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    settings = stack_settings.replace(alerts={"rules": [rules], "prefix": f"{unique}:alerts"})
    svc = AlertService.from_settings(settings, history=History(f"sqlite:///{tmp_path / 'h.db'}"), sinks=[],
                       metrics=AlertMetrics.create(registry))  # fmt: skip
    for batch in burst_batches(2):  # the second batch crosses a minute boundary: AAPL and MSFT are evaluated
        svc(batch, BrokenStore())  # must not raise
    svc.close()
    assert registry.get_sample_value("sentimon_alert_errors_total", {"stage": "evaluate"}) == 1
    assert "alert evaluation failed" in caplog.text


def test_silence_timer_fires_at_the_watermark_for_a_quiet_busy_entity(stack_settings, unique, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("name: sil\nrules:\n  - {name: quiet, kind: silence, window: 10m, baseline: 1h, min_rate: 5}\n")
    settings = stack_settings.replace(
        alerts={"rules": [rules], "prefix": f"{unique}:alerts", "silence_interval_s": 0.2}
    )
    client = redis.Redis.from_url(stack_settings.stack.redis)
    store = WindowStore(client, prefix=unique, allowed_lateness_ms=3 * 3600_000)
    delivered: list[dict] = []

    class Collect:
        name = "collect"

        def send(self, payload):
            delivered.append(payload)

        def close(self, timeout_s=10.0):
            pass

    svc = AlertService.from_settings(settings, redis_client=client, history=History(f"sqlite:///{tmp_path / 'h.db'}"),
                       sinks=[Collect()])  # fmt: skip
    busy = [scored(m, "BUSY", "neutral", T0 + m * MIN) for m in range(120)]  # one a minute for two hours
    other = [scored(m, "OTHER", "neutral", T0 + m * MIN) for m in range(150)]  # keeps event time moving
    store.apply(busy + other)
    svc(other[-1:], store)  # starts the timer; OTHER is not quiet, BUSY has been for 30 minutes at the watermark
    wait_deadline = time.monotonic() + 10
    while time.monotonic() < wait_deadline and not delivered:
        time.sleep(0.1)
    svc.close()
    client.close()
    assert [(p["entity"], p["kind"], p["rule"]) for p in delivered] == [("BUSY", "firing", "sil/quiet")]
    # The last boundary before the watermark (02:29:00), over complete buckets -- not the wall clock.
    assert delivered[0]["at"] == "2026-01-01T02:28:59.999Z"


def test_entities_that_went_quiet_are_evaluated_by_the_timer_up_to_the_watermark(stack_settings, unique, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.replace("for: 2m", "for: 0s"))
    settings = stack_settings.replace(alerts={"rules": [rules], "prefix": f"{unique}:alerts"})
    client = redis.Redis.from_url(stack_settings.stack.redis)
    store = WindowStore(client, prefix=unique)
    svc = AlertService.from_settings(
        settings, redis_client=client, history=History(f"sqlite:///{tmp_path / 'h.db'}"), sinks=[]
    )
    calm = [scored(i, "AAPL", "neutral", T0 + i) for i in range(20)]
    burst = [scored(100 + i, "AAPL", "negative", T0 + 5_000 + i) for i in range(40)]
    for batch in (calm, burst):
        store.apply(batch)
        assert svc.on_batch(batch, store) == []  # still inside the first minute: no boundary crossed yet
    assert svc.check_silence(store) == []  # the watermark has not passed the minute either
    # Another entity's event moves the watermark past the minute; AAPL itself stays quiet.
    other = [scored(500, "MSFT", "neutral", T0 + MIN + 1)]
    store.apply(other)
    assert svc.on_batch(other, store) == []
    fired = svc.check_silence(store)  # the timer catches AAPL up to the last boundary before the watermark
    svc.close()
    client.close()
    assert [(p["entity"], p["kind"], p["at"]) for p in fired] == [("AAPL", "firing", "2026-01-01T00:00:59.999Z")]


def test_notifications_of_a_worker_that_died_before_delivering_are_recovered_once(stack_settings, unique):
    rs = parse_ruleset({"name": "it", "rules": [{"name": "neg", "kind": "level", "metric": "negative_share",
                        "window": "5m", "op": "above", "threshold": 0.5}]})  # fmt: skip
    client = redis.Redis.from_url(stack_settings.stack.redis)
    dead = RedisStates(client, unique, lease_s=0.5, owner="dead")
    note = dead.apply(rs.rules[0], "it/neg", Observation("AAPL", T0, "breach", 0.8, 0.2, 30))
    assert note is not None and note.kind == "firing"  # committed, then the worker was killed: never delivered

    sent: list[tuple] = []
    alive_states = RedisStates(client, unique, lease_s=30, owner="alive")
    alive = AlertEngine([rs], alive_states, lambda n, p: sent.append((n.dedup_key, p["kind"])))
    assert alive.recover() == []  # the dead worker's lease has not run out yet: not ours to take
    time.sleep(0.6)
    delivered = alive.recover()
    assert [p["kind"] for p in delivered] == ["firing"] and sent == [(note.dedup_key, "firing")]
    assert alive.recover() == [] and len(sent) == 1  # delivered and acknowledged: once
    assert client.llen(f"{unique}:claimed:dead") == 0 and client.llen(f"{unique}:claimed:alive") == 0
    # The state itself moved on normally: the alert is firing, a later clear resolves it.
    later = alive_states.apply(rs.rules[0], "it/neg", Observation("AAPL", T0 + MIN, "clear", 0.1, 0.2, 30))
    assert later is not None and later.kind == "resolved"
    client.close()


def test_recovered_notification_of_a_removed_rule_is_dropped_with_a_warning(stack_settings, unique, caplog):
    old = parse_ruleset({"name": "old", "rules": [{"name": "x", "kind": "level", "metric": "mean_score",
                         "window": "5m", "op": "below", "threshold": -0.5}]})  # fmt: skip
    client = redis.Redis.from_url(stack_settings.stack.redis)
    RedisStates(client, unique, lease_s=0.2, owner="dead").apply(
        old.rules[0], "old/x", Observation("AAPL", T0, "breach", -0.8, 0.0, 30)
    )
    time.sleep(0.3)
    current = parse_ruleset({"name": "new", "rules": [{"name": "y", "kind": "level", "metric": "mean_score",
                             "window": "5m", "op": "below", "threshold": -0.5}]})  # fmt: skip
    sent: list = []
    engine = AlertEngine([current], RedisStates(client, unique, owner="alive"), lambda n, p: sent.append(p))
    assert engine.recover() == [] and sent == []
    assert "rule is no longer loaded; dropped" in caplog.text
    assert client.llen(f"{unique}:claimed:alive") == 0
    client.close()
