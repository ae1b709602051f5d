"""Per-host budgets, enforced at poll time: requests per minute and connections at once.

Why here and not only in the cadence: the cadence plans each source's share of its
host's budget, but surges, hastened polls and the first round after a start could
still bunch up on one host (several Google News searches, several Federal Register
queries). This gate makes the budget a hard limit within one process: at most
`requests_per_minute` requests start in any 60-second window, at most `connections`
are in flight. Waiters are served in order. Sources on several workers (PostgreSQL)
are shared by leases, so each is polled by one worker at a time.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

from bot.sources.config import HostBudget, is_local_host

WINDOW = 60.0


class _Host:
    def __init__(self, budget: HostBudget) -> None:
        self.budget = budget
        self.started: deque[float] = deque()  # start times within the last WINDOW seconds
        self.order = asyncio.Lock()  # one waiter at a time decides when it may start
        self.connections = asyncio.Semaphore(budget.connections)
        self.in_flight = 0
        self.max_in_flight = 0
        self.total = 0


class HostGate:
    """One per bot; `async with gate.request(host):` around every fetch."""

    def __init__(
        self,
        budgets: Mapping[str, HostBudget] | None = None,
        *,
        default: HostBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._budgets = {k.lower(): v for k, v in (budgets or {}).items()}
        self._default = default or HostBudget()
        self._clock = clock
        self._sleep = sleep
        self._hosts: dict[str, _Host] = {}

    def configure(self, budgets: Mapping[str, HostBudget], default: HostBudget | None = None) -> None:
        """New budgets (a reload); hosts whose budget changed start afresh."""
        self._budgets = {k.lower(): v for k, v in budgets.items()}
        if default is not None:
            self._default = default
        for name in list(self._hosts):
            if self._hosts[name].budget != self.budget(name) and self._hosts[name].in_flight == 0:
                del self._hosts[name]

    def budget(self, host: str) -> HostBudget:
        return self._budgets.get(host.lower(), self._default)

    def _host(self, host: str) -> _Host:
        key = host.lower()
        found = self._hosts.get(key)
        if found is None:
            found = self._hosts[key] = _Host(self.budget(key))
        return found

    def limited(self, host: str) -> bool:
        """Every host has a budget but this machine's own, unless `hosts:` lists it."""
        return host.lower() in self._budgets or not is_local_host(host)

    @asynccontextmanager
    async def request(self, host: str) -> AsyncIterator[None]:
        """Wait for a connection and for room in the host's last minute, then hold the connection."""
        if not self.limited(host):
            yield
            return
        h = self._host(host)
        async with h.connections:
            async with h.order:
                limit, window = _limit(h.budget)
                while True:
                    now = self._clock()
                    while h.started and h.started[0] <= now - window:
                        h.started.popleft()
                    if len(h.started) < limit:
                        break
                    await self._sleep(h.started[0] + window - now)
                h.started.append(now)
                h.total += 1
            h.in_flight += 1
            h.max_in_flight = max(h.max_in_flight, h.in_flight)
            try:
                yield
            finally:
                h.in_flight -= 1

    def requests_last_minute(self, host: str) -> int:
        h = self._hosts.get(host.lower())
        if h is None:
            return 0
        now = self._clock()
        return sum(1 for t in h.started if t > now - WINDOW)

    def max_in_flight(self, host: str) -> int:
        """The most requests this host ever had in flight at once (tests and probe)."""
        h = self._hosts.get(host.lower())
        return 0 if h is None else h.max_in_flight


def _limit(budget: HostBudget) -> tuple[int, float]:
    """Requests per window: 2.5/min allows 2 a minute, 0.5/min one per two minutes (never above)."""
    rpm = budget.requests_per_minute
    if rpm >= 1:
        return int(rpm), WINDOW
    return 1, WINDOW / rpm

