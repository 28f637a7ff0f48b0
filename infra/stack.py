"""The local stack: Kafka, Redis and PostgreSQL brought up and down together.

A state dir made by `up --secure` stays secure: every later ``Stack`` on it (`up`, `down`, `status`, with or
without ``--config``) starts and probes its services with the logins kept there (``infra.secure``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sentimon.core.settings import Settings
from sentimon.infra import procs
from sentimon.infra.errors import InfraError
from sentimon.infra.kafka_service import KafkaService
from sentimon.infra.lock import stack_lock
from sentimon.infra.postgres_service import PostgresService
from sentimon.infra.redis_service import RedisService
from sentimon.infra.secure import SecureState
from sentimon.infra.service import LOCK_WAIT_STARTS, Service, ServiceStatus

SERVICE_NAMES = ("kafka", "redis", "database")


class Stack:
    """``up`` is idempotent; ``down`` stops only processes this stack started (by pid file)."""

    def __init__(self, settings: Settings, only: tuple[str, ...] = SERVICE_NAMES):
        unknown = set(only) - set(SERVICE_NAMES)
        if unknown:
            raise InfraError(f"unknown service(s) {sorted(unknown)}; choose from {', '.join(SERVICE_NAMES)}")
        self.only = only
        self.secure_state = SecureState(settings.stack.state_dir)
        self._use(settings)

    def _use(self, settings: Settings) -> None:
        if self.secure_state.exists():
            settings = self.secure_state.apply(settings)
        self.settings = settings
        self.all_services: list[Service] = [KafkaService(settings), RedisService(settings), PostgresService(settings)]
        self.services = [s for s in self.all_services if s.name in self.only]

    @property
    def secure(self) -> bool:
        """True when the state dir was made by `up --secure`."""
        return self.secure_state.exists()

    @property
    def client_config(self) -> Path | None:
        """The client settings file of a secure stack (`sentimon --config FILE`), None for a plain one."""
        return self.secure_state.client_file if self.secure and self.secure_state.client_file.is_file() else None

    def up(self, on_event: Callable[[str, str], None] = lambda name, what: None, secure: bool = False) -> None:
        """Start every managed service not running; ``secure``: make a fresh state dir secure first (a secure one
        stays secure either way)."""
        if secure or self.secure:
            self._secure_state_dir()
            on_event("secure", f"TLS and logins on; client settings in {self.client_config}")
        if not any(service.managed for service in self.services):
            self._start(on_event)
            return
        # One `up` at a time: a second one waits here, then finds the services running.
        timeout_s = LOCK_WAIT_STARTS * self.settings.stack.startup_timeout_s
        with stack_lock(self.settings.stack.state_dir, timeout_s=timeout_s):
            self._start(on_event)

    def _start(self, on_event: Callable[[str, str], None]) -> None:
        # Check every binary before starting anything, so a missing one never leaves half a stack.
        for service in self.services:
            if service.managed and service.pid() is None:
                service.check_binaries()
        for service in self.services:
            if not service.managed:
                on_event(service.name, f"external at {service.display_url}: not launched")
                continue
            if service.pid() is None:  # already running: say so once, not "starting" first
                on_event(service.name, "starting")
            launched = service.start()
            on_event(service.name, f"{'started' if launched else 'already running'} at {service.display_url}")

    def _secure_state_dir(self) -> None:
        """Passwords and certificates made once (under the state dir's lock: two `up --secure` at once agree on
        them), then client.toml written for the current ports."""
        state_dir = self.settings.stack.state_dir
        timeout_s = LOCK_WAIT_STARTS * self.settings.stack.startup_timeout_s
        with stack_lock(state_dir, timeout_s=timeout_s), procs.private_umask():
            if not self.secure:
                running = [s.name for s in self.all_services if s.managed and s.pid() is not None]
                if running:
                    raise InfraError(
                        f"{', '.join(running)} of {state_dir} run without --secure; a secure stack needs a fresh "
                        "state dir: `sentimon down`, then use a new state dir (stack.state_dir)"
                    )
                self.secure_state.create()
                self._use(self.settings)
            self.secure_state.write_client_config(self.settings)

    def down(self, on_event: Callable[[str, str], None] = lambda name, what: None) -> None:
        for service in reversed(self.services):
            if service.managed:
                on_event(service.name, "stopped" if service.stop() else "was not running")

    def status(self) -> dict[str, ServiceStatus]:
        return {service.name: service.status() for service in self.services}
