"""The WebSub subscriber: subscribe to the hubs feeds advertise, keep leases, answer the hub.

Polls discover hubs (`note`, any worker); the subscription rows live in the database
(`bot.storage.websub`). One worker — the holder of the "websub" leader lock; on SQLite
the only one — sends subscribe, renew and unsubscribe requests (`tick`). Every worker
runs the callback endpoint (`bot.sources.websub_endpoint`) and answers from the
database, so a hub may reach any of them. Every worker refreshes its view of the rows
each tick, which `is_live` answers from (no database round trip on the poll path).

Failure handling: a hub that errors, refuses or never verifies leaves the row `failed`
with a retry time that doubles per failure (`retry_seconds` … 6 hours); polling goes
on as usual meanwhile. Each source's failure is logged once until it recovers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import httpx
from sqlalchemy.exc import SQLAlchemyError

from bot.clock import Clock
from bot.settings import Settings
from bot.sources.config import FeedSource
from bot.sources.http import redact_url
from bot.sources.redirects import redirect_refusal
from bot.sources.websub import HubLink
from bot.storage.leader import LeaderLock
from bot.storage.websub import HubSubscription, Mode, WebSubStore

log = logging.getLogger(__name__)

MAX_RETRY_SECONDS = 6 * 3600
CALLBACK_PATH = "/websub/"
HUB_TIMEOUT = 15.0  # seconds for a hub to answer a (un)subscribe request


class WebSubSubscriber:
    """Subscriptions for every feed with a hub; `run` keeps them, `is_live` tells the poller."""

    def __init__(
        self,
        store: WebSubStore,
        client: httpx.AsyncClient,
        clock: Clock,
        settings: Settings,
        *,
        sources: Callable[[], Mapping[str, FeedSource]],
        leader: LeaderLock,
    ) -> None:
        assert settings.websub_public_url is not None
        self.store = store
        self.clock = clock
        self.public_url = settings.websub_public_url
        self.lease_seconds = settings.websub_lease_seconds
        self.verify_timeout = timedelta(seconds=settings.websub_verify_timeout)
        self.retry_seconds = settings.websub_retry_seconds
        self.check_seconds = settings.websub_check_seconds
        self._client = client
        self._sources = sources
        self._leader = leader
        self._view: dict[str, HubSubscription] = {}
        self._noted: dict[str, HubLink] = {}
        self._logged: set[str] = set()  # sources whose current failure was logged
        self._wake = asyncio.Event()

    # ---- what the rest of the bot asks ----------------------------------------

    def is_live(self, source_id: str) -> bool:
        """The hub pushes this source's items to us (verified, inside the lease), as of the
        last tick. The poller then polls it only as a safety net."""
        row = self._view.get(source_id)
        return row is not None and row.is_live(self.clock.now())

    def states(self) -> dict[str, str]:
        """source id → live | pending | failed | … (for /status)."""
        now = self.clock.now()
        return {
            sid: ("live" if row.is_live(now) else "failed" if row.state == "live" else row.state)
            for sid, row in self._view.items()
        }

    def callback_url(self, callback_id: str) -> str:
        return f"{self.public_url}{CALLBACK_PATH}{callback_id}"

    async def note(self, source: FeedSource, hub: HubLink | None) -> None:
        """A poll of `source` read its feed and found `hub` (None: no hub advertised any more):
        record a new or changed hub, or a withdrawn one, for the leader."""
        known = self._view.get(source.id)
        if hub is None:
            if known is None or known.state in ("withdrawn", "unsubscribing"):
                return
        elif self._noted.get(source.id) == hub and known is not None and known.state not in ("withdrawn", "unsubscribing"):
            return  # known, and its row stands (a removed and re-added source starts over)
        try:
            if hub is None:
                changed = await self.store.withdraw(source.id)
            else:
                changed = await self.store.note_hub(source.id, hub=hub.hub, topic=hub.topic)
        except SQLAlchemyError as exc:  # the poll must go on; the next poll notes it again
            log.warning("websub: could not record the hub of %s: %s", source.id, type(exc).__name__)
            return
        self._noted.pop(source.id, None)
        if hub is not None:
            self._noted[source.id] = hub
        if changed:
            if hub is None:
                log.info("websub: %s no longer advertises a hub; unsubscribing", source.id)
            else:
                log.info("websub: %s advertises a hub (%s); subscribing", source.id, redact_url(hub.hub))
            self._wake.set()

    # ---- the hub's verification (from the endpoint) ---------------------------

    def accepts(self, row: HubSubscription, mode: str) -> bool:
        """Whether a verification of intent for `mode` matches what we asked (else 404)."""
        if mode == "subscribe":
            return row.pending_mode == "subscribe" or row.state == "live"
        if mode == "unsubscribe":
            return row.pending_mode == "unsubscribe"
        return False

    async def verified(self, row: HubSubscription, mode: Mode, lease_seconds: int | None) -> None:
        lease = lease_seconds or row.lease_seconds or self.lease_seconds
        await self.store.verified(row.source_id, mode, lease_seconds=lease, at=self.clock.now())
        self._logged.discard(row.source_id)
        if mode == "subscribe" and row.state != "live":
            log.info("websub: %s is live on push (lease %ss)", row.source_id, lease)
        elif mode == "unsubscribe":
            log.info("websub: unsubscribed %s", row.source_id)
        self._wake.set()

    async def denied(self, row: HubSubscription, reason: str) -> None:
        await self._fail(row, f"the hub denied the subscription: {reason[:200] or 'no reason given'}")

    # ---- the leader's upkeep ---------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every `check_seconds` (or at once when a hub is noted) until `stop`."""
        try:
            while not stop.is_set():
                try:
                    await self.tick()
                except (SQLAlchemyError, OSError) as exc:
                    log.warning("websub: subscription check failed (%s); retrying", type(exc).__name__)
                except Exception:  # a bug in one pass must not end push for the process
                    log.exception("websub: subscription check failed; retrying")
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_either(stop, self._wake), timeout=self.check_seconds)
        finally:
            await self._leader.release()

    async def tick(self) -> None:
        """Refresh the view; as leader, send whatever requests are due."""
        rows = await self.store.all()
        self._view = {r.source_id: r for r in rows}
        if not await self._leader.try_acquire():
            return
        sources = self._sources()
        now = self.clock.now()
        # side by side: one slow hub (up to HUB_TIMEOUT) must not hold the others' renewals
        await asyncio.gather(*(self._maintain(row, sources.get(row.source_id), now) for row in rows))

    async def _maintain(self, row: HubSubscription, source: FeedSource | None, now: datetime) -> None:
        waited = row.requested_at is not None and now - row.requested_at > self.verify_timeout
        due = row.next_attempt_at is None or now >= row.next_attempt_at
        if source is None or row.state in ("withdrawn", "unsubscribing"):  # removed, or no hub any more
            if row.state in ("discovered", "failed") or (row.state == "unsubscribing" and waited):
                await self.store.forget(row.source_id)  # a lease nobody renews lapses on its own
            elif row.state in ("live", "pending", "withdrawn"):
                await self._request(row, "unsubscribe", source)
            return
        if row.state == "discovered" or (row.state == "failed" and due):
            await self._request(row, "subscribe", source)
        elif row.state == "pending" and waited:
            await self._fail(row, "the hub never verified the subscription")
        elif row.state == "live":
            if row.pending_mode == "subscribe":
                if waited:
                    await self._fail(row, "the hub never verified the renewal", keep_live=True)
            elif due and (row.lease_until is None or now >= row.lease_until - self._renew_margin(row)):
                await self._request(row, "subscribe", source)  # renew (or, past the lease, start over)

    def _renew_margin(self, row: HubSubscription) -> timedelta:
        """Renew this long before the lease ends: a quarter of it (at most a day), and at
        least three checks' worth when the lease allows."""
        lease = float(row.lease_seconds or self.lease_seconds)
        margin = min(max(lease / 4, 3 * self.check_seconds), lease / 2, 86_400.0)
        return timedelta(seconds=margin)

    async def _request(self, row: HubSubscription, mode: Mode, source: FeedSource | None) -> None:
        """POST a (un)subscribe request; the hub verifies it later at our callback."""
        origin = source.fetch_url() if source is not None else row.topic
        refused = await redirect_refusal(origin, row.hub, policy="any")
        if refused is not None:  # a feed on a public host must not make us POST to internal ones
            await self._fail(row, f"hub refused: {refused}")
            return
        await self.store.requested(row.source_id, mode, at=self.clock.now())
        data = {"hub.mode": mode, "hub.topic": row.topic, "hub.callback": self.callback_url(row.callback_id)}
        if mode == "subscribe":
            data["hub.secret"] = row.secret.get_secret_value()
            data["hub.lease_seconds"] = str(self.lease_seconds)
        try:
            response = await self._client.post(row.hub, data=data, timeout=HUB_TIMEOUT)
        except httpx.HTTPError as exc:
            error = f"hub {redact_url(row.hub)} unreachable: {type(exc).__name__}"
        else:
            if 200 <= response.status_code < 300:
                log.debug("websub: %s request for %s accepted (HTTP %s)", mode, row.source_id, response.status_code)
                return
            why = " ".join(response.text[:200].split())
            error = f"hub {redact_url(row.hub)} answered HTTP {response.status_code}" + (f": {why}" if why else "")
        if mode == "unsubscribe":  # nothing to retry: the lease lapses on its own, pushes then 404
            log.info("websub: unsubscribing %s failed (%s); forgotten", row.source_id, error)
            await self.store.forget(row.source_id)
        else:
            await self._fail(row, error, keep_live=row.state == "live")

    async def _fail(self, row: HubSubscription, error: str, *, keep_live: bool = False) -> None:
        wait = min(self.retry_seconds * 2**row.attempts, MAX_RETRY_SECONDS)
        attempts = await self.store.failed(
            row.source_id, error, retry_at=self.clock.now() + timedelta(seconds=wait), keep_live=keep_live
        )
        if row.source_id not in self._logged:
            self._logged.add(row.source_id)
            log.warning("websub: %s: %s; polling continues, retry in %.0fs", row.source_id, error, wait)
        else:
            log.debug("websub: %s failed again (x%d): %s", row.source_id, attempts, error)


async def _either(a: asyncio.Event, b: asyncio.Event) -> None:
    tasks = {asyncio.create_task(a.wait()), asyncio.create_task(b.wait())}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
