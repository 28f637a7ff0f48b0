"""The local stack without Docker: a real Kafka broker (Maven Central jars), Redis and PostgreSQL.

Entry points: ``Stack(settings).up()/down()/status()`` and ``ensure_topics(...)``.
"""

from infra.errors import InfraError, MissingDependency, ServiceStartError
from infra.stack import SERVICE_NAMES, Stack
from infra.topics import TopicSpec, ensure_topics, pipeline_topics

__all__ = [
    "SERVICE_NAMES",
    "InfraError",
    "MissingDependency",
    "ServiceStartError",
    "Stack",
    "TopicSpec",
    "ensure_topics",
    "pipeline_topics",
]
