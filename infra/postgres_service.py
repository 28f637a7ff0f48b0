"""PostgreSQL: initdb into the state dir, own port, loopback TCP only.

Plain `up`: trust auth, the application's role is the bootstrap superuser. Secure state dir (`up --secure`):
scram-sha-256 for every connection, a bootstrap superuser (``sentimon_admin``) whose password only `up` uses, and
an application role ``sentimon`` (LOGIN, no superuser, no CREATEROLE/CREATEDB) that owns the ``sentimon``
database and nothing else; other databases refuse it a connection.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from pathlib import Path

from sentimon.core.settings import setting_name
from sentimon.infra.certs import write_private
from sentimon.infra.errors import InfraError
from sentimon.infra.secure import DATABASE_ADMIN, DATABASE_ROLE, SecureState
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

    @property
    def secure(self) -> SecureState | None:
        state = SecureState(self.settings.stack.state_dir)
        return state if state.exists() else None

    def prepare(self) -> None:
        if self.user:
            self._grant_to_service_user(self.user)
        if (self.data_dir / "PG_VERSION").is_file():
            return
        secure = self.secure
        if secure is None:
            self._initdb(DB_USER, "--auth=trust")
            return
        # The superuser's password reaches initdb in a file only it reads, never on a command line.
        pwfile = self.dir / "initdb.pw"
        write_private(pwfile, secure.secrets().database_admin_password.encode())
        try:
            if self.user:
                entry = pwd.getpwnam(self.user)
                os.chown(pwfile, entry.pw_uid, entry.pw_gid)
            self._initdb(DATABASE_ADMIN, "--auth=scram-sha-256", f"--pwfile={pwfile}")
        finally:
            pwfile.unlink(missing_ok=True)

    def _initdb(self, superuser: str, *auth: str) -> None:
        cmd = [self.initdb, "-D", str(self.data_dir), "-U", superuser, *auth, "-E", "UTF8", "--locale=C",
               "--no-instructions"]  # fmt: skip
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

        secure = self.secure
        if secure is None:
            conn = psycopg.connect(host="127.0.0.1", port=self.port, user=DB_USER, dbname="postgres", autocommit=True)
            with conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
                if not exists:
                    conn.execute(f'CREATE DATABASE "{DB_NAME}"')
            return
        found = secure.secrets()
        conn = psycopg.connect(
            host="127.0.0.1", port=self.port, user=DATABASE_ADMIN, password=found.database_admin_password,
            dbname="postgres", autocommit=True,
        )  # fmt: skip
        with conn:
            _create_application_role(conn, found.database_password)

    def _admin_url(self) -> str:
        assert self.secure is not None
        password = self.secure.secrets().database_admin_password
        return f"postgresql+psycopg://{DATABASE_ADMIN}:{password}@127.0.0.1:{self.port}/postgres"

    def probe(self) -> bool:
        from sqlalchemy import create_engine, text
        from sqlalchemy.exc import SQLAlchemyError

        url = self.url
        if self.managed:  # before after_start the sentimon database (and in a secure stack its role) may not exist
            url = self._admin_url() if self.secure else url.rsplit("/", 1)[0] + "/postgres"
        try:
            engine = create_engine(url, connect_args=_connect_args(url), poolclass=_null_pool())
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
            return True
        except (SQLAlchemyError, OSError, ValueError, ImportError):
            return False


def _create_application_role(conn, password: str) -> None:
    """The application role and its database, created once by the superuser (idempotent)."""
    from psycopg import sql

    role = sql.Identifier(DATABASE_ROLE)
    if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (DATABASE_ROLE,)).fetchone():
        # The server gets the SCRAM verifier, never the password itself (no statement log can hold it).
        verifier = conn.pgconn.encrypt_password(password.encode(), DATABASE_ROLE.encode(), b"scram-sha-256").decode()
        conn.execute(
            sql.SQL(
                "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS PASSWORD {}"
            ).format(role, sql.Literal(verifier))
        )
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone():
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(DB_NAME), role))
    # Only its own database: no connection to the others (a superuser still connects anywhere).
    for other in ("postgres", "template1"):
        conn.execute(sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(sql.Identifier(other)))


def _connect_args(url: str) -> dict:
    return {"connect_timeout": 2} if url.startswith("postgresql") else {}


def _null_pool():
    from sqlalchemy.pool import NullPool

    return NullPool
