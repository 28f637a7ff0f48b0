"""SQL engines the way sentimon opens them: psycopg 3 for PostgreSQL URLs, connect timeouts, passwords hidden in
messages. Each package keeps its own tables and Alembic history; this is only the connection plumbing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError

from sentimon.core.errors import UserError
from sentimon.core.redact import mask_url, mask_urls_in


def normalize_url(url: str) -> str:
    """Route plain ``postgresql://`` URLs to psycopg 3 (the driver sentimon installs)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def safe_url(url: str) -> str:
    """The URL with its password hidden, for messages (``sentimon.core.redact.mask_url``)."""
    return mask_url(url)


def open_engine(url: str, connect_timeout_s: float, what: str, error: type[UserError] = UserError) -> Engine:
    """An engine for ``url`` (``what`` names the database in messages); ``error`` for a bad URL or a missing
    SQLite directory. Nothing connects yet: the first query does."""
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise error(
            f"{what} URL {mask_url(url)!r} is not a SQLAlchemy URL; use e.g. sqlite:///sentimon.db or "
            "postgresql://user@host:5432/db"
        ) from None
    args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        args["connect_timeout"] = max(1, int(connect_timeout_s))
    elif parsed.get_backend_name() == "sqlite":
        args["timeout"] = connect_timeout_s
        if parsed.database and parsed.database != ":memory:":
            parent = Path(parsed.database).expanduser().resolve().parent
            if not parent.is_dir():
                raise error(f"the {what} directory {parent} does not exist; create it first")
    try:
        return create_engine(url, connect_args=args, pool_pre_ping=True)
    except (ArgumentError, ImportError) as exc:
        raise error(f"cannot use {what} URL {mask_url(url)}: {mask_urls_in(str(exc))}") from None


def unreachable_detail(exc: Exception) -> str:
    """The driver's first line of a connection failure (SQLAlchemy wraps it in a long message)."""
    text = mask_urls_in(str(getattr(exc, "orig", exc))).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def upgrade(engine: Engine, migrations_dir: Path, lock_key: int) -> None:
    """Apply a package's Alembic migrations up to head, idempotently; on PostgreSQL under an advisory lock, so
    several processes starting at once migrate one after the other. Connection failures propagate as SQLAlchemy's
    OperationalError for the caller to name its database."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
