"""Durable stories (`bot.stories`) and the chat messages that show alerts, over the Store's engine.

Stories: assignment runs inside the pipeline's group transaction. On PostgreSQL
it first takes a transaction-level advisory lock, so two workers never decide
about the same headlines at once; each write carries a new `version`, so a
worker reloads only the stories others wrote since it last looked (and, after
a restart, every story still open). On SQLite one worker owns the database and
the group transaction already holds the write lock.

Messages (`alert_messages`): one row per chat message that shows alerts — per
(adapter, address, thread), where thread is the story id (or, for an alert
without a story, the alert id). It records the message id and what the message
shows (alert ids, appended notes), so any later edit can rebuild the whole text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.storage import tables as t
from bot.storage.db import dialect_insert, insert_new_many
from bot.storage.migrations import advisory_key
from bot.stories import Report, Story

STORY_LOCK_KEY = advisory_key("stories")
_IN_CHUNK = 500


class SqlStories:
    """`bot.stories.StoryStorage` on SQLite or PostgreSQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def lock(self, conn: object) -> None:
        assert isinstance(conn, AsyncConnection)
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": STORY_LOCK_KEY})

    async def changed_since(self, conn: object, version: int, *, horizon: datetime) -> tuple[list[Story], int]:
        assert isinstance(conn, AsyncConnection)
        s, r = t.stories, t.story_reports
        newest = (await conn.execute(select(func.max(s.c.version)))).scalar() or 0
        if newest <= version:
            return [], newest
        rows = (
            await conn.execute(select(s).where(and_(s.c.version > version, s.c.last_at >= horizon)))
        ).all()
        found = {
            row.id: Story(id=row.id, opened_at=row.opened_at, last_at=row.last_at, title=row.title)
            for row in rows
        }
        ids = list(found)
        for i in range(0, len(ids), _IN_CHUNK):
            reports = await conn.execute(
                select(r).where(r.c.story_id.in_(ids[i : i + _IN_CHUNK])).order_by(r.c.event_time, r.c.event_id)
            )
            for rep in reports:
                found[rep.story_id].reports.append(
                    Report(rep.event_id, rep.source, rep.title, rep.url, rep.event_time, tuple(rep.topics))
                )
        return list(found.values()), newest

    async def save(
        self, conn: object, stories: Sequence[Story], new_reports: Sequence[tuple[str, Report]], *, version: int
    ) -> None:
        assert isinstance(conn, AsyncConnection)
        if stories:
            stmt = dialect_insert(conn, t.stories)
            stmt = stmt.on_conflict_do_update(
                index_elements=[t.stories.c.id],
                set_={"last_at": stmt.excluded.last_at, "version": stmt.excluded.version},
            )
            await conn.execute(
                stmt,
                [
                    {"id": s.id, "opened_at": s.opened_at, "last_at": s.last_at, "title": s.title, "version": version}
                    for s in stories
                ],
            )
        await insert_new_many(
            conn,
            t.story_reports,
            [
                {"event_id": rep.event_id, "story_id": sid, "source": rep.source, "title": rep.title,
                 "url": rep.url, "event_time": rep.time, "topics": list(rep.topics)}
                for sid, rep in new_reports
            ],
            t.story_reports.c.event_id,
        )

    async def reports(self, story_id: str) -> list[Report]:
        """Every report of a story, oldest first (for commands and tests)."""
        r = t.story_reports
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(r).where(r.c.story_id == story_id).order_by(r.c.event_time))
            return [Report(x.event_id, x.source, x.title, x.url, x.event_time, tuple(x.topics)) for x in rows]


# ---- messages ----------------------------------------------------------------------


@dataclass(frozen=True)
class MessageRecord:
    """A sent chat message that shows alerts, and what it shows."""

    adapter: str
    address: str
    thread: str
    message_id: str
    alert_ids: tuple[str, ...]
    notes: tuple[str, ...]
    severity: str
    sent_at: datetime
    edited_at: datetime | None = None


def _record(row: Any) -> MessageRecord:
    return MessageRecord(
        adapter=row.adapter,
        address=row.address,
        thread=row.thread,
        message_id=row.message_id,
        alert_ids=tuple(row.alert_ids),
        notes=tuple(row.notes),
        severity=row.severity,
        sent_at=row.sent_at,
        edited_at=row.edited_at,
    )


class SqlMessages:
    """Where each alert message is, per destination and thread (see module docstring)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def get(self, adapter: str, address: str, thread: str) -> MessageRecord | None:
        m = t.alert_messages
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(m).where(and_(m.c.adapter == adapter, m.c.address == address, m.c.thread == thread))
                )
            ).first()
        return None if row is None else _record(row)

    async def for_alert(self, alert_id: str, thread: str) -> list[MessageRecord]:
        """Every message (one per destination) that shows `alert_id`, whose thread is `thread`."""
        o, m = t.outbox, t.alert_messages
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(m)
                .join(o, and_(o.c.adapter == m.c.adapter, o.c.address == m.c.address))
                .where(and_(o.c.alert_id == alert_id, o.c.status == "sent", m.c.thread == thread))
            )
            return [r for r in map(_record, rows) if alert_id in r.alert_ids]

    async def existing(self, keys: Sequence[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
        """Which of these (adapter, address, thread) have a message: one query per adapter,
        thread and 500 addresses (a fan-out's batch is one thread), not one per destination;
        each a lookup on the primary key."""
        m = t.alert_messages
        by_thread: dict[tuple[str, str], set[str]] = {}
        for adapter, address, thread in keys:
            by_thread.setdefault((adapter, thread), set()).add(address)
        found: set[tuple[str, str, str]] = set()
        async with self.engine.connect() as conn:
            for (adapter, thread), wanted in by_thread.items():
                addresses = sorted(wanted)
                for i in range(0, len(addresses), _IN_CHUNK):
                    rows = await conn.execute(
                        select(m.c.address).where(
                            and_(
                                m.c.adapter == adapter,
                                m.c.address.in_(addresses[i : i + _IN_CHUNK]),
                                m.c.thread == thread,
                            )
                        )
                    )
                    found.update((adapter, address, thread) for (address,) in rows)
        return found

    async def put(self, record: MessageRecord) -> None:
        """Insert or replace the thread's message (a fallback moves the thread to a new message)."""
        async with self.engine.connect() as own:  # one statement: autocommit, no BEGIN/COMMIT trips
            conn = await own.execution_options(isolation_level="AUTOCOMMIT")
            await put_messages(conn, [record])

    async def add_note(self, adapter: str, address: str, thread: str, note: str) -> MessageRecord | None:
        """Append a line to what the message shows (then edit it with `MessageEditor.refresh`)."""
        m = t.alert_messages
        where = and_(m.c.adapter == adapter, m.c.address == address, m.c.thread == thread)
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(m).where(where).with_for_update())).first()
            if row is None:
                return None
            notes = [*row.notes, note]
            await conn.execute(update(m).where(where).values(notes=notes))
        return await self.get(adapter, address, thread)


_MESSAGE_VALUES = ("message_id", "alert_ids", "notes", "severity", "sent_at", "edited_at")


async def put_messages(conn: AsyncConnection, records: Sequence[MessageRecord]) -> None:
    """Insert or replace thread messages on the caller's connection: one executemany of one
    compiled upsert, whatever the number (the outbox writes a flush's new messages at once)."""
    if not records:
        return
    m = t.alert_messages
    stmt = dialect_insert(conn, m)
    stmt = stmt.on_conflict_do_update(
        index_elements=[m.c.adapter, m.c.address, m.c.thread],
        set_={k: stmt.excluded[k] for k in _MESSAGE_VALUES},
    )
    await conn.execute(
        stmt,
        [
            {
                "adapter": r.adapter, "address": r.address, "thread": r.thread,
                "message_id": r.message_id, "alert_ids": list(r.alert_ids), "notes": list(r.notes),
                "severity": r.severity, "sent_at": r.sent_at, "edited_at": r.edited_at,
            }
            for r in records
        ],
    )
