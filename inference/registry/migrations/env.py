"""Alembic environment for the model registry, run programmatically by ``Registry.migrate`` (which passes an
open connection in ``config.attributes["connection"]``)."""

from __future__ import annotations

from alembic import context

from sentimon.inference.registry.tables import VERSION_TABLE, Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
