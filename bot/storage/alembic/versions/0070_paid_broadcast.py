"""Telegram paid broadcast: messages reserved per UTC day against the Stars cap.

Revision ID: 0070
Revises: 0060 (written on 0020; chained after the merged websub revision)
Create Date: 2026-11-28

Self-contained like 0001 (never imports `bot.storage.tables`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0070"
down_revision: str | Sequence[str] | None = "0060"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "paid_broadcast_spend",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("messages", sa.BigInteger(), nullable=False),
        sa.Column("last_grant", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("paid_broadcast_spend")
