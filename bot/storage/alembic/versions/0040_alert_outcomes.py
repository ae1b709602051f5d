"""Live outcomes: polled quotes and one job per (alert, horizon); a chat's market session.

Revision ID: 0040
Revises: 0010 (written on 0001; chained after the merged stories revision)
Create Date: 2026-11-28

Self-contained like 0001 (never imports `bot.storage.tables`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0040"
down_revision: str | Sequence[str] | None = "0010"  # 0001 on its own branch; chained after stories (merged)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "quotes",
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("source", sa.String(128), primary_key=True),
        sa.Column("time", _tz(), primary_key=True),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("seen_at", _tz(), nullable=False),
    )
    op.create_index("ix_quotes_symbol_time", "quotes", ["symbol", "time"])
    op.create_table(
        "alert_outcomes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("horizon", sa.String(8), nullable=False),
        sa.Column("alert_time", _tz(), nullable=False),
        sa.Column("due_at", _tz(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("moves", sa.JSON()),
        sa.Column("line", sa.Text()),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("claimed_until", _tz()),
        sa.Column("done_at", _tz()),
        sa.UniqueConstraint("alert_id", "horizon", name="uq_alert_outcomes_alert_horizon"),
    )
    op.create_index("ix_alert_outcomes_due", "alert_outcomes", ["status", "due_at"])
    op.create_index("ix_alert_outcomes_rule", "alert_outcomes", ["rule_id", "horizon"])
    op.add_column("destinations", sa.Column("session", sa.String(16)))


def downgrade() -> None:
    with op.batch_alter_table("destinations") as batch:
        batch.drop_column("session")
    op.drop_index("ix_alert_outcomes_rule", table_name="alert_outcomes")
    op.drop_index("ix_alert_outcomes_due", table_name="alert_outcomes")
    op.drop_table("alert_outcomes")
    op.drop_index("ix_quotes_symbol_time", table_name="quotes")
    op.drop_table("quotes")
