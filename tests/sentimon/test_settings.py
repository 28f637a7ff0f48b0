from pathlib import Path

import pytest
from pydantic import ValidationError

from sentimon.core.settings import FLAT_NAMES, PARTS, ConfigError, load_settings, setting_name


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("SENTIMON_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray ./sentimon.toml


def test_defaults_point_at_the_local_stack() -> None:
    s = load_settings()
    assert s.stack.kafka_servers == f"127.0.0.1:{s.stack.kafka_port}"
    assert s.stack.redis == f"redis://127.0.0.1:{s.stack.redis_port}/0"
    assert s.stack.database.startswith("postgresql+psycopg://") and str(s.stack.postgres_port) in s.stack.database
    assert set(s.topics.names) == {"social", "market", "scored", "dlq", "alerts"}


def test_env_vars_override_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMON_KAFKA_BOOTSTRAP", "broker:9092")
    monkeypatch.setenv("SENTIMON_TOPIC_PARTITIONS", "12")
    s = load_settings()
    assert s.stack.kafka_servers == "broker:9092"
    assert s.topics.partitions == 12


def test_config_file_is_read_and_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "custom.toml"
    cfg.write_text('redis_port = 7000\ntopic_scored = "scored.v2"\n')
    s = load_settings(cfg)
    assert s.stack.redis_port == 7000 and s.topics.scored == "scored.v2"
    monkeypatch.setenv("SENTIMON_REDIS_PORT", "7001")
    assert load_settings(cfg).stack.redis_port == 7001


def test_default_config_file_in_cwd_and_env_var(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "sentimon.toml").write_text("metrics_port = 9999\n")
    assert load_settings().metrics.port == 9999
    other = tmp_path / "other.toml"
    other.write_text("metrics_port = 9998\n")
    monkeypatch.setenv("SENTIMON_CONFIG", str(other))
    assert load_settings().metrics.port == 9998


def test_keyword_overrides_beat_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMON_REDIS_PORT", "7001")
    assert load_settings(redis_port=7002).stack.redis_port == 7002


@pytest.mark.parametrize(
    ("env", "value", "fragment"),
    [
        (
            "SENTIMON_KAFKA_PORT",
            "not-a-port",
            r"stack\.kafka_port \(SENTIMON_STACK__KAFKA_PORT or SENTIMON_KAFKA_PORT\)",
        ),
        ("SENTIMON_KAFKA_PORT", "70000", "kafka_port"),
        ("SENTIMON_KAFKA_HEAP", "lots", "kafka_heap"),
        ("SENTIMON_TOPIC_PARTITIONS", "0", r"topics\.partitions .*SENTIMON_TOPIC_PARTITIONS"),
        ("SENTIMON_TOPICS__PARTITIONS", "0", r"topics\.partitions"),
        ("SENTIMON_ALERTS_WEBHOOKS", "not json", "SENTIMON_ALERTS_WEBHOOKS must be a JSON list"),
        ("SENTIMON_ALERTS__WEBHOOKS", "not json", r"SENTIMON_ALERTS__WEBHOOKS='not json' is not valid JSON"),
        ("SENTIMON_STACK", "nope", r"SENTIMON_STACK='nope' is not valid JSON"),
    ],
)
def test_bad_values_raise_one_clear_error(monkeypatch: pytest.MonkeyPatch, env: str, value: str, fragment: str) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=fragment):
        load_settings()


def test_unknown_key_in_config_file_is_an_error(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("kafka_prot = 1\n")
    with pytest.raises(ConfigError, match=r"bad\.toml.*kafka_prot"):
        load_settings(cfg)


def test_config_file_that_is_not_toml_is_an_error(tmp_path: Path) -> None:
    cfg = tmp_path / "broken.toml"
    cfg.write_text("redis_port = \n")
    with pytest.raises(ConfigError, match=r"broken\.toml is not valid TOML"):
        load_settings(cfg)


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


@pytest.mark.parametrize("part", list(PARTS))
def test_settings_and_each_part_are_frozen(part: str) -> None:
    s = load_settings()
    with pytest.raises(ValidationError):
        s.stack = s.stack  # type: ignore[misc]
    first_field = next(iter(PARTS[part].model_fields))
    with pytest.raises(ValidationError):
        setattr(getattr(s, part), first_field, None)


def test_legacy_flat_env_names_reach_their_part(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMON_INFERENCE_MAX_BATCH", "16")
    monkeypatch.setenv("SENTIMON_MODEL", "vader")
    monkeypatch.setenv("SENTIMON_WINDOW_PREFIX", "w")
    monkeypatch.setenv("SENTIMON_WORKER_ID", "g")
    monkeypatch.setenv("SENTIMON_WEB_PORT", "7066")
    monkeypatch.setenv("SENTIMON_METRICS_PORT", "9000")
    monkeypatch.setenv("SENTIMON_RAW_RETENTION_MS", "-1")
    monkeypatch.setenv("SENTIMON_STREAM_HOOKS", '["sentimon.alerts:stream_hook"]')
    monkeypatch.setenv("SENTIMON_ALERTS_KAFKA", "false")
    s = load_settings()
    assert (s.inference.max_batch, s.inference.model, s.windows.prefix) == (16, "vader", "w")
    assert (s.worker.id, s.worker.web_port, s.metrics.port, s.topics.raw_retention_ms) == ("g", 7066, 9000, -1)
    assert s.stream.hooks == ["sentimon.alerts:stream_hook"] and s.alerts.kafka is False


def test_nested_env_names_and_nested_beats_flat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMON_INFERENCE__MAX_BATCH", "8")
    monkeypatch.setenv("SENTIMON_ALERTS__WEBHOOKS", '["http://hook"]')
    monkeypatch.setenv("SENTIMON_STACK__REDIS_PORT", "7100")
    monkeypatch.setenv("SENTIMON_REDIS_PORT", "7200")
    s = load_settings()
    assert (s.inference.max_batch, s.alerts.webhooks, s.stack.redis_port) == (8, ["http://hook"], 7100)


def test_flat_and_nested_toml(tmp_path: Path) -> None:
    cfg = tmp_path / "mixed.toml"
    cfg.write_text('inference_max_batch = 32\nwatchlist = "w.yaml"\n[inference]\nthreads = 2\n[topics]\nsocial = "s"\n')
    s = load_settings(cfg)
    assert (s.inference.max_batch, s.inference.threads) == (32, 2)
    assert (s.stream.watchlist, s.topics.social) == (Path("w.yaml"), "s")


def test_shipped_flat_config_file_still_loads() -> None:
    tuned = load_settings(Path(__file__).resolve().parents[2] / "sentimon" / "bench" / "tuned-2core.toml")
    assert tuned.inference.threads == 2 and tuned.inference.max_batch == 32


def test_precedence_keyword_then_env_then_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "p.toml"
    cfg.write_text("[stack]\nredis_port = 7000\nkafka_port = 7001\npostgres_port = 7002\n")
    monkeypatch.setenv("SENTIMON_REDIS_PORT", "8000")  # flat env beats the nested file key
    monkeypatch.setenv("SENTIMON_STACK__KAFKA_PORT", "8001")
    s = load_settings(cfg, stack={"kafka_port": 9001})
    assert (s.stack.redis_port, s.stack.kafka_port, s.stack.postgres_port) == (8000, 9001, 7002)


def test_one_setting_given_twice_in_one_source_is_an_error(tmp_path: Path) -> None:
    cfg = tmp_path / "twice.toml"
    cfg.write_text("redis_port = 1\n[stack]\nredis_port = 2\n")
    with pytest.raises(ConfigError, match=r"twice\.toml: redis_port and stack\.redis_port name the same setting"):
        load_settings(cfg)


@pytest.mark.parametrize("text", ["[inference]\nmax_btach = 1\n", "[infrence]\nmax_batch = 1\n"])
def test_unknown_nested_key_is_an_error(tmp_path: Path, text: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=r"bad\.toml.*(max_btach|infrence)"):
        load_settings(cfg)


def test_replace_validates_and_merges_into_the_part() -> None:
    s = load_settings().replace(windows={"prefix": "x"}, alerts_prefix="y")
    assert (s.windows.prefix, s.windows.bucket_ms, s.alerts.prefix) == ("x", 60_000, "y")
    with pytest.raises(ConfigError, match="windows.bucket_ms"):
        s.replace(windows={"bucket_ms": 1})


def test_every_flat_name_maps_to_one_field() -> None:
    assert len(FLAT_NAMES) == sum(len(cls.model_fields) for cls in PARTS.values())
    assert FLAT_NAMES["inference_max_batch"] == ("inference", "max_batch")
    assert FLAT_NAMES["topic_social"] == ("topics", "social")


def test_every_field_says_what_it_means() -> None:
    blank = [
        f"{part}.{name}" for part, cls in PARTS.items() for name, f in cls.model_fields.items() if not f.description
    ]
    assert not blank, f"add Field(description=...) to {blank}"


def test_messages_name_a_setting_by_its_nested_and_flat_names() -> None:
    assert setting_name("stack", "kafka_port") == "stack.kafka_port (SENTIMON_STACK__KAFKA_PORT or SENTIMON_KAFKA_PORT)"
    assert setting_name("stream", "hooks") == "stream.hooks (SENTIMON_STREAM__HOOKS or SENTIMON_STREAM_HOOKS)"


def test_arguments_given_are_never_changed() -> None:
    part = {"max_batch": 8}
    settings = load_settings(inference=part, inference_threads=2)
    assert (settings.inference.max_batch, settings.inference.threads) == (8, 2)
    assert part == {"max_batch": 8}  # the flat name merged into a copy
