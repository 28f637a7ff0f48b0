"""`sentimon produce | windows | top | worker` as a user runs them: real Kafka/Redis, errors as one line."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from sentimon.cli.common import window_option
from sentimon.core.errors import UserError
from sentimon.core.host import free_port
from sentimon.infra.kafka_clients import faust_broker
from sentimon.streams.app import load_hooks
from sentimon.streams.errors import StreamsError
from tests.streams.conftest import read_topic


def sentimon(*args: str, env: dict[str, str], stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sentimon", *args], env=env, input=stdin, capture_output=True, timeout=120
    )


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTIMON_")}
    env.update(extra)
    return env


@pytest.mark.parametrize(
    ("text", "ms"), [("90s", 90_000), ("5m", 300_000), ("1h", 3_600_000), ("1h30m", 5_400_000), ("7d", 604_800_000),
                     ("1.5h", 5_400_000), ("250ms", 250)],
)  # fmt: skip
def test_window_option(text, ms):
    assert window_option(text) == ms


@pytest.mark.parametrize("text", ["", "1", "h", "-5m", "0m", "5 minutes", "1y"])
def test_window_option_rejects(text):
    with pytest.raises(UserError, match="^--window .*not a duration"):
        window_option(text)


def test_bad_window_is_one_line_error():
    result = sentimon("windows", "AAPL", "--window", "soon", env=base_env())
    assert result.returncode == 2
    assert b"not a duration" in result.stderr and b"Traceback" not in result.stderr


def test_unreachable_redis_is_one_line_error():
    result = sentimon("top", env=base_env(SENTIMON_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"))
    assert result.returncode == 2
    assert b"unreachable" in result.stderr and b"sentimon up" in result.stderr
    assert b"Traceback" not in result.stderr


def test_load_hooks_errors_name_the_setting():
    with pytest.raises(StreamsError, match="package.module:factory"):
        load_hooks(["no_colon"], None)
    with pytest.raises(StreamsError, match=r"cannot be imported.*\(setting stream\.hooks\)"):
        load_hooks(["sentimon.streams.nope:factory"], None)
    with pytest.raises(StreamsError, match=r"cannot be imported.*\(setting stream\.hooks\)"):
        load_hooks(["sentimon.streams.app:missing"], None)
    assert load_hooks(["tests.streams.test_cli:_hook_factory"], "S")[0]("x", "y") == ("S", "x", "y")


def test_hooks_named_by_their_pre_namespace_module_still_load(caplog):
    # Any one-argument function serves as the factory: what is tested is where its module is found.
    assert load_hooks(["infra.kafka_clients:faust_broker"], "a:1") == ["kafka://a:1"]
    assert "now sentimon.infra.kafka_clients" in caplog.text


def _hook_factory(settings):
    return lambda events, store: (settings, events, store)


def _hook_factory_with_registry(settings, registry=None):
    return lambda events, store: registry


def _hook_factory_with_publish(settings, publish=None):
    return lambda events, store: publish


def test_hook_factories_taking_a_registry_or_publish_get_the_workers():
    assert load_hooks(["tests.streams.test_cli:_hook_factory_with_registry"], "S", "REG")[0]([], None) == "REG"
    assert load_hooks(["tests.streams.test_cli:_hook_factory_with_publish"], "S", publish=print)[0]([], None) is print


def test_faust_broker_url():
    assert faust_broker("a:1, b:2") == "kafka://a:1;kafka://b:2"


@pytest.mark.integration
def test_produce_stamps_ts_keeps_ts_and_passes_bad_lines_through(stack_settings, unique, make_topic, tmp_path):
    topic = make_topic(f"{unique}.raw", 1)
    src = tmp_path / "in.jsonl"
    lines = [json.dumps({"id": f"p{i}", "ts": "2024-01-02T03:04:05Z", "text": "hi"}) for i in range(20)]
    src.write_text("\n".join([*lines, "not json", "", '{"no": "id"}']) + "\n")
    env = base_env(SENTIMON_KAFKA_BOOTSTRAP=stack_settings.stack.kafka_servers)

    started_ms = int(time.time() * 1000)
    result = sentimon("produce", "--topic", topic, "--file", str(src), "--rate", "100", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().startswith(f"sent 22 messages to {topic}")
    assert b"1 not JSON objects" in result.stdout
    records = read_topic(stack_settings.stack.kafka_servers, topic, 22)
    assert len(records) == 22
    objs = [json.loads(r.value) for r in records[:20]]
    assert all(o["ts"] >= started_ms for o in objs)  # stamped now
    assert [r.key for r in records[:20]] == [f"p{i}".encode() for i in range(20)]
    assert records[20].value == b"not json"
    # --rate 100: 22 messages take at least ~0.2 s
    assert float(re.search(rb" in ([0-9.]+) s", result.stdout).group(1)) >= 0.2

    keep = make_topic(f"{unique}.keep", 1)
    result = sentimon("produce", "--topic", keep, "--file", str(src), "--keep-ts", env=env)
    assert result.returncode == 0, result.stderr
    kept = read_topic(stack_settings.stack.kafka_servers, keep, 22)
    assert json.loads(kept[0].value)["ts"] == "2024-01-02T03:04:05Z"
    assert kept[0].timestamp == 1_704_164_645_000  # the record timestamp is the event time


@pytest.mark.integration
def test_produce_from_stdin(stack_settings, unique, make_topic):
    topic = make_topic(f"{unique}.stdin", 1)
    env = base_env(SENTIMON_KAFKA_BOOTSTRAP=stack_settings.stack.kafka_servers)
    result = sentimon("produce", "--topic", topic, "--file", "-", env=env, stdin=b'{"id": "s1", "text": "hi"}\n')
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"sent 1 messages to {topic}".encode())
    assert json.loads(read_topic(stack_settings.stack.kafka_servers, topic, 1)[0].value)["id"] == "s1"


def test_produce_missing_file():
    result = sentimon("produce", "--file", "/nonexistent.jsonl", env=base_env())
    assert result.returncode == 2 and b"does not exist" in result.stderr


@pytest.mark.integration
def test_worker_refuses_to_start_without_topics(stack_settings, unique):
    env = base_env(
        SENTIMON_KAFKA_BOOTSTRAP=stack_settings.stack.kafka_servers,
        SENTIMON_REDIS_URL=stack_settings.stack.redis,
        SENTIMON_TOPIC_SOCIAL=f"{unique}.missing",
        SENTIMON_MODEL="vader",
        SENTIMON_INFERENCE__MARKET_MODEL="",
    )
    result = sentimon("worker", env=env)
    assert result.returncode == 2
    assert f"{unique}.missing".encode() in result.stderr and b"sentimon topics create" in result.stderr


@pytest.mark.integration
def test_worker_refuses_a_busy_metrics_port(stack_settings, unique, make_topic):
    topics = {k: make_topic(f"{unique}.{k}", 1) for k in ("social", "market", "scored", "dlq")}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        env = base_env(
            SENTIMON_KAFKA_BOOTSTRAP=stack_settings.stack.kafka_servers,
            SENTIMON_REDIS_URL=stack_settings.stack.redis,
            SENTIMON_MODEL="vader",
            SENTIMON_INFERENCE__MARKET_MODEL="",
            SENTIMON_METRICS_PORT=str(busy.getsockname()[1]),
            **{f"SENTIMON_TOPIC_{k.upper()}": v for k, v in topics.items()},
        )
        result = sentimon("worker", env=env)
    assert result.returncode == 2
    assert b"metrics port" in result.stderr and b"SENTIMON_METRICS_PORT" in result.stderr


@pytest.mark.integration
def test_worker_refuses_unreachable_redis(stack_settings, unique, make_topic):
    topics = {k: make_topic(f"{unique}.{k}", 1) for k in ("social", "market", "scored", "dlq")}
    env = base_env(
        SENTIMON_KAFKA_BOOTSTRAP=stack_settings.stack.kafka_servers,
        SENTIMON_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        **{f"SENTIMON_TOPIC_{k.upper()}": v for k, v in topics.items()},
    )
    result = sentimon("worker", env=env)
    assert result.returncode == 2 and b"Redis" in result.stderr and b"unreachable" in result.stderr


@pytest.mark.integration
def test_worker_logs_start_and_signal_at_info_without_escape_codes(stream_env):
    worker = stream_env.start_worker()
    worker.wait_ready()
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=60) == 0
    log = worker.log.read_bytes()
    assert b"\x1b[" not in log  # a log file, not a terminal: no colour codes
    text = log.decode()
    assert "INFO sentimon.streams.worker: worker " in text and "model vader" in text
    assert "SIGTERM: finishing the batch in flight, committing, then stopping" in text
    assert any(line.rstrip().endswith("-group stopped") for line in text.splitlines())
    assert "[^--Consumer]: Starting" not in text  # Faust's own start-up chatter only at --loglevel debug
