"""An in-memory stand-in for `Store`, holding only what the pipeline reads and writes.

Why: replaying history through the SQL `Store` costs one async SQLite
transaction per event plus the routing table's three queries, about 6 ms per
event here (the 2018–2019 archive took over a minute; see the README, "Backtest").
The pipeline's decisions — dedup on (rule, event), cooldown per (rule, key),
routing — stay the live code in `bot.pipeline.Pipeline`; this class only
keeps the same tables in dicts, with the same uniqueness rules:

- `events_seen`: one row per event id;
- `alerts`: unique on id and on (rule_id, event_id); inserting moves the
  (rule_id, key) cooldown to the alert's `created_at`;
- `outbox`: unique on (alert_id, adapter, address);
- stories (`story_storage`, a `MemoryStories`): the same `bot.stories.StoryStorage`
  the SQL tables give, so stories form exactly as live;
- no destinations, subscriptions or mutes (a backtest has no chats).

Each `transaction()` is all-or-nothing like the SQL one: writes made inside a
block that raises are undone. `tests/test_backtest.py` replays the same events
through both stores and checks the alerts are identical.

It implements `bot.storage.protocols.ReplayStore` (what the pipeline, routing
and the replay summary use), checked by mypy against the same Protocol as the
SQL `Store`; it is not a `Store` and has nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from bot.models import Alert, NewsEvent, PriceEvent
from bot.storage.store import Destination, Mute, OutboxEntry, PollRecord, SourceState, Subscription
from bot.stories import Report, Story


class _Txn:
    """Undo log of one transaction block."""

    def __init__(self) -> None:
        self.undo: list[Callable[[], None]] = []


class MemoryStories:
    """`bot.stories.StoryStorage` in dicts; writes are undone with the transaction.

    One pipeline writes (the backtest's), so `changed_since` finds nothing new after the
    first call unless stories were put here by someone else."""

    def __init__(self) -> None:
        self.stories: dict[str, tuple[int, datetime, datetime, str]] = {}  # id → version, opened, last, title
        self.reports: dict[str, list[Report]] = {}
        self._version = 0

    async def lock(self, conn: object) -> None:
        return None

    async def changed_since(self, conn: object, version: int, *, horizon: datetime) -> tuple[list[Story], int]:
        if self._version <= version:
            return [], self._version
        out = [
            Story(id=sid, opened_at=opened, last_at=last, title=title, reports=list(self.reports.get(sid, [])))
            for sid, (v, opened, last, title) in self.stories.items()
            if v > version and last >= horizon
        ]
        return out, self._version

    async def save(
        self, conn: Any, stories: Sequence[Story], new_reports: Sequence[tuple[str, Report]], *, version: int
    ) -> None:
        before_version = self._version
        before = {s.id: self.stories.get(s.id) for s in stories}
        for story in stories:
            self.stories[story.id] = (version, story.opened_at, story.last_at, story.title)
        for sid, rep in new_reports:
            self.reports.setdefault(sid, []).append(rep)
        self._version = max(self._version, version)

        def undo() -> None:
            self._version = before_version
            for sid, old in before.items():
                if old is None:
                    self.stories.pop(sid, None)
                else:
                    self.stories[sid] = old
            for sid, rep in new_reports:
                if rep in self.reports.get(sid, []):
                    self.reports[sid].remove(rep)

        conn.undo.append(undo)


class MemoryStore:
    """The pipeline's slice of the store, in dicts (see module docstring)."""

    def __init__(self) -> None:
        self._sources: dict[str, SourceState] = {}
        self._seen: dict[str, datetime] = {}
        self._alerts: dict[str, Alert] = {}
        self._alert_keys: set[tuple[str, str]] = set()
        self._cooldowns: dict[tuple[str, str], datetime] = {}
        self._outbox: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.story_storage = MemoryStories()

    @classmethod
    async def open(cls, url: str = "memory://", *, create: bool = True) -> MemoryStore:
        return cls()

    async def close(self) -> None:
        return None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        txn = _Txn()
        try:
            yield txn
        except BaseException:
            for undo in reversed(txn.undo):
                undo()
            raise

    # ---- sources ------------------------------------------------------------

    async def record_polls(self, conn: Any, polls: Sequence[PollRecord]) -> list[SourceState]:
        """Poll outcomes as the SQL store keeps them: counters, validators, failure streak."""
        states = []
        for p in {p.source_id: p for p in polls}.values():
            previous = self._sources.get(p.source_id)
            before = previous or SourceState(source_id=p.source_id)
            outcome: dict[str, Any]
            if p.error is not None:
                failures = before.consecutive_failures + 1
                outcome = {"last_error": p.error[:1000], "last_error_at": p.at, "consecutive_failures": failures}
            else:
                outcome = {"etag": p.etag, "last_modified": p.last_modified, "last_success_at": p.at}
                outcome["consecutive_failures"] = 0
            first = before.first_polled_at or p.at
            state = before.model_copy(update={"polls": before.polls + 1, "first_polled_at": first, **outcome})
            self._sources[p.source_id] = state
            conn.undo.append(self._undo_poll(p.source_id, previous))
            states.append(state)
        return states

    def _undo_poll(self, source_id: str, previous: SourceState | None) -> Callable[[], None]:
        def undo() -> None:
            if previous is None:
                self._sources.pop(source_id, None)
            else:
                self._sources[source_id] = previous

        return undo

    # ---- events -------------------------------------------------------------

    async def mark_seen_many(
        self, conn: Any, events: Sequence[NewsEvent | PriceEvent], *, at: datetime
    ) -> set[str]:
        fresh = {ev.id for ev in events} - self._seen.keys()
        for event_id in fresh:
            self._seen[event_id] = at
        conn.undo.append(lambda: [self._seen.pop(i, None) for i in fresh])
        return set(fresh)

    async def seen_count(self) -> int:
        return len(self._seen)

    # ---- alerts and cooldowns ----------------------------------------------

    async def last_fired_many(
        self, conn: Any, pairs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], datetime]:
        return {p: self._cooldowns[p] for p in set(pairs) if p in self._cooldowns}

    async def insert_alerts(self, conn: Any, alerts: Sequence[Alert]) -> set[str]:
        inserted: set[str] = set()
        for alert in alerts:
            pair = (alert.rule_id, alert.event_id)
            if alert.id in self._alerts or pair in self._alert_keys:
                continue
            cooldown = (alert.rule_id, alert.key)
            before = self._cooldowns.get(cooldown)
            self._alerts[alert.id] = alert
            self._alert_keys.add(pair)
            self._cooldowns[cooldown] = alert.created_at
            inserted.add(alert.id)
            conn.undo.append(self._undo_alert(alert, before))
        return inserted

    def _undo_alert(self, alert: Alert, cooldown_before: datetime | None) -> Callable[[], None]:
        def undo() -> None:
            self._alerts.pop(alert.id, None)
            self._alert_keys.discard((alert.rule_id, alert.event_id))
            if cooldown_before is None:
                self._cooldowns.pop((alert.rule_id, alert.key), None)
            else:
                self._cooldowns[(alert.rule_id, alert.key)] = cooldown_before

        return undo

    async def recent_alerts(self, limit: int = 10) -> list[Alert]:
        ordered = sorted(self._alerts.values(), key=lambda a: (a.created_at, a.id))
        return ordered[::-1][:limit]

    async def get_alerts(self, ids: Sequence[str]) -> dict[str, Alert]:
        return {i: self._alerts[i] for i in ids if i in self._alerts}

    async def alert_count(self) -> int:
        return len(self._alerts)

    def alerts(self) -> list[Alert]:
        """Every stored alert, in insertion order."""
        return list(self._alerts.values())

    # ---- outbox -------------------------------------------------------------

    async def enqueue_many(self, conn: Any, entries: Sequence[OutboxEntry], *, at: datetime) -> int:
        added: list[tuple[str, str, str]] = []
        for e in entries:
            key = (e.alert_id, e.adapter, e.address)
            if key in self._outbox:
                continue
            self._outbox[key] = {
                "status": e.status,
                "next_attempt_at": e.not_before or at,
                "created_at": at,
                "last_error": e.note,
            }
            added.append(key)
        conn.undo.append(lambda: [self._outbox.pop(k, None) for k in added])
        return len(added)

    async def queue_depth(self) -> dict[str, int]:
        depth: dict[str, int] = {}
        for row in self._outbox.values():
            if row["status"] in ("pending", "held"):
                depth[row["status"]] = depth.get(row["status"], 0) + 1
        return depth

    # ---- routing inputs: a backtest has no chats ------------------------------

    async def subscriptions(
        self, adapter: str | None = None, address: str | None = None, *, conn: Any = None
    ) -> list[Subscription]:
        return []

    async def destinations(
        self, adapter: str | None = None, *, conn: Any = None
    ) -> list[Destination]:
        return []

    async def active_mutes(
        self,
        *,
        now: datetime,
        adapter: str | None = None,
        address: str | None = None,
        conn: Any = None,
    ) -> list[Mute]:
        return []
