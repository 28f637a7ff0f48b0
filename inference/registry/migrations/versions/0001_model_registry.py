"""model registry: versions, aliases, append-only events

Revision ID: r0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sentimon_model_versions",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("version", sa.String(16), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("manifest_version", sa.String(100), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.String(1000), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("registered_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "sentimon_model_aliases",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("alias", sa.String(16), primary_key=True),
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "sentimon_model_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("alias", sa.String(16), nullable=True),
        sa.Column("version", sa.String(16), nullable=True),
        sa.Column("previous", sa.String(16), nullable=True),
        sa.Column("who", sa.String(200), nullable=False),
        sa.Column("why", sa.Text(), nullable=False),
    )
    op.create_index("ix_sentimon_model_events_name", "sentimon_model_events", ["name", "id"])


def downgrade() -> None:
    op.drop_index("ix_sentimon_model_events_name", table_name="sentimon_model_events")
    op.drop_table("sentimon_model_events")
    op.drop_table("sentimon_model_aliases")
    op.drop_table("sentimon_model_versions")
