"""WebSub push subscriptions: hub, topic, callback id, secret, lease, state per feed.

Revision ID: 0060
Revises: 0055 (written on 0020; chained after the merged surges revision)
Create Date: 2026-11-28

Self-contained like 0001 (never imports `bot.storage.tables`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0060"
down_revision: str | Sequence[str] | None = "0055"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "websub_subscriptions",
        sa.Column("source_id", sa.String(128), primary_key=True),
        sa.Column("hub", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("callback_id", sa.String(64), nullable=False, unique=True),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("pending_mode", sa.String(16)),
        sa.Column("requested_at", _tz()),
        sa.Column("verified_at", _tz()),
        sa.Column("lease_seconds", sa.Integer()),
        sa.Column("lease_until", _tz()),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", _tz()),
        sa.Column("last_error", sa.Text()),
    )


def downgrade() -> None:
    op.drop_table("websub_subscriptions")
