"""The outbox: every alert owed to every destination, until sent or dead.

Several workers on one PostgreSQL share the sending through claims that expire:
`claim_deliveries` / `claim_held` hand each row to exactly one worker
(`FOR UPDATE SKIP LOCKED`); a worker that dies stops renewing and its claims
lapse after `lease_seconds`. Each claim is one statement, the same SQL on both
backends. On SQLite (`single_worker`) claims left by any other worker id (a
predecessor that crashed) are free at once instead of after their lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, bindparam, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage import tables as t
from bot.storage.db import StorePart, insert_new_many
from bot.storage.priority import next_owed, severity_rank

OutboxStatus = Literal["pending", "held", "sent", "dead", "skipped"]

ANALYZE_AFTER = 1000  # rows owed at once (a fan-out) after which PostgreSQL's statistics are refreshed

# Writing any of these on an outbox row hands its claim back.
_UNCLAIMED: dict[str, Any] = {"claimed_by": None, "claimed_until": None}


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One destination owed one alert, as routing decided (see `OutboxQueue.enqueue_many`).

    A slotted dataclass, not a model: one alert can owe thousands of these at once."""

    alert_id: str
    adapter: str
    address: str
    status: OutboxStatus
    not_before: datetime | None = None
    note: str | None = None


class Delivery(BaseModel):
    """One outbox row: an alert owed to one destination."""

    id: int
    alert_id: str
    adapter: str
    address: str
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    message_id: str | None = None
    last_error: str | None = None
    claimed_by: str | None = None
    claimed_until: datetime | None = None


class OutboxQueue(StorePart):
    """Owing, claiming and settling deliveries."""

    async def enqueue_many(self, conn: AsyncConnection, entries: Sequence[OutboxEntry], *, at: datetime) -> int:
        """Owe alerts to destinations, in the given order (outbox ids follow it); returns how
        many were new. One multi-row insert per chunk: an alert for 10,000 subscribers is
        20 statements, not 10,000."""
        rows = [
            {
                "alert_id": e.alert_id,
                "adapter": e.adapter,
                "address": e.address,
                "status": e.status,
                "attempts": 0,
                "next_attempt_at": e.not_before or at,
                "created_at": at,
                "last_error": e.note,
            }
            for e in entries
        ]
        new = len(await insert_new_many(conn, t.outbox, rows, t.outbox.c.id))
        if new >= ANALYZE_AFTER and conn.dialect.name == "postgresql":
            # Fresh statistics for the claim: planned on stale ones (a table PostgreSQL still
            # thinks nearly empty) it re-ranked every pending row once per row — 26 s a claim
            # for one alert owed to 10,000 (bench/paid_fanout.py --database postgresql).
            await conn.execute(text("ANALYZE outbox"))
        return new

    async def claim_deliveries(
        self,
        *,
        worker_id: str,
        now: datetime,
        adapters: Sequence[str],
        limit: int = 100,
        lease_seconds: float = 60.0,
    ) -> list[Delivery]:
        """Like `due_deliveries`, but each row is handed to exactly one worker until sent or released.

        One statement: UPDATE … WHERE id IN (the next pending row of each
        destination — most severe, then oldest, `bot.storage.priority` — due,
        unclaimed or with a lapsed claim … FOR UPDATE SKIP LOCKED) RETURNING.
        While a row is claimed it stays its destination's next row, so the
        destination is skipped by everyone else: one row per destination in flight. Every
        `mark_*` and `defer` clears the claim; a worker that dies hands its rows
        back when `lease_seconds` run out, so the lease must outlast one send.
        """
        o = t.outbox
        first_pending = next_owed(adapters, now=now)  # most severe, then oldest
        claimable = (
            select(o.c.id)
            .where(
                and_(
                    o.c.id.in_(first_pending),
                    # Repeated here so PostgreSQL re-checks it on a row that changed under us.
                    o.c.status == "pending",
                    o.c.next_attempt_at <= now,
                    self._claim_free(worker_id, now),
                )
            )
            .order_by(severity_rank(), o.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return await self._claim(claimable, worker_id=worker_id, now=now, lease_seconds=lease_seconds)

    async def claim_held(
        self, *, worker_id: str, now: datetime, adapters: Sequence[str], lease_seconds: float = 60.0
    ) -> dict[tuple[str, str], list[Delivery]]:
        """Like `held_due` (digests after quiet hours), each row claimed by exactly one worker."""
        o = t.outbox
        claimable = (
            select(o.c.id)
            .where(
                and_(
                    o.c.status == "held",
                    o.c.next_attempt_at <= now,
                    o.c.adapter.in_(list(adapters)),
                    self._claim_free(worker_id, now),
                )
            )
            .order_by(o.c.id)
            .with_for_update(skip_locked=True)
        )
        return by_destination(
            await self._claim(claimable, worker_id=worker_id, now=now, lease_seconds=lease_seconds)
        )

    def _claim_free(self, worker_id: str, now: datetime) -> ColumnElement[bool]:
        """Rows nobody holds: never claimed, or the claim lapsed (or, single worker, not ours)."""
        o = t.outbox
        free = or_(o.c.claimed_until.is_(None), o.c.claimed_until <= now)
        if self.db.single_worker:  # a claim by another id was left by a crashed predecessor
            free = or_(free, o.c.claimed_by != worker_id)
        return free

    async def _claim(
        self, claimable: Any, *, worker_id: str, now: datetime, lease_seconds: float
    ) -> list[Delivery]:
        o = t.outbox
        stmt = (
            update(o)
            .where(o.c.id.in_(claimable))
            .values(claimed_by=worker_id, claimed_until=now + timedelta(seconds=lease_seconds))
            .returning(*o.c)
        )
        async with self.db.transaction() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return sorted((Delivery.model_validate(dict(r)) for r in rows), key=lambda d: d.id)

    async def mark_sent(self, ids: Sequence[int], *, message_id: str | None, at: datetime) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                update(t.outbox)
                .where(t.outbox.c.id.in_(list(ids)))
                .values(
                    status="sent",
                    sent_at=at,
                    message_id=message_id,
                    attempts=t.outbox.c.attempts + 1,
                    **_UNCLAIMED,
                )
            )

    async def mark_sent_each(
        self, conn: AsyncConnection, sent: Sequence[tuple[int, str | None, datetime]]
    ) -> None:
        """`mark_sent` for many rows — (row id, message id, sent at) each — inside the caller's
        transaction: one executemany of one compiled UPDATE (a fan-out's results in one trip)."""
        if not sent:
            return
        o = t.outbox
        stmt = (
            update(o)
            .where(o.c.id == bindparam("row_id"))
            .values(
                status="sent",
                sent_at=bindparam("row_sent_at"),
                message_id=bindparam("row_message_id"),
                attempts=o.c.attempts + 1,
                **_UNCLAIMED,
            )
        )
        await conn.execute(
            stmt, [{"row_id": i, "row_message_id": m, "row_sent_at": at} for i, m, at in sent]
        )

    async def mark_retry(self, ids: Sequence[int], *, error: str, next_attempt_at: datetime) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                update(t.outbox)
                .where(t.outbox.c.id.in_(list(ids)))
                .values(
                    attempts=t.outbox.c.attempts + 1,
                    last_error=error[:1000],
                    next_attempt_at=next_attempt_at,
                    **_UNCLAIMED,
                )
            )

    async def defer(self, ids: Sequence[int], *, next_attempt_at: datetime, note: str) -> None:
        """Push rows back without counting an attempt (rate limit, quiet hours)."""
        async with self.db.transaction() as conn:
            await conn.execute(
                update(t.outbox)
                .where(t.outbox.c.id.in_(list(ids)))
                .values(last_error=note[:1000], next_attempt_at=next_attempt_at, **_UNCLAIMED)
            )

    async def mark_dead(self, ids: Sequence[int], *, error: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                update(t.outbox)
                .where(t.outbox.c.id.in_(list(ids)))
                .values(status="dead", last_error=error[:1000], attempts=t.outbox.c.attempts + 1, **_UNCLAIMED)
            )

    async def kill_destination_queue(self, adapter: str, address: str, *, error: str) -> int:
        """A destination that is gone for good: its owed rows are closed as dead."""
        async with self.db.transaction() as conn:
            return await kill_queue(conn, adapter, address, error=error)

    async def queue_depth(self) -> dict[str, int]:
        """Owed rows per status (pending, held), for /status."""
        async with self.db.engine.connect() as conn:
            rows = await conn.execute(
                select(t.outbox.c.status, func.count())
                .where(t.outbox.c.status.in_(["pending", "held"]))
                .group_by(t.outbox.c.status)
            )
            return {r[0]: int(r[1]) for r in rows}


async def kill_queue(conn: AsyncConnection, adapter: str, address: str, *, error: str) -> int:
    """Close a destination's owed rows (pending, held) as dead."""
    res = await conn.execute(
        update(t.outbox)
        .where(
            and_(
                t.outbox.c.adapter == adapter,
                t.outbox.c.address == address,
                t.outbox.c.status.in_(["pending", "held"]),
            )
        )
        .values(status="dead", last_error=error[:1000], **_UNCLAIMED)
    )
    return int(res.rowcount or 0)


async def release_outbox_claims(conn: AsyncConnection, *, worker_id: str) -> int:
    """Hand back every outbox row this worker holds (clean shutdown)."""
    o = t.outbox
    rows = await conn.execute(update(o).where(o.c.claimed_by == worker_id).values(**_UNCLAIMED))
    return int(rows.rowcount or 0)


def by_destination(rows: Sequence[Delivery]) -> dict[tuple[str, str], list[Delivery]]:
    grouped: dict[tuple[str, str], list[Delivery]] = {}
    for d in rows:
        grouped.setdefault((d.adapter, d.address), []).append(d)
    return grouped
