"""Sent results on their way to the database: written many at a time, within a short window.

A fan-out sends hundreds of messages a second; writing each one's result as it
comes (the row's `mark_sent`, the new message's record in `alert_messages`) cost
two transactions per message and held the outbox near 100 msg/s. Here the
outbox hands each `Sent` result over (`add`) and goes on; the results are
written together, in one transaction — one executemany per statement — at most
`window` seconds after the first of them arrived, at once when `most` are
waiting, and on `flush` (the end of every drain pass, and a stop).

What that costs is bounded and stated in `bot.delivery.outbox`: a crash loses
at most the results not yet written, so those messages are sent again. A row
whose result waits here is still claimed by this worker, so its destination's
next row is not handed out before the result is written: order holds, and a
destination has at most one message waiting here (or in flight) at a time.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from bot.storage.store import Store
from bot.storage.stories import MessageRecord, put_messages

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SentResult:
    """One outbox row the chat API accepted, and the new message to record (if any)."""

    row_id: int
    message_id: str | None
    at: datetime
    new_message: MessageRecord | None = None


class SentLog:
    """Buffers `Sent` results and writes them in one transaction per flush."""

    def __init__(self, store: Store, *, window: float = 0.05, most: int = 256) -> None:
        self.store = store
        self.window = window
        self.most = max(1, most)
        self._waiting: list[SentResult] = []
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[None]] = set()
        self.written = 0  # results written so far (tests, the bench)
        self.flushes = 0  # transactions that wrote them

    @property
    def waiting(self) -> int:
        """Results handed over and not yet written."""
        return len(self._waiting)

    def add(self, result: SentResult) -> None:
        """Hand over one result; it is written within `window` seconds (sooner if many wait)."""
        self._waiting.append(result)
        if len(self._waiting) >= self.most:
            self._flush_soon()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.window, self._flush_soon)

    def _flush_soon(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task = asyncio.get_running_loop().create_task(self._flush_logged())
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _flush_logged(self) -> None:
        try:
            await self.flush()
        except Exception as exc:  # kept for the next flush; the pass's final flush raises
            log.warning("writing %d sent results failed (%s: %s); retried at the next flush",
                        len(self._waiting), type(exc).__name__, exc)

    async def flush(self) -> None:
        """Write every result handed over so far, in one transaction. On failure they stay
        waiting (and the error is raised): the rows stay claimed, never half-written."""
        async with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            batch, self._waiting = self._waiting, []
            if not batch:
                return
            try:
                # Sorted by row id: concurrent writers (several workers) lock rows in one order.
                batch.sort(key=lambda r: r.row_id)
                async with self.store.transaction() as conn:
                    await put_messages(conn, [r.new_message for r in batch if r.new_message is not None])
                    await self.store.mark_sent_each(conn, [(r.row_id, r.message_id, r.at) for r in batch])
            except BaseException:
                self._waiting[:0] = batch
                raise
            self.written += len(batch)
            self.flushes += 1
