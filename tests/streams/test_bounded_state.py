"""Bounded state on the real Redis: the alert engine stores nothing for (entity, rule) pairs that never left
idle, the silence check reads only entities active within a silence baseline, and every Redis client made
through ``infra.redis_client.connect`` gives up on a black-holed server instead of blocking its thread."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import redis

from sentimon.alerts.engine import AlertEngine
from sentimon.alerts.schema import parse_ruleset
from sentimon.alerts.service import AlertService
from sentimon.alerts.store import RedisStates
from sentimon.core.parts import StackSettings
from sentimon.infra.redis_client import connect
from sentimon.streams.windows import WindowStore
from tests.alerts.fakes import HOUR, MIN, T0, Event

pytestmark = pytest.mark.integration

LEVEL = {"name": "neg", "kind": "level", "metric": "negative_share", "window": "10m", "min_volume": 5,
         "op": "above", "threshold": 0.5, "clear": 0.3, "for": "0s", "cooldown": "5m"}  # fmt: skip
SILENCE = {"name": "quiet", "kind": "silence", "window": "10m", "baseline": "1h", "min_rate": 5}


@pytest.fixture
def client(stack_settings):
    c = redis.Redis.from_url(stack_settings.stack.redis)
    yield c
    c.close()


def test_idle_pairs_leave_no_state_in_redis(client, unique):
    rs = parse_ruleset({"name": "b", "rules": [LEVEL]})
    store = WindowStore(client, prefix=unique, allowed_lateness_ms=HOUR)
    engine = AlertEngine([rs], RedisStates(client, f"{unique}:alerts"), lambda note, payload: None)
    calm = [Event(f"c{m}-{e}", T0 + m * MIN, (e,), "neutral", 0.0) for m in range(60) for e in ("CALM", "HOT")]
    hot = [Event(f"h{m}-{j}", T0 + m * MIN + 10, ("HOT",), "negative", -0.9) for m in range(20, 30) for j in range(9)]
    store.apply(calm + hot)
    phases = []
    for m in range(1, 61):
        engine.evaluate(store, ["CALM", "HOT"], T0 + m * MIN - 1)
        phases.append(engine.states.get("b/neg", "HOT").phase)
        keys = sorted(k.decode() for k in client.scan_iter(match=f"{unique}:alerts:state:*"))
        # CALM, evaluated every minute, never stores anything; HOT only while something is in flight.
        assert keys == ([f"{unique}:alerts:state:b/neg:HOT"] if phases[-1] != "inactive" else []), (m, phases[-1])
    assert "firing" in phases and "resolved" in phases
    assert phases[-1] == "inactive"  # resolved, cooldown over: the key was deleted


def test_silence_reads_only_entities_active_within_its_baseline(client, unique):
    rs = parse_ruleset({"name": "s", "rules": [SILENCE]})
    store = WindowStore(client, prefix=unique, allowed_lateness_ms=24 * HOUR)
    # 500 entities seen once a day ago, one busy entity that went quiet 20 minutes ago.
    old = [Event(f"o{i}", T0, (f"OLD{i}",), "neutral", 0.0) for i in range(500)]
    busy = [Event(f"b{m}", T0 + 23 * HOUR + m * MIN, ("BUSY",), "neutral", 0.0) for m in range(40)]
    store.apply(old + busy)
    now = T0 + 24 * HOUR
    reads: list[str] = []

    class Counting:
        def stats(self, entity, window_ms, end_ms):
            reads.append(entity)
            return store.stats(entity, window_ms, end_ms)

        def entities(self, since_ms=None):
            return store.entities(since_ms)

    sent: list[dict] = []
    engine = AlertEngine([rs], RedisStates(client, f"{unique}:alerts"), lambda note, payload: sent.append(payload))
    engine.check_silence(Counting(), now)  # type: ignore[arg-type]
    assert set(reads) == {"BUSY"}
    assert [(p["entity"], p["kind"]) for p in sent] == [("BUSY", "firing")]


@pytest.fixture
def black_hole():
    """A TCP server that accepts connections and never answers (a partitioned or frozen Redis)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    server.close()


def test_redis_clients_time_out_on_a_black_holed_server(black_hole, tmp_path):
    stack = StackSettings(redis_url=f"redis://127.0.0.1:{black_hole}/0", redis_timeout_s=0.5, state_dir=tmp_path)
    client = connect(stack)
    started = time.monotonic()
    with pytest.raises(redis.TimeoutError):
        client.ping()
    assert time.monotonic() - started < 3
    client.close()


def test_the_alert_service_connects_with_the_stack_timeouts(stack_settings, unique, tmp_path):
    from sentimon.alerts.history import History

    settings = stack_settings.replace(stack={"redis_timeout_s": 1.5, "redis_connect_timeout_s": 0.7},
                                      alerts={"prefix": f"{unique}:alerts"})  # fmt: skip
    svc = AlertService.from_settings(settings, history=History(f"sqlite:///{tmp_path / 'h.db'}"), sinks=[])
    kwargs = svc.redis.connection_pool.connection_kwargs
    svc.close()
    svc.redis.close()
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (1.5, 0.7)
