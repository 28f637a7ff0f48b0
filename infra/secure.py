"""What `sentimon up --secure` keeps in a state dir: generated passwords, the local CA, and the client settings.

``<state_dir>/secrets.toml`` (0600) holds every password the stack was made with, including the two only `up`
uses (the broker's own SCRAM login and PostgreSQL's bootstrap superuser); its presence marks the state dir
secure, so a later `up`, `down` or `status` without ``--config`` still starts, stops and probes it with them.
``<state_dir>/client.toml`` (0600) is a config file with what a client needs (ports, logins, CA, client
certificate): `sentimon --config <state_dir>/client.toml ...`.
"""

from __future__ import annotations

import secrets
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sentimon.core.settings import Settings, setting_name
from sentimon.infra.certs import CertFiles, ensure_certs, write_private
from sentimon.infra.errors import InfraError

SECRETS_FILE = "secrets.toml"
CLIENT_FILE = "client.toml"
TLS_DIR = "tls"

KAFKA_MECHANISM = "SCRAM-SHA-512"
KAFKA_BROKER_USER = "sentimon-broker"  # the broker's login to its own listener (inter-broker traffic)
KAFKA_CLIENT_USER = "sentimon"
REDIS_USER = "sentimon"
DATABASE_ADMIN = "sentimon_admin"  # the bootstrap superuser: `up` creates the application role with it, nothing else
DATABASE_ROLE = "sentimon"  # the application role, the user of ``stack.database``
# Created by a plain `up`: a secure stack cannot adopt them (Kafka formatted without SCRAM logins, PostgreSQL
# with trust auth and a superuser application role).
PLAIN_DATA = ("kafka/data/meta.properties", "database/data/PG_VERSION")


@dataclass(frozen=True)
class Secrets:
    kafka_broker_password: str
    kafka_client_password: str
    redis_password: str
    database_password: str
    database_admin_password: str

    @classmethod
    def generate(cls) -> Secrets:
        # URL-safe characters: they go into URLs, TOML, a JAAS line and SQL literals without escaping.
        return cls(**{name: secrets.token_urlsafe(24) for name in cls.__dataclass_fields__})


class SecureState:
    """The secure-stack files of one state dir."""

    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.secrets_file = state_dir / SECRETS_FILE
        self.client_file = state_dir / CLIENT_FILE
        self.certs = CertFiles(state_dir / TLS_DIR)

    def exists(self) -> bool:
        return self.secrets_file.is_file()

    def secrets(self) -> Secrets:
        try:
            values = tomllib.loads(self.secrets_file.read_text())
            return Secrets(**values)
        except (OSError, tomllib.TOMLDecodeError, TypeError) as exc:
            raise InfraError(
                f"{self.secrets_file} (the secure stack's passwords) is unreadable or damaged ({type(exc).__name__}); "
                f"the stack in {self.state_dir} cannot be started without it: remove the state dir and run "
                "`sentimon up --secure` again"
            ) from None

    def create(self) -> None:
        """Generate passwords and certificates for a state dir that holds no plain stack (idempotent)."""
        if self.exists():
            return
        plain = [p for p in PLAIN_DATA if (self.state_dir / p).exists()]
        if plain:
            raise InfraError(
                f"{self.state_dir} holds a stack started without --secure ({', '.join(plain)}); a secure stack needs "
                f"a fresh state dir: set {setting_name('stack', 'state_dir')} to a new directory, or run "
                f"`sentimon down` and remove {self.state_dir}"
            )
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        ensure_certs(self.certs.dir)
        import tomli_w

        write_private(self.secrets_file, tomli_w.dumps(asdict(Secrets.generate())).encode())

    def apply(self, settings: Settings) -> Settings:
        """``settings`` with this stack's logins, CA and client certificate for each service it launches (a
        service given by URL keeps the user's settings)."""
        return settings.replace(**self._values(settings))

    def _values(self, settings: Settings) -> dict[str, dict[str, Any]]:
        found = self.secrets()
        stack, certs = settings.stack, ensure_certs(self.certs.dir)
        values: dict[str, dict[str, Any]] = {"stack": {}}
        if stack.kafka_bootstrap is None:
            values["kafka"] = {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": KAFKA_MECHANISM,
                "sasl_username": KAFKA_CLIENT_USER,
                "sasl_password": found.kafka_client_password,
                "ssl_cafile": certs.ca_cert,
                "ssl_certfile": certs.client_cert,
                "ssl_keyfile": certs.client_key,
                "ssl_check_hostname": True,
            }
        if stack.redis_url is None:
            values["stack"].update(
                redis_username=REDIS_USER, redis_password=found.redis_password, redis_tls_cafile=certs.ca_cert
            )
        if stack.database_url is None:
            values["stack"]["database_password"] = found.database_password
        return values

    def write_client_config(self, settings: Settings) -> Path:
        """``client.toml`` for ``settings`` (already ``apply``-ed): where the stack is and how to log in."""
        import tomli_w

        stack = settings.stack
        values = self._values(settings)
        ports = ("kafka_port", "kafka_controller_port", "redis_port", "postgres_port")
        where = {name: getattr(stack, name) for name in ports}
        document = {
            "stack": {"state_dir": str(stack.state_dir.resolve()), **where, **_plain(values["stack"])},
            **({"kafka": _plain(values["kafka"])} if "kafka" in values else {}),
        }
        header = (
            "# Written by `sentimon up --secure`: the local stack's client settings, with its passwords.\n"
            "# Keep it private (mode 0600). Use it with: sentimon --config <this file> ...\n\n"
        )
        write_private(self.client_file, (header + tomli_w.dumps(document)).encode())
        return self.client_file


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in values.items()}
