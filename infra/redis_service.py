"""Redis with append-only persistence, data under the state dir, loopback only.

``appendfsync always`` by default (``stack.redis_appendfsync``): a worker acknowledges a Kafka batch once Redis
answered its window update, so an update Redis acknowledged but had not yet fsynced would be lost for good
by a crash of Redis (kill -9, power): ``everysec`` loses up to a second of them. Redis fsyncs once per event
loop round for all clients, and the worker writes one script call per batch, so ``always`` costs one fsync per
batch (sub-millisecond on SSDs; measured by bench/soak.py).
"""

from __future__ import annotations

from urllib.parse import urlparse

from sentimon.infra.service import Service, require_binary


class RedisService(Service):
    name = "redis"
    port_setting = "redis_port"
    external_setting = "redis_url"
    endpoint = "redis"

    def check_binaries(self) -> None:
        self.binary = require_binary("redis-server", "redis-server")

    def command(self) -> list[str]:
        return [
            self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir),
            "--appendonly", "yes", "--appendfsync", self.settings.stack.redis_appendfsync, "--save", "",
            "--daemonize", "no", "--protected-mode", "yes", "--logfile", "",
        ]  # fmt: skip

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
