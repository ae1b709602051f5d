"""The outbox worker: sends what the database says is owed, and records the result.

Order is kept per destination (only the oldest owed row of each destination is
sent at a time); destinations are served concurrently. With several workers on
PostgreSQL each row is claimed by exactly one worker (`FOR UPDATE SKIP
LOCKED`); a worker that dies hands its rows back when the claim lapses. Retry policy lives
here alone: adapters only say Sent, RetryLater, Rejected or Gone (what each API
answer means is decided in `bot.delivery.errors`).

- Rejected (this message can never go): the row is given up at once and the
  destination's next row goes — one bad message never blocks a chat.
- Gone (the chat answered "blocked", "kicked", "not found" …): the first such
  answer only defers the row by `gone_confirm_seconds`; a second one after that
  disables the destination. Disabled, never deleted: its subscriptions stay, so
  a chat that comes back (`/start`) resumes where it was.
- A burst of Gone answers from `gone_burst` destinations of one adapter within
  a minute is an API fault, not mass unsubscription: that adapter is paused
  for `fault_pause_seconds` and nobody is disabled.

Alerts of one story go to one message per destination (`bot.delivery.messages`):
the first is sent, later ones edit it; rows stay ordered per destination, so
the edit always finds the message it edits.

A fan-out goes at the pace the adapter allows (1,000/s with Telegram's paid broadcast):
the next batch is claimed while the previous one is still sending, the claim grows to
half a second's worth of sends (at most `max_batch`), a batch's alerts and which chats
already have a message for the story are read in one query each, and `Sent` results —
the row's `mark_sent` and the new message's record — are written together by
`bot.delivery.settle.SentLog`, one transaction for many. Other outcomes (retry, defer,
dead) are rare and written at once.

Delivery is at-least-once in one window: a crash after the chat API accepted a
message and before its result was written resends that message on restart. The
bound: **at most one message per destination** (a destination's next row is not
handed out until its previous row's result is written, so at most one of its rows is
in flight or waiting), and in all at most the sends in flight (`concurrency`) plus the
results waiting in the `SentLog`: those of the last `result_window` seconds (50 ms),
never more than 256 before a write starts, plus what arrives during that one write.
At 30 msg/s that is one or two messages beyond those in flight; at 1,000 msg/s about
fifty. Every pass ends with everything written, and so does a stop (the pass is
cancelled: its results are still written). Telegram and Discord offer no idempotency
key, so the in-flight part can never be closed. Everything else is exactly-once:
rows are unique per (alert, destination).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Mapping
from datetime import datetime, timedelta

from bot.adapters.base import Adapter, Gone, Rejected, RetryLater, SendResult, Sent
from bot.clock import Clock
from bot.delivery.messages import MessageEditor, thread_of
from bot.delivery.settle import SentLog, SentResult
from bot.metrics import DELIVERIES
from bot.models import Alert
from bot.storage.store import Delivery, Store
from bot.storage.stories import MessageRecord

log = logging.getLogger(__name__)


UNCONFIRMED = "unconfirmed gone: "  # last_error prefix of a row whose chat answered "gone" once
BURST_WINDOW = timedelta(seconds=60)  # "gone" answers counted together for the burst check
CLAIM_AHEAD_SECONDS = 0.5  # a claim takes about this long's worth of sends at the current pace


class _Batch:
    """One claim's rows: how many are still going, and whether any was sent."""

    __slots__ = ("left", "sent")

    def __init__(self, rows: int) -> None:
        self.left = rows
        self.sent = False


class _Rate:
    """Rows handled per second over the last couple of seconds of a pass."""

    def __init__(self) -> None:
        self._times: deque[float] = deque()

    def count(self) -> None:
        now = time.monotonic()
        self._times.append(now)
        while now - self._times[0] > 2.0:
            self._times.popleft()

    def per_second(self) -> float:
        if len(self._times) < 2:
            return 0.0
        span = max(time.monotonic() - self._times[0], 0.05)
        return len(self._times) / span


def backoff_seconds(attempts: int, *, base: float = 2.0, cap: float = 300.0) -> float:
    """Exponential backoff with equal jitter: between half and all of base·2^attempts
    seconds (capped), so a retry never comes at once yet retries still spread out."""
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
        max_batch: int = 1000,
        result_window: float = 0.05,
        worker_id: str = "solo",
        claim_seconds: float = 120.0,
        gone_confirm_seconds: float = 60.0,
        gone_burst: int = 5,
        fault_pause_seconds: float = 60.0,
    ) -> None:
        """`gone_confirm_seconds`: wait before the confirming second attempt to a destination
        that answered "gone"; `gone_burst`: that many destinations of one adapter answering
        "gone" within `BURST_WINDOW` seconds is an API fault, pausing the adapter for
        `fault_pause_seconds`."""
        self.store = store
        self.adapters = dict(adapters)
        self.clock = clock
        self.max_attempts = max_attempts
        self._sem = asyncio.Semaphore(concurrency)
        self._batch = 2 * concurrency
        self.max_batch = max(self._batch, max_batch)
        self.worker_id = worker_id
        self.claim_seconds = claim_seconds
        self._wake = asyncio.Event()
        self.gone_confirm = timedelta(seconds=gone_confirm_seconds)
        self.gone_burst = max(2, gone_burst)
        self.fault_pause = timedelta(seconds=fault_pause_seconds)
        self._gone_seen: dict[str, deque[tuple[datetime, str]]] = {}  # adapter → recent "gone"s
        self._paused: dict[str, datetime] = {}  # adapter → paused until (an API fault)
        self._confirmed: list[tuple[list[Delivery], str]] = []  # gone twice: disable after the pass
        self.messages = MessageEditor(store, self.adapters, clock)
        self.sent_log = SentLog(store, window=result_window)

    def wake(self) -> None:
        """New rows were queued: drain now instead of at the end of the `run` interval."""
        self._wake.set()

    async def drain_once(self) -> int:
        """Send every owed row that is due now (looping until none is); returns rows handled.

        Sent results are written in batches (`SentLog`); all of them before this returns,
        also when the pass is cancelled (a stop)."""
        handled = await self._send_digests()
        await self._disable_confirmed()
        try:
            handled += await self._drain_due()
        finally:
            await self.sent_log.flush()
        await self._disable_confirmed()
        return handled

    async def _drain_due(self) -> int:
        """Claim, send, claim again: the next batch is claimed while the last half of the
        previous one is still sending, so a fan-out never waits on its own claims. A claim
        that came back short (the rest is behind rows in flight, or there is no rest) is
        repeated only once everything in flight is done and written."""
        running: dict[asyncio.Task[bool], _Batch] = {}
        try:
            return await self._drain_into(running)
        except asyncio.CancelledError:  # a stop: what is in flight is abandoned (rows handed back)
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            raise
        except Exception:  # e.g. the database: let the sends in flight finish and be recorded
            await asyncio.gather(*running, return_exceptions=True)
            raise

    async def _drain_into(self, running: dict[asyncio.Task[bool], _Batch]) -> int:
        handled = 0
        full = True  # the last claim came back full: more may be due
        stalled = False  # a whole batch sent nothing (an outage): stop claiming this pass
        rate = _Rate()
        for _ in range(1_000_000):
            want = self._claim_size(rate.per_second())
            if not stalled and (not running or (full and len(running) <= want // 2)):
                await self.sent_log.flush()  # frees the destinations whose result was waiting
                due = await self._claim(want)
                full = len(due) == want
                if due:
                    batch = _Batch(len(due))
                    for task in await self._start(due):
                        running[task] = batch
            if not running:
                break
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            batch_done = False
            for task in done:
                batch = running.pop(task)
                sent = task.result()
                batch.left -= 1
                batch.sent = batch.sent or sent
                if batch.left == 0:
                    batch_done = True
                    if not batch.sent:  # nothing sent: all deferred, stop until later
                        stalled = True
                handled += 1
                rate.count()
            if batch_done:
                # Only once a whole batch has answered: a burst of "gone" answers across its
                # chats must be counted (and pause the adapter) before any of them is disabled.
                await self._disable_confirmed()
        return handled

    def _claim_size(self, per_second: float) -> int:
        """Rows to claim: twice what may be in flight, or half a second at the pace sends
        actually go (paid broadcast: hundreds a second), at most `max_batch`."""
        return max(self._batch, min(self.max_batch, int(per_second * CLAIM_AHEAD_SECONDS)))

    async def _claim(self, limit: int) -> list[Delivery]:
        active = self._active_adapters()
        if not active:
            return []
        return await self.store.claim_deliveries(
            worker_id=self.worker_id,
            now=self.clock.now(),
            adapters=active,
            limit=limit,
            lease_seconds=self.claim_seconds,
        )

    async def _start(self, due: list[Delivery]) -> list[asyncio.Task[bool]]:
        """One task per row. The batch's alerts, and which destinations already have a message
        for the alert's thread, are read once for the batch — a fan-out is one alert owed
        to thousands — not once per row."""
        alerts = await self.store.get_alerts(list(dict.fromkeys(d.alert_id for d in due)))
        fresh = await self.messages.without_message(
            [(d.adapter, d.address, alerts[d.alert_id]) for d in due if d.alert_id in alerts]
        )
        tasks = []
        for d in due:
            alert = alerts.get(d.alert_id)
            known_new = alert is not None and (d.adapter, d.address, thread_of(alert)) in fresh
            tasks.append(asyncio.ensure_future(self._deliver(d, alert, known_new=known_new)))
        return tasks

    def _active_adapters(self) -> list[str]:
        """Adapters not paused for an API fault."""
        now = self.clock.now()
        return [a for a in self.adapters if self._paused.get(a, now) <= now]

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

    async def _deliver(self, row: Delivery, alert: Alert | None, *, known_new: bool = False) -> bool:
        if alert is None:
            await self.store.mark_dead([row.id], error="alert row missing")
            return False
        new_message: MessageRecord | None = None
        async with self._sem:
            try:
                # One message per story: a later alert of the story edits the first one's message.
                result, new_message = await self.messages.send(row.adapter, row.address, alert, known_new=known_new)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an adapter bug must not kill the worker
                log.exception("adapter %s raised on delivery %s", row.adapter, row.id)
                result = RetryLater(reason=f"{type(exc).__name__}: {exc}")
        if isinstance(result, Sent):  # written with others within the log's window
            self.sent_log.add(SentResult(row.id, result.message_id, self.clock.now(), new_message))
            DELIVERIES.labels(adapter=row.adapter, outcome="sent").inc()
            return True
        return await self._record([row], result)

    async def _send_digests(self) -> int:
        groups = await self.store.claim_held(
            worker_id=self.worker_id,
            now=self.clock.now(),
            adapters=self._active_adapters(),
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
        if isinstance(result, Rejected):
            log.warning(
                "delivery %s to %s:%s refused for good (%s): given up, the queue moves on",
                first.id, first.adapter, first.address, result.reason,
            )
            await self.store.mark_dead(ids, error=f"rejected: {result.reason}")
            DELIVERIES.labels(adapter=first.adapter, outcome="rejected").inc(len(ids))
            return True
        if isinstance(result, Gone):
            return await self._gone(rows, result, now)
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
        delay = max(backoff_seconds(first.attempts), result.min_wait or 0.0)
        log.info("delivery %s to %s:%s failed (%s); retry in %.0fs",
                 first.id, first.adapter, first.address, result.reason, delay)
        await self.store.mark_retry(ids, error=result.reason, next_attempt_at=now + timedelta(seconds=delay))
        return False

    async def _gone(self, rows: list[Delivery], result: Gone, now: datetime) -> bool:
        """A "chat is gone" answer: confirm it later, or queue the disable, or (a burst) pause.

        The first answer is written on the row (`UNCONFIRMED` in its last error) and the row
        deferred: the confirmation holds across restarts and across workers."""
        first = rows[0]
        ids = [r.id for r in rows]
        DELIVERIES.labels(adapter=first.adapter, outcome="gone").inc(len(ids))
        self._count_gone(first.adapter, first.address, now)
        paused = self._paused.get(first.adapter)
        if paused is not None and paused > now:
            await self.store.defer(ids, next_attempt_at=paused, note=f"adapter paused (API fault?): {result.reason}")
            return False
        if not (first.last_error or "").startswith(UNCONFIRMED):
            log.warning(
                "destination %s:%s answered %r; trying once more in %.0fs before disabling it",
                first.adapter, first.address, result.reason, self.gone_confirm.total_seconds(),
            )
            await self.store.defer(ids, next_attempt_at=now + self.gone_confirm, note=f"{UNCONFIRMED}{result.reason}")
            return False
        self._confirmed.append((rows, result.reason))
        return False

    def _count_gone(self, adapter: str, address: str, now: datetime) -> None:
        """Many destinations "gone" at once is the API failing, not users leaving: pause."""
        seen = self._gone_seen.setdefault(adapter, deque())
        seen.append((now, address))
        while seen and now - seen[0][0] > BURST_WINDOW:
            seen.popleft()
        addresses = {a for _, a in seen}
        if len(addresses) < self.gone_burst:
            return
        if self._paused.get(adapter, now) <= now:
            log.error(
                "%s: %d destinations answered 'gone' within %.0fs: treated as an API fault; "
                "sending paused for %.0fs, nobody is unsubscribed",
                adapter, len(addresses), BURST_WINDOW.total_seconds(), self.fault_pause.total_seconds(),
            )
        self._paused[adapter] = now + self.fault_pause

    async def _disable_confirmed(self) -> None:
        """Disable destinations gone twice, unless their adapter was paused meanwhile (a burst)."""
        confirmed, self._confirmed = self._confirmed, []
        now = self.clock.now()
        for rows, reason in confirmed:
            first = rows[0]
            ids = [r.id for r in rows]
            paused = self._paused.get(first.adapter)
            if paused is not None and paused > now:
                await self.store.defer(ids, next_attempt_at=paused, note=f"adapter paused (API fault?): {reason}")
                continue
            log.warning(
                "destination %s:%s is gone (%s, confirmed): disabled; its subscriptions are kept",
                first.adapter, first.address, reason,
            )
            await self.store.mark_dead(ids, error=reason)
            # The row must exist to carry the flag: its subscriptions stay and routing reads it.
            await self.store.ensure_destination(first.adapter, first.address, at=now)
            await self.store.disable_destination(first.adapter, first.address, reason=reason, at=now)
