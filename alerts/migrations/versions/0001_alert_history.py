"""alert history table

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sentimon_alerts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("rule_kind", sa.String(16), nullable=False),
        sa.Column("entity", sa.String(200), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pending_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_notified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notifications", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("baseline", sa.Float(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("rule", "entity", "started_at", name="uq_sentimon_alerts_episode"),
    )
    op.create_index("ix_sentimon_alerts_state_started", "sentimon_alerts", ["state", "started_at"])
    op.create_index("ix_sentimon_alerts_entity", "sentimon_alerts", ["entity"])


def downgrade() -> None:
    op.drop_index("ix_sentimon_alerts_entity", table_name="sentimon_alerts")
    op.drop_index("ix_sentimon_alerts_state_started", table_name="sentimon_alerts")
    op.drop_table("sentimon_alerts")
