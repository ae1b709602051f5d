"""The Store: every read and write of Readout's state goes through here.

SQLAlchemy Core over an async engine, so the same code runs on embedded
SQLite (the default) and PostgreSQL. Methods that must share a transaction
with others take an explicit connection (`conn`); the rest open their own.
The schema is Alembic's (`bot.storage.migrations`), applied by `open`.

Several workers on one PostgreSQL share the work through claims that expire:
`claim_source` (a lease per source, so each source is polled once per
interval) and `claim_deliveries` / `claim_held` (each outbox row taken by
exactly one worker, `FOR UPDATE SKIP LOCKED`). A worker that dies simply
stops renewing; its claims lapse after `lease_seconds` and others take over.
Each claim is one statement and the SQL is the same on both backends. On
SQLite one worker owns the database (`single_worker`): source leases are
skipped, and outbox claims left by any other worker id (a predecessor that
crashed) are free at once instead of after their lease.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from pydantic import BaseModel
from sqlalchemy import (
    Column,
    ColumnElement,
    Table,
    and_,
    case,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bot.models import Alert, NewsEvent, PriceEvent
from bot.storage import tables as t
from bot.storage.migrations import advisory_key, upgrade_engine

log = logging.getLogger(__name__)

_T = TypeVar("_T")

Selector = Literal["severity", "rule", "tag"]
OutboxStatus = Literal["pending", "held", "sent", "dead", "skipped"]


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One destination owed one alert, as routing decided (see `Store.enqueue_many`).

    A slotted dataclass, not a model: one alert can owe thousands of these at once."""

    alert_id: str
    adapter: str
    address: str
    status: OutboxStatus
    not_before: datetime | None = None
    note: str | None = None


class PollRecord(BaseModel):
    """The outcome of one poll of one source, as `Store.record_polls` stores it."""

    source_id: str
    at: datetime
    error: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    # Renew this worker's lease on the source in the same write (several workers).
    lease_owner: str | None = None
    lease_until: datetime | None = None


class SourceState(BaseModel):
    source_id: str
    etag: str | None = None
    last_modified: str | None = None
    first_polled_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    polls: int = 0
    lease_owner: str | None = None
    lease_until: datetime | None = None


class Destination(BaseModel):
    adapter: str
    address: str
    chat_kind: str | None = None
    title: str | None = None
    include_words: list[str] = []
    exclude_words: list[str] = []
    quiet_start: str | None = None
    quiet_end: str | None = None
    quiet_tz: str | None = None
    session: str | None = None
    disabled_at: datetime | None = None
    disabled_reason: str | None = None


class Subscription(BaseModel):
    adapter: str
    address: str
    selector: Selector
    value: str


class Mute(BaseModel):
    adapter: str
    address: str
    rule_id: str | None
    until: datetime


class Delivery(BaseModel):
    """One outbox row: an alert owed to one destination."""

    id: int
    alert_id: str
    adapter: str
    address: str
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    message_id: str | None = None
    last_error: str | None = None
    claimed_by: str | None = None
    claimed_until: datetime | None = None


def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_worker_id() -> str:
    """A worker id unique across hosts and restarts: `host:pid:random` (at most 64 characters)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# Writing any of these on an outbox row hands its claim back.
_UNCLAIMED: dict[str, Any] = {"claimed_by": None, "claimed_until": None}


class Store:
    """Readout's database. Create with `await Store.open(url)`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # SQLite: one worker owns the database; claims by other worker ids are stale (see
        # claim_source, claim_deliveries). Tests turn it off to run the multi-worker SQL on SQLite.
        self.single_worker = engine.dialect.name == "sqlite"
        # Source states this worker may trust without a query (see claim_source).
        self._states: dict[str, SourceState] = {}
        self._states_loaded = False  # single_worker: all of them, loaded once

    @classmethod
    async def open(cls, url: str, *, create: bool = True) -> Store:
        kwargs: dict[str, Any] = {}
        if _is_sqlite(url):
            # sqlite3 keeps 128 prepared statements per connection; a multi-row INSERT of
            # hundreds of rows prepares into a large program, and each batch size is another
            # statement: 128 of them held ~120 MB in bench/memory.py. 16 is plenty for the rest.
            kwargs["connect_args"] = {"timeout": 30, "cached_statements": 16}
        # No pool_pre_ping (a round trip per checkout): after a server restart the first
        # failing statement invalidates the pool, and every caller loop retries.
        engine = create_async_engine(url, **kwargs)
        if _is_sqlite(url):
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        if create:
            await store.create_schema()
        return store

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def create_schema(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent; safe for concurrent starters)."""
        await upgrade_engine(self.engine)

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.begin() as conn:
                yield conn
        except BaseException:
            self._states.clear()  # it may hold rolled-back writes: read the database again
            self._states_loaded = False
            raise

    @asynccontextmanager
    async def _one_statement(self) -> AsyncIterator[AsyncConnection]:
        """A connection in autocommit mode, for a write that is one statement: no BEGIN and
        COMMIT round trips around it (on the hot path of every poll)."""
        async with self.engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def _reading(self, conn: AsyncConnection | None) -> AsyncIterator[AsyncConnection]:
        """Read on the caller's connection when given one. Inside a write transaction on
        SQLite this is required: a second connection would wait on a pool that writers
        blocked behind our own write lock may have drained."""
        if conn is not None:
            yield conn
        else:
            async with self.engine.connect() as own:
                yield own

    # ---- events -------------------------------------------------------------

    async def is_seen(self, conn: AsyncConnection, event_id: str) -> bool:
        row = await conn.execute(
            select(t.events_seen.c.event_id).where(t.events_seen.c.event_id == event_id)
        )
        return row.first() is not None

    async def mark_seen(
        self, conn: AsyncConnection, ev: NewsEvent | PriceEvent, *, at: datetime
    ) -> bool:
        """Record an event as seen; False when it already was (another worker won)."""
        return ev.id in await self.mark_seen_many(conn, [ev], at=at)

    async def mark_seen_many(
        self, conn: AsyncConnection, events: Sequence[NewsEvent | PriceEvent], *, at: datetime
    ) -> set[str]:
        """Record events as seen; returns the ids that were new (the rest were seen before).

        One multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING` per chunk. Rows go in
        id order, so two workers inserting overlapping batches on PostgreSQL wait on
        each other in the same order and cannot deadlock.
        """
        rows = {
            ev.id: {
                "event_id": ev.id,
                "source": ev.source,
                "kind": ev.kind,
                "title": (ev.title if isinstance(ev, NewsEvent) else f"{ev.symbol} {ev.last}")[:2000],
                "event_time": ev.time,
                "seen_at": at,
            }
            for ev in events
        }
        ordered = [rows[k] for k in sorted(rows)]
        return set(await _insert_new_many(conn, t.events_seen, ordered, t.events_seen.c.event_id))

    async def seen_count(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(t.events_seen))).scalar_one())

    # ---- sources ------------------------------------------------------------

    async def get_source_state(self, source_id: str) -> SourceState | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(t.source_state).where(t.source_state.c.source_id == source_id))
            ).mappings().first()
        return None if row is None else SourceState.model_validate(dict(row))

    async def all_source_states(self) -> list[SourceState]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(t.source_state).order_by(t.source_state.c.source_id))).mappings()
            return [SourceState.model_validate(dict(r)) for r in rows]

    async def record_poll(
        self,
        source_id: str,
        *,
        at: datetime,
        error: str | None,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> SourceState:
        """Store the outcome of one poll, in a transaction of its own (see `record_polls`)."""
        poll = PollRecord(source_id=source_id, at=at, error=error, etag=etag, last_modified=last_modified)
        async with self.transaction() as conn:
            (state,) = await self.record_polls(conn, [poll])
        return state

    async def record_polls(self, conn: AsyncConnection, polls: Sequence[PollRecord]) -> list[SourceState]:
        """Store poll outcomes: validators on success, error and streak on failure.

        Upserts whose counters are computed by the database, so two workers
        recording the same source lose no increment; leases are left alone. One
        statement for all successes and one for all failures; a source polled twice
        in `polls` counts its last poll only.
        """
        s = t.source_state
        latest = {p.source_id: p for p in polls}
        states: list[SourceState] = []
        for failed in (False, True):
            rows = [p for p in latest.values() if (p.error is not None) is failed]
            if not rows:
                continue
            outcome = ["last_error", "last_error_at"] if failed else ["etag", "last_modified", "last_success_at"]
            stmt = _dialect_insert(conn, s)
            updates: dict[str, Any] = {
                "polls": s.c.polls + 1,
                "first_polled_at": func.coalesce(s.c.first_polled_at, stmt.excluded.first_polled_at),
                "consecutive_failures": s.c.consecutive_failures + 1 if failed else 0,
                "lease_until": case(
                    (s.c.lease_owner == stmt.excluded.lease_owner, stmt.excluded.lease_until),
                    else_=s.c.lease_until,
                ),
                **{name: stmt.excluded[name] for name in outcome},
            }
            result = await conn.execute(
                stmt.on_conflict_do_update(index_elements=[s.c.source_id], set_=updates).returning(s),
                [
                    {
                        "source_id": p.source_id,
                        "polls": 1,
                        "first_polled_at": p.at,
                        "consecutive_failures": int(failed),
                        "etag": p.etag,
                        "last_modified": p.last_modified,
                        "last_success_at": None if failed else p.at,
                        "last_error": (p.error or "")[:1000] if failed else None,
                        "last_error_at": p.at if failed else None,
                        "lease_owner": p.lease_owner,
                        "lease_until": p.lease_until,
                    }
                    for p in rows
                ],
            )
            states.extend(SourceState.model_validate(dict(row)) for row in result.mappings())
        self._states.update((st.source_id, st) for st in states)
        return states

    async def claim_source(
        self, source_id: str, *, worker_id: str, lease_seconds: float, now: datetime
    ) -> SourceState | None:
        """Take (or renew) the lease to poll a source and return its state; None while
        another worker's lease runs.

        The lease is sticky: its holder renews it on every poll, so the source
        stays with one worker (and its conditional-GET validators stay warm);
        others get it only once `lease_seconds` have passed without a renewal.
        Use a lease longer than the poll interval plus its jitter. One upsert
        statement that also reads the state — or none: while this worker's lease
        has more than a third of `lease_seconds` to run (`record_polls` renews it
        along with the poll's outcome), the state it last wrote is the truth, since
        no one else may write the row. With `single_worker` (SQLite) the lease is
        always this worker's and the states are read once. The memory is dropped
        whenever a transaction rolls back.
        """
        s = t.source_state
        if self.single_worker:
            if not self._states_loaded:
                self._states.update((st.source_id, st) for st in await self.all_source_states())
                self._states_loaded = True
            return self._states.get(source_id) or SourceState(source_id=source_id)
        held = self._states.get(source_id)
        if (
            held is not None
            and held.lease_owner == worker_id
            and held.lease_until is not None
            and held.lease_until > now + timedelta(seconds=lease_seconds / 3)
        ):
            return held  # our lease runs on (renewed by record_polls): no one else can hold it
        until = now + timedelta(seconds=lease_seconds)
        free = or_(
            s.c.lease_owner.is_(None),
            s.c.lease_owner == worker_id,
            s.c.lease_until.is_(None),
            s.c.lease_until <= now,
        )
        async with self._one_statement() as conn:
            stmt = (
                _dialect_insert(conn, s)
                .values(source_id=source_id, consecutive_failures=0, polls=0, lease_owner=worker_id, lease_until=until)
                .on_conflict_do_update(
                    index_elements=[s.c.source_id],
                    set_={"lease_owner": worker_id, "lease_until": until},
                    where=free,
                )
                .returning(s)
            )
            row = (await conn.execute(stmt)).mappings().first()
        if row is None:
            self._states.pop(source_id, None)
            return None
        state = self._states[source_id] = SourceState.model_validate(dict(row))
        return state

    async def release_source(self, source_id: str, *, worker_id: str) -> bool:
        """Hand a source's lease back early (shutdown); False if this worker did not hold it."""
        s = t.source_state
        async with self.transaction() as conn:
            res = await conn.execute(
                update(s)
                .where(and_(s.c.source_id == source_id, s.c.lease_owner == worker_id))
                .values(lease_owner=None, lease_until=None)
            )
            return bool(res.rowcount)

    # ---- alerts and cooldowns ----------------------------------------------

    async def alert_exists(self, conn: AsyncConnection, rule_id: str, event_id: str) -> bool:
        q = select(t.alerts.c.id).where(
            and_(t.alerts.c.rule_id == rule_id, t.alerts.c.event_id == event_id)
        )
        return (await conn.execute(q)).first() is not None

    async def last_fired(self, conn: AsyncConnection, rule_id: str, key: str) -> datetime | None:
        """When this rule last fired for this key (see `last_fired_many` for the lock it takes)."""
        return (await self.last_fired_many(conn, [(rule_id, key)])).get((rule_id, key))

    async def last_fired_many(
        self, conn: AsyncConnection, pairs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], datetime]:
        """When each (rule, key) last fired; pairs that never fired are absent.

        On PostgreSQL it first takes a transaction-level advisory lock per pair, in
        sorted order (so two workers cannot deadlock), which makes the cooldown
        check and the `insert_alerts` that follows one step across workers: a
        second worker waits for the first to commit, then sees its alerts.
        """
        wanted = sorted(set(pairs))
        if not wanted:
            return {}
        if conn.dialect.name == "postgresql":
            keys = [advisory_key(f"cooldown:{rule_id}\x1f{key}") for rule_id, key in wanted]
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k"),
                {"keys": keys},
            )
        c = t.cooldowns.c
        found: dict[tuple[str, str], datetime] = {}
        for chunk in _chunks(wanted, _CHUNK_ROWS):
            q = select(c.rule_id, c.key, c.last_fired_at).where(tuple_(c.rule_id, c.key).in_(chunk))
            for rule_id, key, fired in await conn.execute(q):
                found[(rule_id, key)] = fired
        return found

    async def insert_alert(self, conn: AsyncConnection, alert: Alert) -> bool:
        """Insert an alert and move its cooldown; False if this rule already fired on the event."""
        return alert.id in await self.insert_alerts(conn, [alert])

    async def insert_alerts(self, conn: AsyncConnection, alerts: Sequence[Alert]) -> set[str]:
        """Insert alerts and move their cooldowns; returns the ids inserted.

        An alert whose rule already fired on its event (another worker, a replay) is
        skipped, and does not move the cooldown. Two statements for the whole batch.
        """
        if not alerts:
            return set()
        rows = [
            {
                "id": a.id,
                "rule_id": a.rule_id,
                "event_id": a.event_id,
                "key": a.key,
                "severity": a.severity.value,
                "kind": a.kind,
                "created_at": a.created_at,
                "event_time": a.event_time,
                "payload": a.model_dump(mode="json"),
            }
            for a in alerts
        ]
        inserted = set(await _insert_new_many(conn, t.alerts, rows, t.alerts.c.id))
        fired: dict[tuple[str, str], datetime] = {}
        for a in alerts:
            if a.id in inserted:
                pair = (a.rule_id, a.key)
                fired[pair] = max(a.created_at, fired.get(pair, a.created_at))
        if fired:
            stmt = _dialect_insert(conn, t.cooldowns)
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[t.cooldowns.c.rule_id, t.cooldowns.c.key],
                    set_={"last_fired_at": stmt.excluded.last_fired_at},
                ),
                [{"rule_id": r, "key": k, "last_fired_at": at} for (r, k), at in sorted(fired.items())],
            )
        return inserted

    async def recent_alerts(self, limit: int = 10) -> list[Alert]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(t.alerts.c.payload).order_by(t.alerts.c.created_at.desc(), t.alerts.c.id).limit(limit)
            )
            return [Alert.model_validate(r[0]) for r in rows]

    async def find_alert(self, handle: str) -> Alert | None:
        """An alert by its id or an unambiguous id prefix (as shown in chat, e.g. `#3f9a1c2e`)."""
        handle = handle.strip().lstrip("#").lower()
        if not handle or len(handle) > 64 or not handle.isalnum():
            return None
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(t.alerts.c.payload).where(t.alerts.c.id.like(handle + "%")).limit(2)
                )
            ).all()
        return Alert.model_validate(rows[0][0]) if len(rows) == 1 else None

    async def get_alerts(self, ids: Sequence[str]) -> dict[str, Alert]:
        if not ids:
            return {}
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(t.alerts.c.id, t.alerts.c.payload).where(t.alerts.c.id.in_(list(ids))))
            return {r[0]: Alert.model_validate(r[1]) for r in rows}

    async def alert_count(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(t.alerts))).scalar_one())

    # ---- outbox -------------------------------------------------------------

    async def enqueue(
        self,
        conn: AsyncConnection,
        *,
        alert_id: str,
        adapter: str,
        address: str,
        status: OutboxStatus,
        at: datetime,
        not_before: datetime | None = None,
        note: str | None = None,
    ) -> bool:
        """Owe an alert to one destination; False if it was already owed (idempotent)."""
        row = OutboxEntry(
            alert_id=alert_id, adapter=adapter, address=address, status=status, not_before=not_before, note=note
        )
        return await self.enqueue_many(conn, [row], at=at) == 1

    async def enqueue_many(self, conn: AsyncConnection, entries: Sequence[OutboxEntry], *, at: datetime) -> int:
        """Owe alerts to destinations, in the given order (outbox ids follow it); returns how
        many were new. One multi-row insert per chunk: an alert for 10,000 subscribers is
        20 statements, not 10,000."""
        rows = [
            {
                "alert_id": e.alert_id,
                "adapter": e.adapter,
                "address": e.address,
                "status": e.status,
                "attempts": 0,
                "next_attempt_at": e.not_before or at,
                "created_at": at,
                "last_error": e.note,
            }
            for e in entries
        ]
        return len(await _insert_new_many(conn, t.outbox, rows, t.outbox.c.id))

    async def due_deliveries(self, *, now: datetime, adapters: Sequence[str], limit: int = 100) -> list[Delivery]:
        """The oldest pending row of each destination, if due: order per destination is kept."""
        o = t.outbox
        first_pending = (
            select(func.min(o.c.id).label("id"))
            .where(and_(o.c.status == "pending", o.c.adapter.in_(list(adapters))))
            .group_by(o.c.adapter, o.c.address)
            .subquery()
        )
        q = (
            select(o)
            .join(first_pending, o.c.id == first_pending.c.id)
            .where(o.c.next_attempt_at <= now)
            .order_by(o.c.id)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).mappings().all()
        return [Delivery.model_validate(dict(r)) for r in rows]

    async def claim_deliveries(
        self,
        *,
        worker_id: str,
        now: datetime,
        adapters: Sequence[str],
        limit: int = 100,
        lease_seconds: float = 60.0,
    ) -> list[Delivery]:
        """Like `due_deliveries`, but each row is handed to exactly one worker until sent or released.

        One statement: UPDATE … WHERE id IN (the oldest pending row of each
        destination, due, unclaimed or with a lapsed claim … FOR UPDATE SKIP
        LOCKED) RETURNING. While a row is claimed its destination is skipped by
        everyone else (the next row of that destination is not the oldest
        pending one), so order per destination holds across workers. Every
        `mark_*` and `defer` clears the claim; a worker that dies hands its rows
        back when `lease_seconds` run out, so the lease must outlast one send.
        """
        o = t.outbox
        first_pending = (
            select(func.min(o.c.id))
            .where(and_(o.c.status == "pending", o.c.adapter.in_(list(adapters))))
            .group_by(o.c.adapter, o.c.address)
        )
        claimable = (
            select(o.c.id)
            .where(
                and_(
                    o.c.id.in_(first_pending),
                    # Repeated here so PostgreSQL re-checks it on a row that changed under us.
                    o.c.status == "pending",
                    o.c.next_attempt_at <= now,
                    self._claim_free(worker_id, now),
                )
            )
            .order_by(o.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return await self._claim(claimable, worker_id=worker_id, now=now, lease_seconds=lease_seconds)

    async def claim_held(
        self, *, worker_id: str, now: datetime, adapters: Sequence[str], lease_seconds: float = 60.0
    ) -> dict[tuple[str, str], list[Delivery]]:
        """Like `held_due` (digests after quiet hours), each row claimed by exactly one worker."""
        o = t.outbox
        claimable = (
            select(o.c.id)
            .where(
                and_(
                    o.c.status == "held",
                    o.c.next_attempt_at <= now,
                    o.c.adapter.in_(list(adapters)),
                    self._claim_free(worker_id, now),
                )
            )
            .order_by(o.c.id)
            .with_for_update(skip_locked=True)
        )
        return _by_destination(
            await self._claim(claimable, worker_id=worker_id, now=now, lease_seconds=lease_seconds)
        )

    def _claim_free(self, worker_id: str, now: datetime) -> ColumnElement[bool]:
        """Rows nobody holds: never claimed, or the claim lapsed (or, single worker, not ours)."""
        o = t.outbox
        free = or_(o.c.claimed_until.is_(None), o.c.claimed_until <= now)
        if self.single_worker:  # a claim by another id was left by a crashed predecessor
            free = or_(free, o.c.claimed_by != worker_id)
        return free

    async def _claim(
        self, claimable: Any, *, worker_id: str, now: datetime, lease_seconds: float
    ) -> list[Delivery]:
        o = t.outbox
        stmt = (
            update(o)
            .where(o.c.id.in_(claimable))
            .values(claimed_by=worker_id, claimed_until=now + timedelta(seconds=lease_seconds))
            .returning(*o.c)
        )
        async with self.transaction() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return sorted((Delivery.model_validate(dict(r)) for r in rows), key=lambda d: d.id)

    async def release_claims(self, *, worker_id: str) -> int:
        """Hand back every outbox row and source lease this worker holds (clean shutdown)."""
        o, s = t.outbox, t.source_state
        async with self.transaction() as conn:
            rows = await conn.execute(update(o).where(o.c.claimed_by == worker_id).values(**_UNCLAIMED))
            leases = await conn.execute(
                update(s).where(s.c.lease_owner == worker_id).values(lease_owner=None, lease_until=None)
            )
            return int(rows.rowcount or 0) + int(leases.rowcount or 0)

    async def held_due(self, *, now: datetime, adapters: Sequence[str]) -> dict[tuple[str, str], list[Delivery]]:
        """Held rows (quiet hours) whose hold has ended, grouped by destination for one digest."""
        o = t.outbox
        q = (
            select(o)
            .where(and_(o.c.status == "held", o.c.next_attempt_at <= now, o.c.adapter.in_(list(adapters))))
            .order_by(o.c.id)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).mappings().all()
        return _by_destination([Delivery.model_validate(dict(r)) for r in rows])

    async def mark_sent(self, ids: Sequence[int], *, message_id: str | None, at: datetime) -> None:
        async with self.transaction() as conn:
            await conn.execute(
                update(t.outbox)
                .where(t.outbox.c.id.in_(list(ids)))
                .values(
                    status="sent",
                    sent_at=at,
                    message_id=message_id,
                    attempts=t.outbox.c.attempts + 1,
                    **_UNCLAIMED,
                )
            )

    async def mark_retry(self, ids: Sequence[int], *, error: str, next_attempt_at: datetime) -> None:
        async with self.transaction() as conn:
            await conn.execute(
                update(t.outbox)
                .where(t.outbox.c.id.in_(list(ids)))
                .values(
                    attempts=t.outbox.c.attempts + 1,
                    last_error=error[:1000],
                    next_attempt_at=next_attempt_at,
                    **_UNCLAIMED,
                )
            )

    async def defer(self, ids: Sequence[int], *, next_attempt_at: datetime, note: str) -> None:
        """Push rows back without counting an attempt (rate limit, quiet hours)."""
        async with self.transaction() as conn:
            await conn.execute(
                update(t.outbox)
                .where(t.outbox.c.id.in_(list(ids)))
                .values(last_error=note[:1000], next_attempt_at=next_attempt_at, **_UNCLAIMED)
            )

    async def mark_dead(self, ids: Sequence[int], *, error: str) -> None:
        async with self.transaction() as conn:
            await conn.execute(
                update(t.outbox)
                .where(t.outbox.c.id.in_(list(ids)))
                .values(status="dead", last_error=error[:1000], attempts=t.outbox.c.attempts + 1, **_UNCLAIMED)
            )

    async def kill_destination_queue(self, adapter: str, address: str, *, error: str) -> int:
        """A destination that is gone for good: its owed rows are closed as dead."""
        async with self.transaction() as conn:
            res = await conn.execute(
                update(t.outbox)
                .where(
                    and_(
                        t.outbox.c.adapter == adapter,
                        t.outbox.c.address == address,
                        t.outbox.c.status.in_(["pending", "held"]),
                    )
                )
                .values(status="dead", last_error=error[:1000], **_UNCLAIMED)
            )
            return int(res.rowcount or 0)

    async def queue_depth(self) -> dict[str, int]:
        """Owed rows per status (pending, held), for /status."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(t.outbox.c.status, func.count())
                .where(t.outbox.c.status.in_(["pending", "held"]))
                .group_by(t.outbox.c.status)
            )
            return {r[0]: int(r[1]) for r in rows}

    async def deliveries(self, *, adapter: str | None = None) -> list[Delivery]:
        q = select(t.outbox).order_by(t.outbox.c.id)
        if adapter:
            q = q.where(t.outbox.c.adapter == adapter)
        async with self.engine.connect() as conn:
            return [Delivery.model_validate(dict(r)) for r in (await conn.execute(q)).mappings()]

    # ---- destinations, subscriptions, mutes ----------------------------------

    async def ensure_destination(
        self, adapter: str, address: str, *, at: datetime, chat_kind: str | None = None, title: str | None = None
    ) -> Destination:
        """Create the destination if new; re-enable it if it had been disabled."""
        d = t.destinations
        async with self.transaction() as conn:
            row = (
                await conn.execute(select(d).where(and_(d.c.adapter == adapter, d.c.address == address)))
            ).mappings().first()
            if row is None:
                await _insert_new(
                    conn,
                    d,
                    adapter=adapter,
                    address=address,
                    chat_kind=chat_kind,
                    title=title,
                    include_words=[],
                    exclude_words=[],
                    created_at=at,
                )
            else:
                values: dict[str, Any] = {"disabled_at": None, "disabled_reason": None}
                if chat_kind:
                    values["chat_kind"] = chat_kind
                if title:
                    values["title"] = title
                await conn.execute(
                    update(d).where(and_(d.c.adapter == adapter, d.c.address == address)).values(**values)
                )
        dest = await self.get_destination(adapter, address)
        assert dest is not None
        return dest

    async def get_destination(self, adapter: str, address: str) -> Destination | None:
        d = t.destinations
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(d).where(and_(d.c.adapter == adapter, d.c.address == address)))
            ).mappings().first()
        return None if row is None else Destination.model_validate(dict(row))

    async def destinations(
        self, adapter: str | None = None, *, conn: AsyncConnection | None = None
    ) -> list[Destination]:
        d = t.destinations
        q = select(d).order_by(d.c.adapter, d.c.address)
        if adapter:
            q = q.where(d.c.adapter == adapter)
        async with self._reading(conn) as conn:
            return [Destination.model_validate(dict(r)) for r in (await conn.execute(q)).mappings()]

    async def update_destination(self, adapter: str, address: str, **values: Any) -> None:
        allowed = {"include_words", "exclude_words", "quiet_start", "quiet_end", "quiet_tz", "session", "title", "chat_kind"}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"not destination settings: {sorted(unknown)}")
        d = t.destinations
        async with self.transaction() as conn:
            await conn.execute(
                update(d).where(and_(d.c.adapter == adapter, d.c.address == address)).values(**values)
            )

    async def disable_destination(self, adapter: str, address: str, *, reason: str, at: datetime) -> None:
        """A destination the bot can no longer reach: unsubscribed, recorded, its queue closed."""
        d = t.destinations
        async with self.transaction() as conn:
            await conn.execute(
                update(d)
                .where(and_(d.c.adapter == adapter, d.c.address == address))
                .values(disabled_at=at, disabled_reason=reason[:500])
            )
            await conn.execute(
                delete(t.subscriptions).where(
                    and_(t.subscriptions.c.adapter == adapter, t.subscriptions.c.address == address)
                )
            )
        await self.kill_destination_queue(adapter, address, error=reason)

    async def subscribe(self, adapter: str, address: str, selector: Selector, value: str, *, at: datetime) -> bool:
        """Add a subscription; False if it already existed."""
        async with self.transaction() as conn:
            return await _insert_new(
                conn, t.subscriptions, adapter=adapter, address=address, selector=selector, value=value, created_at=at
            )

    async def unsubscribe(
        self, adapter: str, address: str, selector: Selector | None = None, value: str | None = None
    ) -> int:
        """Remove one subscription, or all of a destination's when no selector is given."""
        s = t.subscriptions
        cond = and_(s.c.adapter == adapter, s.c.address == address)
        if selector is not None:
            cond = and_(cond, s.c.selector == selector)
        if value is not None:
            cond = and_(cond, s.c.value == value)
        async with self.transaction() as conn:
            res = await conn.execute(delete(s).where(cond))
            return int(res.rowcount or 0)

    async def subscriptions(
        self, adapter: str | None = None, address: str | None = None, *, conn: AsyncConnection | None = None
    ) -> list[Subscription]:
        s = t.subscriptions
        q = select(s.c.adapter, s.c.address, s.c.selector, s.c.value).order_by(s.c.adapter, s.c.address, s.c.id)
        if adapter is not None:
            q = q.where(s.c.adapter == adapter)
        if address is not None:
            q = q.where(s.c.address == address)
        async with self._reading(conn) as conn:
            return [Subscription.model_validate(dict(r)) for r in (await conn.execute(q)).mappings()]

    async def add_mute(
        self, adapter: str, address: str, *, rule_id: str | None, until: datetime, at: datetime
    ) -> None:
        async with self.transaction() as conn:
            await conn.execute(
                insert(t.mutes).values(adapter=adapter, address=address, rule_id=rule_id, until=until, created_at=at)
            )

    async def clear_mutes(self, adapter: str, address: str, rule_id: str | None = None) -> int:
        m = t.mutes
        cond = and_(m.c.adapter == adapter, m.c.address == address)
        if rule_id is not None:
            cond = and_(cond, m.c.rule_id == rule_id)
        async with self.transaction() as conn:
            return int((await conn.execute(delete(m).where(cond))).rowcount or 0)

    async def active_mutes(
        self,
        *,
        now: datetime,
        adapter: str | None = None,
        address: str | None = None,
        conn: AsyncConnection | None = None,
    ) -> list[Mute]:
        m = t.mutes
        q = select(m.c.adapter, m.c.address, m.c.rule_id, m.c.until).where(m.c.until > now)
        if adapter is not None:
            q = q.where(m.c.adapter == adapter)
        if address is not None:
            q = q.where(m.c.address == address)
        async with self._reading(conn) as conn:
            return [Mute.model_validate(dict(r)) for r in (await conn.execute(q)).mappings()]


_CHUNK_ROWS = 500  # rows per multi-row statement: well inside SQLite's 32,766 bound parameters


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def _insert_new(conn: AsyncConnection, table: Table, **values: Any) -> bool:
    """INSERT … ON CONFLICT DO NOTHING: True if the row is new, False if a unique key already had it.

    No exception, no savepoint and no server-side error log for the common
    duplicate (every poll re-reads items already seen); under concurrency on
    PostgreSQL it waits for the other inserter and then skips if that one committed.
    """
    key = next(iter(table.primary_key.columns))
    return bool(await _insert_new_many(conn, table, [values], key))


async def _insert_new_many(
    conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]], returning: Column[Any]
) -> list[Any]:
    """`_insert_new` for many rows; `returning` of the new ones.

    RETURNING, not rowcount: with a generated key psycopg reports -1 for a skipped row.
    Several rows go as an executemany that SQLAlchemy turns into multi-row INSERTs
    ("insertmanyvalues", batches of 1,000): one compiled statement, cached, whatever
    the number of rows.
    """
    if not rows:
        return []
    stmt = _dialect_insert(conn, table).on_conflict_do_nothing().returning(returning)
    return list((await conn.execute(stmt, list(rows))).scalars())


def _dialect_insert(conn: AsyncConnection, table: Table) -> Any:
    """An INSERT with ON CONFLICT support: PostgreSQL's or SQLite's (the two backends Readout runs on)."""
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)


def _by_destination(rows: Sequence[Delivery]) -> dict[tuple[str, str], list[Delivery]]:
    grouped: dict[tuple[str, str], list[Delivery]] = {}
    for d in rows:
        grouped.setdefault((d.adapter, d.address), []).append(d)
    return grouped


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


__all__ = [
    "Delivery",
    "Destination",
    "Mute",
    "OutboxEntry",
    "PollRecord",
    "SourceState",
    "Store",
    "Subscription",
    "make_worker_id",
]
