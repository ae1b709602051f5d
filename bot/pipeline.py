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

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.clock import Clock
from bot.delivery.flood import FloodGuard
from bot.delivery.routing import RoutingTable
from bot.metrics import ALERTS, EVENTS
from bot.models import Alert, NewsEvent, PriceEvent, Severity
from bot.rules.engine import RuleEngine
from bot.rules.loader import RuleSet
from bot.storage.archive import EventArchive
from bot.storage.protocols import PipelineStore
from bot.storage.store import OutboxEntry, PollRecord
from bot.stories import Report, StoryAssigner

log = logging.getLogger(__name__)

# Events in one group transaction at most: bounds how long SQLite's write lock is held and
# how many alerts one transaction holds in memory (see docs/benchmarks.md: memory).
GROUP_MAX_EVENTS = 500
# Outbox rows built before they are written: one alert may owe thousands.
ENQUEUE_CHUNK = 5_000
# Groups this small are matched on the event loop (about 0.1 ms per headline with the shipped
# rules); larger ones in a worker thread, so commands and delivery keep being served.
INLINE_EVENTS = 32


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
        store: PipelineStore,
        ruleset: RuleSet,
        clock: Clock,
        *,
        console_min: Severity | None,
        active_adapters: frozenset[str],
        flood: FloodGuard | None = None,
        stories: bool = True,
        archive: EventArchive | None = None,
        engine: RuleEngine | None = None,
    ) -> None:
        """`stories=False` turns story grouping off (a baseline for bench/stories.py)."""
        self.store = store
        self.flood = flood or FloodGuard(per_poll=20, per_rule=60, window=3600)
        self.archive = archive
        self.clock = clock
        self.ruleset = ruleset
        self.engine = engine if engine is not None else RuleEngine(ruleset)
        self.console_min = console_min
        self.active_adapters = active_adapters
        # One group at a time: engine state and SQLite writes stay ordered.
        self._lock = asyncio.Lock()
        self._waiting: list[_Batch] = []
        self._pending_rules: RuleSet | None = None
        # Stories are kept by the store: SQL tables, or the backtest's dicts.
        self.stories: StoryAssigner | None = StoryAssigner(store.story_storage) if stories else None

    def replace_ruleset(self, ruleset: RuleSet) -> None:
        """Swap rules in place; price windows and confirm state carry over by rule id.

        While a group is being evaluated (in a worker thread) the engine is left alone:
        the swap happens before the next group."""
        self.ruleset = ruleset
        if self._lock.locked():
            self._pending_rules = ruleset
        else:
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

    async def _process_group_or_reset(self, group: list[_Batch]) -> None:
        try:
            await self._process_group(group)
        except BaseException:
            if self.stories is not None:
                self.stories.reset()  # its index may hold the rolled-back group's stories
            raise

    async def _write_group(self, group: list[_Batch], own: _Batch) -> None:
        try:
            await self._process_group_or_reset(group)
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
            todo = _fresh_events(group, fresh)
            candidates: list[tuple[_Batch, Alert]] = []
            for (batch, ev), found in zip(todo, await self._evaluate(todo, now), strict=True):
                if batch.alert_after is not None and ev.time < batch.alert_after:
                    if found:
                        log.debug("backlog: %s older than %s, recorded only", ev.id, batch.alert_after)
                    continue
                candidates.extend((batch, a) for a in found)
            if not candidates:
                return
            kept = await self._keep(conn, candidates, now=now)
            inserted = await self.store.insert_alerts(conn, [a for _, a in kept])
            raised = [(b, a) for b, a in kept if a.id in inserted]
            if not raised:
                return
            await self._enqueue(conn, raised, now=now)
        counts: dict[tuple[str, str], int] = {}
        for batch, alert in raised:
            batch.raised.append(alert)
            key = (alert.rule_id, alert.severity.value)
            counts[key] = counts.get(key, 0) + 1
            # The console adapter already prints each alert as a line: the log says it once, at DEBUG.
            log.log(
                logging.DEBUG if self.console_min is not None else logging.INFO,
                "alert %s: %s [%s] %s", alert.id[:8], alert.rule_id, alert.severity.value, alert.title[:120],
            )
        for (rule_id, severity), count in counts.items():  # one counter update per rule and severity
            ALERTS.labels(rule=rule_id, severity=severity).inc(count)

    async def _evaluate(
        self, todo: list[tuple[_Batch, NewsEvent | PriceEvent]], now: datetime
    ) -> list[list[Alert]]:
        """Rule matching in a worker thread (small groups inline): the event loop keeps
        answering commands and delivering while a large group is matched (the engine is only touched here, one
        group at a time, and by rule swaps between groups)."""
        if self._pending_rules is not None:
            self.engine.replace_ruleset(self._pending_rules)
            self._pending_rules = None
        if not todo:
            return []
        engine = self.engine
        if len(todo) <= INLINE_EVENTS:  # a few milliseconds: cheaper than the hop to a thread
            return [engine.evaluate(ev, now=now) for _, ev in todo]
        return await asyncio.to_thread(lambda: [engine.evaluate(ev, now=now) for _, ev in todo])

    async def _enqueue(self, conn: AsyncConnection, raised: list[tuple[_Batch, Alert]], *, now: datetime) -> None:
        """Route new alerts to their outbox rows; past the flood bound, one digest per source."""
        # Loaded only when something fires: most polls of a busy feed bring nothing new.
        routing = await RoutingTable.load(
            self.store,
            now=now,
            console_min=self.console_min,
            active_adapters=self.active_adapters,
            conn=conn,
        )
        per_poll: dict[int, list[Alert]] = {}
        for b, a in raised:
            per_poll.setdefault(id(b), []).append(a)
        split = self.flood.split(list(per_poll.values()), now=now)
        await self.store.insert_alerts(conn, [d for d, _ in split.digests])
        owed: list[OutboxEntry] = []
        for alert in split.routed:  # in chunks: a group's alerts may owe hundreds of thousands of rows
            owed.extend(routing.routes(alert, now=now))
            if len(owed) >= ENQUEUE_CHUNK:
                await self.store.enqueue_many(conn, owed, at=now)
                owed = []
        for digest, excess in split.digests:
            # INFO: the digest itself reaches the chats; `run` logs at INFO by default, while a
            # cold start over many busy feeds (bench/polling.py) is not a wall of warnings
            log.info("flood: %s", digest.title)
            owed.extend(routing.digest_routes(digest, excess, now=now))
        await self.store.enqueue_many(conn, owed, at=now)

    async def _keep(
        self, conn: AsyncConnection, candidates: list[tuple[_Batch, Alert]], *, now: datetime
    ) -> list[tuple[_Batch, Alert]]:
        """The candidates off cooldown, each news alert placed in its story."""
        last = await self.store.last_fired_many(
            conn, ((a.rule_id, a.key) for _, a in candidates if self._cooldown(a) > 0)
        )
        kept = [(b, a) for b, a in candidates if self._off_cooldown(a, last)]
        if self.stories is not None:
            kept = await self._join_stories(conn, kept, now=now)
        return kept

    async def _join_stories(
        self, conn: object, kept: list[tuple[_Batch, Alert]], *, now: datetime
    ) -> list[tuple[_Batch, Alert]]:
        """Put each news alert's event in its story; mark alerts after a story's first as updates."""
        assert self.stories is not None
        topics: dict[str, list[str]] = {}
        for _, a in kept:
            if a.kind == "news":
                topics.setdefault(a.event_id, []).append(a.rule_id)
        reports = {
            a.event_id: Report(a.event_id, a.source, a.title, a.url, a.event_time, tuple(sorted(topics[a.event_id])))
            for _, a in kept
            if a.kind == "news"
        }
        if not reports:
            return kept
        joined = await self.stories.assign(conn, reports.values(), now=now)
        # Within one event, the most severe alert goes first: it leads the story's message and
        # the others edit it (a critical one after a warning one would send a second message).
        order = {event_id: n for n, event_id in enumerate(dict.fromkeys(a.event_id for _, a in kept))}
        kept = sorted(kept, key=lambda ba: (order[ba[1].event_id], -ba[1].severity.rank))
        alerted: set[str] = set()  # stories that already have an alert in this group
        out: list[tuple[_Batch, Alert]] = []
        for batch, alert in kept:
            j = joined.get(alert.event_id)
            if j is None:
                out.append((batch, alert))
                continue
            sid = j.story.id
            first = j.opened and sid not in alerted
            alerted.add(sid)
            out.append((batch, alert.model_copy(update={"story": sid, "sources": j.sources, "update": not first})))
        return out

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


def _fresh_events(group: list[_Batch], fresh: set[str]) -> list[tuple[_Batch, NewsEvent | PriceEvent]]:
    """The group's events not seen before, each once, with their batch."""
    todo: list[tuple[_Batch, NewsEvent | PriceEvent]] = []
    per_source: dict[str, int] = {}
    for batch in group:
        for ev in batch.events:
            if ev.id not in fresh:
                continue
            fresh.discard(ev.id)  # the same event twice in one group counts once
            per_source[ev.source] = per_source.get(ev.source, 0) + 1
            todo.append((batch, ev))
    for source, count in per_source.items():  # one counter update per source, not per event
        EVENTS.labels(source=source).inc(count)
    return todo


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
