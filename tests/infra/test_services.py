"""Round trips against the real Kafka, Redis and PostgreSQL that the project's launcher started."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import uuid

import pytest

from sentimon.infra import Stack, ensure_topics, pipeline_topics

pytestmark = pytest.mark.integration


def _consume_all(topic: str, bootstrap: str, expected: int, group: str | None = None, **kw) -> list:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=15000,
        **kw,
    )
    out = []
    try:
        for record in consumer:
            out.append(record)
            if len(out) >= expected:
                break
        if group:
            consumer.commit()
    finally:
        consumer.close()
    return out


def test_status_reports_every_service_up(stack_settings) -> None:
    statuses = Stack(stack_settings).status()
    assert {name: s.up for name, s in statuses.items()} == {"kafka": True, "redis": True, "database": True}


def test_up_is_idempotent(stack_settings) -> None:
    events: list[tuple[str, str]] = []
    Stack(stack_settings).up(lambda name, what: events.append((name, what)))
    launched = [name for name, what in events if what.startswith("started")]
    assert launched == []
    # One line per service that says it was already running; no "starting" first.
    assert [what.split(" at ")[0] for _, what in events] == ["already running"] * 3


def test_cli_status_json(stack_settings) -> None:
    env = {
        "SENTIMON_STATE_DIR": str(stack_settings.stack.state_dir),
        "SENTIMON_KAFKA_PORT": str(stack_settings.stack.kafka_port),
        "SENTIMON_REDIS_PORT": str(stack_settings.stack.redis_port),
        "SENTIMON_POSTGRES_PORT": str(stack_settings.stack.postgres_port),
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-m", "sentimon", "status", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["kafka"] == {**status["kafka"], "bootstrap": stack_settings.stack.kafka_servers, "up": True}
    assert status["redis"]["url"] == stack_settings.stack.redis and status["redis"]["up"] is True
    assert status["database"]["url"] == stack_settings.stack.database and status["database"]["up"] is True


def test_kafka_python_round_trip_1000(stack_settings, unique, make_topic) -> None:
    from kafka import KafkaProducer

    topic = make_topic(unique, partitions=3)
    producer = KafkaProducer(bootstrap_servers=stack_settings.stack.kafka_servers, acks="all")
    for i in range(1000):
        producer.send(topic, key=str(i % 7).encode(), value=json.dumps({"i": i}).encode())
    producer.flush()
    producer.close()
    records = _consume_all(topic, stack_settings.stack.kafka_servers, 1000)
    assert sorted(json.loads(r.value)["i"] for r in records) == list(range(1000))


def test_aiokafka_round_trip(stack_settings, unique, make_topic) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic = make_topic(unique, partitions=2)

    async def run() -> list[bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=stack_settings.stack.kafka_servers)
        await producer.start()
        try:
            for i in range(200):
                await producer.send(topic, f"m{i}".encode())
            await producer.flush()
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=stack_settings.stack.kafka_servers, auto_offset_reset="earliest"
        )
        await consumer.start()
        got: list[bytes] = []
        try:
            while len(got) < 200:
                batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 20)
                for records in batch.values():
                    got.extend(r.value for r in records)
        finally:
            await consumer.stop()
        return got

    got = asyncio.run(run())
    assert sorted(got) == sorted(f"m{i}".encode() for i in range(200))


def test_consumer_group_resumes_from_committed_offset(stack_settings, unique, make_topic) -> None:
    from kafka import KafkaProducer

    topic = make_topic(unique)
    group = f"{unique}-g"
    producer = KafkaProducer(bootstrap_servers=stack_settings.stack.kafka_servers)
    for i in range(50):
        producer.send(topic, str(i).encode())
    producer.flush()
    first = _consume_all(topic, stack_settings.stack.kafka_servers, 30, group=group, max_poll_records=30)
    assert [int(r.value) for r in first] == list(range(30))
    for i in range(50, 60):
        producer.send(topic, str(i).encode())
    producer.flush()
    producer.close()
    # A new consumer in the same group (a "restarted" worker) starts after the committed offset.
    second = _consume_all(topic, stack_settings.stack.kafka_servers, 30, group=group)
    assert [int(r.value) for r in second] == list(range(30, 60))


def test_two_consumers_in_a_group_split_partitions(stack_settings, unique, make_topic) -> None:
    from kafka import KafkaConsumer

    topic = make_topic(unique, partitions=4)
    group = f"{unique}-g"

    def consumer() -> KafkaConsumer:
        return KafkaConsumer(
            topic, bootstrap_servers=stack_settings.stack.kafka_servers, group_id=group, session_timeout_ms=10000
        )

    a, b = consumer(), consumer()
    stop = threading.Event()

    def keep_polling(c: KafkaConsumer) -> None:
        # Each member polls in its own thread: a join blocks until every member has joined, so one thread
        # polling both in turn can hold the second member out of the rebalance.
        while not stop.is_set():
            c.poll(timeout_ms=200)

    threads = [threading.Thread(target=keep_polling, args=(c,), daemon=True) for c in (a, b)]
    for t in threads:
        t.start()
    try:
        assignments: dict[str, set[int]] = {}
        deadline = time.monotonic() + 60  # a rebalance takes longer on a loaded host
        while time.monotonic() < deadline:
            assignments = {"a": {p.partition for p in a.assignment()}, "b": {p.partition for p in b.assignment()}}
            if assignments["a"] and assignments["b"] and len(assignments["a"] | assignments["b"]) == 4:
                break
            time.sleep(0.2)
        assert assignments["a"] and assignments["b"]
        assert assignments["a"].isdisjoint(assignments["b"])
        assert assignments["a"] | assignments["b"] == {0, 1, 2, 3}
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
        a.close()
        b.close()


def test_ensure_topics_is_idempotent_and_grows_partitions(stack_settings, unique) -> None:
    from dataclasses import replace

    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    specs = [replace(spec, name=f"{unique}.{spec.name}") for spec in pipeline_topics(stack_settings)]
    first = ensure_topics(stack_settings, specs)
    assert set(first.values()) == {"created"}
    again = ensure_topics(stack_settings, specs)
    assert set(again.values()) == {"exists"}
    grown = replace(specs[0], partitions=specs[0].partitions + 2, retention_ms=123456)
    result = ensure_topics(stack_settings, [grown])
    assert "partitions" in result[grown.name]
    admin = KafkaAdminClient(bootstrap_servers=stack_settings.stack.kafka_servers)
    try:
        described = admin.describe_topics([grown.name])[0]
        assert len(described["partitions"]) == grown.partitions
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, grown.name)])
        text = str(configs)
        assert "123456" in text
    finally:
        admin.close()


def test_redis_round_trip(stack_settings, unique) -> None:
    import redis

    client = redis.Redis.from_url(stack_settings.stack.redis)
    client.hset(f"{unique}:h", mapping={"a": 1, "b": 2})
    assert client.hgetall(f"{unique}:h") == {b"a": b"1", b"b": b"2"}
    assert client.config_get("appendonly")["appendonly"] == "yes"
    client.close()


def test_postgres_round_trip(stack_settings, unique) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(stack_settings.stack.database)
    table = unique.replace("-", "_")
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {table} (id serial primary key, body jsonb)"))
        conn.execute(text(f"INSERT INTO {table} (body) VALUES (:b)"), {"b": json.dumps({"k": str(uuid.uuid4())})})
    with engine.connect() as conn:
        assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 1
        assert conn.execute(text("SHOW listen_addresses")).scalar() == "127.0.0.1"
    engine.dispose()
