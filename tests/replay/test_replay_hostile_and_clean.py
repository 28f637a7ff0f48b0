"""`sentimon replay` as a user runs it, against the real Kafka and Redis: hostile records (half an emoji, not
JSON, empty text, ...) are dead letters with the worker's reasons and never stop it; the Markdown report goes to
stdout unwrapped; `sentimon replay clean` removes exactly what replays created."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sentimon.core import reasons
from sentimon.replay.clean import REGISTRY_KEY, Leftovers, group, select
from sentimon.replay.errors import ReplayError

pytestmark = pytest.mark.integration

HOSTILE = [
    (b'{"id": "h1", "text": "half an emoji \\ud83d cut by a JS producer"}', reasons.LONE_SURROGATE),
    (b'{"id": "h2", "text": "\\ud83d"}', reasons.LONE_SURROGATE),
    (b"not json at all", reasons.INVALID_JSON),
    (b'{"id": "h4", "text": "bad \xff\xfe bytes"}', reasons.INVALID_UTF8),
    (b'{"id": "h5", "text": "   "}', reasons.EMPTY_TEXT),
    (b'["a", "list"]', reasons.NOT_OBJECT),
    (b'{"id": "h7", "text": "nan", "ts": NaN}', reasons.NON_FINITE_NUMBER),
]


def _env(stack_settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTIMON_")}
    env.update({
        "SENTIMON_KAFKA_BOOTSTRAP": stack_settings.stack.kafka_servers,
        "SENTIMON_REDIS_URL": stack_settings.stack.redis,
        "SENTIMON_STATE_DIR": str(stack_settings.stack.state_dir),
    })  # fmt: skip
    return env


def sentimon(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sentimon", *args], env=env, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)  # fmt: skip


@pytest.fixture
def hostile_topic(stack_settings, unique, make_topic):
    """200 good messages with the hostile records spread among them (Kafka timestamps in order)."""
    from kafka import KafkaProducer

    topic = make_topic(f"{unique}.raw", partitions=2)
    producer = KafkaProducer(bootstrap_servers=stack_settings.stack.kafka_servers)
    t0 = 1_764_000_000_000
    good = [json.dumps({"id": f"g{i}", "text": f"$TSLA shares {'fell hard' if i % 2 else 'rose nicely'} today",
                        "ts": t0 + i * 1000}).encode() for i in range(200)]  # fmt: skip
    values = list(good)
    for k, (value, _) in enumerate(HOSTILE):
        values.insert(10 + 25 * k, value)
    for i, value in enumerate(values):
        producer.send(topic, value, timestamp_ms=t0 + i * 1000)
    producer.flush()
    producer.close()
    return topic, len(good)


def test_hostile_records_are_dead_letters_and_the_report_goes_to_stdout(stack_settings, unique, hostile_topic,
                                                                        tmp_path: Path) -> None:  # fmt: skip
    topic, n_good = hostile_topic
    report = tmp_path / "new" / "reports" / "r.json"
    result = sentimon("replay", "--topic", topic, "--model", "vader", "--namespace", unique, "--report",
                      str(report), "--batch-size", "50", env=_env(stack_settings))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    data = json.loads(report.read_text())
    [model] = data["models"].values()
    expected = {}
    for _, reason in HOSTILE:
        expected[reason] = expected.get(reason, 0) + 1
    assert data["records"] == n_good + len(HOSTILE)
    assert model["totals"]["dead_letters_by_reason"] == expected
    assert model["totals"]["applied"] == model["scored"] == n_good
    # The Markdown report on stdout, rows intact (not cut at 80 columns in a pipe); progress and paths on stderr.
    assert result.stdout.startswith(f"# Replay of `{topic}`")
    row = next(line for line in result.stdout.splitlines() if line.startswith("| vader |") and "lone_surrogate" in line)
    assert len(row) > 80 and row.endswith("|") and "lone_surrogate 2" in row
    assert result.stdout == (report.with_suffix(".md")).read_text()
    assert "report:" in result.stderr and "sentimon replay clean" in result.stderr
    assert "report:" not in result.stdout


def test_a_range_of_only_bad_records_reports_them_and_exits_1(stack_settings, unique, make_topic,
                                                               tmp_path: Path) -> None:  # fmt: skip
    from kafka import KafkaProducer

    topic = make_topic(f"{unique}.bad")
    producer = KafkaProducer(bootstrap_servers=stack_settings.stack.kafka_servers)
    for value, _ in HOSTILE:
        producer.send(topic, value)
    producer.flush()
    producer.close()
    report = tmp_path / "bad.json"
    result = sentimon("replay", "--topic", topic, "--model", "vader", "--namespace", unique, "--report",
                      str(report), env=_env(stack_settings))  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: none of the {len(HOSTILE)} records is a valid message; see the dead letters by reason in the report"
    )
    assert "lone_surrogate 2" in result.stdout and "Traceback" not in result.stderr
    [model] = json.loads(report.read_text())["models"].values()
    assert model["totals"]["dead_letters"] == len(HOSTILE) and model["series"] == []


def _keys(client, namespace: str) -> list:
    return list(client.scan_iter(match=f"replay:{namespace}.*"))


def test_replay_clean_removes_what_replays_created_and_nothing_else(stack_settings, unique, hostile_topic,
                                                                     tmp_path: Path) -> None:  # fmt: skip
    from kafka import KafkaAdminClient

    from sentimon.infra.redis_client import connect

    topic, _ = hostile_topic
    env = _env(stack_settings)
    folder = tmp_path / "made" / "by-replay"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    spaces = {f"{unique}-a": folder / "a.json", f"{unique}-b": mine / "b.json"}
    for namespace, path in spaces.items():
        result = sentimon("replay", "--topic", topic, "--model", "vader", "--namespace", namespace, "--report",
                          str(path), env=env)  # fmt: skip
        assert result.returncode == 0, result.stderr
    client = connect(stack_settings.stack)
    admin = KafkaAdminClient(bootstrap_servers=stack_settings.stack.kafka_servers)
    scored = f"{stack_settings.topics.scored}.replay.{unique}-a.vader"
    try:
        assert _keys(client, f"{unique}-a") and scored in admin.list_topics()

        unknown = sentimon("replay", "clean", f"{unique}-nope", env=env)
        assert unknown.returncode == 2 and unknown.stdout == ""
        assert unknown.stderr.startswith(f"error: no replay namespace '{unique}-nope'; known: ")
        assert f"{unique}-a" in unknown.stderr and f"{unique}-b" in unknown.stderr
        neither = sentimon("replay", "clean", env=env)
        assert neither.returncode == 2 and "or pass --all" in neither.stderr

        every = sentimon("replay", "clean", "--all", "--dry-run", env=env)
        assert every.returncode == 0, every.stderr
        assert {f"would remove topic {scored}", f"would remove topic {scored.replace('-a.', '-b.')}"} <= set(
            every.stdout.splitlines()
        )

        dry = sentimon("replay", "clean", f"{unique}-a", "--dry-run", env=env)
        assert dry.returncode == 0, dry.stderr
        lines = dry.stdout.splitlines()
        assert f"would remove topic {scored}" in lines
        assert any(
            line.startswith("would remove ") and f"Redis keys replay:{unique}-a.vader:*" in line for line in lines
        )
        assert f"would remove file {folder / 'a.json'}" in lines and f"would remove file {folder / 'a.png'}" in lines
        assert _keys(client, f"{unique}-a") and (folder / "a.json").exists()  # nothing removed

        done = sentimon("replay", "clean", f"{unique}-a", env=env)
        assert done.returncode == 0, done.stderr
        assert f"removed topic {scored}" in done.stdout.splitlines()
        assert f"removed folder {folder}" in done.stdout and f"removed folder {folder.parent}" in done.stdout
        assert not _keys(client, f"{unique}-a") and not folder.parent.exists()
        assert client.hget(REGISTRY_KEY, f"{unique}-a") is None
        assert scored not in admin.list_topics()
        assert _keys(client, f"{unique}-b") and (mine / "b.json").exists()  # the other namespace is untouched

        done = sentimon("replay", "clean", f"{unique}-b", env=env)
        assert done.returncode == 0, done.stderr
        assert not _keys(client, f"{unique}-b") and not (mine / "b.json").exists() and not (mine / "b.md").exists()
        assert (mine / "notes.txt").read_text() == "keep me"  # a folder the replay did not create stays
        assert "folder" not in done.stdout
        assert topic in admin.list_topics()  # the replayed topic itself is never touched
    finally:
        admin.close()
        client.close()


def test_older_replays_are_found_by_their_names() -> None:
    found = group({"reg.ns": {"tags": ["reg.ns.vader"], "topics": ["s.replay.reg.ns.vader"], "files": ["/r.json"]}},
                  tags=["reg.ns.vader", "replay-2026.static", "replay-2026.default"],
                  topics=["s.replay.reg.ns.vader", "s.replay.replay-2026.static", "s.replay.old.vader", "other"],
                  scored_topic="s")  # fmt: skip
    assert sorted(found) == ["old", "reg.ns", "replay-2026"]
    assert found["replay-2026"].tags == {"replay-2026.static", "replay-2026.default"}
    assert found["replay-2026"].topics == {"s.replay.replay-2026.static"} and not found["replay-2026"].registered
    assert found["reg.ns"].files == {"/r.json"} and found["reg.ns"].registered
    assert [lo.namespace for lo in select(found, None, every=True)] == ["old", "reg.ns", "replay-2026"]
    with pytest.raises(ReplayError, match="no replay namespace 'x'; known: old, reg.ns, replay-2026"):
        select(found, "x", every=False)
    with pytest.raises(ReplayError, match="known: none"):
        select({}, "x", every=False)
    assert select({"a": Leftovers("a")}, "a", every=False)[0].namespace == "a"


def test_each_model_run_has_a_redis_client_with_timeouts_and_closes_it(stack_settings, unique, tmp_path) -> None:
    from sentimon.replay.run import build_runs

    settings = stack_settings.replace(stack={"redis_timeout_s": 3.5})
    runs = build_runs(settings, ["vader"], unique, tmp_path)
    [run] = runs
    kwargs = run.client.connection_pool.connection_kwargs
    assert (
        kwargs["socket_timeout"] == 3.5 and kwargs["socket_connect_timeout"] == settings.stack.redis_connect_timeout_s
    )
    run.client.ping()  # a live connection in the pool
    assert any(c._sock is not None for c in run.client.connection_pool._available_connections)
    run.close()
    assert all(c._sock is None for c in run.client.connection_pool._available_connections)
