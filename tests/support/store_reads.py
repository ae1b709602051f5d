"""Store reads and single-row writes that only tests use (the code uses the batch forms).

Moved out of `bot.storage` so the Store carries only what Readout itself calls;
each is a function of the store, written like the method it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.models import NewsEvent, PriceEvent
from bot.storage import tables as t
from bot.storage.outbox import by_destination
from bot.storage.store import Delivery, OutboxEntry, OutboxStatus, Store


async def is_seen(store: Store, conn: AsyncConnection, event_id: str) -> bool:
    row = await conn.execute(
        select(t.events_seen.c.event_id).where(t.events_seen.c.event_id == event_id)
    )
    return row.first() is not None


async def mark_seen(
    store: Store, conn: AsyncConnection, ev: NewsEvent | PriceEvent, *, at: datetime
) -> bool:
    """Record an event as seen; False when it already was (another worker won)."""
    return ev.id in await store.mark_seen_many(conn, [ev], at=at)


async def alert_exists(store: Store, conn: AsyncConnection, rule_id: str, event_id: str) -> bool:
    q = select(t.alerts.c.id).where(
        and_(t.alerts.c.rule_id == rule_id, t.alerts.c.event_id == event_id)
    )
    return (await conn.execute(q)).first() is not None


async def last_fired(store: Store, conn: AsyncConnection, rule_id: str, key: str) -> datetime | None:
    """When this rule last fired for this key (see `last_fired_many` for the lock it takes)."""
    return (await store.last_fired_many(conn, [(rule_id, key)])).get((rule_id, key))


async def release_source(store: Store, source_id: str, *, worker_id: str) -> bool:
    """Hand a source's lease back early (shutdown); False if this worker did not hold it."""
    s = t.source_state
    async with store.db.transaction() as conn:
        res = await conn.execute(
            update(s)
            .where(and_(s.c.source_id == source_id, s.c.lease_owner == worker_id))
            .values(lease_owner=None, lease_until=None)
        )
        return bool(res.rowcount)


async def enqueue(
    store: Store,
    conn: AsyncConnection,
    *,
    alert_id: str,
    adapter: str,
    address: str,
    status: OutboxStatus,
    at: datetime,
    not_before: datetime | None = None,
    note: str | None = None,
) -> bool:
    """Owe an alert to one destination; False if it was already owed (idempotent)."""
    row = OutboxEntry(
        alert_id=alert_id, adapter=adapter, address=address, status=status, not_before=not_before, note=note
    )
    return await store.enqueue_many(conn, [row], at=at) == 1


async def due_deliveries(store: Store, *, now: datetime, adapters: Sequence[str], limit: int = 100) -> list[Delivery]:
    """The oldest pending row of each destination, if due: order per destination is kept."""
    o = t.outbox
    first_pending = (
        select(func.min(o.c.id).label("id"))
        .where(and_(o.c.status == "pending", o.c.adapter.in_(list(adapters))))
        .group_by(o.c.adapter, o.c.address)
        .subquery()
    )
    q = (
        select(o)
        .join(first_pending, o.c.id == first_pending.c.id)
        .where(o.c.next_attempt_at <= now)
        .order_by(o.c.id)
        .limit(limit)
    )
    async with store.db.engine.connect() as conn:
        rows = (await conn.execute(q)).mappings().all()
    return [Delivery.model_validate(dict(r)) for r in rows]


async def held_due(store: Store, *, now: datetime, adapters: Sequence[str]) -> dict[tuple[str, str], list[Delivery]]:
    """Held rows (quiet hours) whose hold has ended, grouped by destination for one digest."""
    o = t.outbox
    q = (
        select(o)
        .where(and_(o.c.status == "held", o.c.next_attempt_at <= now, o.c.adapter.in_(list(adapters))))
        .order_by(o.c.id)
    )
    async with store.db.engine.connect() as conn:
        rows = (await conn.execute(q)).mappings().all()
    return by_destination([Delivery.model_validate(dict(r)) for r in rows])


async def deliveries(store: Store, *, adapter: str | None = None) -> list[Delivery]:
    q = select(t.outbox).order_by(t.outbox.c.id)
    if adapter:
        q = q.where(t.outbox.c.adapter == adapter)
    async with store.db.engine.connect() as conn:
        return [Delivery.model_validate(dict(r)) for r in (await conn.execute(q)).mappings()]
