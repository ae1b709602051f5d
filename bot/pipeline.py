"""Events → rules → alerts → outbox, one transaction per group of batches.

A batch (one poll of one source) is marked seen, its alerts written and
routed to their destinations in one transaction: a crash leaves either all of
it or none, so an event is never alerted twice and an alert is never lost
between "seen" and "queued". Dedup (rule × event) and cooldown (rule × key)
are decided here against the database, so they hold across restarts and
across workers.

Batches that arrive while another is being written wait, and then go
together (group commit): each step is one statement for the whole group
(seen, cooldowns, alerts, outbox rows), so when 1,000 feeds answer at once the
database sees a few dozen transactions, not 1,000 — and a lone batch is not
delayed at all. A failed group fails every batch in it; their sources keep
their old validators and bring the items back on the next poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.clock import Clock
from bot.delivery.routing import RoutingTable
from bot.metrics import ALERTS, EVENTS
from bot.models import Alert, NewsEvent, PriceEvent, Severity
from bot.rules.engine import RuleEngine
from bot.rules.loader import RuleSet
from bot.storage.archive import EventArchive
from bot.storage.store import OutboxEntry, PollRecord, Store

log = logging.getLogger(__name__)

# Events in one group transaction at most: bounds how long SQLite's write lock is held and
# how many alerts one transaction holds in memory (see README, Benchmarks: memory).
GROUP_MAX_EVENTS = 500
# Outbox rows built before they are written: one alert may owe thousands.
ENQUEUE_CHUNK = 5_000


@dataclass
class _Batch:
    events: list[NewsEvent | PriceEvent]
    alert_after: datetime | None
    poll: PollRecord | None
    done: asyncio.Future[list[Alert]]
    raised: list[Alert] = field(default_factory=list)


class Pipeline:
    def __init__(
        self,
        store: Store,
        ruleset: RuleSet,
        clock: Clock,
        *,
        console_min: Severity | None,
        active_adapters: frozenset[str],
        archive: EventArchive | None = None,
        engine: RuleEngine | None = None,
    ) -> None:
        self.store = store
        self.archive = archive
        self.clock = clock
        self.ruleset = ruleset
        self.engine = engine if engine is not None else RuleEngine(ruleset)
        self.console_min = console_min
        self.active_adapters = active_adapters
        # One group at a time: engine state and SQLite writes stay ordered.
        self._lock = asyncio.Lock()
        self._waiting: list[_Batch] = []

    def replace_ruleset(self, ruleset: RuleSet) -> None:
        """Swap rules in place; price windows and confirm state carry over by rule id."""
        self.ruleset = ruleset
        self.engine.replace_ruleset(ruleset)

    async def process(
        self,
        events: Iterable[NewsEvent | PriceEvent],
        *,
        alert_after: datetime | None = None,
        poll: PollRecord | None = None,
    ) -> list[Alert]:
        """Process new events in time order; events older than `alert_after` are only recorded.

        `poll`, the successful poll that brought the events, is recorded in the same
        transaction: its new validators (ETag) are stored exactly when its items are.
        Returns this batch's alerts once they are committed, whoever wrote the group."""
        ordered = sorted(events, key=lambda e: e.time)
        if not ordered and poll is None:
            return []
        batch = _Batch(ordered, alert_after, poll, asyncio.get_running_loop().create_future())
        self._waiting.append(batch)
        async with self._lock:
            if not batch.done.done():  # nobody took it along: write it, with whatever waits
                await self._write_group(self._take_group(), batch)
        return batch.done.result()

    def _take_group(self) -> list[_Batch]:
        group: list[_Batch] = []
        size = 0
        while self._waiting and (not group or size + len(self._waiting[0].events) <= GROUP_MAX_EVENTS):
            batch = self._waiting.pop(0)
            group.append(batch)
            size += len(batch.events)
        return group

    async def _write_group(self, group: list[_Batch], own: _Batch) -> None:
        try:
            await self._process_group(group)
        except Exception as exc:
            for batch in group:
                batch.done.set_exception(exc)
                batch.done.add_done_callback(_consume)  # its caller may be gone; no "never retrieved"
            return
        except BaseException:
            # Cancelled mid-write: the transaction rolled back; the others' batches go back
            # in line, and their callers, still waiting for the lock, write them next.
            self._waiting[:0] = [b for b in group if b is not own]
            raise
        for batch in group:
            batch.done.set_result(batch.raised)

    async def _process_group(self, group: list[_Batch]) -> None:
        now = self.clock.now()
        async with self.store.transaction() as conn:
            polls = [b.poll for b in group if b.poll is not None]
            if polls:
                await self.store.record_polls(conn, polls)
            fresh = await self.store.mark_seen_many(conn, [ev for b in group for ev in b.events], at=now)
            await self._archive(conn, group, fresh, now)
            candidates: list[tuple[_Batch, Alert]] = []
            for batch in group:
                for ev in batch.events:
                    if ev.id not in fresh:
                        continue
                    fresh.discard(ev.id)  # the same event twice in one group counts once
                    EVENTS.labels(source=ev.source).inc()
                    found = self.engine.evaluate(ev, now=now)
                    if batch.alert_after is not None and ev.time < batch.alert_after:
                        if found:
                            log.debug("backlog: %s older than %s, recorded only", ev.id, batch.alert_after)
                        continue
                    candidates.extend((batch, a) for a in found)
            if not candidates:
                return
            last = await self.store.last_fired_many(
                conn, ((a.rule_id, a.key) for _, a in candidates if self._cooldown(a) > 0)
            )
            kept = [(b, a) for b, a in candidates if self._off_cooldown(a, last)]
            inserted = await self.store.insert_alerts(conn, [a for _, a in kept])
            raised = [(b, a) for b, a in kept if a.id in inserted]
            if not raised:
                return
            # Loaded only when something fires: most polls of a busy feed bring nothing new.
            routing = await RoutingTable.load(
                self.store,
                now=now,
                console_min=self.console_min,
                active_adapters=self.active_adapters,
                conn=conn,
            )
            owed: list[OutboxEntry] = []
            for _, alert in raised:  # in chunks: a group's alerts may owe hundreds of thousands of rows
                owed.extend(routing.routes(alert, now=now))
                if len(owed) >= ENQUEUE_CHUNK:
                    await self.store.enqueue_many(conn, owed, at=now)
                    owed = []
            await self.store.enqueue_many(conn, owed, at=now)
        for batch, alert in raised:
            batch.raised.append(alert)
            ALERTS.labels(rule=alert.rule_id, severity=alert.severity.value).inc()
            log.info("alert %s: %s [%s] %s", alert.id[:8], alert.rule_id, alert.severity.value, alert.title[:120])

    async def _archive(self, conn: Any, group: list[_Batch], fresh: set[str], now: datetime) -> None:
        """Keep copies of the group's new events for dry-run, in the group's transaction."""
        if self.archive is not None:
            await self.archive.record(conn, _archivable(group, fresh), now=now)

    def _cooldown(self, alert: Alert) -> float:
        rule = self.ruleset.get(alert.rule_id)
        return rule.cooldown if rule is not None else 0.0

    def _off_cooldown(self, alert: Alert, last: dict[tuple[str, str], datetime]) -> bool:
        """Whether the alert may fire; a fired alert moves `last`, so later ones in the group see it."""
        cooldown = self._cooldown(alert)
        if cooldown <= 0:
            return True
        pair = (alert.rule_id, alert.key)
        fired = last.get(pair)
        if fired is not None and alert.created_at - fired < timedelta(seconds=cooldown):
            log.info(
                "suppressed %s (key %r): cooldown %.0fs since %s",
                alert.rule_id,
                alert.key,
                cooldown,
                fired.isoformat(),
            )
            return False
        last[pair] = alert.created_at
        return True


def _archivable(group: list[_Batch], fresh: set[str]) -> list[NewsEvent | PriceEvent]:
    """What dry-run replays: events new to this group that could alert (backlog left out)."""
    kept = {
        ev.id: ev
        for b in group
        for ev in b.events
        if ev.id in fresh and (b.alert_after is None or ev.time >= b.alert_after)
    }
    return list(kept.values())


def _consume(future: asyncio.Future[list[Alert]]) -> None:
    if not future.cancelled():
        future.exception()
