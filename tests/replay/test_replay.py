"""Replay against the real Kafka and Redis: accuracy, namespace isolation, two-model comparison, the CLI."""

from __future__ import annotations

import json
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

    topic = make_topic(f"{unique}.raw", partitions=3)
    spec = trading_day(minutes=120, seed=11)
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
    records = list(TopicRange(stack_settings.stack.kafka_servers, topic, start, end))
    expected = [m["id"] for m in messages if start <= m["ts"] < end]
    assert sorted(json.loads(r.value)["id"] for r in records) == sorted(expected)
    stamps = [r.timestamp_ms for r in records]
    assert stamps == sorted(stamps)  # merged across the 3 partitions
    assert TopicRange(stack_settings.stack.kafka_servers, topic, start, end).total == len(expected)


def test_unknown_topic_is_a_clear_error(stack_settings, unique) -> None:
    from sentimon.streams.errors import StreamsError

    with pytest.raises(StreamsError, match="does not exist"):
        TopicRange(stack_settings.stack.kafka_servers, f"{unique}.nope")


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
        stats = replay(TopicRange(settings.stack.kafka_servers, topic), runs, batch_size=500)
    finally:
        for run in runs:
            run.alerts.close()
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
