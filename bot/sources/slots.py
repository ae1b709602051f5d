"""Poll slots: slow sources cannot take every slot, so healthy feeds keep their pace.

Every poll holds one of `general` slots (they bound HTTP and database
connections). A fetch still running after `slow_after` seconds is slow: it
hands its general slot back and finishes in one of the few `slow` slots —
or, when those are all taken, it is given up for this round (reported as the
poll's error; the source is tried again at its next interval). A source found
slow waits for a slow slot before its next poll even starts, until it answers
within `slow_after` again. So at any moment at most `slow` fetches are slow, a
slow source holds a general slot for at most `slow_after` seconds, and the
per-source deadline (`fetch`'s total timeout) ends every fetch, drip or not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class PollSlots:
    """`general` slots for every poll; `slow` of them, extra, for fetches slower than `slow_after` s."""

    def __init__(self, *, general: int, slow: int, slow_after: float) -> None:
        self.slow_after = slow_after
        self._general = asyncio.Semaphore(general)
        self._slow = asyncio.Semaphore(slow)
        self.slow_sources: set[str] = set()

    @asynccontextmanager
    async def poll(self, source_id: str) -> AsyncIterator[PollSlot]:
        """Hold a slot for one whole poll (a known-slow source waits for a slow slot first)."""
        slot = PollSlot(self, source_id)
        try:
            if source_id in self.slow_sources:
                await self._slow.acquire()
                slot.slow = True
            await self._general.acquire()
            slot.general = True
            yield slot
        finally:
            if slot.general:
                self._general.release()
            if slot.slow:
                self._slow.release()


class PollSlot:
    """One poll's hold on the slots; `fetch` times the network part of the poll."""

    def __init__(self, owner: PollSlots, source_id: str) -> None:
        self._owner = owner
        self._source_id = source_id
        self.general = False
        self.slow = False

    async def fetch(self, work: Awaitable[T], give_up: Callable[[str], T]) -> T:
        """Run `work`; past `slow_after` move it to a slow slot, or give up if none is free."""
        owner = self._owner
        task = asyncio.ensure_future(work)
        try:
            done, _ = await asyncio.wait({task}, timeout=owner.slow_after)
            if done:
                owner.slow_sources.discard(self._source_id)
                return task.result()
            owner.slow_sources.add(self._source_id)
            if not self.slow:
                if owner._slow.locked():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                    return give_up(
                        f"slow: no answer within {owner.slow_after:g} s and every slow slot is busy; "
                        "retried at the next interval"
                    )
                await owner._slow.acquire()
                self.slow = True
            owner._general.release()  # healthy sources get it back at once
            self.general = False
            result = await task
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if not self.general:
            await owner._general.acquire()  # for the database part of the poll
            self.general = True
        return result
