"""Replay against the real Kafka and Redis: accuracy, namespace isolation, two-model comparison, the CLI."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sentimon.replay import report as reporting
from sentimon.replay.reader import TopicRange
from sentimon.replay.run import replay
from sentimon.replay.timeline import generate, trading_day
from tests.replay.test_timeline import POOL

pytestmark = pytest.mark.integration

TINY = str(Path(__file__).resolve().parents[1] / "assets" / "tiny-bundle")


@pytest.fixture
def history(stack_settings, unique, make_topic):
    """A planted two-hour timeline on its own topic, with Kafka timestamps = event times."""
    from kafka import KafkaProducer

    topic = make_topic(f"{unique}.raw", partitions=3, retention_ms=7 * 24 * 3_600_000)  # the raw topics' week
    spec = trading_day(minutes=120, seed=11, history_min=0)
    messages = generate(spec, POOL)
    producer = KafkaProducer(bootstrap_servers=stack_settings.stack.kafka_servers)
    for m in messages:
        producer.send(topic, key=m["id"].encode(), value=json.dumps(m).encode(), timestamp_ms=m["ts"])
    producer.flush()
    producer.close()
    return topic, spec, messages


def _settings(stack_settings, unique):
    # The "production" namespace of this test: its own prefixes, so the suite's other tests never interfere.
    return stack_settings.replace(windows={"prefix": f"{unique}:prod"}, alerts={"prefix": f"{unique}:prod:al"})


def test_reader_returns_the_time_range_in_event_time_order(stack_settings, history) -> None:
    topic, spec, messages = history
    start, end = messages[100]["ts"], messages[-100]["ts"]
    records = list(TopicRange(stack_settings, topic, start, end))
    expected = [m["id"] for m in messages if start <= m["ts"] < end]
    assert sorted(json.loads(r.value)["id"] for r in records) == sorted(expected)
    stamps = [r.timestamp_ms for r in records]
    assert stamps == sorted(stamps)  # merged across the 3 partitions
    assert TopicRange(stack_settings, topic, start, end).total == len(expected)


def test_unknown_topic_is_a_clear_error(stack_settings, unique) -> None:
    from sentimon.streams.errors import StreamsError

    with pytest.raises(StreamsError, match="does not exist"):
        TopicRange(stack_settings, f"{unique}.nope")


def test_a_range_without_records_names_what_the_topic_holds(stack_settings, history) -> None:
    from sentimon.replay.errors import EmptyRangeError

    topic, spec, messages = history
    TopicRange(stack_settings, topic).require_records()  # records in range: no error
    week_before = messages[0]["ts"] - 7 * 24 * 3_600_000
    with pytest.raises(EmptyRangeError) as caught:
        TopicRange(stack_settings, topic, week_before, week_before + 3_600_000).require_records()
    message = str(caught.value)
    assert topic in message and "\n" not in message
    assert _iso(min(m["ts"] for m in messages)) in message and _iso(max(m["ts"] for m in messages)) in message
    with pytest.raises(EmptyRangeError, match="holds records from"):
        TopicRange(stack_settings, topic, messages[-1]["ts"] + 1).require_records()


def test_an_empty_topic_says_so(stack_settings, unique, make_topic) -> None:
    from sentimon.replay.errors import EmptyRangeError

    with pytest.raises(EmptyRangeError, match="is empty"):
        TopicRange(stack_settings, make_topic(f"{unique}.empty")).require_records()


def test_records_deleted_by_the_broker_leave_an_empty_topic(stack_settings, unique, make_topic) -> None:
    """What retention does to a week-old demo: the log start moves past every record (here by DeleteRecords)."""
    from kafka import KafkaAdminClient, KafkaProducer, TopicPartition

    from sentimon.replay.errors import EmptyRangeError

    topic = make_topic(f"{unique}.deleted")
    servers = stack_settings.stack.kafka_servers
    producer = KafkaProducer(bootstrap_servers=servers)
    for i in range(5):
        producer.send(topic, json.dumps({"text": f"old {i}"}).encode(), timestamp_ms=1_700_000_000_000 + i)
    producer.flush()
    producer.close()
    admin = KafkaAdminClient(bootstrap_servers=servers)
    try:
        admin.delete_records({TopicPartition(topic, 0): 5})
    finally:
        admin.close()
    source = TopicRange(stack_settings, topic)
    assert source.held[0].start == source.held[0].end == 5
    with pytest.raises(EmptyRangeError, match="is empty"):
        source.require_records()


def test_replay_cli_of_an_empty_range_fails_in_one_line(stack_settings, history, tmp_path: Path) -> None:
    import subprocess
    import sys

    topic, spec, messages = history
    env = {
        **os.environ,
        "SENTIMON_KAFKA_BOOTSTRAP": stack_settings.stack.kafka_servers,
        "SENTIMON_REDIS_URL": stack_settings.stack.redis,
        "SENTIMON_STATE_DIR": str(stack_settings.stack.state_dir),
    }
    result = subprocess.run(
        [sys.executable, "-m", "sentimon", "replay", "--topic", topic, "--model", "vader", "--from", "2020-01-01",
         "--to", "2020-01-02", "--report", str(tmp_path / "r.json")],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: no records on"), result.stderr
    assert _iso(messages[0]["ts"]) in lines[0]
    assert not (tmp_path / "r.json").exists()  # no empty report


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def test_replay_accuracy_isolation_and_comparison(stack_settings, unique, history, tmp_path: Path) -> None:
    import redis

    from sentimon import inference
    from sentimon.alerts import History
    from sentimon.replay.run import build_runs

    topic, spec, messages = history
    settings = _settings(stack_settings, unique)
    client = redis.Redis.from_url(settings.stack.redis)
    client.set(f"{settings.windows.prefix}:sentinel", "production")
    before = {k: client.dump(k) for k in client.scan_iter(f"{unique}:prod*")}
    production_history = History(settings.stack.database)
    alerts_before = production_history.list(limit=10_000)

    runs = build_runs(settings, ["vader", TINY], unique, tmp_path)
    try:
        stats = replay(TopicRange(settings, topic), runs, batch_size=500)
    finally:
        for run in runs:
            run.close()
    report = reporting.build(runs, stats, topic=topic, episodes=list(spec.episodes))

    # Accuracy equals scoring the same texts offline with the same model.
    scorer = inference.load("vader")
    offline = scorer.score([m["text"] for m in messages])
    expected = sum(p.label == m["label"] for p, m in zip(offline, messages, strict=True)) / len(messages)
    vader = report["models"][runs[0].name]
    assert vader["scored"] == len(messages) == stats.records
    assert vader["accuracy"]["accuracy"] == pytest.approx(expected)
    assert vader["accuracy"]["n"] == len(messages)

    # Isolation: production keys untouched, the replay wrote only under its namespaces.
    after = {k: client.dump(k) for k in client.scan_iter(f"{unique}:prod*")}
    assert after == before
    assert production_history.list(limit=10_000) == alerts_before
    production_history.close()
    for run in runs:
        assert run.settings.windows.prefix.startswith("replay:")
        assert any(client.scan_iter(f"{run.settings.windows.prefix}:*"))
        assert run.settings.stack.database_url.startswith("sqlite:///" + str(tmp_path))

    # Comparison: agreement over every message; the alert diff partitions each model's alerts.
    comp = report["comparison"]
    assert comp["agreement"]["n"] == len(messages)
    alerts_a = report["models"][runs[0].name]["alerts"]
    alerts_b = report["models"][runs[1].name]["alerts"]
    assert len(comp["alerts"]["both"]) + len(comp["alerts"]["only_a"]) == len(alerts_a)
    assert len(comp["alerts"]["both"]) + len(comp["alerts"]["only_b"]) == len(alerts_b)
    assert any(a["entity"] == "TSLA" for a in alerts_a), "VADER should catch the planted TSLA negative shift"
    assert "detection" in vader and vader["detection"]["recall"] > 0

    paths = reporting.write(report, tmp_path / "r.json", list(spec.episodes))
    assert json.loads(paths["json"].read_text())["records"] == len(messages)
    assert paths["plot"].stat().st_size > 10_000
    assert "Label agreement" in paths["markdown"].read_text()


def test_replay_cli_end_to_end(stack_settings, unique, history, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sentimon.cli import app

    topic, spec, messages = history
    episodes = tmp_path / "episodes.json"
    episodes.write_text(json.dumps([e.as_dict() for e in spec.episodes]))
    env = {
        "SENTIMON_KAFKA_BOOTSTRAP": stack_settings.stack.kafka_servers,
        "SENTIMON_REDIS_URL": stack_settings.stack.redis,
        "SENTIMON_STATE_DIR": str(stack_settings.stack.state_dir),
    }
    result = CliRunner().invoke(
        app,
        ["replay", "--topic", topic, "--model", "vader", "--namespace", unique, "--from", str(messages[-400]["ts"]),
         "--report", str(tmp_path / "rep.json"), "--episodes", str(episodes), "--batch-size", "200"],
        env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "rep.json").read_text())
    assert report["records"] == sum(m["ts"] >= messages[-400]["ts"] for m in messages)
    assert (tmp_path / "rep.md").is_file() and (tmp_path / "rep.png").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--speed", "fast"], "--speed"),
        (["--from", "yesterday"], "--from"),
        (["--from", "2026-01-02", "--to", "2026-01-01"], "--to must be after --from"),
    ],
)
def test_replay_cli_rejects_bad_options(args: list[str], message: str) -> None:
    from typer.testing import CliRunner

    from sentimon.cli import app

    result = CliRunner().invoke(app, ["replay", "--topic", "x", *args])
    assert result.exit_code != 0
    assert message in str(result.exception) or message in result.output


def test_replay_compares_registry_versions_with_the_canary_comparator(stack_settings, unique, history,
                                                                      tmp_path: Path) -> None:  # fmt: skip
    """An offline A/B on history: `--model NAME@champion --compare NAME@VERSION` replays both registry versions and
    reports the numbers a canary's analysis would compute from the same pairs of labels."""
    import shutil

    from sentimon import inference
    from sentimon.inference import registry as model_registry
    from sentimon.replay.run import build_runs
    from sentimon.streams.rollout import compare

    topic, _spec, messages = history
    broken = tmp_path / "reversed"
    shutil.copytree(TINY, broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["labels"] = list(reversed(manifest["labels"]))  # a build that reads its logits in the wrong order
    (broken / "manifest.json").write_text(json.dumps(manifest))
    settings = _settings(stack_settings, unique).replace(
        inference={"registry_dir": str(tmp_path / "registry"), "registry_database": f"sqlite:///{tmp_path}/reg.db"}
    )
    reg = model_registry.from_settings(settings)
    try:
        champion = reg.register(Path(TINY), "tiny").ref
        reg.promote(champion)
        candidate = reg.register(broken, "tiny").ref
    finally:
        reg.close()

    runs = build_runs(settings, ["tiny@champion", str(candidate)], unique, tmp_path)
    try:
        stats = replay(TopicRange(settings, topic), runs, batch_size=500)
    finally:
        for run in runs:
            run.close()
    agreement = reporting.build(runs, stats, topic=topic)["comparison"]["agreement"]

    texts = [m["text"] for m in messages]
    a = inference.load("tiny@champion", settings.inference).score(texts)
    b = inference.load(str(candidate), settings.inference).score(texts)
    pairs: dict[str, dict[str, int]] = {}
    for x, y in zip(a, b, strict=True):
        pairs.setdefault(x.label, {}).setdefault(y.label, 0)
        pairs[x.label][y.label] += 1
    expected = compare(pairs)
    assert agreement["n"] == len(messages)
    assert agreement["rate"] == pytest.approx(expected.agreement)
    assert agreement["label_mix_distance"] == pytest.approx(expected.label_mix_distance)
    assert agreement["matrix"] == expected.confusion
    assert agreement["rate"] < 0.85  # reversed labels disagree wherever the model is not neutral
