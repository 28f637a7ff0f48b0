from pathlib import Path

import pytest

from sentimon.core.settings import ConfigError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("SENTIMON_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray ./sentimon.toml


def test_defaults_point_at_the_local_stack() -> None:
    s = load_settings()
    assert s.kafka_servers == f"127.0.0.1:{s.kafka_port}"
    assert s.redis == f"redis://127.0.0.1:{s.redis_port}/0"
    assert s.database.startswith("postgresql+psycopg://") and str(s.postgres_port) in s.database
    assert set(s.topics) == {"social", "market", "scored", "dlq", "alerts"}


def test_env_vars_override_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMON_KAFKA_BOOTSTRAP", "broker:9092")
    monkeypatch.setenv("SENTIMON_TOPIC_PARTITIONS", "12")
    s = load_settings()
    assert s.kafka_servers == "broker:9092"
    assert s.topic_partitions == 12


def test_config_file_is_read_and_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "custom.toml"
    cfg.write_text('redis_port = 7000\ntopic_scored = "scored.v2"\n')
    s = load_settings(cfg)
    assert s.redis_port == 7000 and s.topic_scored == "scored.v2"
    monkeypatch.setenv("SENTIMON_REDIS_PORT", "7001")
    assert load_settings(cfg).redis_port == 7001


def test_default_config_file_in_cwd_and_env_var(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "sentimon.toml").write_text("metrics_port = 9999\n")
    assert load_settings().metrics_port == 9999
    other = tmp_path / "other.toml"
    other.write_text("metrics_port = 9998\n")
    monkeypatch.setenv("SENTIMON_CONFIG", str(other))
    assert load_settings().metrics_port == 9998


def test_keyword_overrides_beat_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMON_REDIS_PORT", "7001")
    assert load_settings(redis_port=7002).redis_port == 7002


@pytest.mark.parametrize(
    ("env", "value", "fragment"),
    [
        ("SENTIMON_KAFKA_PORT", "not-a-port", "kafka_port"),
        ("SENTIMON_KAFKA_PORT", "70000", "kafka_port"),
        ("SENTIMON_KAFKA_HEAP", "lots", "kafka_heap"),
        ("SENTIMON_TOPIC_PARTITIONS", "0", "topic_partitions"),
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


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_settings_are_frozen() -> None:
    s = load_settings()
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        s.redis_port = 1  # type: ignore[misc]


def test_readme_settings_table_is_current() -> None:
    from sentimon.core.settings import markdown_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert markdown_table() in readme, "regenerate it: python -m sentimon.core.settings"
