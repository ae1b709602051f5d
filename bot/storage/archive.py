"""The event archive: copies of the headlines and price samples the pipeline saw.

Why: `dry-run` (and the summary logged after a hot reload) replays what the bot
actually saw through edited rules, and compares with the alerts it raised then.
Rows are written by the pipeline inside its group transaction (one multi-row
INSERT per group, only for events new to this group), so an event is archived
exactly when it is marked seen. Old rows are pruned at most once per
`prune_every`, in the same transaction, by the time index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.models import NewsEvent, PriceEvent
from bot.storage import tables as t

TITLE_MAX = 2_000
SUMMARY_MAX = 4_000


@dataclass(frozen=True)
class PastAlert:
    """What the bot raised then: enough to compare with a replay."""

    rule_id: str
    event_id: str
    title: str
    created_at: datetime


def _row(ev: NewsEvent | PriceEvent) -> dict[str, Any]:
    if isinstance(ev, NewsEvent):
        return {
            "event_id": ev.id,
            "kind": "news",
            "source": ev.source,
            "event_time": ev.time,
            "title": ev.title[:TITLE_MAX],
            "summary": ev.summary[:SUMMARY_MAX],
            "url": ev.url,
            "symbol": None,
            "value": None,
            "previous_close": None,
            "tags": list(ev.tags),
        }
    return {
        "event_id": ev.id,
        "kind": "price",
        "source": ev.source,
        "event_time": ev.time,
        "title": None,
        "summary": None,
        "url": None,
        "symbol": ev.symbol,
        "value": ev.last,
        "previous_close": ev.previous_close,
        "tags": list(ev.tags),
    }


def _event(row: Any) -> NewsEvent | PriceEvent:
    if row.kind == "news":
        return NewsEvent(
            id=row.event_id,
            source=row.source,
            title=row.title or "",
            summary=row.summary or "",
            url=row.url,
            published=row.event_time,
            seen_at=row.event_time,
            tags=tuple(row.tags or ()),
        )
    return PriceEvent(
        id=row.event_id,
        source=row.source,
        symbol=row.symbol or "",
        time=row.event_time,
        last=float(row.value),
        previous_close=row.previous_close,
        tags=tuple(row.tags or ()),
    )


class EventArchive:
    """Archive rows over the store's engine (see module docstring)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        retention: timedelta,
        prune_every: timedelta = timedelta(hours=1),
    ) -> None:
        self.engine = engine
        self.retention = retention
        self.prune_every = prune_every
        self._pruned_at: datetime | None = None

    async def record(
        self, conn: AsyncConnection, events: Sequence[NewsEvent | PriceEvent], *, now: datetime
    ) -> None:
        """Archive `events` (new ones: the caller has just marked them seen) on the caller's transaction."""
        if events:
            rows = [_row(ev) for ev in sorted(events, key=lambda e: e.id)]
            insert = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(t.event_archive)
            await conn.execute(insert.on_conflict_do_nothing(index_elements=[t.event_archive.c.event_id]), rows)
        if self._pruned_at is None or now - self._pruned_at >= self.prune_every:
            await self.prune(conn, now=now)

    async def prune(self, conn: AsyncConnection, *, now: datetime) -> int:
        """Drop rows older than the retention; returns how many."""
        result = await conn.execute(delete(t.event_archive).where(t.event_archive.c.event_time < now - self.retention))
        self._pruned_at = now
        return int(result.rowcount or 0)

    async def events_since(self, since: datetime) -> list[NewsEvent | PriceEvent]:
        """Archived events at or after `since`, oldest first."""
        query = (
            select(t.event_archive)
            .where(t.event_archive.c.event_time >= since)
            .order_by(t.event_archive.c.event_time, t.event_archive.c.event_id)
        )
        async with self.engine.connect() as conn:
            return [_event(row) for row in await conn.execute(query)]

    async def count(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(t.event_archive))).scalar_one())

    async def item_times(self, since: datetime) -> dict[str, list[datetime]]:
        """Source id → the times of its archived items at or after `since` (the cadence
        relearns each source's publishing rhythm from them at start)."""
        return await item_times(self.engine, t.event_archive, since)

    async def alerts_since(self, since: datetime) -> list[PastAlert]:
        """Alerts the bot raised for events at or after `since` (from the alerts table)."""
        query = (
            select(t.alerts.c.rule_id, t.alerts.c.event_id, t.alerts.c.payload, t.alerts.c.created_at)
            .where(t.alerts.c.event_time >= since)
            .order_by(t.alerts.c.created_at, t.alerts.c.id)
        )
        async with self.engine.connect() as conn:
            rows = list(await conn.execute(query))
        return [
            PastAlert(r.rule_id, r.event_id, str((r.payload or {}).get("title", "")), r.created_at) for r in rows
        ]


async def item_times(engine: AsyncEngine, table: Any, since: datetime) -> dict[str, list[datetime]]:
    """Source id → item times at or after `since` from `table` (`event_archive` or `events_seen`)."""
    query = select(table.c.source, table.c.event_time).where(table.c.event_time >= since)
    found: dict[str, list[datetime]] = {}
    async with engine.connect() as conn:
        for source, when in await conn.execute(query):
            found.setdefault(source, []).append(when)
    return found
