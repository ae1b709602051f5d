"""Event archive: the headlines and price samples the bot saw, for `dry-run`.

Revision ID: 0020
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0040"  # 0001 on its own branch; chained after outcomes (merged)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_archive",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("title", sa.Text()),
        sa.Column("summary", sa.Text()),
        sa.Column("url", sa.Text()),
        sa.Column("symbol", sa.String(32)),
        sa.Column("value", sa.Float()),
        sa.Column("previous_close", sa.Float()),
        sa.Column("tags", sa.JSON(), nullable=False),
    )
    op.create_index("ix_event_archive_time", "event_archive", ["event_time"])


def downgrade() -> None:
    op.drop_index("ix_event_archive_time", table_name="event_archive")
    op.drop_table("event_archive")
