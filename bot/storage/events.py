"""Seen events, alerts and cooldowns: what the pipeline decides on, in its transaction.

Dedup is on the event id (`events_seen`) and on (rule, event) (`alerts`); the
cooldown per (rule, key) moves with every alert inserted (`cooldowns`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.models import Alert, NewsEvent, PriceEvent
from bot.storage import tables as t
from bot.storage.db import CHUNK_ROWS, StorePart, chunks, dialect_insert, insert_new_many
from bot.storage.migrations import advisory_key


class EventLog(StorePart):
    """Seen events, alerts and cooldowns."""

    async def mark_seen_many(
        self, conn: AsyncConnection, events: Sequence[NewsEvent | PriceEvent], *, at: datetime
    ) -> set[str]:
        """Record events as seen; returns the ids that were new (the rest were seen before).

        One multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING` per chunk. Rows go in
        id order, so two workers inserting overlapping batches on PostgreSQL wait on
        each other in the same order and cannot deadlock.
        """
        rows = {
            ev.id: {
                "event_id": ev.id,
                "source": ev.source,
                "kind": ev.kind,
                "title": (ev.title if isinstance(ev, NewsEvent) else f"{ev.symbol} {ev.last}")[:2000],
                "event_time": ev.time,
                "seen_at": at,
            }
            for ev in events
        }
        ordered = [rows[k] for k in sorted(rows)]
        return set(await insert_new_many(conn, t.events_seen, ordered, t.events_seen.c.event_id))

    async def seen_count(self) -> int:
        async with self.db.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(t.events_seen))).scalar_one())

    async def last_fired_many(
        self, conn: AsyncConnection, pairs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], datetime]:
        """When each (rule, key) last fired; pairs that never fired are absent.

        On PostgreSQL it first takes a transaction-level advisory lock per pair, in
        sorted order (so two workers cannot deadlock), which makes the cooldown
        check and the `insert_alerts` that follows one step across workers: a
        second worker waits for the first to commit, then sees its alerts.
        """
        wanted = sorted(set(pairs))
        if not wanted:
            return {}
        if conn.dialect.name == "postgresql":
            keys = [advisory_key(f"cooldown:{rule_id}\x1f{key}") for rule_id, key in wanted]
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k"),
                {"keys": keys},
            )
        c = t.cooldowns.c
        found: dict[tuple[str, str], datetime] = {}
        for chunk in chunks(wanted, CHUNK_ROWS):
            q = select(c.rule_id, c.key, c.last_fired_at).where(tuple_(c.rule_id, c.key).in_(chunk))
            for rule_id, key, fired in await conn.execute(q):
                found[(rule_id, key)] = fired
        return found

    async def insert_alert(self, conn: AsyncConnection, alert: Alert) -> bool:
        """Insert an alert and move its cooldown; False if this rule already fired on the event."""
        return alert.id in await self.insert_alerts(conn, [alert])

    async def insert_alerts(self, conn: AsyncConnection, alerts: Sequence[Alert]) -> set[str]:
        """Insert alerts and move their cooldowns; returns the ids inserted.

        An alert whose rule already fired on its event (another worker, a replay) is
        skipped, and does not move the cooldown. Two statements for the whole batch.
        """
        if not alerts:
            return set()
        rows = [
            {
                "id": a.id,
                "rule_id": a.rule_id,
                "event_id": a.event_id,
                "key": a.key,
                "severity": a.severity.value,
                "kind": a.kind,
                "created_at": a.created_at,
                "event_time": a.event_time,
                "payload": a.model_dump(mode="json"),
            }
            for a in alerts
        ]
        inserted = set(await insert_new_many(conn, t.alerts, rows, t.alerts.c.id))
        fired: dict[tuple[str, str], datetime] = {}
        for a in alerts:
            if a.id in inserted:
                pair = (a.rule_id, a.key)
                fired[pair] = max(a.created_at, fired.get(pair, a.created_at))
        if fired:
            stmt = dialect_insert(conn, t.cooldowns)
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[t.cooldowns.c.rule_id, t.cooldowns.c.key],
                    set_={"last_fired_at": stmt.excluded.last_fired_at},
                ),
                [{"rule_id": r, "key": k, "last_fired_at": at} for (r, k), at in sorted(fired.items())],
            )
        return inserted

    async def recent_alerts(self, limit: int = 10) -> list[Alert]:
        async with self.db.engine.connect() as conn:
            rows = await conn.execute(
                select(t.alerts.c.payload).order_by(t.alerts.c.created_at.desc(), t.alerts.c.id).limit(limit)
            )
            return [Alert.model_validate(r[0]) for r in rows]

    async def find_alert(self, handle: str) -> Alert | None:
        """An alert by its id or an unambiguous id prefix (as shown in chat, e.g. `#3f9a1c2e`)."""
        handle = handle.strip().lstrip("#").lower()
        if not handle or len(handle) > 64 or not handle.isalnum():
            return None
        async with self.db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(t.alerts.c.payload).where(t.alerts.c.id.like(handle + "%")).limit(2)
                )
            ).all()
        return Alert.model_validate(rows[0][0]) if len(rows) == 1 else None

    async def get_alerts(self, ids: Sequence[str]) -> dict[str, Alert]:
        if not ids:
            return {}
        async with self.db.engine.connect() as conn:
            rows = await conn.execute(select(t.alerts.c.id, t.alerts.c.payload).where(t.alerts.c.id.in_(list(ids))))
            return {r[0]: Alert.model_validate(r[1]) for r in rows}

    async def alert_count(self) -> int:
        async with self.db.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(t.alerts))).scalar_one())
