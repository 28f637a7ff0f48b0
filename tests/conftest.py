"""Shared fixtures. Integration tests get ONE real stack per session, started by the project's own launcher
(sentimon.infra.Stack) in a temporary state dir on free loopback ports, or the services named by
SENTIMON_KAFKA_BOOTSTRAP / SENTIMON_REDIS_URL / SENTIMON_DATABASE_URL when those are set.

Each test isolates itself with the ``unique`` fixture: its own topic names and Redis key prefix.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sentimon.core.host import free_port
from sentimon.core.settings import Settings, load_settings


def fresh_stack_settings(prefix: str, **overrides) -> tuple[Path, Settings]:
    """A new state dir and settings for a stack of our own on free loopback ports. Under /tmp, not pytest's 0700
    tmp root: as root, PostgreSQL runs as 'postgres' and must enter it."""
    state_dir = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    settings = load_settings(
        state_dir=state_dir,
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        redis_port=free_port(),
        postgres_port=free_port(),
        metrics_port=free_port(),
        web_port=free_port(),
        startup_timeout_s=90,
        **overrides,
    )
    return state_dir, settings


@pytest.fixture(scope="session")
def stack_settings() -> Iterator[Settings]:
    """Settings whose kafka_servers / redis / database point at running real services."""
    from sentimon.infra import Stack

    state_dir, settings = fresh_stack_settings("sentimon-test-")
    stack = Stack(settings)
    try:
        stack.up()
        yield settings
    finally:
        stack.down()
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> str:
    """A short name unique to this test, for topics and Redis key prefixes."""
    name = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40]
    return f"t-{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_topic(stack_settings: Settings) -> Callable[..., str]:
    """Create a topic (idempotently) on the test broker and return its name."""
    from sentimon.infra import TopicSpec, ensure_topics

    # Kept forever by default: tests write records stamped in the past (2023-2025), which a time-based retention
    # would delete at the broker's next retention check, minutes into the session.
    def make(name: str, partitions: int = 1, retention_ms: int = -1) -> str:
        ensure_topics(stack_settings, [TopicSpec(name, partitions, retention_ms)])
        return name

    return make
