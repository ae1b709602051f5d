"""Leader election among workers: one of them holds what must be single.

Only one worker may long-poll Telegram (`getUpdates` answers 409 to a second
poller) and hold the Discord gateway. On PostgreSQL the leader is whoever holds
a session-level advisory lock (`pg_try_advisory_lock`) on a connection of its
own, outside the Store's pool. The lock lives exactly as long as that session:
if the leader process dies or its connection drops, PostgreSQL releases it and
the next `try_acquire` of another worker succeeds (takeover). A leader learns
that it lost its connection at its next `try_acquire` (a heartbeat), so call it
every few seconds; between a connection loss and that call both sides may
briefly believe they lead — keep the interval short compared with how long a
double long-poll may last. On SQLite, one worker owns the database: always leader.

    lock = LeaderLock(store)
    if await lock.try_acquire(): ...   # start Telegram polling / Discord gateway
    ...
    await lock.release()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from bot.storage.migrations import advisory_key
from bot.storage.store import Store

log = logging.getLogger(__name__)


# Seconds: first probe after 10 s idle, then every 5 s, dead after 3 misses (≈ 25 s).
_KEEPALIVE = {"tcp_keepalives_idle": 10, "tcp_keepalives_interval": 5, "tcp_keepalives_count": 3}


class LeaderLock:
    """A leadership claim held on a dedicated PostgreSQL session; trivially held on SQLite."""

    def __init__(self, store: Store, *, name: str = "chat", timeout: float = 5.0) -> None:
        """`name` picks the lock (workers agree on it); `timeout` bounds each check, in seconds."""
        self.name = name
        self.key = advisory_key(f"leader:{name}")
        self.timeout = timeout
        self._single = store.dialect != "postgresql"
        self._engine = (
            None if self._single else create_async_engine(store.engine.url, poolclass=NullPool)
        )
        self._conn: AsyncConnection | None = None
        self._leader = False

    @property
    def is_leader(self) -> bool:
        """True while this worker holds the lock, as of the last `try_acquire`."""
        return self._leader

    async def try_acquire(self) -> bool:
        """Become leader if no one is, or confirm that we still are; never blocks on another worker."""
        if self._single:
            self._leader = True
            return True
        try:
            await asyncio.wait_for(self._check(), timeout=self.timeout)
        except Exception as exc:
            if self._leader:
                log.warning("leader lock %r lost: %s", self.name, exc)
            self._leader = False
            await self._drop_connection()
        return self._leader

    async def _check(self) -> None:
        if self._conn is None:
            assert self._engine is not None
            self._conn = await self._engine.connect()
            # A leader whose host vanishes (no FIN) would hold the lock until the server's TCP
            # keepalive gives up, 2 hours by default; ask this session's backend to probe sooner.
            for setting, value in _KEEPALIVE.items():
                await self._conn.execute(text(f"SET {setting} = {value}"))
        if self._leader:  # heartbeat: the session alive means the lock is still ours
            await self._conn.execute(text("SELECT 1"))
        else:
            got = await self._conn.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
            )
            self._leader = bool(got)
            if self._leader:
                log.info("leader lock %r acquired", self.name)
        await self._conn.commit()  # never sit idle in a transaction

    async def release(self) -> None:
        """Give up leadership (if held) and close the dedicated connection."""
        if self._conn is not None and self._leader:
            try:
                await asyncio.wait_for(
                    self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key}),
                    timeout=self.timeout,
                )
                await self._conn.commit()
            except Exception:
                log.debug(
                    "unlock failed; closing the session releases the lock anyway", exc_info=True
                )
        self._leader = False
        await self._drop_connection()
        if self._engine is not None:
            await self._engine.dispose()

    async def run(
        self,
        stop: asyncio.Event,
        *,
        interval: float,
        on_change: Callable[[bool], Awaitable[None]],
    ) -> None:
        """Try or confirm leadership every `interval` seconds until `stop`; report each change.

        `on_change(True)` when this worker becomes leader, `on_change(False)`
        when it loses the lock, and once more at stop if it was leader; the
        lock is released on the way out.
        """
        try:
            while not stop.is_set():
                was = self._leader
                now = await self.try_acquire()
                if now != was:
                    await _report(on_change, now)
                with contextlib.suppress(TimeoutError):  # the interval passed: check again
                    await asyncio.wait_for(stop.wait(), timeout=interval)
        finally:
            was = self._leader
            await self.release()
            if was:
                await _report(on_change, False)

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            await conn.invalidate()
            await conn.close()
        except Exception:
            log.debug("closing the leader connection failed", exc_info=True)


async def _report(on_change: Callable[[bool], Awaitable[None]], leader: bool) -> None:
    try:
        await on_change(leader)
    except Exception:
        log.exception("leadership change handler failed (leader=%s)", leader)


__all__ = ["LeaderLock"]
