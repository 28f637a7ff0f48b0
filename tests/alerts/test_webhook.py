"""Webhook sink against a real HTTP server on 127.0.0.1: delivery, retries after 500s, timeouts, give-up."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry

from sentimon.alerts.metrics import AlertMetrics
from sentimon.alerts.sinks import WebhookSink, alertmanager_alerts

from .fakes import T0
from .history_cases import episode
from .receiver import Receiver


@pytest.fixture
def server(request):
    s = Receiver(script=getattr(request, "param", []))
    yield s
    s.close()


def payloads():
    return [p for _, p in episode("AAPL", T0, 2)]  # firing, resolved


def sink(url, metrics=None, **kw):
    kw = {"timeout_s": 0.5, "attempts": 4, "backoff_s": 0.05, "backoff_max_s": 0.2, **kw}
    return WebhookSink(url, metrics=metrics, **kw)


def test_delivers_json_payloads_in_order(server):
    registry = CollectorRegistry()
    s = sink(server.url, AlertMetrics.create(registry))
    for p in payloads():
        s.send(p)
    assert s.flush(10)
    s.close()
    assert [b["kind"] for b in server.bodies] == ["firing", "resolved"]
    assert server.bodies[0]["entity"] == "AAPL" and server.bodies[0]["direction"] == "up"
    assert registry.get_sample_value("sentimon_alert_deliveries_total", {"sink": "webhook", "outcome": "ok"}) == 2


@pytest.mark.parametrize("server", [[500, 503, 429]], indirect=True)
def test_retries_after_server_errors(server):
    s = sink(server.url)
    s.send(payloads()[0])
    assert s.flush(10)
    s.close()
    assert server.attempts == 4 and len(server.bodies) == 1 and s.delivered == 1 and s.failed == 0


@pytest.mark.parametrize("server", [[("sleep", 1.0)]], indirect=True)
def test_timeout_is_retried(server):
    s = sink(server.url)
    s.send(payloads()[0])
    assert s.flush(10)
    s.close()
    assert server.attempts == 2 and s.delivered == 1  # the slow first answer timed out after 0.5 s


@pytest.mark.parametrize("server", [[500] * 10], indirect=True)
def test_gives_up_after_the_attempts_and_counts_it(server, caplog):
    registry = CollectorRegistry()
    s = sink(server.url, AlertMetrics.create(registry), attempts=3)
    s.send(payloads()[0])
    assert s.flush(10)
    s.close()
    assert server.attempts == 3 and s.failed == 1 and server.bodies == []
    assert registry.get_sample_value("sentimon_alert_deliveries_total", {"sink": "webhook", "outcome": "failed"}) == 1
    assert "gave up: HTTP 500" in caplog.text


@pytest.mark.parametrize("server", [[400]], indirect=True)
def test_client_errors_are_not_retried(server):
    s = sink(server.url)
    s.send(payloads()[0])
    assert s.flush(10)
    s.close()
    assert server.attempts == 1 and s.failed == 1


def test_unreachable_endpoint_is_retried_then_given_up():
    s = sink("http://127.0.0.1:9/hook", attempts=2)
    s.send(payloads()[0])
    assert s.flush(10)
    s.close()
    assert s.failed == 1


@pytest.mark.parametrize("server", [[("sleep", 0.4)] * 5], indirect=True)
def test_send_never_blocks_and_a_full_queue_drops(server):
    s = sink(server.url, queue_size=2, timeout_s=5)
    started = time.monotonic()
    for p in payloads() * 3:
        s.send(p)
    assert time.monotonic() - started < 0.1  # the server takes 0.4 s per post
    assert s.dropped >= 3
    assert s.flush(10)
    s.close()
    assert s.delivered + s.dropped == 6


@pytest.mark.parametrize("server", [[]], indirect=True)
def test_alertmanager_format(server):
    s = sink(server.url, fmt="alertmanager")
    firing, resolved = payloads()
    s.send(firing)
    s.send(resolved)
    assert s.flush(10)
    s.close()
    (fire,), (res,) = server.bodies
    assert fire["labels"] == {"alertname": "neg", "rule": "h/neg", "ruleset": "h", "entity": "AAPL",
                              "severity": "warning", "source": "sentimon"}  # fmt: skip
    assert fire["startsAt"] == "2026-01-01T00:00:00.000Z" and "endsAt" not in fire
    assert res["endsAt"] == "2026-01-01T00:02:00.000Z"
    assert all(isinstance(v, str) for v in fire["annotations"].values())
    assert alertmanager_alerts(firing) == server.bodies[0]
