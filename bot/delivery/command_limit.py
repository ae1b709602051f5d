"""Per-user command rate limit, shared by the chat adapters.

A token bucket per (adapter, user id): `burst` commands at once, refilled at
`burst / period` per second. The first command over the limit gets one polite
line (`REFUSAL`); further ones get silence until a token is back, so a user
(or a script) hammering the bot cannot make it hammer the chat API or the
database in return.

    limiter = CommandLimiter(burst=10, period=60)
    verdict = limiter.check("telegram", user_id)   # ALLOW | REFUSE | SILENT
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from enum import Enum

REFUSAL = "Slow down, please: too many commands in a short time. Try again in a minute."


class Verdict(Enum):
    ALLOW = "allow"  # handle the command
    REFUSE = "refuse"  # answer REFUSAL once, handle nothing
    SILENT = "silent"  # already told: drop without an answer


@dataclass
class _Bucket:
    tokens: float
    updated: float
    refused: bool = False


class CommandLimiter:
    """Token buckets keyed by (adapter, user); `clock` gives monotonic seconds (tests pass their own)."""

    def __init__(
        self,
        *,
        burst: int = 10,
        period: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_users: int = 10_000,
    ) -> None:
        """`burst`: commands allowed at once; `period`: seconds to refill a whole burst;
        `max_users`: buckets kept before full (idle) ones are forgotten."""
        if burst < 1 or period <= 0:
            raise ValueError("burst must be ≥ 1 and period > 0")
        self.burst = burst
        self.rate = burst / period  # tokens per second
        self._clock = clock
        self._max_users = max_users
        self._buckets: dict[tuple[str, Hashable], _Bucket] = {}

    def check(self, adapter: str, user: Hashable) -> Verdict:
        """Count one command of `user` on `adapter` and say what to do with it."""
        now = self._clock()
        key = (adapter, user)
        bucket = self._buckets.get(key)
        if bucket is None:
            self._forget_idle(now)
            bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), updated=now)
        else:
            bucket.tokens = min(
                float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate
            )
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            bucket.refused = False
            return Verdict.ALLOW
        if bucket.refused:
            return Verdict.SILENT
        bucket.refused = True
        return Verdict.REFUSE

    def _forget_idle(self, now: float) -> None:
        """Keep memory bounded: drop buckets that have refilled completely (they hold no state)."""
        if len(self._buckets) < self._max_users:
            return
        full = [
            k
            for k, b in self._buckets.items()
            if b.tokens + (now - b.updated) * self.rate >= self.burst
        ]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= self._max_users:  # all busy: forget the oldest
            oldest = sorted(self._buckets, key=lambda k: self._buckets[k].updated)
            for k in oldest[: len(oldest) // 2]:
                del self._buckets[k]
