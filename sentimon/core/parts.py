"""The parts of the settings: one frozen model per component, each field with the meaning the README shows.

``flat_prefix``/``flat_names`` give each field's name from before the parts existed (``sentimon.core.settings``
maps those names onto the parts).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


def _default_state_dir() -> Path:
    # PostgreSQL refuses to run as root and is started as the 'postgres' user, who cannot enter /root.
    if os.geteuid() == 0:
        return Path("/var/lib/sentimon")
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "sentimon"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sentimon"


class Part(BaseModel):
    """One component's settings. ``flat_prefix``/``flat_names``: the field's name before the parts existed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    flat_prefix: ClassVar[str] = ""
    flat_names: ClassVar[dict[str, str]] = {}  # fields whose flat name does not follow flat_prefix

    @classmethod
    def flat_name(cls, field: str) -> str:
        return cls.flat_names.get(field, cls.flat_prefix + field)

    def __repr_args__(self):
        # repr/str of settings may reach a log or a traceback: URL passwords masked, webhooks by host only.
        from sentimon.core.redact import redact_setting

        for name, value in super().__repr_args__():
            yield name, (redact_setting(name, value) if name else value)


class StackSettings(Part):
    """Where services run: the local stack `sentimon up` launches, or external ones named by URL."""

    state_dir: Path = Field(
        default_factory=_default_state_dir,
        description="data, logs and pid files of the local stack (root: /var/lib/sentimon)",
    )
    cache_dir: Path = Field(default_factory=_default_cache_dir, description="downloads: Kafka jars, corpora, weights")
    kafka_bootstrap: str | None = Field(
        None, description="an existing Kafka (host:port,...); unset = the local stack's, and `up` launches none"
    )
    redis_url: str | None = Field(None, description="an existing Redis; unset = the local stack's")
    redis_connect_timeout_s: float = Field(5.0, gt=0, description="every Redis client: connect timeout")
    redis_timeout_s: float = Field(
        10.0, gt=0, description="every Redis client: reply timeout (a black-holed Redis raises, then is retried)"
    )
    database_url: str | None = Field(
        None, description="alert history, a SQLAlchemy URL (sqlite:///... works); unset = the local PostgreSQL"
    )
    # Non-default local ports so a system Kafka/Redis/PostgreSQL on the same host is left alone.
    kafka_version: str = Field(
        "4.4.0", description="local broker, fetched from Maven Central; equal to docker-compose.yml"
    )
    kafka_port: int = Field(19092, ge=1, le=65535, description="local broker on 127.0.0.1")
    kafka_controller_port: int = Field(19093, ge=1, le=65535, description="local KRaft controller")
    kafka_heap: str = Field("512m", description="local broker JVM heap (512m, 1g)")
    redis_port: int = Field(16379, ge=1, le=65535, description="local Redis")
    redis_appendfsync: Literal["always", "everysec"] = Field(
        "always", description="local Redis AOF fsync: always = a kill -9 of Redis loses no acknowledged window update"
    )
    postgres_port: int = Field(15432, ge=1, le=65535, description="local PostgreSQL")
    startup_timeout_s: float = Field(60.0, gt=0, description="how long `sentimon up` waits for each service")
    # The local stack's logins (`sentimon up --secure` writes them into <state_dir>/client.toml); the services stay
    # the local stack's: the endpoints below carry them, as an external service's URL carries its own.
    redis_username: str | None = Field(None, description="local Redis ACL user; unset = Redis' default user")
    redis_password: SecretStr | None = Field(None, description="local Redis password; unset = none; never printed")
    redis_tls_cafile: Path | None = Field(
        None, description="local Redis over TLS, its certificate checked against this CA (PEM); unset = plain TCP"
    )
    database_password: SecretStr | None = Field(
        None, description="the local PostgreSQL's application role password; unset = none; never printed"
    )

    @field_validator("kafka_heap")
    @classmethod
    def _heap_size(cls, value: str) -> str:
        if not (value[:-1].isdigit() and value[-1] in "kmgKMG"):
            raise ValueError("expected a JVM size such as 512m or 1g")
        return value

    # Effective endpoints: the external URL when given, else the local stack's.
    @property
    def kafka_servers(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def redis(self) -> str:
        if self.redis_url:
            return self.redis_url
        login = ""
        if self.redis_password is not None:
            user = quote(self.redis_username or "default", safe="")
            login = f"{user}:{quote(self.redis_password.get_secret_value(), safe='')}@"
        if self.redis_tls_cafile is None:
            return f"redis://{login}127.0.0.1:{self.redis_port}/0"
        # redis-py passes URL query values it does not know to the connection: this one verifies the server.
        return f"rediss://{login}127.0.0.1:{self.redis_port}/0?ssl_ca_certs={quote(str(self.redis_tls_cafile))}"

    @property
    def database(self) -> str:
        if self.database_url:
            return self.database_url
        login = "sentimon"
        if self.database_password is not None:
            login += ":" + quote(self.database_password.get_secret_value(), safe="")
        return f"postgresql+psycopg://{login}@127.0.0.1:{self.postgres_port}/sentimon"


def _kafka_setting(field: str) -> str:
    # parts cannot import the settings module (it imports them): its setting_name() spelled out for this part.
    return f"kafka.{field} (SENTIMON_KAFKA__{field.upper()} or SENTIMON_KAFKA_{field.upper()})"


class KafkaSettings(Part):
    """How every Kafka client connects: TLS, SASL (a secured cluster)"""

    flat_prefix: ClassVar[str] = "kafka_"

    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="SSL = TLS; SASL_SSL = TLS and a SASL login (a secured cluster); SASL_PLAINTEXT = "
        "a login in clear text",
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="SASL login mechanism (SASL_* protocols)"
    )
    sasl_username: str | None = Field(None, description="SASL user (SASL_* protocols)")
    sasl_password: SecretStr | None = Field(None, description="SASL password (SASL_* protocols); never printed")
    ssl_cafile: Path | None = Field(
        None, description="CA certificate(s) (PEM) the broker's certificate is checked against; unset = the system's"
    )
    ssl_certfile: Path | None = Field(None, description="client certificate (PEM) for mutual TLS; with ssl_keyfile")
    ssl_keyfile: Path | None = Field(None, description="the client certificate's private key (PEM); with ssl_certfile")
    ssl_check_hostname: bool = Field(
        True, description="check that the broker's certificate names the host connected to"
    )

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @model_validator(mode="after")
    def _complete(self) -> KafkaSettings:
        if self.uses_sasl:
            for field in ("sasl_username", "sasl_password"):
                value = getattr(self, field)
                if value is None or not (value.get_secret_value() if isinstance(value, SecretStr) else value):
                    raise ValueError(
                        f"security_protocol {self.security_protocol} needs a SASL login: set {_kafka_setting(field)}"
                    )
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            pair = ("ssl_certfile", "ssl_keyfile")
            given, missing = pair if self.ssl_keyfile is None else pair[::-1]
            raise ValueError(f"{_kafka_setting(given)} is set without {_kafka_setting(missing)}: mutual TLS needs both")
        if self.uses_tls:
            for field in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
                path = getattr(self, field)
                if path is not None and not path.is_file():
                    raise ValueError(f"{_kafka_setting(field)}: {path} is not a file")
        return self


_WEEK_MS = 7 * 24 * 3600 * 1000
_MONTH_MS = 30 * 24 * 3600 * 1000


class TopicSettings(Part):
    """Kafka topic names, partitions and retention (`sentimon topics create`)."""

    flat_prefix: ClassVar[str] = "topic_"
    flat_names: ClassVar[dict[str, str]] = {
        f"{kind}_retention_ms": f"{kind}_retention_ms" for kind in ("raw", "scored", "dlq", "alerts")
    }

    social: str = Field("sentimon.raw.social", description="raw social posts (tweets, posts)")
    market: str = Field("sentimon.raw.market", description="raw market text (headlines, news)")
    scored: str = Field("sentimon.scored", description="scored events")
    dlq: str = Field("sentimon.dlq", description="dead letters with reason and original bytes")
    alerts: str = Field("sentimon.alerts", description="alert notifications")
    partitions: int = Field(4, ge=1, description="partitions of the raw and scored topics (dead letters and alerts: 1)")
    raw_retention_ms: int = Field(_WEEK_MS, ge=-1, description="raw topics' retention; -1 = keep forever")
    scored_retention_ms: int = Field(_WEEK_MS, ge=-1, description="scored topic's retention; -1 = keep forever")
    dlq_retention_ms: int = Field(_MONTH_MS, ge=-1, description="dead-letter topic's retention; -1 = keep forever")
    alerts_retention_ms: int = Field(_MONTH_MS, ge=-1, description="alerts topic's retention; -1 = keep forever")
    raw_max_message_bytes: int = Field(
        1024 * 1024, ge=1024, description="raw topics' max.message.bytes: the largest record the broker takes"
    )
    replication_factor: int = Field(
        1, ge=1, description="copies of each partition on distinct brokers (3 on a 3-broker cluster); new topics only"
    )
    min_insync_replicas: int | None = Field(
        None, ge=1, description="min.insync.replicas: copies that must have an acks=all write; unset = the broker's"
    )

    @model_validator(mode="after")
    def _replicas(self) -> TopicSettings:
        if self.min_insync_replicas is not None and self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                f"topics.min_insync_replicas ({self.min_insync_replicas}) must not exceed topics.replication_factor "
                f"({self.replication_factor}): every acks=all write would be refused"
            )
        return self

    @property
    def names(self) -> dict[str, str]:
        """Topic kind -> topic name."""
        return {
            "social": self.social,
            "market": self.market,
            "scored": self.scored,
            "dlq": self.dlq,
            "alerts": self.alerts,
        }


class InferenceSettings(Part):
    """The scorer `inference.load` builds: which model, and how ONNX Runtime runs it."""

    flat_prefix: ClassVar[str] = "inference_"
    flat_names: ClassVar[dict[str, str]] = {"model": "model", "models_dir": "models_dir"}

    model: str = Field(
        "default", description='bundle name under models_dir, bundle path, "static", "cascade" or "vader"'
    )
    market_model: str = Field(
        "finance",
        description="the model that scores records of topics.market (headlines, market news); empty = `model` "
        "scores them too",
    )
    models_dir: Path = Field(
        default_factory=lambda: Path(__file__).resolve().parents[2] / "models",
        description="folder of model bundles (default: the shipped models/)",
    )
    threads: int = Field(0, ge=0, description="ONNX Runtime intra-op threads; 0 = one per core")
    spin_wait: bool = Field(
        True,
        description="ORT's intra-op threads spin between operators: faster alone, but they take a core from "
        "whatever shares the process (a worker turns it off)",
    )
    providers: str = Field(
        "auto", description='"auto" = CUDA when available, else CPU; or a comma list of ORT execution providers'
    )
    graph_optimization: Literal["disabled", "basic", "extended", "all"] = Field(
        "all", description="ONNX Runtime graph optimization level"
    )
    max_batch: int = Field(64, ge=1, description="sequences (long-text windows) per ORT call")
    max_batch_tokens: int = Field(8192, ge=1, description="padded tokens per ORT call: bounds memory on long texts")
    pad_multiple: int = Field(
        8, ge=1, description="pad a batch's length up to a multiple of this: fewer distinct shapes"
    )
    window_stride: int = Field(32, ge=0, description="tokens shared by consecutive windows of a long text")
    verify_files: bool = Field(True, description="check each bundle file's sha256 against its manifest on load")
    threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="cascade: escalate when the fast margin is below this; unset = cascade.json's"
    )
    # Language identification (inference.language): a model that reads English must not give confident labels
    # to text it cannot read.
    languages: list[str] = Field(
        ["en"], description="ISO 639-1 codes the model reads (env: JSON list); empty = no language check"
    )
    unsupported_language: Literal["neutral", "dead_letter"] = Field(
        "neutral",
        description='other languages: "neutral" = scored low-confidence neutral; "dead_letter" = the worker '
        "dead-letters them (reason unsupported_language)",
    )
    language_confidence: float = Field(
        0.9, ge=0.0, le=1.0, description="identifier confidence needed to call a text another language"
    )
    language_min_letters: int = Field(
        12, ge=0, description="texts with fewer letters (URLs, @, $ and # tokens aside) count as languages[0]"
    )
    # The model registry (inference.registry): `sentimon models register` copies bundles here, and `model` may be
    # a reference NAME@VERSION, NAME@champion or NAME@candidate.
    registry_dir: Path = Field(
        default_factory=lambda: _default_state_dir() / "registry",
        description="registered model versions, one immutable content-hashed folder each (default: <state>/registry)",
    )
    registry_database: str | None = Field(
        None, description="the registry's aliases and history, a SQLAlchemy URL; unset = stack.database"
    )
    registry_prefix: str = Field(
        "sentimon:registry", description="Redis keys and channel that mirror the aliases for workers to follow"
    )
    # Rollouts (README "Rollout"): a worker whose model is NAME@champion follows the alias and the model's rollout.
    follow_poll_s: float = Field(
        2.0, gt=0, description="a following worker re-reads the alias pointer this often, besides the notifications"
    )
    rollout_stats_s: float = Field(1.0, gt=0, description="how often a worker publishes its rollout statistics")
    shadow_queue: int = Field(
        64, ge=1, description="batch copies waiting for the shadow scorer; more are dropped (counted), never waited on"
    )
    canary_shadow_sample: float = Field(
        0.25, ge=0.0, le=1.0, description="share of a canary's messages the champion also scores, for the agreement"
    )


class MetricsSettings(Part):
    """The worker's Prometheus endpoint."""

    flat_prefix: ClassVar[str] = "metrics_"

    host: str = Field("127.0.0.1", description="bind address; 0.0.0.0 only inside a container")
    port: int = Field(9108, ge=1, le=65535, description="the worker's Prometheus endpoint")


class WorkerSettings(Part):
    """The Faust worker process: consumer group, threads and Kafka group timings."""

    flat_prefix: ClassVar[str] = "worker_"
    flat_names: ClassVar[dict[str, str]] = {"web_port": "web_port"}

    id: str = Field("sentimon-worker", description="Faust app id = the Kafka consumer group shared by all workers")
    data_dir: Path | None = Field(None, description="Faust's local data dir; unset = <state_dir>/worker")
    threads: int = Field(1, ge=1, description="executor threads for inference and Redis (never the event loop)")
    # One: ORT's spinning pool otherwise competes with the event loop, Kafka and Redis for the cores
    # (BENCHMARKS.md, Streaming).
    inference_threads: int = Field(1, ge=0, description="ORT intra-op threads inside a worker; 0 = inference.threads")
    web_port: int = Field(6066, ge=1, le=65535, description="Faust's web server (bound to 127.0.0.1)")
    # Production values; tests shorten them (README "Streaming worker").
    session_timeout_s: float = Field(30.0, gt=0, description="Kafka group session timeout")
    heartbeat_s: float = Field(3.0, gt=0, description="Kafka group heartbeat interval")
    rebalance_timeout_s: float = Field(60.0, gt=0, description="Kafka group rebalance timeout")
    commit_interval_s: float = Field(1.0, gt=0, description="how often consumed offsets are committed")
    unassigned_exit_s: float = Field(
        300.0, ge=0, description="exit (code 70, for the supervisor to restart) after this long without a group "
        "assignment: a worker stuck rejoining after a broker outage; 0 = never"
    )


class StreamSettings(Part):
    """What the pipeline does with each micro-batch: limits, entity watchlist, after-batch hooks."""

    flat_prefix: ClassVar[str] = "stream_"
    flat_names: ClassVar[dict[str, str]] = {"watchlist": "watchlist"}

    max_batch: int = Field(256, ge=1, description="records per micro-batch (the most, when adaptive_batch)")
    batch_within_s: float = Field(0.02, gt=0, description="the longest a lone message waits for batch-mates")
    adaptive_batch: bool = Field(
        True,
        description="size each batch from the arrival rate and batch cost (README 'Micro-batching'); "
        "false = always wait for max_batch records or batch_within_s",
    )
    batch_headroom: float = Field(
        1.5, ge=1.0, description="adaptive batches are sized to process this many times the arrival rate"
    )
    max_message_bytes: int = Field(64 * 1024, ge=64, description="larger records go to the DLQ as oversize")
    max_entities: int = Field(32, ge=1, description="more entities in one message go to the DLQ")
    max_future_ms: int = Field(5 * 60 * 1000, ge=0, description="reject event times this far ahead of the clock")
    max_json_depth: int = Field(16, ge=2, le=500, description="deeper JSON nesting goes to the DLQ as too_deep")
    # le: the base64 of this much plus the record's other fields stays under the broker's 1 MiB default.
    dlq_original_max_bytes: int = Field(
        64 * 1024, ge=0, le=512 * 1024,
        description="a dead letter keeps at most this much of the original (plus its sha256 and length)",
    )  # fmt: skip
    watchlist: Path | None = Field(
        None, description="entity -> aliases YAML; unset = the sample streams/watchlist.yaml"
    )
    hooks: list[str] = Field(
        [],
        description='"package.module:factory" entries; factory(settings) returns an after-batch hook (env: JSON list)',
    )


class WindowSettings(Part):
    """Redis windows: event-time buckets per entity; any window is summed from them."""

    flat_prefix: ClassVar[str] = "window_"

    prefix: str = Field("sentimon", description="Redis key prefix of the windows")
    bucket_ms: int = Field(60_000, ge=1000, description="bucket width")
    allowed_lateness_ms: int = Field(10 * 60 * 1000, ge=0, description="older events count as late, not applied")
    retention_ms: int = Field(8 * 24 * 3600 * 1000, ge=60_000, description="bucket TTL: covers a 7 d baseline")
    idle_partition_ms: int = Field(
        300_000, ge=0, description="a source partition with no new events this long (wall clock) no longer holds "
        "back the watermark silence is judged at"
    )


class AlertSettings(Part):
    """The alert engine: rule files, shared state in Redis, notification sinks."""

    flat_prefix: ClassVar[str] = "alerts_"

    rules: list[Path] = Field([], description="rule files; empty = the shipped stock + opinion sets (env: JSON list)")
    prefix: str = Field("sentimon:alerts", description="Redis keys of the shared alert states and example texts")
    state_ttl_s: int = Field(30 * 24 * 3600, ge=60, description="an idle (entity, rule) state is forgotten after this")
    examples: int = Field(5, ge=0, description="recent negative texts kept per entity for the payload")
    top_terms: int = Field(5, ge=0, description="frequent terms of those texts named in the payload")
    kafka: bool = Field(True, description="write notifications to the alerts topic")
    webhooks: list[str] = Field([], description="URLs each notification is POSTed to (env: JSON list)")
    webhook_format: Literal["json", "alertmanager"] = Field(
        "json", description="body of a webhook POST; alertmanager = an /api/v2/alerts body"
    )
    webhook_timeout_s: float = Field(5.0, gt=0, description="per webhook POST")
    webhook_attempts: int = Field(
        5, ge=1, description="tries per webhook POST in one round; then the alert waits for the next timer round"
    )
    webhook_backoff_s: float = Field(0.5, ge=0, description="first retry wait; doubles up to webhook_backoff_max_s")
    webhook_backoff_max_s: float = Field(30.0, ge=0, description="longest wait between webhook retries")
    webhook_queue: int = Field(
        1000, ge=1, description="pending webhook posts; beyond it new ones wait for the next timer round (counted)"
    )
    silence_interval_s: float = Field(
        30.0, gt=0, description="timer: silence check and deferred evaluations (wall clock)"
    )
    eval_interval_ms: int = Field(
        10_000, ge=0, description="an entity is evaluated at the event-time boundaries this far apart, rounded up "
        "to whole window buckets (0 = every bucket)"
    )
    max_tracked_entities: int = Field(
        100_000, ge=1, description="entities a worker remembers its evaluation progress for (LRU)"
    )
    lease_s: float = Field(90.0, gt=0, description="a worker silent this long has its undelivered alerts taken over")


class ConsoleSettings(Part):
    """`sentimon console`: the live web board over the windows, the alert history and the worker's metrics."""

    flat_prefix: ClassVar[str] = "console_"

    host: str = Field("127.0.0.1", description="bind address; anything but loopback requires an access token")
    port: int = Field(8088, ge=1, le=65535, description="HTTP port of the board")
    token: str | None = Field(
        None, description="access token (?token= once, then a cookie); unset off loopback = a random one, printed"
    )
    public_url: str | None = Field(
        None, description="the board's address as users reach it, for links in alert payloads; unset = http://host:port"
    )
    refresh_s: float = Field(2.0, gt=0, description="how often the page polls for fresh data")
    board_limit: int = Field(50, ge=1, description="entities on the board and in its /metrics (top-N by 24 h mentions)")
    examples_lookback: int = Field(
        5000, ge=0, description="scored records per partition read back at start for example posts"
    )

    def base_url(self) -> str:
        """``public_url``, else the address the console binds (loopback by default)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    def entity_url(self, entity: str, at_ms: int | None = None, range_name: str = "6h") -> str:
        """The console's page of ``entity`` around ``at_ms`` (an alert's start): the link alert payloads carry.
        Here, below every layer, so that the alerts package can build it without importing the console."""
        from urllib.parse import quote, urlencode

        query = {"range": range_name, **({"at": str(at_ms)} if at_ms is not None else {})}
        return f"{self.base_url()}/entity/{quote(entity, safe='')}?{urlencode(query)}"


class DriftSettings(Part):
    """The drift monitor (worker hook sentimon.streams.drift:stream_hook; `sentimon drift`): windows, thresholds"""

    flat_prefix: ClassVar[str] = "drift_"

    enabled: bool = Field(True, description="every worker runs the drift hook (idle until a reference exists)")
    reference: Path | None = Field(
        None,
        description="the reference JSON `sentimon drift reference` writes and workers read (re-read when it "
        "changes); unset = <stack.state_dir>/drift/reference.json",
    )
    window_events: int = Field(
        1000, ge=20, description="scored events per drift window, per (model, topic), when a reference is built"
    )
    min_reference_windows: int = Field(6, ge=2, description="full windows a (model, topic) needs for a reference")
    js_threshold: float = Field(
        0.1, gt=0, le=1, description="label-mix drift: Jensen-Shannon distance (base 2) at or above this"
    )
    sigma_threshold: float = Field(
        3.0, gt=0, description="length and unknown-token drift: window mean this many reference sigmas away"
    )
    confirm_windows: int = Field(
        2, ge=1, description="label-mix, length and unknown-token drift: windows in a row past the threshold"
    )
    ph_delta: float = Field(0.5, ge=0, description="confidence Page-Hinkley: shift ignored, in reference sigmas")
    ph_threshold: float = Field(8.0, gt=0, description="confidence Page-Hinkley: alarm level, in reference sigmas")
    unk_sample: int = Field(
        32, ge=0, description="texts per batch tokenized for the unknown-token rate (ONNX bundles); 0 = off"
    )


def check_lateness(stream: StreamSettings, windows: WindowSettings) -> None:
    """An event may be ``max_future_ms`` ahead of the clock and still be applied, moving its partition's
    watermark that far ahead; on-time events of that partition are then late unless the lateness covers it."""
    if stream.max_future_ms >= windows.allowed_lateness_ms:
        raise ValueError(
            f"stream.max_future_ms ({stream.max_future_ms}) must be below windows.allowed_lateness_ms "
            f"({windows.allowed_lateness_ms}): one message with an early clock would make on-time ones late; "
            "lower the first (SENTIMON_STREAM__MAX_FUTURE_MS) or raise the second "
            "(SENTIMON_WINDOWS__ALLOWED_LATENESS_MS)"
        )
