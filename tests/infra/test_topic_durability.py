"""`topics create` durability against the real (single-broker) test Kafka: min.insync.replicas is set on the topics,
and a replication factor the cluster cannot hold is one error naming the setting."""

from __future__ import annotations

import pytest

from sentimon.infra import InfraError, TopicSpec, ensure_topics, kafka_clients
from tests.streams.conftest import wait_for


def topic_config(settings, name: str) -> dict[str, str]:
    from kafka.admin import ConfigResource, ConfigResourceType

    admin = kafka_clients.admin(settings)
    try:
        found = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])["topic"]
        return {key: entry["value"] for key, entry in found.get(name, {}).items()}
    finally:
        admin.close()


@pytest.mark.integration
def test_min_insync_replicas_is_set_on_new_and_existing_topics(stack_settings, unique) -> None:
    durable = stack_settings.replace(topics={"min_insync_replicas": 1})
    new, old = TopicSpec(f"{unique}.new", 1, 3_600_000), TopicSpec(f"{unique}.old", 1, 3_600_000)
    assert ensure_topics(durable, [new]) == {new.name: "created"}
    assert topic_config(stack_settings, new.name).get("min.insync.replicas") == "1"
    ensure_topics(stack_settings, [old])  # unset: the broker's default, no override
    assert "min.insync.replicas" not in topic_config(stack_settings, old.name)
    assert ensure_topics(durable, [old]) == {old.name: "exists"}
    wait_for(lambda: topic_config(stack_settings, old.name).get("min.insync.replicas") == "1", 20, "the override")


@pytest.mark.integration
def test_more_replicas_than_brokers_is_one_error_naming_the_setting(stack_settings, unique) -> None:
    three = stack_settings.replace(topics={"replication_factor": 3, "min_insync_replicas": 2})
    spec = TopicSpec(f"{unique}.replicated", 1, 3_600_000)
    with pytest.raises(InfraError, match=r"has 1 broker\(s\), fewer than topics\.replication_factor .* = 3"):
        ensure_topics(three, [spec])
    # Nothing was created half-way.
    admin = kafka_clients.admin(stack_settings)
    try:
        assert spec.name not in admin.list_topics()
    finally:
        admin.close()
    # An existing topic with fewer copies is kept, and the action says how to add them.
    ensure_topics(stack_settings, [spec])
    action = ensure_topics(three.replace(topics={"min_insync_replicas": 1}), [spec])[spec.name]
    assert action.startswith("exists") and "replication factor 1 < topics.replication_factor 3" in action
