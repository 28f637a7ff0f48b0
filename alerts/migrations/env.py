"""Alembic environment for the alert history, run programmatically by ``alerts.history.History.migrate``.

The caller passes an open connection in ``config.attributes["connection"]``; for the alembic CLI
(``alembic -x url=sqlite:///alerts.db -c /dev/null ...``) a URL can be given with ``-x url=...``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from sentimon.alerts.history import VERSION_TABLE, Base, normalize_url


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("pass the database URL: alembic -x url=sqlite:///alerts.db ...")
    with create_engine(normalize_url(url)).begin() as conn:
        _run(conn)
