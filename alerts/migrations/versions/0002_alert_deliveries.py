"""per-sink deliveries and delivered_at

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # When every sink confirmed the episode's latest notification; NULL while one is still being retried.
    op.add_column("sentimon_alerts", sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "sentimon_alert_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("notification", sa.String(600), nullable=False),
        sa.Column("sink", sa.String(600), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("notification", "sink", name="uq_sentimon_alert_deliveries"),
    )


def downgrade() -> None:
    op.drop_table("sentimon_alert_deliveries")
    op.drop_column("sentimon_alerts", "delivered_at")
