"""Stories and the chat messages that show them: stories, story_reports, alert_messages.

Revision ID: 0010
Revises: 0001
Create Date: 2026-11-28

Self-contained like 0001 (never imports `bot.storage.tables`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stories",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("opened_at", _tz(), nullable=False),
        sa.Column("last_at", _tz(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_stories_version", "stories", ["version"])
    op.create_index("ix_stories_last_at", "stories", ["last_at"])
    op.create_table(
        "story_reports",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("story_id", sa.String(64), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("url", sa.Text()),
        sa.Column("event_time", _tz(), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
    )
    op.create_index("ix_story_reports_story", "story_reports", ["story_id", "event_time"])
    op.create_table(
        "alert_messages",
        sa.Column("adapter", sa.String(32), primary_key=True),
        sa.Column("address", sa.String(128), primary_key=True),
        sa.Column("thread", sa.String(64), primary_key=True),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("alert_ids", sa.JSON(), nullable=False),
        sa.Column("notes", sa.JSON(), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("sent_at", _tz(), nullable=False),
        sa.Column("edited_at", _tz()),
    )
    op.create_index("ix_alert_messages_message", "alert_messages", ["adapter", "address", "message_id"])


def downgrade() -> None:
    op.drop_index("ix_alert_messages_message", table_name="alert_messages")
    op.drop_table("alert_messages")
    op.drop_index("ix_story_reports_story", table_name="story_reports")
    op.drop_table("story_reports")
    op.drop_index("ix_stories_last_at", table_name="stories")
    op.drop_index("ix_stories_version", table_name="stories")
    op.drop_table("stories")
