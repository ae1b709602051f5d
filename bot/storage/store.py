"""The Store: Readout's database, one object over the storage modules.

Each concern is a module over the shared `Database` (`bot.storage.db`: engine,
transactions, insert-if-new):

- `events`  — seen events, alerts, cooldowns (`EventLog`)
- `sources` — poll outcomes and source leases (`SourceLeases`, with `cache`)
- `outbox`  — deliveries owed, claimed, settled (`OutboxQueue`)
- `chats`   — destinations, subscriptions, mutes (`ChatPreferences`)
- `stories` — stories and the chat message of each (`SqlStories`, `SqlMessages`: `story_storage`)

`Store` is all of them on one database, so callers hold one object and share
one transaction across concerns (`async with store.transaction() as conn`).
A new concern is a new module with a `StorePart` subclass, added to the bases
below. The pipeline depends only on `bot.storage.protocols.PipelineStore`,
which the backtest's in-memory store implements too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.storage.chats import ChatPreferences, Destination, Mute, Selector, Subscription
from bot.storage.db import Database, create_engine, make_worker_id
from bot.storage.events import EventLog
from bot.storage.outbox import (
    Delivery,
    OutboxEntry,
    OutboxQueue,
    OutboxStatus,
    release_outbox_claims,
)
from bot.storage.sources import PollRecord, SourceLeases, SourceState, release_leases
from bot.storage.stories import SqlStories


class Store(EventLog, SourceLeases, OutboxQueue, ChatPreferences):
    """Readout's database. Create with `await Store.open(url)`."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(Database(engine))

    @classmethod
    async def open(cls, url: str, *, create: bool = True) -> Store:
        store = cls(create_engine(url))
        if create:
            await store.db.create_schema()
        return store

    @property
    def engine(self) -> AsyncEngine:
        return self.db.engine

    @property
    def story_storage(self) -> SqlStories:
        """Stories (`bot.stories`) in their tables, on this store's engine."""
        return SqlStories(self.engine)

    @property
    def single_worker(self) -> bool:
        """SQLite: one worker owns the database (see `bot.storage.db.Database`)."""
        return self.db.single_worker

    @single_worker.setter
    def single_worker(self, value: bool) -> None:
        self.db.single_worker = value

    @property
    def dialect(self) -> str:
        return self.db.dialect

    async def create_schema(self) -> None:
        await self.db.create_schema()

    async def close(self) -> None:
        await self.db.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self.db.transaction() as conn:
            yield conn

    async def release_claims(self, *, worker_id: str) -> int:
        """Hand back every outbox row and source lease this worker holds (clean shutdown)."""
        async with self.db.transaction() as conn:
            return await release_outbox_claims(conn, worker_id=worker_id) + await release_leases(
                conn, worker_id=worker_id
            )


__all__ = [
    "Delivery",
    "Destination",
    "Mute",
    "OutboxEntry",
    "OutboxStatus",
    "PollRecord",
    "Selector",
    "SourceState",
    "Store",
    "Subscription",
    "make_worker_id",
]
