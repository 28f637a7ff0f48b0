"""A console over a namespace with data: windows written through the streams API into the real Redis, alert
episodes recorded in the real PostgreSQL history, scored records on a real Kafka topic (example posts)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sentimon.core.host import free_port

MIN = 60_000
NEG_TEXT = "terrible recall, the brakes failed again"
POS_TEXT = "great quarter, record deliveries"


@dataclass(frozen=True)
class Event:
    message_id: str
    ts_ms: int
    entities: tuple[str, ...]
    label: str
    score: float


@dataclass(frozen=True)
class Seeded:
    settings: object
    entities: tuple[str, str, str]  # (alerted, calm, third)
    end_ms: int
    alert_started_ms: int


def artefacts_dir() -> Path:
    """Screenshots land here (CI keeps the folder): SENTIMON_TEST_ARTEFACTS or /tmp/sentimon-artefacts."""
    path = Path(os.environ.get("SENTIMON_TEST_ARTEFACTS", "/tmp/sentimon-artefacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _events(entity: str, end_ms: int, minutes: int, per_min: int, neg_from: int) -> list[Event]:
    """``per_min`` mentions a minute over ``minutes``; from minute ``neg_from`` on, mostly negative."""
    out = []
    start = end_ms - minutes * MIN
    for m in range(minutes):
        for i in range(per_min + (3 * per_min if m >= neg_from else 0)):
            negative = m >= neg_from and i % 5 != 0
            label = "negative" if negative else ("positive" if i % 3 else "neutral")
            score = {"negative": -0.8, "neutral": 0.0, "positive": 0.7}[label]
            out.append(Event(f"{entity}-{m}-{i}", start + m * MIN + i * 100, (entity,), label, score))
    return out


@pytest.fixture
def seeded(stack_settings, unique, make_topic) -> Iterator[Seeded]:
    import redis
    from kafka import KafkaProducer

    from sentimon.alerts.evaluate import Observation
    from sentimon.alerts.history import History
    from sentimon.alerts.state import Notification
    from sentimon.streams.windows import WindowStore

    settings = stack_settings.replace(
        windows={"prefix": unique},
        topics={"scored": make_topic(f"{unique}.scored", partitions=2)},
        metrics={"port": free_port()},  # no worker there: the status page must say so
        console={"refresh_s": 1.0, "examples_lookback": 1000},
    )
    tag = unique[-6:].upper()
    alerted, calm, third = f"TSLA{tag}", f"AAPL{tag}", f"acme air {tag.lower()}"
    end_ms = (int(time.time() * 1000) // MIN) * MIN
    client = redis.Redis.from_url(settings.stack.redis)
    store = WindowStore.from_settings(client, settings.windows)
    events = _events(alerted, end_ms, 180, 4, neg_from=150) + _events(calm, end_ms, 180, 6, neg_from=999)
    events += _events(third, end_ms, 120, 2, neg_from=999)
    events.sort(key=lambda e: e.ts_ms)  # in event-time order, as a worker applies them: none is late
    for i in range(0, len(events), 500):
        store.apply(events[i : i + 500])

    producer = KafkaProducer(bootstrap_servers=settings.stack.kafka_servers)
    for i, (entity, label, text, score) in enumerate([
        (alerted, "negative", NEG_TEXT, -0.9), (alerted, "positive", POS_TEXT, 0.8),
        (alerted, "neutral", "deliveries report due thursday", 0.0), (calm, "positive", "new phone looks great", 0.7),
    ]):  # fmt: skip
        record = {"id": f"s{i}", "ts": end_ms - MIN, "entities": [entity], "text": text, "label": label,
                  "score": score, "status": "applied", "source": "test"}  # fmt: skip
        producer.send(settings.topics.scored, json.dumps(record).encode())
    producer.flush()
    producer.close()

    started = end_ms - 30 * MIN
    obs = Observation(alerted, started, "breach", 0.62, 0.2, 240)  # type: ignore[arg-type]
    note = Notification("firing", "opinion/negative_share", alerted, "critical", started, started, started - 5 * MIN,
                        None, obs)  # fmt: skip
    payload = {
        "rule_kind": "level",
        "summary": f"{alerted}: negative share up, level value 0.62 (baseline 0.2)",
        "entity": alerted,
        "direction": "up",
        "top_terms": ["brakes", "recall"],
        "examples": [NEG_TEXT],
    }
    history = History(settings.stack.database)
    assert history.record(note, payload)
    history.close()
    try:
        yield Seeded(settings, (alerted, calm, third), end_ms, started)
    finally:
        keys = list(client.scan_iter(f"{unique}:*"))
        if keys:
            client.delete(*keys)
        client.close()
