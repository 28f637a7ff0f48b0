"""The console's HTTP surface without services: routes, the access token, the entity /metrics cap, and the
server's start-up errors. (The pages against real Redis/PostgreSQL/Kafka: test_browser.py.)"""

from __future__ import annotations

import socket
import warnings

import pytest

from sentimon.console import ConsoleError, serve_in_background
from sentimon.console.app import create_app
from sentimon.console.server import is_loopback, resolve_token, url_of
from sentimon.core.settings import load_settings

with warnings.catch_warnings():  # Starlette's TestClient runs on httpx (ours too); its nudge to httpx2 is not ours
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


class Sources:
    """Canned answers in the shape ``console.sources.Sources`` returns (its reads are tested for real)."""

    def __init__(self, n: int = 3):
        row = {"mentions": 5, "mean_score": -0.5, "negative": 0.6, "positive": 0.2}
        self.rows = [{"entity": f"E{i}", "h1": row, "h24": row, "spark": {}, "firing": []} for i in range(n)]
        self.seen: dict = {}

    def board(self):
        return {"entities": self.rows}

    def alerts(self, entity=None):
        return [{"state": "firing", "severity": "critical", "rule_kind": "level"},
                {"state": "resolved", "severity": "warning", "rule_kind": "spike"}], None  # fmt: skip

    def entity(self, entity, range_name, at_ms):
        self.seen = {"entity": entity, "range": range_name, "at_ms": at_ms}
        return {"entity": entity}

    def alert_list(self, **filters):
        self.seen = filters
        return {"alerts": []}

    def status(self):
        return {"worker": None}


def client(token: str | None = None, sources: Sources | None = None) -> TestClient:
    return TestClient(create_app(load_settings(), sources=sources or Sources(), token=token))


def test_pages_and_api_routes() -> None:
    src = Sources()
    c = client(sources=src)
    for page in ("/", "/alerts", "/status", "/entity/acme%20air"):
        resp = c.get(page)
        assert resp.status_code == 200 and "console.js" in resp.text
    assert c.get("/api/board").json()["entities"][0]["entity"] == "E0"
    c.get("/api/entity/acme%20air?range=6h&at=2026-01-01T00:00:00Z")
    assert src.seen == {"entity": "acme air", "range": "6h", "at_ms": 1_767_225_600_000}
    c.get("/api/alerts?state=firing&q=tsla")
    assert src.seen == {"state": "firing", "severity": None, "entity": None, "kind": None, "text": "tsla"}
    assert c.get("/static/vendor/uplot/uPlot.iife.min.js").status_code == 200
    assert c.get("/static/vendor/uplot/LICENSE").status_code == 200


def test_metrics_export_the_board_entities_and_firing_counts() -> None:
    text = client().get("/metrics").text
    assert 'sentimon_entity_mentions{entity="E2",window="1h"} 5.0' in text
    assert 'sentimon_entity_negative_ratio{entity="E0",window="24h"} 0.6' in text
    assert 'sentimon_alerts_firing{rule_kind="level",severity="critical"} 1.0' in text
    assert "spike" not in text  # resolved episodes are not firing


def test_token_is_required_once_then_a_cookie_carries_it() -> None:
    c = client(token="s3cret")
    assert c.get("/api/board").status_code == 401
    assert c.get("/?token=wrong").status_code == 401
    resp = c.get("/entity/X?token=s3cret&range=1h", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == "/entity/X?range=1h"  # token out of the URL
    assert c.get("/api/board").status_code == 200  # the cookie set above
    other = client(token="s3cret")
    assert other.get("/api/board", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_off_loopback_a_token_is_always_required() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.5")
    assert resolve_token("127.0.0.1", None) is None
    generated = resolve_token("0.0.0.0", None)
    assert generated and len(generated) >= 20 and resolve_token("0.0.0.0", "mine") == "mine"
    assert url_of("0.0.0.0", 8088, "t") == "http://127.0.0.1:8088/?token=t"


def test_a_taken_port_fails_with_the_fix() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ConsoleError, match="console.port"):
            serve_in_background(load_settings(), "127.0.0.1", port)
