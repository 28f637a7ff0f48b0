"""The local stack: Kafka, Redis and PostgreSQL brought up and down together."""

from __future__ import annotations

from collections.abc import Callable

from sentimon.core.settings import Settings
from sentimon.infra.errors import InfraError
from sentimon.infra.kafka_service import KafkaService
from sentimon.infra.postgres_service import PostgresService
from sentimon.infra.redis_service import RedisService
from sentimon.infra.service import Service, ServiceStatus

SERVICE_NAMES = ("kafka", "redis", "database")


class Stack:
    """``up`` is idempotent; ``down`` stops only processes this stack started (by pid file)."""

    def __init__(self, settings: Settings, only: tuple[str, ...] = SERVICE_NAMES):
        unknown = set(only) - set(SERVICE_NAMES)
        if unknown:
            raise InfraError(f"unknown service(s) {sorted(unknown)}; choose from {', '.join(SERVICE_NAMES)}")
        all_services: list[Service] = [KafkaService(settings), RedisService(settings), PostgresService(settings)]
        self.services = [s for s in all_services if s.name in only]

    def up(self, on_event: Callable[[str, str], None] = lambda name, what: None) -> None:
        # Check every binary before starting anything, so a missing one never leaves half a stack.
        for service in self.services:
            if service.managed and service.pid() is None:
                service.check_binaries()
        for service in self.services:
            if not service.managed:
                on_event(service.name, f"external at {service.url}: not launched")
                continue
            if service.pid() is None:  # already running: say so once, not "starting" first
                on_event(service.name, "starting")
            launched = service.start()
            on_event(service.name, f"{'started' if launched else 'already running'} at {service.url}")

    def down(self, on_event: Callable[[str, str], None] = lambda name, what: None) -> None:
        for service in reversed(self.services):
            if service.managed:
                on_event(service.name, "stopped" if service.stop() else "was not running")

    def status(self) -> dict[str, ServiceStatus]:
        return {service.name: service.status() for service in self.services}
