"""Surges in the database, so a surge raised by one worker reaches the others.

Append-only rows (`surges`): each worker writes the surges its alerts raise and reads the
rows newer than the last id it saw, a few seconds apart (`bot.sources.surge.SurgeBoard.sync`).
Without it, a worker whose alert surges a source another worker holds the lease on would
wait out that lease before its first fast poll.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.storage import tables as t


@dataclass(frozen=True)
class SurgeRow:
    """One source surging until `until` (interval 0: its floor), and why."""

    source_id: str
    until: datetime
    interval: float
    reason: str
    raised_at: datetime


class SqlSurges:
    """The `surges` table on the Store's engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def record(self, rows: Sequence[SurgeRow]) -> None:
        if not rows:
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(t.surges),
                [
                    {
                        "source_id": r.source_id,
                        "until": r.until,
                        "interval": r.interval,
                        "reason": r.reason,
                        "raised_at": r.raised_at,
                    }
                    for r in rows
                ],
            )

    async def since(self, last_id: int, *, now: datetime) -> tuple[list[SurgeRow], int]:
        """Rows after `last_id` still running at `now`, and the newest id (to pass next time)."""
        s = t.surges
        async with self.engine.connect() as conn:
            newest = (await conn.execute(select(func.max(s.c.id)))).scalar() or 0
            if newest <= last_id:
                return [], last_id
            rows = (
                await conn.execute(
                    select(s).where(s.c.id > last_id, s.c.id <= newest, s.c.until > now).order_by(s.c.id)
                )
            ).all()
        return [SurgeRow(r.source_id, r.until, r.interval, r.reason, r.raised_at) for r in rows], newest

    async def prune(self, *, before: datetime) -> int:
        """Forget surges that ended before `before`."""
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(t.surges).where(t.surges.c.until < before))
            return int(result.rowcount or 0)
