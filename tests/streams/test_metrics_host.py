"""The worker's /metrics listens where ``metrics.host`` says (loopback by default; 0.0.0.0 in compose)."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from sentimon.core.host import free_port
from sentimon.core.parts import MetricsSettings
from sentimon.core.settings import load_settings
from sentimon.streams.errors import StreamsError
from sentimon.streams.metrics import StreamMetrics, serve_metrics


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def test_default_is_loopback() -> None:
    assert MetricsSettings().host == "127.0.0.1"


def test_metrics_host_is_the_address_served(monkeypatch: pytest.MonkeyPatch) -> None:
    # 127.0.0.2 is loopback too, but a server bound to 127.0.0.1 does not answer on it (and the reverse).
    monkeypatch.setenv("SENTIMON_METRICS_HOST", "127.0.0.2")
    settings = load_settings(metrics_port=free_port())
    registry = CollectorRegistry()
    StreamMetrics(registry)
    server = serve_metrics(registry, settings.metrics)
    try:
        port = settings.metrics.port
        assert _answers("127.0.0.2", port) and not _answers("127.0.0.1", port)
        body = urllib.request.urlopen(f"http://127.0.0.2:{port}/metrics", timeout=3).read().decode()
        assert "sentimon_" in body
    finally:
        server.shutdown()


def test_a_taken_port_names_the_address_and_settings() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StreamsError, match=rf"127\.0\.0\.1:{port} is unavailable.*SENTIMON_METRICS_HOST"):
            serve_metrics(CollectorRegistry(), MetricsSettings(port=port))
