"""Telegram paid broadcast spend: messages reserved per UTC day against the daily Stars cap.

One row per day (`paid_broadcast_spend`). A worker reserves messages *before*
sending them, with one UPDATE whose SET reads the row as it was before the
statement and whose WHERE refuses once the cap is reached:

    messages   = messages + min(n, cap - messages)
    last_grant = min(n, cap - messages)        -- what this reservation got
    WHERE day = :day AND messages < :cap  RETURNING last_grant

A single UPDATE of one row is atomic on both backends (PostgreSQL re-checks the
WHERE on the row it locked; SQLite has one writer at a time), so however many
workers reserve at once the sum of their grants never passes the cap. What is
reserved and not sent (a refusal, a worker stopping with some in hand) is
handed back with `release`; a worker that dies keeps its reservation counted —
the cap errs on the side of spending less, never more.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, literal, select, update

from bot.storage import tables as t
from bot.storage.db import insert_new
from bot.storage.store import Store

STAR_TENTHS_PER_MESSAGE = 1  # a paid message costs 0.1 Star: counted in messages, 10 per Star


def day_of(at: datetime) -> str:
    """The UTC day a spend counts against (`YYYY-MM-DD`)."""
    return at.strftime("%Y-%m-%d")


class PaidSpend:
    """The daily reservation ledger, on the Store's database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def reserve(self, day: str, wanted: int, *, cap: int, at: datetime) -> int:
        """Reserve up to `wanted` messages of `day` without passing `cap` messages in all;
        returns how many were granted (0: the cap is reached)."""
        if wanted <= 0 or cap <= 0:
            return 0
        db = self.store.db
        async with db.transaction() as conn:
            await insert_new(
                conn, t.paid_broadcast_spend, day=day, messages=0, last_grant=0, updated_at=at
            )
            col = t.paid_broadcast_spend.c
            room = literal(cap) - col.messages
            grant = case((col.messages + wanted <= cap, literal(wanted)), else_=room)
            stmt = (
                update(t.paid_broadcast_spend)
                .where(col.day == day, col.messages < cap)
                .values(messages=col.messages + grant, last_grant=grant, updated_at=at)
                .returning(col.last_grant)
            )
            granted = (await conn.execute(stmt)).scalar_one_or_none()
        return int(granted or 0)

    async def release(self, day: str, unused: int, *, at: datetime) -> None:
        """Hand back `unused` reserved messages of `day` (never below zero)."""
        if unused <= 0:
            return
        col = t.paid_broadcast_spend.c
        back = case((col.messages >= unused, col.messages - unused), else_=literal(0))
        async with self.store.db.transaction() as conn:
            await conn.execute(
                update(t.paid_broadcast_spend).where(col.day == day).values(messages=back, updated_at=at)
            )

    async def spent(self, day: str) -> int:
        """Messages reserved on `day` (sent, or in a worker's hand)."""
        col = t.paid_broadcast_spend.c
        async with self.store.db.reading(None) as conn:
            value = (await conn.execute(select(col.messages).where(col.day == day))).scalar_one_or_none()
        return int(value or 0)
