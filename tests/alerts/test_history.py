"""Alert history on SQLite: migrations, idempotent recording, listing, and the errors users see."""

from __future__ import annotations

import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from sentimon.alerts.errors import HistoryError
from sentimon.alerts.history import VERSION_TABLE, Base, History, normalize_url

from .history_cases import check_history_roundtrip, check_resolve_without_firing_row_is_kept


@pytest.fixture
def history(tmp_path):
    h = History(f"sqlite:///{tmp_path / 'alerts.db'}")
    yield h
    h.close()


def test_roundtrip(history):
    check_history_roundtrip(history, "AAPL")


def test_resolve_without_firing_row(history):
    check_resolve_without_firing_row_is_kept(history, "AAPL")


def test_migrations_match_the_orm_model_and_run_once(history, tmp_path):
    history.migrate()
    history.migrate()  # idempotent
    with history.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        assert ctx.get_current_revision() == "0002"
        assert compare_metadata(ctx, Base.metadata) == []
    tables = {r[0] for r in sqlite3.connect(tmp_path / "alerts.db").execute("SELECT name FROM sqlite_master")}
    assert {"sentimon_alerts", VERSION_TABLE} <= tables and "alembic_version" not in tables


def test_errors_name_the_database_and_the_fix(tmp_path):
    with pytest.raises(HistoryError, match="is not a SQLAlchemy URL"):
        History("not a url")
    with pytest.raises(HistoryError, match="directory .*missing does not exist"):
        History(f"sqlite:///{tmp_path / 'missing' / 'a.db'}")
    with pytest.raises(HistoryError, match="cannot use alert database URL nosuchdb"):
        History("nosuchdb://x/y")
    down = History("postgresql://sentimon@127.0.0.1:9/sentimon", connect_timeout_s=1)
    with pytest.raises(HistoryError, match=r"cannot reach the alert database at postgresql\+psycopg://sentimon@"
                                           r"127.0.0.1:9/sentimon .*sentimon up"):  # fmt: skip
        down.list()


def test_urls_use_psycopg3():
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
