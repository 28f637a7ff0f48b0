"""Create the pipeline's topics (partitions, retention) idempotently; Faust never creates source topics."""

from __future__ import annotations

from dataclasses import dataclass

from sentimon.core.settings import Settings, setting_name
from sentimon.infra.errors import InfraError


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int
    max_message_bytes: int | None = None  # None: the broker's default (message.max.bytes)


def pipeline_topics(settings: Settings) -> list[TopicSpec]:
    p = settings.topics.partitions
    return [
        # The worker dead-letters anything over stream.max_message_bytes; this bounds what producers can push.
        TopicSpec(settings.topics.social, p, settings.topics.raw_retention_ms, settings.topics.raw_max_message_bytes),
        TopicSpec(settings.topics.market, p, settings.topics.raw_retention_ms, settings.topics.raw_max_message_bytes),
        TopicSpec(settings.topics.scored, p, settings.topics.scored_retention_ms),
        TopicSpec(settings.topics.dlq, 1, settings.topics.dlq_retention_ms),
        TopicSpec(settings.topics.alerts, 1, settings.topics.alerts_retention_ms),
    ]


def ensure_topics(bootstrap: str, specs: list[TopicSpec]) -> dict[str, str]:
    """Create missing topics, grow partitions and set retention on existing ones. Returns name -> action."""
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="sentimon-topics", request_timeout_ms=15000)
    except KafkaError as exc:
        raise InfraError(
            f"Kafka at {bootstrap} is unreachable ({exc}); start it with `sentimon up` or set "
            f"{setting_name('stack', 'kafka_bootstrap')}"
        ) from None
    try:
        # kafka-python 3 names the key "name", 2.x "topic".
        described = admin.describe_topics()
        existing = {t.get("name", t.get("topic")): len(t["partitions"]) for t in described if not t["error_code"]}
        actions: dict[str, str] = {}
        for spec in specs:
            config = {"retention.ms": str(spec.retention_ms)}
            if spec.max_message_bytes is not None:
                config["max.message.bytes"] = str(spec.max_message_bytes)
            if spec.name not in existing:
                try:
                    admin.create_topics(
                        [NewTopic(spec.name, spec.partitions, replication_factor=1, topic_configs=config)]
                    )
                    actions[spec.name] = "created"
                    continue
                except TopicAlreadyExistsError:  # created concurrently by someone else
                    existing[spec.name] = spec.partitions
            changes = []
            if existing[spec.name] < spec.partitions:
                admin.create_partitions({spec.name: NewPartitions(total_count=spec.partitions)})
                changes.append(f"partitions {existing[spec.name]} -> {spec.partitions}")
            admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, spec.name, configs=config)])
            actions[spec.name] = "exists" + (f" ({', '.join(changes)})" if changes else "")
        return actions
    finally:
        admin.close()


def require_topics(bootstrap: str, names: list[str], timeout_s: float = 5.0) -> None:
    """Fail fast (InfraError naming the fix) when Kafka does not answer within ``timeout_s`` or a topic is missing;
    a producer would otherwise block on metadata for a minute and log a line per retry."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    timeout_ms = int(timeout_s * 1000)
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="sentimon-check", request_timeout_ms=timeout_ms,
                                 bootstrap_timeout_ms=timeout_ms)  # fmt: skip
    except KafkaError as exc:
        raise InfraError(
            f"Kafka at {bootstrap} is unreachable ({type(exc).__name__}); start it with `sentimon up` or set "
            f"{setting_name('stack', 'kafka_bootstrap')}"
        ) from None
    try:
        existing = set(admin.list_topics())
    finally:
        admin.close()
    missing = [n for n in names if n not in existing]
    if missing:
        raise InfraError(
            f"topic {', '.join(missing)} does not exist; create the pipeline's topics with `sentimon topics create` "
            "(or name an existing topic)"
        )
