"""Storage of live outcomes: quotes as polled, and one job per (alert, horizon).

`OutcomeStore` works over the `Store`'s engine (its own tables: `quotes`,
`alert_outcomes`). Jobs are handed out like the outbox: one UPDATE … RETURNING
claims due rows for one worker until `lease_seconds` run out (FOR UPDATE SKIP
LOCKED on PostgreSQL), so with several workers each job is computed by one of
them, and a worker that dies hands its jobs back when the lease lapses.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Table, and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.models import PriceEvent
from bot.storage import tables as t
from bot.storage.store import Store

Horizon = Literal["30m", "1d"]


class Quote(BaseModel):
    symbol: str
    time: datetime
    value: float


class OutcomeJob(BaseModel):
    """One alert at one horizon: due at `due_at`; `moves` and `line` once done."""

    id: int
    alert_id: str
    rule_id: str
    horizon: str
    alert_time: datetime
    due_at: datetime
    status: str
    moves: dict[str, Any] | None = None
    line: str | None = None
    claimed_by: str | None = None
    claimed_until: datetime | None = None
    done_at: datetime | None = None


class NewJob(BaseModel):
    alert_id: str
    rule_id: str
    horizon: str
    alert_time: datetime
    due_at: datetime


class OutcomeStore:
    """Quotes and outcome jobs, on the same database as `store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ---- quotes -----------------------------------------------------------------

    async def record_quotes(self, events: Iterable[PriceEvent], *, seen_at: datetime) -> int:
        """Keep every polled sample (insert-if-new by symbol, source, time); count of new ones."""
        rows = [
            {
                "symbol": e.symbol,
                "source": e.source,
                "time": e.time,
                "value": e.last,
                "seen_at": seen_at,
            }
            for e in events
        ]
        if not rows:
            return 0
        async with self.store.transaction() as conn:
            stmt = _insert(conn, t.quotes).on_conflict_do_nothing().returning(t.quotes.c.symbol)
            return len((await conn.execute(stmt, rows)).all())

    async def quote_at(self, symbol: str, at: datetime) -> Quote | None:
        """The last sample of `symbol` (any source) at or before `at`."""
        q = t.quotes
        stmt = (
            select(q.c.symbol, q.c.time, q.c.value)
            .where(and_(q.c.symbol == symbol, q.c.time <= at))
            .order_by(q.c.time.desc())
            .limit(1)
        )
        async with self.store.engine.connect() as conn:
            row = (await conn.execute(stmt)).mappings().first()
        return None if row is None else Quote.model_validate(dict(row))

    async def prune_quotes(self, *, before: datetime) -> int:
        async with self.store.transaction() as conn:
            result = await conn.execute(delete(t.quotes).where(t.quotes.c.time < before))
            return int(result.rowcount or 0)

    # ---- jobs -------------------------------------------------------------------

    async def alerts_without_jobs(
        self, *, since: datetime, limit: int = 500
    ) -> list[tuple[str, str, datetime]]:
        """(alert id, rule id, created_at) of alerts since `since` that have no outcome job yet."""
        a, o = t.alerts, t.alert_outcomes
        stmt = (
            select(a.c.id, a.c.rule_id, a.c.created_at)
            .where(and_(a.c.created_at >= since, a.c.id.not_in(select(o.c.alert_id))))
            .order_by(a.c.created_at)
            .limit(limit)
        )
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [(r[0], r[1], r[2]) for r in rows]

    async def add_jobs(self, jobs: Sequence[NewJob]) -> int:
        """Insert-if-new by (alert, horizon): several workers may schedule the same alert."""
        if not jobs:
            return 0
        o = t.alert_outcomes
        rows = [{**j.model_dump(), "status": "pending"} for j in jobs]
        async with self.store.transaction() as conn:
            stmt = _insert(conn, o).on_conflict_do_nothing().returning(o.c.id)
            return len((await conn.execute(stmt, rows)).all())

    async def claim_due(
        self, *, worker_id: str, now: datetime, lease_seconds: float = 60.0, limit: int = 50
    ) -> list[OutcomeJob]:
        """Due pending jobs nobody holds, each handed to this worker only."""
        o = t.alert_outcomes
        free = or_(o.c.claimed_until.is_(None), o.c.claimed_until <= now)
        if self.store.single_worker:  # a claim by another id was left by a crashed predecessor
            free = or_(free, o.c.claimed_by != worker_id)
        claimable = (
            select(o.c.id)
            .where(and_(o.c.status == "pending", o.c.due_at <= now, free))
            .order_by(o.c.due_at, o.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        stmt = (
            update(o)
            .where(o.c.id.in_(claimable))
            .values(claimed_by=worker_id, claimed_until=now + timedelta(seconds=lease_seconds))
            .returning(*o.c)
        )
        async with self.store.transaction() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return sorted((OutcomeJob.model_validate(dict(r)) for r in rows), key=lambda j: j.due_at)

    async def finish(
        self, job_id: int, *, worker_id: str, moves: dict[str, Any], line: str, at: datetime
    ) -> bool:
        """Record the result; False if the claim was lost (another worker finished it)."""
        o = t.alert_outcomes
        stmt = (
            update(o)
            .where(and_(o.c.id == job_id, o.c.status == "pending", o.c.claimed_by == worker_id))
            .values(
                status="done",
                moves=moves,
                line=line,
                done_at=at,
                claimed_by=None,
                claimed_until=None,
            )
        )
        async with self.store.transaction() as conn:
            return bool((await conn.execute(stmt)).rowcount)

    async def release(self, *, worker_id: str) -> int:
        o = t.alert_outcomes
        async with self.store.transaction() as conn:
            result = await conn.execute(
                update(o)
                .where(o.c.claimed_by == worker_id)
                .values(claimed_by=None, claimed_until=None)
            )
            return int(result.rowcount or 0)

    async def jobs_for(self, alert_id: str) -> list[OutcomeJob]:
        o = t.alert_outcomes
        async with self.store.engine.connect() as conn:
            rows = (
                await conn.execute(select(o).where(o.c.alert_id == alert_id).order_by(o.c.due_at))
            ).mappings()
            return [OutcomeJob.model_validate(dict(r)) for r in rows]

    async def done_jobs(self, *, rule_id: str | None = None) -> list[OutcomeJob]:
        """Every finished job (of one rule), oldest first: the live track record."""
        o = t.alert_outcomes
        cond = o.c.status == "done"
        if rule_id is not None:
            cond = and_(cond, o.c.rule_id == rule_id)
        async with self.store.engine.connect() as conn:
            rows = (
                await conn.execute(select(o).where(cond).order_by(o.c.alert_time, o.c.id))
            ).mappings()
            return [OutcomeJob.model_validate(dict(r)) for r in rows]

    async def pending_count(self) -> int:
        o = t.alert_outcomes
        async with self.store.engine.connect() as conn:
            n = (
                await conn.execute(select(func.count()).where(o.c.status == "pending"))
            ).scalar_one()
        return int(n)


def _insert(conn: AsyncConnection, table: Table) -> Any:
    """INSERT with ON CONFLICT support on either backend."""
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)
