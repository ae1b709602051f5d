"""Chat preferences: destinations (chats, channels) with their filters and quiet hours,
subscriptions and mutes. Written by the chat commands, read by routing."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage import tables as t
from bot.storage.db import StorePart, insert_new
from bot.storage.outbox import kill_queue

Selector = Literal["severity", "rule", "tag"]


class Destination(BaseModel):
    adapter: str
    address: str
    chat_kind: str | None = None
    title: str | None = None
    include_words: list[str] = []
    exclude_words: list[str] = []
    quiet_start: str | None = None
    quiet_end: str | None = None
    quiet_tz: str | None = None
    session: str | None = None  # market session alerts are held outside (issue 16)
    disabled_at: datetime | None = None
    disabled_reason: str | None = None


class Subscription(BaseModel):
    adapter: str
    address: str
    selector: Selector
    value: str


class Mute(BaseModel):
    adapter: str
    address: str
    rule_id: str | None
    until: datetime


class ChatPreferences(StorePart):
    """Destinations, subscriptions, mutes."""

    async def ensure_destination(
        self, adapter: str, address: str, *, at: datetime, chat_kind: str | None = None, title: str | None = None
    ) -> Destination:
        """Create the destination if new; re-enable it if it had been disabled."""
        d = t.destinations
        async with self.db.transaction() as conn:
            row = (
                await conn.execute(select(d).where(and_(d.c.adapter == adapter, d.c.address == address)))
            ).mappings().first()
            if row is None:
                await insert_new(
                    conn,
                    d,
                    adapter=adapter,
                    address=address,
                    chat_kind=chat_kind,
                    title=title,
                    include_words=[],
                    exclude_words=[],
                    created_at=at,
                )
            else:
                values: dict[str, Any] = {"disabled_at": None, "disabled_reason": None}
                if chat_kind:
                    values["chat_kind"] = chat_kind
                if title:
                    values["title"] = title
                await conn.execute(
                    update(d).where(and_(d.c.adapter == adapter, d.c.address == address)).values(**values)
                )
        dest = await self.get_destination(adapter, address)
        assert dest is not None
        return dest

    async def get_destination(self, adapter: str, address: str) -> Destination | None:
        d = t.destinations
        async with self.db.engine.connect() as conn:
            row = (
                await conn.execute(select(d).where(and_(d.c.adapter == adapter, d.c.address == address)))
            ).mappings().first()
        return None if row is None else Destination.model_validate(dict(row))

    async def destinations(
        self, adapter: str | None = None, *, conn: AsyncConnection | None = None
    ) -> list[Destination]:
        d = t.destinations
        q = select(d).order_by(d.c.adapter, d.c.address)
        if adapter:
            q = q.where(d.c.adapter == adapter)
        async with self.db.reading(conn) as conn:
            return [Destination.model_validate(dict(r)) for r in (await conn.execute(q)).mappings()]

    async def update_destination(self, adapter: str, address: str, **values: Any) -> None:
        allowed = {"include_words", "exclude_words", "quiet_start", "quiet_end", "quiet_tz", "session", "title", "chat_kind"}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"not destination settings: {sorted(unknown)}")
        d = t.destinations
        async with self.db.transaction() as conn:
            await conn.execute(
                update(d).where(and_(d.c.adapter == adapter, d.c.address == address)).values(**values)
            )

    async def disable_destination(self, adapter: str, address: str, *, reason: str, at: datetime) -> None:
        """A destination the bot can no longer reach: disabled (routing skips it), recorded, its
        queue closed. Disable, never delete: its subscriptions stay, so a chat that comes back
        (`ensure_destination`, e.g. on /start) resumes as it was."""
        d = t.destinations
        async with self.db.transaction() as conn:
            await conn.execute(
                update(d)
                .where(and_(d.c.adapter == adapter, d.c.address == address))
                .values(disabled_at=at, disabled_reason=reason[:500])
            )
            await kill_queue(conn, adapter, address, error=reason)

    async def subscribe(self, adapter: str, address: str, selector: Selector, value: str, *, at: datetime) -> bool:
        """Add a subscription; False if it already existed."""
        async with self.db.transaction() as conn:
            return await insert_new(
                conn, t.subscriptions, adapter=adapter, address=address, selector=selector, value=value, created_at=at
            )

    async def unsubscribe(
        self, adapter: str, address: str, selector: Selector | None = None, value: str | None = None
    ) -> int:
        """Remove one subscription, or all of a destination's when no selector is given."""
        s = t.subscriptions
        cond = and_(s.c.adapter == adapter, s.c.address == address)
        if selector is not None:
            cond = and_(cond, s.c.selector == selector)
        if value is not None:
            cond = and_(cond, s.c.value == value)
        async with self.db.transaction() as conn:
            res = await conn.execute(delete(s).where(cond))
            return int(res.rowcount or 0)

    async def subscriptions(
        self, adapter: str | None = None, address: str | None = None, *, conn: AsyncConnection | None = None
    ) -> list[Subscription]:
        s = t.subscriptions
        q = select(s.c.adapter, s.c.address, s.c.selector, s.c.value).order_by(s.c.adapter, s.c.address, s.c.id)
        if adapter is not None:
            q = q.where(s.c.adapter == adapter)
        if address is not None:
            q = q.where(s.c.address == address)
        async with self.db.reading(conn) as conn:
            return [Subscription.model_validate(dict(r)) for r in (await conn.execute(q)).mappings()]

    async def add_mute(
        self, adapter: str, address: str, *, rule_id: str | None, until: datetime, at: datetime
    ) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                insert(t.mutes).values(adapter=adapter, address=address, rule_id=rule_id, until=until, created_at=at)
            )

    async def clear_mutes(self, adapter: str, address: str, rule_id: str | None = None) -> int:
        m = t.mutes
        cond = and_(m.c.adapter == adapter, m.c.address == address)
        if rule_id is not None:
            cond = and_(cond, m.c.rule_id == rule_id)
        async with self.db.transaction() as conn:
            return int((await conn.execute(delete(m).where(cond))).rowcount or 0)

    async def active_mutes(
        self,
        *,
        now: datetime,
        adapter: str | None = None,
        address: str | None = None,
        conn: AsyncConnection | None = None,
    ) -> list[Mute]:
        m = t.mutes
        q = select(m.c.adapter, m.c.address, m.c.rule_id, m.c.until).where(m.c.until > now)
        if adapter is not None:
            q = q.where(m.c.adapter == adapter)
        if address is not None:
            q = q.where(m.c.address == address)
        async with self.db.reading(conn) as conn:
            return [Mute.model_validate(dict(r)) for r in (await conn.execute(q)).mappings()]
