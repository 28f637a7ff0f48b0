"""Dispatcher: every sink that has not confirmed a notification, then the history; the outcome says whether it
must be retried; failures are logged and counted."""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry

from sentimon.alerts.dispatch import Dispatcher
from sentimon.alerts.history import History
from sentimon.alerts.metrics import AlertMetrics
from sentimon.alerts.sinks import KafkaSink
from sentimon.alerts.store import MemoryStates

from .fakes import T0
from .history_cases import episode


class Collect:
    def __init__(self, name="collect", fail=False):
        self.name = self.key = name
        self.fail = fail
        self.got: list[dict] = []
        self.closed = False

    def send(self, payload):
        if self.fail:
            raise RuntimeError("sink down")
        self.got.append(payload)

    def close(self, timeout_s=10.0):
        self.closed = True


def test_a_notification_confirmed_by_every_sink_is_not_sent_again_by_another_worker(tmp_path):
    history = History(f"sqlite:///{tmp_path / 'h.db'}")
    sink = Collect()
    shared = MemoryStates()  # the ledger every worker shares (Redis in production)
    first, second = Dispatcher(history, [sink]), Dispatcher(History(history.url), [sink])
    for note, payload in episode("AAPL", T0, 2):
        assert first.submit(note, payload, shared).result() is True
        assert second.submit(note, payload, shared).result() is True  # a recovery: nothing left to send
    assert [p["kind"] for p in sink.got] == ["firing", "resolved"]
    row = history.list()[0]
    assert row["state"] == "resolved" and row["delivered_at"] is not None
    assert history.deliveries(episode("AAPL", T0, 2)[0][0].dedup_key) == {"collect"}
    first.close()
    second.close()
    assert sink.closed


def test_a_down_database_does_not_silence_alerts_and_asks_for_a_retry(caplog):
    registry = CollectorRegistry()
    metrics = AlertMetrics.create(registry)
    sink = Collect()
    dispatch = Dispatcher(History("postgresql://x@127.0.0.1:9/db", connect_timeout_s=1), [sink], metrics)
    note, payload = episode("AAPL", T0, 2)[0]
    ledger = MemoryStates()
    assert dispatch.submit(note, payload, ledger).result() is False  # the claim stays: history to be written
    assert sink.got == [payload]
    assert registry.get_sample_value("sentimon_alert_errors_total", {"stage": "history"}) == 1
    assert "not recorded in history yet" in caplog.text
    assert dispatch.submit(note, payload, ledger).result() is False  # within history_retry_s: db not tried
    assert sink.got == [payload]  # the sink confirmed already: not sent twice
    assert registry.get_sample_value("sentimon_alert_errors_total", {"stage": "history"}) == 1


def test_a_failing_sink_does_not_stop_the_others_and_only_it_is_retried(caplog):
    registry = CollectorRegistry()
    broken, good = Collect("broken", fail=True), Collect()
    dispatch = Dispatcher(None, [broken, good], AlertMetrics.create(registry))
    note, payload = episode("AAPL", T0, 2)[0]
    ledger = MemoryStates()
    assert dispatch.submit(note, payload, ledger).result() is False
    assert good.got == [payload]
    assert registry.get_sample_value("sentimon_alert_deliveries_total", {"sink": "broken", "outcome": "failed"}) == 1
    assert "sink broken failed" in caplog.text
    broken.fail = False
    assert dispatch.submit(note, payload, ledger).result() is True
    assert good.got == [payload] and broken.got == [payload]
    assert registry.get_sample_value("sentimon_alert_notifications_delivered_total") == 1


def test_kafka_sink_publishes_keyed_by_entity_and_a_refused_record_counts_as_failed():
    registry = CollectorRegistry()
    published: list[tuple[str, bytes, dict]] = []

    def publish(topic: str, key: bytes, value: bytes) -> None:
        if len(published) == 1:
            raise RuntimeError("NotEnoughReplicas")  # what the worker's producer raises when the broker refuses
        published.append((topic, key, json.loads(value)))

    metrics = AlertMetrics.create(registry)
    dispatch = Dispatcher(None, [KafkaSink("alerts", publish, metrics)], metrics)
    for note, payload in episode("AAPL", T0, 2):
        dispatch(note, payload)
    assert [(topic, key, p["kind"]) for topic, key, p in published] == [("alerts", b"AAPL", "firing")]
    for outcome in ("ok", "failed"):
        assert registry.get_sample_value("sentimon_alert_deliveries_total", {"sink": "kafka", "outcome": outcome}) == 1
