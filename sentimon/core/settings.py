"""The one typed settings object, read once at the edge (CLI, worker) and passed down.

Sources, highest priority first: explicit keyword arguments, ``SENTIMON_*`` environment variables, a TOML
config file (``--config FILE``, ``SENTIMON_CONFIG``, or ``./sentimon.toml`` when present), defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from sentimon.core.errors import UserError

DEFAULT_CONFIG_FILE = "sentimon.toml"


class ConfigError(UserError):
    """A settings problem the user can fix; the message says how."""


def _default_state_dir() -> Path:
    # PostgreSQL refuses to run as root and is started as the 'postgres' user, who cannot enter /root.
    if os.geteuid() == 0:
        return Path("/var/lib/sentimon")
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "sentimon"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sentimon"


class Settings(BaseSettings):
    """Every knob of sentimon. Each field is read from ``SENTIMON_<FIELD NAME>``."""

    model_config = SettingsConfigDict(env_prefix="SENTIMON_", frozen=True, extra="forbid")

    # Where the local stack keeps data, logs and pid files; downloads (Kafka jars, corpora) are cached apart.
    state_dir: Path = Field(default_factory=_default_state_dir)  # data, logs, pid files (root: /var/lib/sentimon)
    cache_dir: Path = Field(default_factory=_default_cache_dir)  # downloads: Kafka jars, corpora, weights

    # External services: when set, `sentimon up` launches nothing for them.
    kafka_bootstrap: str | None = None  # existing Kafka (host:port,...); unset = the local stack's
    redis_url: str | None = None  # existing Redis; unset = the local stack's
    database_url: str | None = None  # SQLAlchemy URL (sqlite:///... works); unset = the local PostgreSQL

    # The local stack (used when the URL above is unset). Non-default ports so a system Kafka/Redis/
    # PostgreSQL on the same host is left alone.
    kafka_version: str = "3.9.1"  # broker fetched from Maven Central; keep equal to docker-compose.yml
    kafka_port: int = Field(19092, ge=1, le=65535)  # local broker, 127.0.0.1
    kafka_controller_port: int = Field(19093, ge=1, le=65535)  # local KRaft controller
    kafka_heap: str = "512m"  # local broker JVM heap
    redis_port: int = Field(16379, ge=1, le=65535)  # local Redis
    postgres_port: int = Field(15432, ge=1, le=65535)  # local PostgreSQL
    startup_timeout_s: float = Field(60.0, gt=0)  # per service, for `sentimon up`

    # Topics.
    topic_social: str = "sentimon.raw.social"  # raw social posts (tweets, posts)
    topic_market: str = "sentimon.raw.market"  # raw market text (headlines, news)
    topic_scored: str = "sentimon.scored"  # scored events
    topic_dlq: str = "sentimon.dlq"  # dead letters with reason and original bytes
    topic_alerts: str = "sentimon.alerts"  # alert notifications
    topic_partitions: int = Field(4, ge=1)  # raw and scored topics (DLQ and alerts: 1)
    raw_retention_ms: int = Field(7 * 24 * 3600 * 1000, ge=-1)  # -1 = keep forever
    scored_retention_ms: int = Field(7 * 24 * 3600 * 1000, ge=-1)
    dlq_retention_ms: int = Field(30 * 24 * 3600 * 1000, ge=-1)
    alerts_retention_ms: int = Field(30 * 24 * 3600 * 1000, ge=-1)

    # Scoring and the worker.
    model: str = "default"  # bundle name in models_dir, bundle path, "static", "cascade" or "vader"
    # Inference runtime (inference.load). A model name is a bundle dir under models_dir (or "vader").
    models_dir: Path = Field(default_factory=lambda: Path(__file__).resolve().parents[2] / "models")  # shipped
    inference_threads: int = Field(0, ge=0)  # ORT intra-op threads; 0 = ORT's default (one per core)
    inference_providers: str = "auto"  # "auto" = CUDA when available, else CPU; or comma list of ORT providers
    inference_graph_optimization: Literal["disabled", "basic", "extended", "all"] = "all"  # ORT level
    inference_max_batch: int = Field(64, ge=1)  # sequences (windows) per ORT call
    inference_max_batch_tokens: int = Field(8192, ge=1)  # padded tokens per ORT call: bounds memory on long texts
    inference_pad_multiple: int = Field(8, ge=1)  # pad a batch's length up to a multiple: fewer distinct shapes
    inference_window_stride: int = Field(32, ge=0)  # tokens shared by consecutive windows of a long text
    metrics_host: str = "127.0.0.1"  # the Prometheus endpoint; 0.0.0.0 only inside a container
    metrics_port: int = Field(9108, ge=1, le=65535)  # the worker's Prometheus endpoint
    web_port: int = Field(6066, ge=1, le=65535)  # Faust's web server (bound to 127.0.0.1)

    # Streaming worker (streams/). Micro-batches: up to stream_max_batch records or stream_batch_within_s.
    worker_id: str = "sentimon-worker"  # Faust app id = Kafka consumer group shared by all workers
    worker_data_dir: Path | None = None  # Faust's local data dir; default <state_dir>/worker
    worker_threads: int = Field(1, ge=1)  # executor threads for inference + Redis (never the event loop)
    # ORT intra-op threads inside a worker (0: use inference_threads). One: ORT's spinning pool otherwise
    # competes with the event loop, Kafka and Redis for the cores (BENCHMARKS.md, Streaming).
    worker_inference_threads: int = Field(1, ge=0)
    stream_max_batch: int = Field(256, ge=1)
    stream_batch_within_s: float = Field(0.02, gt=0)  # the longest a lone message waits for batch-mates
    stream_max_message_bytes: int = Field(64 * 1024, ge=64)
    stream_max_entities: int = Field(32, ge=1)
    stream_max_future_ms: int = Field(5 * 60 * 1000, ge=0)  # reject event times this far ahead of the clock
    watchlist: Path | None = None  # entity -> aliases YAML; default the sample streams/watchlist.yaml
    stream_hooks: list[str] = []  # "package.module:factory" entries; factory(settings) returns an after-batch hook
    # Kafka group timings: production values; tests shorten them (see README "Streaming worker").
    worker_session_timeout_s: float = Field(30.0, gt=0)
    worker_heartbeat_s: float = Field(3.0, gt=0)
    worker_rebalance_timeout_s: float = Field(60.0, gt=0)
    worker_commit_interval_s: float = Field(1.0, gt=0)
    # Redis windows: event-time buckets; any window is summed from them.
    window_prefix: str = "sentimon"
    window_bucket_ms: int = Field(60_000, ge=1000)
    window_allowed_lateness_ms: int = Field(10 * 60 * 1000, ge=0)
    window_retention_ms: int = Field(8 * 24 * 3600 * 1000, ge=60_000)  # bucket TTL: covers a 7 d baseline

    # Alerts (alerts/). Rule files: empty = the shipped stock + opinion sets (env: JSON list of paths).
    alerts_rules: list[Path] = []
    alerts_prefix: str = "sentimon:alerts"  # Redis keys of the shared alert states and example texts
    alerts_state_ttl_s: int = Field(30 * 24 * 3600, ge=60)  # an idle (entity, rule) state is forgotten after this
    alerts_examples: int = Field(5, ge=0)  # recent negative texts kept per entity for the payload
    alerts_top_terms: int = Field(5, ge=0)
    alerts_kafka: bool = True  # write notifications to topic_alerts
    alerts_webhooks: list[str] = []  # env: JSON list of URLs
    alerts_webhook_format: Literal["json", "alertmanager"] = "json"  # alertmanager = POST /api/v2/alerts body
    alerts_webhook_timeout_s: float = Field(5.0, gt=0)
    alerts_webhook_attempts: int = Field(5, ge=1)
    alerts_webhook_backoff_s: float = Field(0.5, ge=0)  # first retry wait; doubles up to alerts_webhook_backoff_max_s
    alerts_webhook_backoff_max_s: float = Field(30.0, ge=0)
    alerts_webhook_queue: int = Field(1000, ge=1)  # pending webhook posts; beyond it new ones are dropped (counted)
    alerts_silence_interval_s: float = Field(30.0, gt=0)  # timer: silence check + deferred evaluations (wall clock)
    alerts_eval_interval_ms: int = Field(10_000, ge=0)  # evaluate an entity at most this often (event time); 0 = always
    alerts_lease_s: float = Field(90.0, gt=0)  # a worker silent this long has its undelivered alerts taken over

    @field_validator("kafka_heap")
    @classmethod
    def _heap_size(cls, value: str) -> str:
        if not (value[:-1].isdigit() and value[-1] in "kmgKMG"):
            raise ValueError("expected a JVM size such as 512m or 1g")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls)

    # Effective endpoints: the external URL when given, else the local stack's.
    @property
    def kafka_servers(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def redis(self) -> str:
        return self.redis_url or f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def database(self) -> str:
        return self.database_url or f"postgresql+psycopg://sentimon@127.0.0.1:{self.postgres_port}/sentimon"

    @property
    def topics(self) -> dict[str, str]:
        return {
            "social": self.topic_social,
            "market": self.topic_market,
            "scored": self.topic_scored,
            "dlq": self.topic_dlq,
            "alerts": self.topic_alerts,
        }


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Read settings from arguments, environment and the config file; raise ConfigError on bad values."""
    path = config_file or os.environ.get("SENTIMON_CONFIG")
    if path is None and Path(DEFAULT_CONFIG_FILE).is_file():
        path = DEFAULT_CONFIG_FILE
    cls = Settings
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist (given by --config or SENTIMON_CONFIG)")
        cls = type("Settings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": path}})
    try:
        return cls(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        where = f" (config file {path})" if path else ""
        raise ConfigError(f"invalid settings{where}: {problems}. Env vars are SENTIMON_<NAME>.") from None


def markdown_table() -> str:
    """The settings table of the README, generated from the fields and their trailing comments (a test keeps
    the README in sync)."""
    import inspect
    import re

    comments = dict(re.findall(r"(?m)^    (\w+): [^#\n]*#\s*(.+)$", inspect.getsource(Settings)))
    rows = ["| env var | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = "computed" if field.default_factory is not None else field.default
        meaning = (field.description or comments.get(name, "")).replace("|", "\\|")
        rows.append(f"| `SENTIMON_{name.upper()}` | `{default}` | {meaning} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
