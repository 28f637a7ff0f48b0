"""PostgreSQL: initdb into the state dir, own port, loopback TCP only, trust auth for the local user."""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from pathlib import Path

from sentimon.core.settings import setting_name
from sentimon.infra.errors import InfraError
from sentimon.infra.service import Service, require_binary

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
DB_USER = "sentimon"
DB_NAME = "sentimon"
# PostgreSQL refuses to run as root; as root we run it as the account the Debian package creates.
ROOT_RUNS_AS = "postgres"


class PostgresService(Service):
    name = "database"
    port_setting = "postgres_port"
    external_setting = "database_url"
    endpoint = "database"

    @property
    def user(self) -> str | None:
        return ROOT_RUNS_AS if os.geteuid() == 0 else None

    def check_binaries(self) -> None:
        self.initdb = require_binary("initdb", "postgresql", PG_BIN_DIRS)
        self.postgres = require_binary("postgres", "postgresql", PG_BIN_DIRS)
        if self.user:
            try:
                pwd.getpwnam(self.user)
            except KeyError:
                raise InfraError(
                    f"running as root, but there is no '{self.user}' account to run PostgreSQL as "
                    "(PostgreSQL refuses root). Install the postgresql package, which creates it, or run "
                    "sentimon as an ordinary user."
                ) from None

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    def prepare(self) -> None:
        if self.user:
            self._grant_to_service_user(self.user)
        if (self.data_dir / "PG_VERSION").is_file():
            return
        cmd = [self.initdb, "-D", str(self.data_dir), "-U", DB_USER, "--auth=trust", "-E", "UTF8",
               "--locale=C", "--no-instructions"]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, user=self.user)
        if result.returncode != 0:
            raise InfraError(f"initdb into {self.data_dir} failed:\n{(result.stdout + result.stderr)[-2000:]}")

    def _grant_to_service_user(self, user: str) -> None:
        entry = pwd.getpwnam(user)
        state_dir = self.settings.stack.state_dir.resolve()
        state_dir.chmod(0o711)  # ours: let the service account pass through to its own data dir
        for parent in state_dir.parents:
            info = parent.stat()
            if not info.st_mode & stat.S_IXOTH and info.st_uid != entry.pw_uid:
                raise InfraError(
                    f"PostgreSQL runs as '{user}' (it refuses root), who cannot enter {parent}. "
                    f"Set {setting_name('stack', 'state_dir')} to a directory outside it, e.g. /var/lib/sentimon."
                )
        os.chown(self.dir, entry.pw_uid, entry.pw_gid)

    def command(self) -> list[str]:
        return [self.postgres, "-D", str(self.data_dir), "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
                "-c", f"unix_socket_directories={self.dir}", "-c", "max_connections=50",
                "-c", "shared_buffers=64MB", "-c", "fsync=on"]  # fmt: skip

    def after_start(self) -> None:
        import psycopg

        conn = psycopg.connect(host="127.0.0.1", port=self.port, user=DB_USER, dbname="postgres", autocommit=True)
        with conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DB_NAME}"')

    def probe(self) -> bool:
        from sqlalchemy import create_engine, text
        from sqlalchemy.exc import SQLAlchemyError

        url = self.url
        if self.managed:  # before after_start the sentimon database may not exist yet
            url = url.rsplit("/", 1)[0] + "/postgres"
        try:
            engine = create_engine(url, connect_args=_connect_args(url), poolclass=_null_pool())
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
            return True
        except (SQLAlchemyError, OSError, ValueError, ImportError):
            return False


def _connect_args(url: str) -> dict:
    return {"connect_timeout": 2} if url.startswith("postgresql") else {}


def _null_pool():
    from sqlalchemy.pool import NullPool

    return NullPool
