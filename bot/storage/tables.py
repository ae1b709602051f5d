"""The schema, as SQLAlchemy Core tables (one metadata for SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

from bot.clock import ensure_utc

metadata = MetaData()


class UTCDateTime(TypeDecorator[datetime]):
    """Always aware UTC in Python, whatever the backend keeps (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = ensure_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else ensure_utc(value)


TZ = UTCDateTime()

events_seen = Table(
    "events_seen",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("source", String(128), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("title", Text, nullable=False, default=""),
    Column("event_time", TZ, nullable=False),
    Column("seen_at", TZ, nullable=False),
)

source_state = Table(
    "source_state",
    metadata,
    Column("source_id", String(128), primary_key=True),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("first_polled_at", TZ),
    Column("last_success_at", TZ),
    Column("last_error", Text),
    Column("last_error_at", TZ),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("polls", Integer, nullable=False, default=0),
    Column("lease_owner", String(64)),
    Column("lease_until", TZ),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("rule_id", String(128), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("key", String(256), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("created_at", TZ, nullable=False),
    Column("event_time", TZ, nullable=False),
    Column("payload", JSON, nullable=False),
    UniqueConstraint("rule_id", "event_id", name="uq_alerts_rule_event"),
)
Index("ix_alerts_created", alerts.c.created_at)

cooldowns = Table(
    "cooldowns",
    metadata,
    Column("rule_id", String(128), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("last_fired_at", TZ, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("alert_id", String(64), nullable=False),
    Column("adapter", String(32), nullable=False),
    Column("address", String(128), nullable=False),
    # pending | held | sending | sent | dead | skipped
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", TZ, nullable=False),
    Column("created_at", TZ, nullable=False),
    Column("sent_at", TZ),
    Column("message_id", String(128)),
    Column("last_error", Text),
    Column("claimed_by", String(64)),
    Column("claimed_until", TZ),
    UniqueConstraint("alert_id", "adapter", "address", name="uq_outbox_alert_destination"),
)
Index("ix_outbox_due", outbox.c.status, outbox.c.next_attempt_at)
Index("ix_outbox_destination", outbox.c.adapter, outbox.c.address, outbox.c.id)

destinations = Table(
    "destinations",
    metadata,
    Column("adapter", String(32), primary_key=True),
    Column("address", String(128), primary_key=True),
    Column("chat_kind", String(32)),
    Column("title", Text),
    Column("include_words", JSON, nullable=False, default=list),
    Column("exclude_words", JSON, nullable=False, default=list),
    Column("quiet_start", String(5)),
    Column("quiet_end", String(5)),
    Column("quiet_tz", String(64)),
    Column("session", String(16)),  # us-regular | us-extended: deliver only then (issue 16)
    Column("disabled_at", TZ),
    Column("disabled_reason", Text),
    Column("created_at", TZ, nullable=False),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("adapter", String(32), nullable=False),
    Column("address", String(128), nullable=False),
    # severity | rule | tag
    Column("selector", String(16), nullable=False),
    Column("value", String(128), nullable=False),
    Column("created_at", TZ, nullable=False),
    UniqueConstraint("adapter", "address", "selector", "value", name="uq_subscription"),
)

mutes = Table(
    "mutes",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("adapter", String(32), nullable=False),
    Column("address", String(128), nullable=False),
    Column("rule_id", String(128)),  # NULL: everything
    Column("until", TZ, nullable=False),
    Column("created_at", TZ, nullable=False),
)

# Live outcomes (issue 16): quotes as polled, and one job per (alert, horizon).
quotes = Table(
    "quotes",
    metadata,
    Column("symbol", String(32), primary_key=True),
    Column("source", String(128), primary_key=True),
    Column("time", TZ, primary_key=True),
    Column("value", Float, nullable=False),
    Column("seen_at", TZ, nullable=False),
)
Index("ix_quotes_symbol_time", quotes.c.symbol, quotes.c.time)

alert_outcomes = Table(
    "alert_outcomes",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("alert_id", String(64), nullable=False),
    Column("rule_id", String(128), nullable=False),
    Column("horizon", String(8), nullable=False),  # 30m | 1d
    Column("alert_time", TZ, nullable=False),
    Column("due_at", TZ, nullable=False),
    Column("status", String(16), nullable=False),  # pending | done
    Column("moves", JSON),  # symbol -> {base, base_time, value, time, change_pct} or null
    Column("line", Text),
    Column("claimed_by", String(64)),
    Column("claimed_until", TZ),
    Column("done_at", TZ),
    UniqueConstraint("alert_id", "horizon", name="uq_alert_outcomes_alert_horizon"),
)
Index("ix_alert_outcomes_due", alert_outcomes.c.status, alert_outcomes.c.due_at)
Index("ix_alert_outcomes_rule", alert_outcomes.c.rule_id, alert_outcomes.c.horizon)

# ---- stories (bot.stories) and the chat messages that show them ----------------

stories = Table(
    "stories",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("opened_at", TZ, nullable=False),
    Column("last_at", TZ, nullable=False),
    Column("title", Text, nullable=False),
    # Bumped on every write: a worker reloads only what others wrote since it last looked.
    Column("version", BigInteger, nullable=False),
)
Index("ix_stories_version", stories.c.version)
Index("ix_stories_last_at", stories.c.last_at)

story_reports = Table(
    "story_reports",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("story_id", String(64), nullable=False),
    Column("source", String(128), nullable=False),
    Column("title", Text, nullable=False),
    Column("url", Text),
    Column("event_time", TZ, nullable=False),
    Column("topics", JSON, nullable=False, default=list),  # ids of the rules it fired
)
Index("ix_story_reports_story", story_reports.c.story_id, story_reports.c.event_time)

# One row per chat message that shows alerts: the story's message in a destination (thread =
# story id), or a lone alert's (thread = alert id). What it shows is rebuilt from here on
# every edit: the lead alert, the alerts merged in since, and notes others append.
alert_messages = Table(
    "alert_messages",
    metadata,
    Column("adapter", String(32), primary_key=True),
    Column("address", String(128), primary_key=True),
    Column("thread", String(64), primary_key=True),
    Column("message_id", String(128), nullable=False),
    Column("alert_ids", JSON, nullable=False),
    Column("notes", JSON, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("sent_at", TZ, nullable=False),
    Column("edited_at", TZ),
)
Index("ix_alert_messages_message", alert_messages.c.adapter, alert_messages.c.address, alert_messages.c.message_id)

# Copies of the events the pipeline saw (headlines and price samples), kept for
# `EVENT_RETENTION_DAYS` so `dry-run` can replay them through edited rules.
event_archive = Table(
    "event_archive",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # news | price
    Column("source", String(128), nullable=False),
    Column("event_time", TZ, nullable=False),
    Column("title", Text),
    Column("summary", Text),
    Column("url", Text),
    Column("symbol", String(32)),
    Column("value", Float),
    Column("previous_close", Float),
    Column("tags", JSON, nullable=False),
)
Index("ix_event_archive_time", event_archive.c.event_time)

# WebSub (push) subscriptions, one per feed whose hub we subscribe to (bot.storage.websub).
# `callback_id` is the unguessable last path segment of the callback URL; `secret` signs pushes.
websub_subscriptions = Table(
    "websub_subscriptions",
    metadata,
    Column("source_id", String(128), primary_key=True),
    Column("hub", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("callback_id", String(64), nullable=False, unique=True),
    Column("secret", String(128), nullable=False),
    Column("state", String(16), nullable=False),  # discovered | pending | live | failed | unsubscribing
    Column("pending_mode", String(16)),  # subscribe | unsubscribe while a request awaits verification
    Column("requested_at", TZ),
    Column("verified_at", TZ),
    Column("lease_seconds", Integer),
    Column("lease_until", TZ),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", TZ),
    Column("last_error", Text),
)

# Surges (issue 17): sources polled at their floor until `until`, raised by an alert on any
# worker. Append-only: each worker reads the rows newer than the last id it saw.
surges = Table(
    "surges",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("source_id", String(128), nullable=False),
    Column("until", TZ, nullable=False),
    Column("interval", Float, nullable=False, default=0.0),
    Column("reason", Text, nullable=False),
    Column("raised_at", TZ, nullable=False),
)
Index("ix_surges_until", surges.c.until)

# Telegram paid broadcast (`bot.storage.paid`): messages reserved per UTC day against the
# Stars cap, one row per day. Reserved before sending, so the cap holds across workers.
paid_broadcast_spend = Table(
    "paid_broadcast_spend",
    metadata,
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD, UTC
    Column("messages", BigInteger, nullable=False),  # reserved (0.1 Star each)
    Column("last_grant", BigInteger, nullable=False),  # what the latest reservation got
    Column("updated_at", TZ, nullable=False),
)
