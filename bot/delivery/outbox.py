"""The outbox worker: sends what the database says is owed, and records the result.

Order is kept per destination (only the oldest owed row of each destination is
sent at a time); destinations are served concurrently. With several workers on
PostgreSQL each row is claimed by exactly one worker (`FOR UPDATE SKIP
LOCKED`); a worker that dies hands its rows back when the claim lapses. Retry policy lives
here alone: adapters only say Sent, RetryLater or Gone.

Alerts of one story go to one message per destination (`bot.delivery.messages`):
the first is sent, later ones edit it; rows stay ordered per destination, so
the edit always finds the message it edits.

Delivery is at-least-once in one narrow window: a crash after the chat API
accepted a message and before `mark_sent` committed resends that message on
restart. Everything else is exactly-once: rows are unique per
(alert, destination).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from datetime import timedelta

from bot.adapters.base import Adapter, Gone, RetryLater, SendResult, Sent
from bot.clock import Clock
from bot.delivery.messages import MessageEditor
from bot.metrics import DELIVERIES
from bot.storage.store import Delivery, Store

log = logging.getLogger(__name__)


def backoff_seconds(attempts: int, *, base: float = 2.0, cap: float = 300.0) -> float:
    """Exponential backoff with full jitter: up to base·2^attempts seconds, capped."""
    ceiling: float = min(cap, base * (2 ** min(attempts, 20)))
    return random.uniform(ceiling / 2, ceiling)


class OutboxWorker:
    def __init__(
        self,
        store: Store,
        adapters: Mapping[str, Adapter],
        clock: Clock,
        *,
        max_attempts: int = 12,
        concurrency: int = 32,
        worker_id: str = "solo",
        claim_seconds: float = 120.0,
    ) -> None:
        self.store = store
        self.adapters = dict(adapters)
        self.clock = clock
        self.max_attempts = max_attempts
        self._sem = asyncio.Semaphore(concurrency)
        self._batch = 2 * concurrency
        self.worker_id = worker_id
        self.claim_seconds = claim_seconds
        self._wake = asyncio.Event()
        self.messages = MessageEditor(store, self.adapters, clock)

    def wake(self) -> None:
        """New rows were queued: drain now instead of at the end of the `run` interval."""
        self._wake.set()

    async def drain_once(self) -> int:
        """Send every owed row that is due now (looping until none is); returns rows handled."""
        handled = await self._send_digests()
        for _ in range(10_000):
            due = await self.store.claim_deliveries(
                worker_id=self.worker_id,
                now=self.clock.now(),
                adapters=list(self.adapters),
                limit=self._batch,
                lease_seconds=self.claim_seconds,
            )
            if not due:
                break
            results = await asyncio.gather(*(self._deliver(d) for d in due))
            handled += len(due)
            if not any(results):  # nothing sent: all deferred, stop until later
                break
        return handled

    async def run(self, stop: asyncio.Event, *, interval: float) -> None:
        """Drain until `stop` is set, every `interval` seconds or at once on `wake()`; an error
        in one pass never ends the loop."""
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.drain_once()
            except Exception:
                log.exception("outbox drain failed; will retry")
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            try:
                await asyncio.wait(waits, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()

    async def _deliver(self, row: Delivery) -> bool:
        alerts = await self.store.get_alerts([row.alert_id])
        alert = alerts.get(row.alert_id)
        if alert is None:
            await self.store.mark_dead([row.id], error="alert row missing")
            return False
        async with self._sem:
            try:
                # One message per story: a later alert of the story edits the first one's message.
                result: SendResult = await self.messages.deliver(row.adapter, row.address, alert)
            except Exception as exc:  # an adapter bug must not kill the worker
                log.exception("adapter %s raised on delivery %s", row.adapter, row.id)
                result = RetryLater(reason=f"{type(exc).__name__}: {exc}")
        return await self._record([row], result)

    async def _send_digests(self) -> int:
        groups = await self.store.claim_held(
            worker_id=self.worker_id,
            now=self.clock.now(),
            adapters=list(self.adapters),
            lease_seconds=self.claim_seconds,
        )
        for (adapter_name, address), rows in groups.items():
            alerts_by_id = await self.store.get_alerts([r.alert_id for r in rows])
            alerts = [alerts_by_id[r.alert_id] for r in rows if r.alert_id in alerts_by_id]
            try:
                result = await self.adapters[adapter_name].send_digest(address, alerts)
            except Exception as exc:
                log.exception("adapter %s raised on digest", adapter_name)
                result = RetryLater(reason=f"{type(exc).__name__}: {exc}")
            await self._record(rows, result)
        return sum(len(r) for r in groups.values())

    async def _record(self, rows: list[Delivery], result: SendResult) -> bool:
        ids = [r.id for r in rows]
        now = self.clock.now()
        first = rows[0]
        if isinstance(result, Sent):
            await self.store.mark_sent(ids, message_id=result.message_id, at=now)
            DELIVERIES.labels(adapter=first.adapter, outcome="sent").inc(len(ids))
            return True
        if isinstance(result, Gone):
            log.warning(
                "destination %s:%s is gone (%s): disabled and unsubscribed",
                first.adapter, first.address, result.reason,
            )
            await self.store.mark_dead(ids, error=result.reason)
            await self.store.disable_destination(first.adapter, first.address, reason=result.reason, at=now)
            DELIVERIES.labels(adapter=first.adapter, outcome="gone").inc(len(ids))
            return False
        assert isinstance(result, RetryLater)
        DELIVERIES.labels(adapter=first.adapter, outcome="retry").inc(len(ids))
        if result.after is not None:  # the API told us when: not a failed attempt
            await self.store.defer(ids, next_attempt_at=now + timedelta(seconds=result.after), note=result.reason)
            return False
        if first.attempts + 1 >= self.max_attempts:
            log.error("delivery %s to %s:%s failed %d times, giving up: %s",
                      first.id, first.adapter, first.address, first.attempts + 1, result.reason)
            await self.store.mark_dead(ids, error=result.reason)
            return False
        delay = backoff_seconds(first.attempts)
        log.info("delivery %s to %s:%s failed (%s); retry in %.0fs",
                 first.id, first.adapter, first.address, result.reason, delay)
        await self.store.mark_retry(ids, error=result.reason, next_attempt_at=now + timedelta(seconds=delay))
        return False
