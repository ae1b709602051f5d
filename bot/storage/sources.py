"""Sources: their poll outcomes (validators, failure streaks) and the leases that share them out.

Several workers on one PostgreSQL share the polling through leases that expire:
`claim_source` gives each source to one worker per interval; a worker that dies
stops renewing and its leases lapse after `lease_seconds`. On SQLite one worker
owns the database (`single_worker`) and leases are skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage import tables as t
from bot.storage.cache import SourceStateCache
from bot.storage.db import Database, StorePart, dialect_insert


class PollRecord(BaseModel):
    """The outcome of one poll of one source, as `Store.record_polls` stores it."""

    source_id: str
    at: datetime
    error: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    # Renew this worker's lease on the source in the same write (several workers).
    lease_owner: str | None = None
    lease_until: datetime | None = None


class SourceState(BaseModel):
    source_id: str
    etag: str | None = None
    last_modified: str | None = None
    first_polled_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    polls: int = 0
    lease_owner: str | None = None
    lease_until: datetime | None = None


class SourceLeases(StorePart):
    """Poll outcomes and leases; remembers the states it wrote (see `claim_source`)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._states = SourceStateCache()
        db.on_rollback(self._states.clear)  # it may hold rolled-back writes: read the database again
        # One load of all states at a time: at start-up every poll in flight finds the memory
        # empty, and each reading the whole table was hundreds of reads on a 1,000-feed cold cycle.
        self._loading = asyncio.Lock()

    async def get_source_state(self, source_id: str) -> SourceState | None:
        async with self.db.engine.connect() as conn:
            row = (
                await conn.execute(select(t.source_state).where(t.source_state.c.source_id == source_id))
            ).mappings().first()
        return None if row is None else SourceState.model_validate(dict(row))

    async def all_source_states(self) -> list[SourceState]:
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(select(t.source_state).order_by(t.source_state.c.source_id))).mappings()
            return [SourceState.model_validate(dict(r)) for r in rows]

    async def record_poll(
        self,
        source_id: str,
        *,
        at: datetime,
        error: str | None,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> SourceState:
        """Store the outcome of one poll, in a transaction of its own (see `record_polls`)."""
        poll = PollRecord(source_id=source_id, at=at, error=error, etag=etag, last_modified=last_modified)
        async with self.db.transaction() as conn:
            (state,) = await self.record_polls(conn, [poll])
        return state

    async def record_polls(self, conn: AsyncConnection, polls: Sequence[PollRecord]) -> list[SourceState]:
        """Store poll outcomes: validators on success, error and streak on failure.

        Upserts whose counters are computed by the database, so two workers
        recording the same source lose no increment; leases are left alone. One
        statement for all successes and one for all failures; a source polled twice
        in `polls` counts its last poll only.
        """
        s = t.source_state
        latest = {p.source_id: p for p in polls}
        states: list[SourceState] = []
        for failed in (False, True):
            rows = [p for p in latest.values() if (p.error is not None) is failed]
            if not rows:
                continue
            outcome = ["last_error", "last_error_at"] if failed else ["etag", "last_modified", "last_success_at"]
            stmt = dialect_insert(conn, s)
            updates: dict[str, Any] = {
                "polls": s.c.polls + 1,
                "first_polled_at": func.coalesce(s.c.first_polled_at, stmt.excluded.first_polled_at),
                "consecutive_failures": s.c.consecutive_failures + 1 if failed else 0,
                "lease_until": case(
                    (s.c.lease_owner == stmt.excluded.lease_owner, stmt.excluded.lease_until),
                    else_=s.c.lease_until,
                ),
                **{name: stmt.excluded[name] for name in outcome},
            }
            result = await conn.execute(
                stmt.on_conflict_do_update(index_elements=[s.c.source_id], set_=updates).returning(s),
                [
                    {
                        "source_id": p.source_id,
                        "polls": 1,
                        "first_polled_at": p.at,
                        "consecutive_failures": int(failed),
                        "etag": p.etag,
                        "last_modified": p.last_modified,
                        "last_success_at": None if failed else p.at,
                        "last_error": (p.error or "")[:1000] if failed else None,
                        "last_error_at": p.at if failed else None,
                        "lease_owner": p.lease_owner,
                        "lease_until": p.lease_until,
                    }
                    for p in rows
                ],
            )
            states.extend(SourceState.model_validate(dict(row)) for row in result.mappings())
        self._states.put(states)
        return states

    async def claim_source(
        self, source_id: str, *, worker_id: str, lease_seconds: float, now: datetime
    ) -> SourceState | None:
        """Take (or renew) the lease to poll a source and return its state; None while
        another worker's lease runs.

        The lease is sticky: its holder renews it on every poll, so the source
        stays with one worker (and its conditional-GET validators stay warm);
        others get it only once `lease_seconds` have passed without a renewal.
        Use a lease longer than the poll interval plus its jitter. One upsert
        statement that also reads the state — or none: while this worker's lease
        has more than a third of `lease_seconds` to run (`record_polls` renews it
        along with the poll's outcome), the state it last wrote is the truth, since
        no one else may write the row. With `single_worker` (SQLite) the lease is
        always this worker's and the states are read once. The memory is dropped
        whenever a transaction rolls back.
        """
        s = t.source_state
        if self.db.single_worker:
            if not self._states.complete:
                async with self._loading:
                    if not self._states.complete:  # loaded while this poll waited
                        self._states.put_all(await self.all_source_states())
            return self._states.get(source_id) or SourceState(source_id=source_id)
        held = self._states.get(source_id)
        if (
            held is not None
            and held.lease_owner == worker_id
            and held.lease_until is not None
            and held.lease_until > now + timedelta(seconds=lease_seconds / 3)
        ):
            return held  # our lease runs on (renewed by record_polls): no one else can hold it
        until = now + timedelta(seconds=lease_seconds)
        free = or_(
            s.c.lease_owner.is_(None),
            s.c.lease_owner == worker_id,
            s.c.lease_until.is_(None),
            s.c.lease_until <= now,
        )
        async with self.db.one_statement() as conn:
            stmt = (
                dialect_insert(conn, s)
                .values(source_id=source_id, consecutive_failures=0, polls=0, lease_owner=worker_id, lease_until=until)
                .on_conflict_do_update(
                    index_elements=[s.c.source_id],
                    set_={"lease_owner": worker_id, "lease_until": until},
                    where=free,
                )
                .returning(s)
            )
            row = (await conn.execute(stmt)).mappings().first()
        if row is None:
            self._states.drop(source_id)
            return None
        state = SourceState.model_validate(dict(row))
        self._states.put([state])
        return state


async def release_leases(conn: AsyncConnection, *, worker_id: str) -> int:
    """Hand back every source lease this worker holds (clean shutdown)."""
    s = t.source_state
    res = await conn.execute(
        update(s).where(s.c.lease_owner == worker_id).values(lease_owner=None, lease_until=None)
    )
    return int(res.rowcount or 0)
