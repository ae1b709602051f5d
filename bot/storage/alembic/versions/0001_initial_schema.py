"""Initial schema: events, sources, alerts, cooldowns, outbox, destinations, subscriptions, mutes.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Self-contained on purpose: revisions never import `bot.storage.tables`, which
moves on. Times are `DateTime(timezone=True)` (timestamptz on PostgreSQL; on
SQLite the app stores naive UTC, see `tables.UTCDateTime`). Row ids are
BIGINT identities on PostgreSQL and INTEGER rowid aliases on SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _row_id() -> sa.Column[int]:
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    )


def upgrade() -> None:
    op.create_table(
        "events_seen",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("event_time", _tz(), nullable=False),
        sa.Column("seen_at", _tz(), nullable=False),
    )
    op.create_table(
        "source_state",
        sa.Column("source_id", sa.String(128), primary_key=True),
        sa.Column("etag", sa.Text()),
        sa.Column("last_modified", sa.Text()),
        sa.Column("first_polled_at", _tz()),
        sa.Column("last_success_at", _tz()),
        sa.Column("last_error", sa.Text()),
        sa.Column("last_error_at", _tz()),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("polls", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", _tz()),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(256), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("event_time", _tz(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.UniqueConstraint("rule_id", "event_id", name="uq_alerts_rule_event"),
    )
    op.create_index("ix_alerts_created", "alerts", ["created_at"])
    op.create_table(
        "cooldowns",
        sa.Column("rule_id", sa.String(128), primary_key=True),
        sa.Column("key", sa.String(256), primary_key=True),
        sa.Column("last_fired_at", _tz(), nullable=False),
    )
    op.create_table(
        "outbox",
        _row_id(),
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("adapter", sa.String(32), nullable=False),
        sa.Column("address", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _tz(), nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("sent_at", _tz()),
        sa.Column("message_id", sa.String(128)),
        sa.Column("last_error", sa.Text()),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("claimed_until", _tz()),
        sa.UniqueConstraint("alert_id", "adapter", "address", name="uq_outbox_alert_destination"),
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_destination", "outbox", ["adapter", "address", "id"])
    op.create_table(
        "destinations",
        sa.Column("adapter", sa.String(32), primary_key=True),
        sa.Column("address", sa.String(128), primary_key=True),
        sa.Column("chat_kind", sa.String(32)),
        sa.Column("title", sa.Text()),
        sa.Column("include_words", sa.JSON(), nullable=False),
        sa.Column("exclude_words", sa.JSON(), nullable=False),
        sa.Column("quiet_start", sa.String(5)),
        sa.Column("quiet_end", sa.String(5)),
        sa.Column("quiet_tz", sa.String(64)),
        sa.Column("disabled_at", _tz()),
        sa.Column("disabled_reason", sa.Text()),
        sa.Column("created_at", _tz(), nullable=False),
    )
    op.create_table(
        "subscriptions",
        _row_id(),
        sa.Column("adapter", sa.String(32), nullable=False),
        sa.Column("address", sa.String(128), nullable=False),
        sa.Column("selector", sa.String(16), nullable=False),
        sa.Column("value", sa.String(128), nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
        sa.UniqueConstraint("adapter", "address", "selector", "value", name="uq_subscription"),
    )
    op.create_table(
        "mutes",
        _row_id(),
        sa.Column("adapter", sa.String(32), nullable=False),
        sa.Column("address", sa.String(128), nullable=False),
        sa.Column("rule_id", sa.String(128)),
        sa.Column("until", _tz(), nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "mutes",
        "subscriptions",
        "destinations",
        "outbox",
        "cooldowns",
        "alerts",
        "source_state",
        "events_seen",
    ):
        op.drop_table(table)
