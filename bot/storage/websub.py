"""WebSub subscriptions in the database: hub, topic, callback id, secret, lease and state per feed.

Any worker may note a discovered hub (`note_hub`) and answer the hub at its callback
(`by_callback`, `verified`); only the leader subscribes, renews and unsubscribes
(`bot.sources.websub_subscriber`). Every change is one statement, so workers never
need to share a transaction. States:

    discovered     a poll saw the hub; no request sent yet
    pending        subscribe sent, the hub has not verified it yet
    live           verified; pushes are accepted until `lease_until`
    failed         the hub refused, errored or never verified; retried at `next_attempt_at`
    withdrawn      the feed stopped advertising the hub; the leader unsubscribes
    unsubscribing  the source was removed (or withdrawn); unsubscribe sent (the row goes once verified)
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, SecretStr
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.storage import tables as t

State = Literal["discovered", "pending", "live", "failed", "withdrawn", "unsubscribing"]
Mode = Literal["subscribe", "unsubscribe"]
_T = t.websub_subscriptions


class HubSubscription(BaseModel):
    """One row of `websub_subscriptions`; the secret never shows in a repr or a log."""

    source_id: str
    hub: str
    topic: str
    callback_id: str
    secret: SecretStr
    state: State
    pending_mode: Mode | None = None
    requested_at: datetime | None = None
    verified_at: datetime | None = None
    lease_seconds: int | None = None
    lease_until: datetime | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None

    def is_live(self, now: datetime) -> bool:
        """Verified and inside its lease: the hub is pushing to us."""
        return self.state == "live" and self.lease_until is not None and now < self.lease_until


def new_callback_id() -> str:
    """192 random bits, URL-safe: the callback path nobody can guess."""
    return secrets.token_urlsafe(24)


def new_secret() -> str:
    """The HMAC key the hub signs pushes with (WebSub allows up to 200 bytes)."""
    return secrets.token_urlsafe(32)


class WebSubStore:
    """The `websub_subscriptions` table over the Store's engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def all(self) -> list[HubSubscription]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(_T).order_by(_T.c.source_id))).mappings()
            return [HubSubscription.model_validate(dict(r)) for r in rows]

    async def get(self, source_id: str) -> HubSubscription | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(_T).where(_T.c.source_id == source_id))).mappings().first()
        return None if row is None else HubSubscription.model_validate(dict(row))

    async def by_callback(self, callback_id: str) -> HubSubscription | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(_T).where(_T.c.callback_id == callback_id))).mappings().first()
        return None if row is None else HubSubscription.model_validate(dict(row))

    async def note_hub(self, source_id: str, *, hub: str, topic: str) -> bool:
        """Record that `source_id` advertises `hub` for `topic`. A new or changed hub/topic
        starts over (new callback id and secret: the old hub's pushes then answer 404).
        Returns True when something changed."""
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(select(_T.c.hub, _T.c.topic, _T.c.state).where(_T.c.source_id == source_id))
            ).first()
            fresh: dict[str, Any] = {
                "hub": hub,
                "topic": topic,
                "callback_id": new_callback_id(),
                "secret": new_secret(),
                "state": "discovered",
                "pending_mode": None,
                "requested_at": None,
                "verified_at": None,
                "lease_seconds": None,
                "lease_until": None,
                "attempts": 0,
                "next_attempt_at": None,
                "last_error": None,
            }
            if row is None:
                await conn.execute(_T.insert().values(source_id=source_id, **fresh))
                return True
            if (row.hub, row.topic) == (hub, topic) and row.state not in ("unsubscribing", "withdrawn"):
                return False
            await conn.execute(update(_T).where(_T.c.source_id == source_id).values(**fresh))
            return True

    async def withdraw(self, source_id: str) -> bool:
        """The feed no longer advertises a hub: mark the subscription for unsubscribing.
        Returns True when a row changed."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(_T)
                .where(_T.c.source_id == source_id, _T.c.state.not_in(("withdrawn", "unsubscribing")))
                .values(state="withdrawn")
            )
        return bool(result.rowcount)

    async def requested(self, source_id: str, mode: Mode, *, at: datetime) -> None:
        """A request is about to go to the hub: written first, since the hub may verify
        before its answer to the request arrives."""
        values: dict[str, Any] = {"pending_mode": mode, "requested_at": at}
        if mode == "unsubscribe":
            values["state"] = "unsubscribing"
        async with self.engine.begin() as conn:
            await conn.execute(update(_T).where(_T.c.source_id == source_id).values(**values))
            if mode == "subscribe":  # a renewal of a live subscription stays live meanwhile
                await conn.execute(
                    update(_T)
                    .where(_T.c.source_id == source_id, _T.c.state.in_(("discovered", "failed")))
                    .values(state="pending")
                )

    async def verified(self, source_id: str, mode: Mode, *, lease_seconds: int | None, at: datetime) -> None:
        """The hub verified our intent: live for the lease (subscribe) or gone (unsubscribe)."""
        async with self.engine.begin() as conn:
            if mode == "unsubscribe":
                await conn.execute(delete(_T).where(_T.c.source_id == source_id))
                return
            lease_until = at + timedelta(seconds=lease_seconds) if lease_seconds else None
            await conn.execute(
                update(_T)
                .where(_T.c.source_id == source_id)
                .values(
                    state="live",
                    pending_mode=None,
                    verified_at=at,
                    lease_seconds=lease_seconds,
                    lease_until=lease_until,
                    attempts=0,
                    next_attempt_at=None,
                    last_error=None,
                )
            )

    async def failed(self, source_id: str, error: str, *, retry_at: datetime, keep_live: bool = False) -> int:
        """A request failed (hub error, refusal, no verification): retry at `retry_at`.
        `keep_live`: a renewal failed while the current lease still runs. Returns attempts so far."""
        async with self.engine.begin() as conn:
            values: dict[str, Any] = {
                "pending_mode": None,
                "attempts": _T.c.attempts + 1,
                "next_attempt_at": retry_at,
                "last_error": error[:500],
            }
            if not keep_live:
                values["state"] = "failed"
            await conn.execute(update(_T).where(_T.c.source_id == source_id).values(**values))
            attempts = await conn.scalar(select(_T.c.attempts).where(_T.c.source_id == source_id))
        return int(attempts or 0)

    async def lapsed(self, source_id: str) -> None:
        """The lease ran out without a renewal: subscribe again from scratch."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(_T).where(_T.c.source_id == source_id, _T.c.state == "live").values(state="failed")
            )

    async def forget(self, source_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(_T).where(_T.c.source_id == source_id))
