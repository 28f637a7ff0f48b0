"""Create the pipeline's topics (partitions, retention) idempotently; Faust never creates source topics."""

from __future__ import annotations

from dataclasses import dataclass

from sentimon.core.settings import Settings, setting_name
from sentimon.infra import kafka_clients
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


def _unreachable(settings: Settings, exc: Exception) -> InfraError:
    return InfraError(
        f"Kafka at {settings.stack.kafka_servers} is unreachable ({type(exc).__name__}: {exc}); start it with "
        f"`sentimon up` or set {setting_name('stack', 'kafka_bootstrap')}; "
        f"{kafka_clients.settings_to_check(settings)}"
    )


def ensure_topics(settings: Settings, specs: list[TopicSpec]) -> dict[str, str]:
    """Create missing topics (``topics.replication_factor`` copies), grow partitions, and set retention and
    ``topics.min_insync_replicas`` on existing ones. Returns name -> action."""
    from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    replication = settings.topics.replication_factor
    min_insync = settings.topics.min_insync_replicas
    try:
        admin = kafka_clients.admin(settings, client_id="sentimon-topics", request_timeout_ms=15000)
    except KafkaError as exc:
        raise _unreachable(settings, exc) from None
    try:
        # kafka-python 3 names the key "name", 2.x "topic".
        described = {t.get("name", t.get("topic")): t for t in admin.describe_topics() if not t["error_code"]}
        existing = {name: len(t["partitions"]) for name, t in described.items()}
        if any(spec.name not in existing for spec in specs):
            brokers = len(admin.describe_cluster()["brokers"])
            if brokers < replication:
                raise InfraError(
                    f"the Kafka cluster at {settings.stack.kafka_servers} has {brokers} broker(s), fewer than "
                    f"{setting_name('topics', 'replication_factor')} = {replication}: lower it or add brokers"
                )
        actions: dict[str, str] = {}
        for spec in specs:
            config = {"retention.ms": str(spec.retention_ms)}
            if spec.max_message_bytes is not None:
                config["max.message.bytes"] = str(spec.max_message_bytes)
            if min_insync is not None:
                config["min.insync.replicas"] = str(min_insync)
            if spec.name not in existing:
                try:
                    admin.create_topics(
                        [NewTopic(spec.name, spec.partitions, replication_factor=replication, topic_configs=config)]
                    )
                    actions[spec.name] = "created"
                    continue
                except TopicAlreadyExistsError:  # created concurrently by someone else
                    existing[spec.name] = spec.partitions
            changes = []
            if existing[spec.name] < spec.partitions:
                admin.create_partitions({spec.name: NewPartitions(total_count=spec.partitions)})
                changes.append(f"partitions {existing[spec.name]} -> {spec.partitions}")
            copies = _replicas(described.get(spec.name))
            if copies is not None and copies < replication:
                # Kafka changes an existing topic's replication only by a partition reassignment.
                changes.append(
                    f"replication factor {copies} < topics.replication_factor {replication}: "
                    "reassign its partitions (kafka-reassign-partitions.sh) to add copies"
                )
            # raise_on_unknown=False: a topic created a moment ago (here or concurrently) may not list its configs
            # yet, and kafka-python would call our own retention.ms "unrecognized".
            admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, spec.name, configs=config)], raise_on_unknown=False
            )
            actions[spec.name] = "exists" + (f" ({', '.join(changes)})" if changes else "")
        return actions
    except KafkaError as exc:
        raise InfraError(
            f"creating topics at {settings.stack.kafka_servers} failed: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        admin.close()


def _replicas(described: dict | None) -> int | None:
    # kafka-python 3 names the key "replica_nodes", 2.x "replicas".
    partitions = (described or {}).get("partitions") or []
    counts = [len(p.get("replica_nodes", p.get("replicas")) or ()) for p in partitions]
    return min(counts) if counts else None


def require_topics(settings: Settings, names: list[str], timeout_s: float = 5.0) -> None:
    """Fail fast (InfraError naming the fix) when Kafka does not answer within ``timeout_s`` or a topic is missing;
    a producer would otherwise block on metadata for a minute and log a line per retry."""
    from kafka.errors import KafkaError

    timeout_ms = int(timeout_s * 1000)
    try:
        admin = kafka_clients.admin(settings, client_id="sentimon-check", request_timeout_ms=timeout_ms,
                                    bootstrap_timeout_ms=timeout_ms)  # fmt: skip
    except KafkaError as exc:
        raise _unreachable(settings, exc) from None
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
