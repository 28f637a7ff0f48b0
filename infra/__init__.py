"""The local stack without Docker: a real Kafka broker (Maven Central jars), Redis and PostgreSQL.

Entry points: ``Stack(settings).up()/down()/status()`` and ``ensure_topics(...)``.
"""

from sentimon.infra.errors import InfraError, MissingDependency, ServiceStartError
from sentimon.infra.stack import SERVICE_NAMES, Stack
from sentimon.infra.topics import TopicSpec, ensure_topics, pipeline_topics, require_topics

__all__ = [
    "SERVICE_NAMES",
    "InfraError",
    "MissingDependency",
    "ServiceStartError",
    "Stack",
    "TopicSpec",
    "ensure_topics",
    "pipeline_topics",
    "require_topics",
]
