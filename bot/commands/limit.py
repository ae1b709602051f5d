"""Per-user command rate limit, shared by the chat adapters.

A leaky bucket per (adapter, user id) — aiolimiter's `AsyncLimiter`: `burst`
commands at once, drained at `burst / period` per second. The first command
over the limit gets one polite line (`REFUSAL`); further ones get silence until
capacity is back, so a user (or a script) hammering the bot cannot make it
hammer the chat API or the database in return.

    limiter = CommandLimiter(burst=10, period=60)
    verdict = limiter.check("telegram", user_id)   # ALLOW | REFUSE | SILENT
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from enum import Enum
from typing import Any

from aiolimiter import AsyncLimiter

REFUSAL = "Slow down, please: too many commands in a short time. Try again in a minute."


class Verdict(Enum):
    ALLOW = "allow"  # handle the command
    REFUSE = "refuse"  # answer REFUSAL once, handle nothing
    SILENT = "silent"  # already told: drop without an answer


class _ClockLoop:
    """What `AsyncLimiter` reads from its loop to drain the bucket: only `time()`.

    Commands are counted synchronously (no waiting: over the limit is refused,
    not queued), so the limiter never schedules anything on this "loop"; it
    lets tests and the check itself run on an injectable clock.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.time = clock

    def is_closed(self) -> bool:
        return False


class _Bucket(AsyncLimiter):
    """One user's bucket; `refused` remembers the user was told once already."""

    def __init__(self, burst: int, period: float, clock: Callable[[], float]) -> None:
        super().__init__(burst, period)
        self._event_loop: Any = _ClockLoop(clock)
        self.refused = False

    def take(self) -> bool:
        """Use one unit of capacity if there is one (never waits)."""
        if not self.has_capacity():
            return False
        self._level += 1  # what `acquire` does once it has capacity, without awaiting
        return True

    def idle(self) -> bool:
        """Fully drained: forgetting it loses nothing."""
        self.has_capacity()  # drains the level up to now
        return self._level == 0

    @property
    def last_seen(self) -> float:
        return self._last_check


class CommandLimiter:
    """Buckets keyed by (adapter, user); `clock` gives monotonic seconds (tests pass their own)."""

    def __init__(
        self,
        *,
        burst: int = 10,
        period: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_users: int = 10_000,
    ) -> None:
        """`burst`: commands allowed at once; `period`: seconds to drain a whole burst;
        `max_users`: buckets kept before idle ones are forgotten."""
        if burst < 1 or period <= 0:
            raise ValueError("burst must be ≥ 1 and period > 0")
        self.burst = burst
        self.period = period
        self._clock = clock
        self._max_users = max_users
        self._buckets: dict[tuple[str, Hashable], _Bucket] = {}

    def check(self, adapter: str, user: Hashable) -> Verdict:
        """Count one command of `user` on `adapter` and say what to do with it."""
        key = (adapter, user)
        bucket = self._buckets.get(key)
        if bucket is None:
            self._forget_idle()
            bucket = self._buckets[key] = _Bucket(self.burst, self.period, self._clock)
        if bucket.take():
            bucket.refused = False
            return Verdict.ALLOW
        if bucket.refused:
            return Verdict.SILENT
        bucket.refused = True
        return Verdict.REFUSE

    def _forget_idle(self) -> None:
        """Keep memory bounded: drop buckets that have drained completely (they hold no state)."""
        if len(self._buckets) < self._max_users:
            return
        for k in [k for k, b in self._buckets.items() if b.idle()]:
            del self._buckets[k]
        if len(self._buckets) >= self._max_users:  # all busy: forget the oldest
            oldest = sorted(self._buckets, key=lambda k: self._buckets[k].last_seen)
            for k in oldest[: len(oldest) // 2]:
                del self._buckets[k]
