"""What every locally launched service shares: pid file, log, idempotent start, ready check, stop."""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from sentimon.core.redact import mask_url, mask_urls_in
from sentimon.core.settings import Settings, setting_name
from sentimon.infra import procs
from sentimon.infra.errors import InfraError, MissingDependency, ServiceStartError
from sentimon.infra.lock import stack_lock


@dataclass(frozen=True)
class ServiceStatus:
    """``url`` is for display: its password is masked (``Service.display_url``)."""

    name: str
    url: str
    up: bool
    managed: bool
    pid: int | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", mask_url(self.url))  # whoever builds one, it never carries a password

    def as_dict(self) -> dict:
        key = "bootstrap" if self.name == "kafka" else "url"
        return {key: self.url, "up": self.up, "managed": self.managed, "pid": self.pid}


# How long a second `up` waits for the lock: the holder may be starting every service of the stack in turn.
LOCK_WAIT_STARTS = 3


class Service(ABC):
    name: str  # kafka | redis | database
    # Fields of the settings' stack part: the local port, the external URL (set: launch nothing), the endpoint.
    port_setting: str
    external_setting: str
    endpoint: str

    def __init__(self, settings: Settings):
        self.settings = settings
        self.dir = settings.stack.state_dir / self.name
        self.pid_file = settings.stack.state_dir / "run" / f"{self.name}.pid"
        self.log_file = settings.stack.state_dir / "logs" / f"{self.name}.log"

    @property
    def url(self) -> str:
        return getattr(self.settings.stack, self.endpoint)

    @property
    def display_url(self) -> str:
        """``url`` with its password masked: the only form of it a message or a status may show."""
        return mask_url(self.url)

    @property
    def managed(self) -> bool:
        """False when the user pointed sentimon at an existing service."""
        return getattr(self.settings.stack, self.external_setting) is None

    @property
    def port(self) -> int:
        return getattr(self.settings.stack, self.port_setting)

    @property
    def user(self) -> str | None:
        """The account the process runs as; None: this one."""
        return None

    # -- what each service defines
    @abstractmethod
    def command(self) -> list[str]: ...

    @abstractmethod
    def probe(self) -> bool:
        """True when the service answers a real request."""

    def check_binaries(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Raise MissingDependency naming the package to install."""

    def prepare(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """One-time setup before the first start (download, init data dir)."""

    def after_start(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Setup that needs the running service (create the database)."""

    # -- shared lifecycle
    def pid(self) -> int | None:
        return procs.read_pid(self.pid_file, marker=self.dir.resolve())

    def status(self) -> ServiceStatus:
        return ServiceStatus(
            self.name, self.display_url, self.probe(), self.managed, self.pid() if self.managed else None
        )

    def lock(self):
        """The state dir's lock (``infra.lock``), held while this service starts or stops; waits up to the time
        a whole stack may take to start."""
        return stack_lock(
            self.settings.stack.state_dir, timeout_s=LOCK_WAIT_STARTS * self.settings.stack.startup_timeout_s
        )

    def start(self) -> bool:
        """Start if not running; return True if a process was launched. Blocks until ready.

        Under the state dir's lock (a concurrent `up` waits) and umask 077: the directories, logs and pid files it
        creates, and the files the service itself writes, are its owner's only."""
        if not self.managed:
            return False
        with self.lock(), procs.private_umask():
            return self._start()

    def _start(self) -> bool:
        running = self.pid()
        if running is not None:
            self._wait_ready(running)
            return False
        if procs.port_open("127.0.0.1", self.port):
            raise InfraError(
                f"{self.name}: port {self.port} on 127.0.0.1 is taken by a process sentimon did not start. "
                f"Stop it, choose another port with {setting_name('stack', self.port_setting)}, or point sentimon "
                f"at it with {setting_name('stack', self.external_setting)}."
            )
        self.check_binaries()
        procs.make_private_dirs(self.settings.stack.state_dir, self.dir, self.pid_file.parent, self.log_file.parent)
        self.prepare()
        pid = procs.spawn(self.command(), pid_file=self.pid_file, log_file=self.log_file, cwd=self.dir, user=self.user)
        self._wait_ready(pid)
        self.after_start()
        return True

    def _wait_ready(self, pid: int) -> None:
        timeout_s = self.settings.stack.startup_timeout_s

        def ready() -> bool:
            if not procs.alive(pid):
                raise ServiceStartError(
                    f"{self.name} exited during start-up. Last lines of {self.log_file}:\n{self._log_tail()}"
                )
            return self.probe()

        if not procs.wait_until(ready, timeout_s, interval_s=0.3):
            raise ServiceStartError(
                f"{self.name} was not ready within {timeout_s:.0f} s ({setting_name('stack', 'startup_timeout_s')}). "
                f"Last lines of {self.log_file}:\n{self._log_tail()}"
            )

    def _log_tail(self) -> str:
        return mask_urls_in(procs.tail(self.log_file))

    def stop(self) -> bool:
        """Stop the process we started, if any; return True if one was stopped."""
        if not self.settings.stack.state_dir.exists():
            return False
        with self.lock():
            return self._stop()

    def _stop(self) -> bool:
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        procs.stop(pid)
        self.pid_file.unlink(missing_ok=True)
        return True


def require_binary(name: str, package: str, search: list[Path] | None = None) -> str:
    found = shutil.which(name)
    for directory in search or []:
        if found:
            break
        candidate = directory / name
        if candidate.is_file():
            found = str(candidate)
    if not found:
        raise MissingDependency(
            f"'{name}' was not found. Install it with: sudo apt-get install -y {package} "
            f"(or run `make bootstrap`, which installs the system packages sentimon needs)."
        )
    return found
