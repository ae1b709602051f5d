"""What the pipeline and routing need of a store, as Protocols.

The SQL `Store` and the backtest's `MemoryStore` both implement them, so mypy
checks both against the same surface. Connections are opaque here (`Any`):
an `AsyncConnection` for the SQL store, an undo log for the in-memory one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from bot.models import Alert, NewsEvent, PriceEvent
from bot.storage.chats import Destination, Mute, Subscription
from bot.storage.outbox import OutboxEntry
from bot.storage.sources import PollRecord, SourceState
from bot.stories import StoryStorage


class RoutingReads(Protocol):
    """Who gets what: read inside the pipeline's transaction (`conn`) or on their own."""

    async def subscriptions(
        self, adapter: str | None = None, address: str | None = None, *, conn: Any = None
    ) -> list[Subscription]: ...

    async def destinations(self, adapter: str | None = None, *, conn: Any = None) -> list[Destination]: ...

    async def active_mutes(
        self, *, now: datetime, adapter: str | None = None, address: str | None = None, conn: Any = None
    ) -> list[Mute]: ...


class PipelineStore(RoutingReads, Protocol):
    """Everything `bot.pipeline.Pipeline` reads and writes, in one transaction per group."""

    @property
    def story_storage(self) -> StoryStorage: ...

    def transaction(self) -> AbstractAsyncContextManager[Any]: ...

    async def record_polls(self, conn: Any, polls: Sequence[PollRecord]) -> list[SourceState]: ...

    async def mark_seen_many(
        self, conn: Any, events: Sequence[NewsEvent | PriceEvent], *, at: datetime
    ) -> set[str]: ...

    async def last_fired_many(
        self, conn: Any, pairs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], datetime]: ...

    async def insert_alerts(self, conn: Any, alerts: Sequence[Alert]) -> set[str]: ...

    async def enqueue_many(self, conn: Any, entries: Sequence[OutboxEntry], *, at: datetime) -> int: ...


class ReplayStore(PipelineStore, Protocol):
    """What a backtest replay adds: counts for its summary, and closing."""

    async def seen_count(self) -> int: ...

    async def alert_count(self) -> int: ...

    async def close(self) -> None: ...
