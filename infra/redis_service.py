"""Redis with append-only persistence, data under the state dir, loopback only.

``appendfsync always`` by default (``stack.redis_appendfsync``): a worker acknowledges a Kafka batch once Redis
answered its window update, so an update Redis acknowledged but had not yet fsynced would be lost for good
by a crash of Redis (kill -9, power): ``everysec`` loses up to a second of them. Redis fsyncs once per event
loop round for all clients, and the worker writes one script call per batch, so ``always`` costs one fsync per
batch (sub-millisecond on SSDs; measured by bench/soak.py).

In a secure state dir (`up --secure`) Redis listens with TLS only (the local CA's server certificate), the
``default`` user is off and one ACL user, without the admin commands, logs in; the login lives in a 0600 config
file, not on the command line.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from sentimon.infra.certs import ensure_certs, write_private
from sentimon.infra.secure import REDIS_USER, SecureState
from sentimon.infra.service import Service, require_binary


class RedisService(Service):
    name = "redis"
    port_setting = "redis_port"
    external_setting = "redis_url"
    endpoint = "redis"

    def check_binaries(self) -> None:
        self.binary = require_binary("redis-server", "redis-server")

    @property
    def config_file(self) -> Path:
        return self.dir / "redis.conf"

    def prepare(self) -> None:
        state = SecureState(self.settings.stack.state_dir)
        if not state.exists():
            self.config_file.unlink(missing_ok=True)
            return
        certs = ensure_certs(state.certs.dir)
        lines = [
            "port 0",  # no plain TCP at all
            f"tls-port {self.port}",
            f"tls-cert-file {certs.server_cert}",
            f"tls-key-file {certs.server_key}",
            f"tls-ca-cert-file {certs.ca_cert}",
            "tls-auth-clients no",  # clients log in with the password; TLS keeps it off the wire
            "user default off",
            f"user {REDIS_USER} on >{state.secrets().redis_password} ~* &* +@all -@admin",
        ]
        write_private(self.config_file, ("\n".join(lines) + "\n").encode())

    def command(self) -> list[str]:
        common = [
            "--bind", "127.0.0.1", "--dir", str(self.dir),
            "--appendonly", "yes", "--appendfsync", self.settings.stack.redis_appendfsync, "--save", "",
            "--daemonize", "no", "--protected-mode", "yes", "--logfile", "",
        ]  # fmt: skip
        if self.config_file.is_file():  # secure: the ports and the login are in the file
            return [self.binary, str(self.config_file), *common]
        return [self.binary, "--port", str(self.port), *common]

    def probe(self) -> bool:
        import redis

        parsed = urlparse(self.url)
        if parsed.scheme not in ("redis", "rediss", "unix"):
            return False
        try:
            client = redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=2)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except (redis.RedisError, OSError, ValueError):
            return False
