"""The Store on SQLite and PostgreSQL: schema, every method, and several workers sharing one database.

Each test runs twice through the `db_url` / `store` fixtures (tests/support/databases.py);
the race tests open several Stores (separate engines and connections) on one database.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.models import Alert, NewsEvent, PriceEvent, Severity
from bot.storage import migrations, tables
from bot.storage.leader import LeaderLock
from bot.storage.store import Delivery, OutboxEntry, PollRecord, Store, make_worker_id
from tests.support.databases import with_driver

T0 = datetime(2025, 4, 2, 20, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]


def _alert(
    n: int, *, rule: str = "r", key: str = "k", event: str | None = None, at: datetime = T0
) -> Alert:
    return Alert(
        id=f"{n:08x}" + "a" * 16,
        rule_id=rule,
        rule_description="Rule",
        severity=Severity.warning,
        kind="news",
        event_id=event or f"e{n}",
        key=key,
        title=f"headline {n}",
        source="feed",
        event_time=at,
        created_at=at + timedelta(seconds=n),
    )


def _news(n: int, *, at: datetime = T0) -> NewsEvent:
    return NewsEvent(id=f"ev{n}", source="feed", title=f"headline {n}", seen_at=at)


async def _owe(
    store: Store, alerts: list[Alert], routes: list[tuple[str, str, str]], *, adapter: str = "chat"
) -> None:
    """Insert alerts and outbox rows (alert_id, address, status) in one transaction."""
    async with store.transaction() as conn:
        for a in alerts:
            assert await store.insert_alert(conn, a)
        for alert_id, address, status in routes:
            await store.enqueue(
                conn,
                alert_id=alert_id,
                adapter=adapter,
                address=address,
                status=status,  # type: ignore[arg-type]
                at=T0,
            )


def _is_utc(when: datetime | None) -> bool:
    return when is not None and when.utcoffset() == timedelta(0)


# ---- schema ------------------------------------------------------------------


async def test_migrated_schema_equals_metadata(store: Store) -> None:
    async with store.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"compare_type": True}), tables.metadata
            )
        )
        version = await conn.run_sync(migrations.current_revision)
    assert diff == []
    assert version == migrations.head_revision()


async def test_upgrade_is_idempotent_and_keeps_data(db_url: str) -> None:
    store = await Store.open(db_url)
    async with store.transaction() as conn:
        assert await store.mark_seen(conn, _news(1), at=T0)
    await store.close()
    await migrations.upgrade(db_url)
    store = await Store.open(db_url)
    try:
        assert await store.seen_count() == 1
    finally:
        await store.close()


async def test_concurrent_starts_migrate_once(pg_url: str) -> None:
    stores = await asyncio.gather(*(Store.open(pg_url) for _ in range(5)))
    try:
        async with stores[0].engine.connect() as conn:
            assert await conn.run_sync(migrations.current_revision) == migrations.head_revision()
    finally:
        await asyncio.gather(*(s.close() for s in stores))


INITIAL_TABLES = {
    "events_seen", "source_state", "alerts", "cooldowns", "outbox", "destinations", "subscriptions", "mutes"
}


async def test_database_from_before_migrations_is_adopted(db_url: str) -> None:
    engine = create_async_engine(db_url)
    # the tables create_all made before migrations existed: those of the initial revision
    initial = [tbl for tbl in tables.metadata.sorted_tables if tbl.name in INITIAL_TABLES]
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: tables.metadata.create_all(sync, tables=initial))
    await engine.dispose()
    store = await Store.open(db_url)
    try:
        async with store.engine.connect() as conn:
            assert await conn.run_sync(migrations.current_revision) == migrations.head_revision()
    finally:
        await store.close()


async def test_db_upgrade_command(db_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": db_url, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "db",
        "upgrade",
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, out.decode()
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(migrations.current_revision) == migrations.head_revision()
    finally:
        await engine.dispose()


# ---- events --------------------------------------------------------------------


async def test_mark_seen_is_idempotent(store: Store) -> None:
    price = PriceEvent(id="px1", source="cboe", symbol="^VIX", time=T0, last=31.5)
    async with store.transaction() as conn:
        assert await store.mark_seen(conn, _news(1), at=T0)
        # A duplicate is skipped and the transaction stays usable.
        assert not await store.mark_seen(conn, _news(1), at=T0)
        assert await store.mark_seen(conn, price, at=T0)
        assert await store.is_seen(conn, "ev1") and not await store.is_seen(conn, "ev2")
    async with store.transaction() as conn:
        assert not await store.mark_seen(conn, _news(1), at=T0 + timedelta(hours=1))
    assert await store.seen_count() == 2


# ---- sources -------------------------------------------------------------------


async def test_record_poll_streaks_and_validators(store: Store) -> None:
    assert await store.get_source_state("fr") is None
    s = await store.record_poll(
        "fr", at=T0, error=None, etag='"v1"', last_modified="Wed, 02 Apr 2025 20:00:00 GMT"
    )
    assert (s.polls, s.consecutive_failures, s.etag) == (1, 0, '"v1"')
    for i in range(3):
        s = await store.record_poll("fr", at=T0 + timedelta(minutes=i + 1), error=f"HTTP 503 #{i}")
    assert (s.polls, s.consecutive_failures, s.last_error) == (4, 3, "HTTP 503 #2")
    s = await store.record_poll("fr", at=T0 + timedelta(minutes=9), error=None, etag='"v2"')
    stored = await store.get_source_state("fr")
    assert stored == s
    assert (s.polls, s.consecutive_failures, s.etag, s.last_modified) == (5, 0, '"v2"', None)
    assert s.first_polled_at == T0 and s.last_success_at == T0 + timedelta(minutes=9)
    assert s.last_error_at == T0 + timedelta(minutes=3) and _is_utc(s.last_error_at)
    await store.record_poll("ap", at=T0, error="x" * 5000)
    states = await store.all_source_states()
    assert [x.source_id for x in states] == ["ap", "fr"]
    assert len(states[0].last_error or "") == 1000
    # Counters are computed by the database: concurrent recorders lose no increment.
    await asyncio.gather(*(store.record_poll("ap", at=T0, error="HTTP 500") for _ in range(8)))
    ap = await store.get_source_state("ap")
    assert ap is not None and (ap.polls, ap.consecutive_failures) == (9, 9)


# ---- alerts and cooldowns ------------------------------------------------------


async def test_insert_alert_dedups_rule_event_and_moves_cooldown(store: Store) -> None:
    first = _alert(1, event="e1")
    async with store.transaction() as conn:
        assert await store.last_fired(conn, "r", "k") is None
        assert await store.insert_alert(conn, first)
        # Same rule × event, whatever the id: not a second alert.
        assert not await store.insert_alert(conn, first.model_copy(update={"id": "f" * 24}))
        assert await store.alert_exists(conn, "r", "e1")
        assert not await store.alert_exists(conn, "r", "e2")
        assert await store.last_fired(conn, "r", "k") == first.created_at
        later = _alert(2, event="e2", at=T0 + timedelta(hours=1))
        assert await store.insert_alert(conn, later)
        fired = await store.last_fired(conn, "r", "k")
        assert fired == later.created_at and _is_utc(fired)
        # Another rule on the same event is another alert.
        assert await store.insert_alert(conn, _alert(3, rule="other", event="e1"))
    assert await store.alert_count() == 3
    assert [a.id for a in await store.recent_alerts(2)] == [later.id, _alert(3).id]
    got = await store.get_alerts([first.id, "missing"])
    assert got == {first.id: first}
    assert await store.get_alerts([]) == {}


async def test_batch_writes_report_exactly_the_new_rows(store: Store) -> None:
    """The pipeline's one-statement-per-batch path: seen, cooldowns, alerts, outbox."""
    async with store.transaction() as conn:
        assert await store.mark_seen_many(conn, [_news(1), _news(2)], at=T0) == {"ev1", "ev2"}
        fresh = await store.mark_seen_many(conn, [_news(2), _news(3), _news(3)], at=T0)
        assert fresh == {"ev3"}
        assert await store.mark_seen_many(conn, [], at=T0) == set()

        a1, a2 = _alert(1, event="e1"), _alert(2, rule="other", key="x", event="e1")
        assert await store.insert_alerts(conn, [a1, a2]) == {a1.id, a2.id}
        retry = a1.model_copy(update={"id": "f" * 24, "created_at": T0 + timedelta(hours=5)})
        a3 = _alert(3, event="e3", at=T0 + timedelta(minutes=1))
        assert await store.insert_alerts(conn, [retry, a3]) == {a3.id}
        assert await store.last_fired_many(conn, [("r", "k"), ("other", "x"), ("never", "k")]) == {
            ("r", "k"): a3.created_at,  # moved by a3, not by the skipped duplicate
            ("other", "x"): a2.created_at,
        }
        assert await store.last_fired_many(conn, []) == {}

        entries = [
            OutboxEntry(alert_id=a1.id, adapter="chat", address=f"c{n}", status="pending")
            for n in range(1100)  # three multi-row chunks
        ]
        assert await store.enqueue_many(conn, entries, at=T0) == 1100
        again = [
            *entries[:2],
            OutboxEntry(
                alert_id=a1.id,
                adapter="chat",
                address="late",
                status="held",
                not_before=T0 + timedelta(hours=1),
                note="quiet hours",
            ),
        ]
        assert await store.enqueue_many(conn, again, at=T0) == 1
    rows = await store.deliveries(adapter="chat")
    assert [d.address for d in rows] == [f"c{n}" for n in range(1100)] + ["late"]
    assert [d.id for d in rows] == sorted(d.id for d in rows)
    late = rows[-1]
    assert (late.status, late.next_attempt_at, late.last_error) == (
        "held",
        T0 + timedelta(hours=1),
        "quiet hours",
    )


async def test_find_alert_by_prefix(store: Store) -> None:
    a, b = _alert(1), _alert(2)
    a = a.model_copy(update={"id": "3f9a1c2e" + "0" * 16})
    b = b.model_copy(update={"id": "3f9b0000" + "0" * 16})
    await _owe(store, [a, b], [])
    assert await store.find_alert("#3f9a1c2e") == a
    assert await store.find_alert(" 3F9A ") == a
    assert await store.find_alert(a.id) == a
    assert await store.find_alert("3f9") is None  # ambiguous
    assert await store.find_alert("nope") is None
    assert await store.find_alert("3f9a%") is None and await store.find_alert("") is None


# ---- outbox --------------------------------------------------------------------


async def test_enqueue_is_idempotent_per_alert_and_destination(store: Store) -> None:
    a = _alert(1)
    await _owe(store, [a], [(a.id, "1", "pending")])
    async with store.transaction() as conn:
        assert not await store.enqueue(
            conn, alert_id=a.id, adapter="chat", address="1", status="pending", at=T0
        )
        assert await store.enqueue(
            conn, alert_id=a.id, adapter="chat", address="2", status="held", at=T0
        )
        assert await store.enqueue(
            conn, alert_id=a.id, adapter="console", address="-", status="pending", at=T0
        )
    rows = await store.deliveries()
    assert [(d.adapter, d.address, d.status) for d in rows] == [
        ("chat", "1", "pending"),
        ("chat", "2", "held"),
        ("console", "-", "pending"),
    ]
    assert [d.address for d in await store.deliveries(adapter="chat")] == ["1", "2"]
    assert await store.queue_depth() == {"pending": 2, "held": 1}


async def test_due_deliveries_oldest_pending_per_destination(store: Store) -> None:
    alerts = [_alert(i) for i in range(6)]
    await _owe(
        store,
        alerts,
        [
            (alerts[0].id, "A", "pending"),
            (alerts[1].id, "A", "pending"),
            (alerts[2].id, "B", "pending"),
            (alerts[3].id, "B", "pending"),
            (alerts[4].id, "C", "held"),
            (alerts[5].id, "C", "pending"),
        ],
    )
    ids = {(d.address, d.alert_id): d.id for d in await store.deliveries()}
    due = await store.due_deliveries(now=T0, adapters=["chat"])
    assert [(d.address, d.alert_id) for d in due] == [
        ("A", alerts[0].id),
        ("B", alerts[2].id),
        ("C", alerts[5].id),
    ]
    assert await store.due_deliveries(now=T0, adapters=["console"]) == []
    assert len(await store.due_deliveries(now=T0, adapters=["chat"], limit=2)) == 2
    # A's head fails and waits: A is blocked behind it (order kept), B and C go on.
    await store.mark_retry(
        [ids["A", alerts[0].id]], error="503", next_attempt_at=T0 + timedelta(seconds=30)
    )
    assert [d.address for d in await store.due_deliveries(now=T0, adapters=["chat"])] == ["B", "C"]
    [head] = [
        d
        for d in await store.due_deliveries(now=T0 + timedelta(seconds=30), adapters=["chat"])
        if d.address == "A"
    ]
    assert head.alert_id == alerts[0].id and head.attempts == 1 and head.last_error == "503"
    await store.mark_sent([head.id], message_id="m1", at=T0)
    [head] = [d for d in await store.due_deliveries(now=T0, adapters=["chat"]) if d.address == "A"]
    assert head.alert_id == alerts[1].id


async def test_held_due_groups_by_destination(store: Store) -> None:
    alerts = [_alert(i) for i in range(4)]
    await _owe(
        store,
        alerts,
        [
            (alerts[0].id, "A", "held"),
            (alerts[1].id, "B", "held"),
            (alerts[2].id, "A", "held"),
            (alerts[3].id, "A", "pending"),
        ],
    )
    async with store.transaction() as conn:  # one hold that has not ended yet
        await store.enqueue(
            conn,
            alert_id=alerts[3].id,
            adapter="chat",
            address="B",
            status="held",
            at=T0,
            not_before=T0 + timedelta(hours=8),
            note="quiet hours",
        )
    groups = await store.held_due(now=T0, adapters=["chat"])
    assert {k: [d.alert_id for d in v] for k, v in groups.items()} == {
        ("chat", "A"): [alerts[0].id, alerts[2].id],
        ("chat", "B"): [alerts[1].id],
    }
    later = await store.held_due(now=T0 + timedelta(hours=8), adapters=["chat"])
    assert [d.alert_id for d in later["chat", "B"]] == [alerts[1].id, alerts[3].id]
    assert later["chat", "B"][1].last_error == "quiet hours"


async def test_mark_sent_retry_defer_dead(store: Store) -> None:
    alerts = [_alert(i) for i in range(4)]
    await _owe(store, alerts, [(a.id, str(i), "pending") for i, a in enumerate(alerts)])
    d0, d1, d2, d3 = (d.id for d in await store.deliveries())
    later = T0 + timedelta(minutes=5)
    await store.mark_sent([d0], message_id="42", at=later)
    await store.mark_retry([d1], error="e" * 2000, next_attempt_at=later)
    await store.defer([d2], next_attempt_at=later, note="429 retry_after=300")
    await store.mark_dead([d3], error="403 Forbidden")
    r0, r1, r2, r3 = await store.deliveries()
    assert (r0.status, r0.message_id, r0.attempts) == ("sent", "42", 1)
    assert (r1.status, r1.attempts, len(r1.last_error or ""), r1.next_attempt_at) == (
        "pending",
        1,
        1000,
        later,
    )
    assert (r2.status, r2.attempts, r2.last_error, r2.next_attempt_at) == (
        "pending",
        0,
        "429 retry_after=300",
        later,
    )
    assert (r3.status, r3.attempts, r3.last_error) == ("dead", 1, "403 Forbidden")
    assert all(_is_utc(r.next_attempt_at) and _is_utc(r.created_at) for r in (r0, r1, r2, r3))
    assert await store.queue_depth() == {"pending": 2}


async def test_disable_destination_unsubscribes_and_kills_queue(store: Store) -> None:
    alerts = [_alert(i) for i in range(3)]
    await store.ensure_destination("chat", "7", at=T0, chat_kind="private", title="Ann")
    await store.subscribe("chat", "7", "severity", "warning", at=T0)
    await store.subscribe("chat", "8", "severity", "warning", at=T0)
    await _owe(
        store,
        alerts,
        [
            (alerts[0].id, "7", "pending"),
            (alerts[1].id, "7", "held"),
            (alerts[2].id, "8", "pending"),
        ],
    )
    first = (await store.deliveries())[0]
    await store.mark_sent([first.id], message_id="1", at=T0)
    async with store.transaction() as conn:
        await store.enqueue(
            conn, alert_id=alerts[2].id, adapter="chat", address="7", status="pending", at=T0
        )

    await store.disable_destination("chat", "7", reason="403 Forbidden: bot was blocked", at=T0)

    dest = await store.get_destination("chat", "7")
    assert (
        dest is not None
        and dest.disabled_at == T0
        and dest.disabled_reason == "403 Forbidden: bot was blocked"
    )
    assert [(s.address, s.value) for s in await store.subscriptions("chat")] == [("8", "warning")]
    assert [(d.address, d.status) for d in await store.deliveries()] == [
        ("7", "sent"),
        ("7", "dead"),
        ("8", "pending"),
        ("7", "dead"),
    ]
    again = await store.ensure_destination("chat", "7", at=T0)  # the user comes back: re-enabled
    assert again.disabled_at is None and again.disabled_reason is None and again.title == "Ann"


async def test_destinations_subscriptions_mutes_round_trip(store: Store) -> None:
    dest = await store.ensure_destination(
        "discord", "555", at=T0, chat_kind="guild:1", title="#desk"
    )
    assert (dest.chat_kind, dest.title, dest.include_words, dest.disabled_at) == (
        "guild:1",
        "#desk",
        [],
        None,
    )
    await store.ensure_destination("chat", "9", at=T0)
    await store.update_destination(
        "discord",
        "555",
        include_words=["tariff", "关税"],
        exclude_words=["rumor"],
        quiet_start="22:00",
        quiet_end="07:00",
        quiet_tz="Asia/Shanghai",
    )
    with pytest.raises(ValueError, match="not destination settings"):
        await store.update_destination("discord", "555", disabled_at=T0)
    got = await store.get_destination("discord", "555")
    assert got is not None
    assert (got.include_words, got.exclude_words, got.quiet_start, got.quiet_end, got.quiet_tz) == (
        ["tariff", "关税"],
        ["rumor"],
        "22:00",
        "07:00",
        "Asia/Shanghai",
    )
    assert [(d.adapter, d.address) for d in await store.destinations()] == [
        ("chat", "9"),
        ("discord", "555"),
    ]
    assert [d.address for d in await store.destinations("discord")] == ["555"]
    assert await store.get_destination("discord", "nope") is None

    assert await store.subscribe("discord", "555", "severity", "critical", at=T0)
    assert not await store.subscribe("discord", "555", "severity", "critical", at=T0)
    assert await store.subscribe("discord", "555", "rule", "tariff-escalation", at=T0)
    assert await store.subscribe("discord", "555", "tag", "fx", at=T0)
    assert await store.subscribe("chat", "9", "tag", "fx", at=T0)
    subs = await store.subscriptions("discord", "555")
    assert [(s.selector, s.value) for s in subs] == [
        ("severity", "critical"),
        ("rule", "tariff-escalation"),
        ("tag", "fx"),
    ]
    assert (
        len(await store.subscriptions()) == 4 and len(await store.subscriptions(address="9")) == 1
    )
    assert await store.unsubscribe("discord", "555", "rule", "tariff-escalation") == 1
    assert await store.unsubscribe("discord", "555", "rule", "tariff-escalation") == 0
    assert await store.unsubscribe("discord", "555") == 2
    assert [s.address for s in await store.subscriptions()] == ["9"]

    await store.add_mute("chat", "9", rule_id=None, until=T0 + timedelta(hours=1), at=T0)
    await store.add_mute("chat", "9", rule_id="vix-spike", until=T0 + timedelta(hours=3), at=T0)
    over = T0 - timedelta(minutes=1)
    await store.add_mute("discord", "555", rule_id="vix-spike", until=over, at=T0)
    mutes = await store.active_mutes(now=T0)
    assert sorted((m.address, m.rule_id or "") for m in mutes) == [("9", ""), ("9", "vix-spike")]
    assert all(_is_utc(m.until) for m in mutes)
    assert [
        m.rule_id
        for m in await store.active_mutes(now=T0 + timedelta(hours=2), adapter="chat", address="9")
    ] == ["vix-spike"]
    assert await store.clear_mutes("chat", "9", "vix-spike") == 1
    assert await store.clear_mutes("chat", "9") == 1
    assert await store.active_mutes(now=T0) == []


async def test_datetimes_come_back_aware_utc(store: Store) -> None:
    shanghai = timezone(timedelta(hours=8))
    local = datetime(2025, 4, 3, 4, 0, tzinfo=shanghai)  # == T0
    naive = datetime(2025, 4, 2, 20, 0)  # taken as UTC
    await store.record_poll("s", at=local, error=None)
    await store.ensure_destination("chat", "1", at=naive)
    await store.add_mute("chat", "1", rule_id=None, until=local + timedelta(hours=1), at=local)
    state = await store.get_source_state("s")
    assert state is not None and state.first_polled_at == T0 and state.first_polled_at.tzinfo == UTC
    dest = await store.get_destination("chat", "1")
    assert dest is not None
    [mute] = await store.active_mutes(now=naive)
    assert mute.until == T0 + timedelta(hours=1) and mute.until.tzinfo == UTC
    a = _alert(1, at=local)
    await _owe(store, [a], [(a.id, "1", "pending")])
    [row] = await store.due_deliveries(now=local, adapters=["chat"])
    assert row.next_attempt_at == T0 and row.next_attempt_at.tzinfo == UTC
    [stored] = (await store.get_alerts([a.id])).values()
    assert stored.event_time == T0


# ---- several workers: source leases ---------------------------------------------------


async def test_claim_source_on_sqlite_is_free(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}")
    try:
        assert store.single_worker
        assert await store.claim_source("fr", worker_id="w1", lease_seconds=90, now=T0)
        assert await store.claim_source("fr", worker_id="w2", lease_seconds=90, now=T0)
        assert await store.get_source_state("fr") is None  # nothing written
        await store.record_poll("fr", at=T0, error=None, etag='"e1"')
        state = await store.claim_source("fr", worker_id="w1", lease_seconds=90, now=T0)
        assert state is not None and (state.etag, state.polls, state.lease_owner) == ('"e1"', 1, None)
    finally:
        await store.close()


async def test_claim_source_lease(store: Store) -> None:
    store.single_worker = False  # the lease statement itself, on both backends

    async def claim(source: str, worker: str, at: int) -> bool:
        return await store.claim_source(
            source, worker_id=worker, lease_seconds=90, now=T0 + timedelta(seconds=at)
        )

    assert await claim("fr", "w1", 0)
    assert not await claim("fr", "w2", 60)
    assert await claim("fr", "w1", 60)  # the holder renews: lease until 150
    await store.record_poll("fr", at=T0 + timedelta(seconds=60), error=None, etag='"e"')
    # The claim reads the state the poll needs (validators, failure streak) in the same statement.
    renewed = await store.claim_source("fr", worker_id="w1", lease_seconds=90, now=T0 + timedelta(seconds=60))
    assert renewed is not None and (renewed.etag, renewed.polls) == ('"e"', 1)
    state = await store.get_source_state("fr")  # record_poll kept the lease
    assert state is not None and (
        state.lease_owner,
        state.lease_until,
        state.etag,
        state.polls,
    ) == (
        "w1",
        T0 + timedelta(seconds=150),
        '"e"',
        1,
    )
    assert not await claim("fr", "w2", 149)
    # w1 stopped renewing (it died): the lease lapses and w2 takes over.
    assert await claim("fr", "w2", 150)
    assert not await claim("fr", "w1", 151)
    assert not await store.release_source("fr", worker_id="w1")
    assert await store.release_source("fr", worker_id="w2")
    assert await claim("fr", "w1", 152)
    assert await claim("ap", "w1", 0)
    assert await store.release_claims(worker_id="w1") == 2
    assert await claim("ap", "w2", 0)


async def test_record_polls_renews_the_holders_lease_and_no_one_elses(store: Store) -> None:
    store.single_worker = False

    def at(seconds: int) -> datetime:
        return T0 + timedelta(seconds=seconds)

    assert await store.claim_source("fr", worker_id="w1", lease_seconds=90, now=at(0))
    async with store.transaction() as conn:
        (state,) = await store.record_polls(
            conn, [PollRecord(source_id="fr", at=at(5), etag='"a"', lease_owner="w1", lease_until=at(200))]
        )
    assert (state.lease_owner, state.lease_until, state.etag) == ("w1", at(200), '"a"')
    async with store.transaction() as conn:  # a worker that does not hold the lease renews nothing
        (state,) = await store.record_polls(
            conn, [PollRecord(source_id="fr", at=at(6), etag='"b"', lease_owner="w2", lease_until=at(900))]
        )
    assert (state.lease_owner, state.lease_until) == ("w1", at(200))
    # The holder's next claim needs no statement; its state is the last one it wrote.
    mine = await store.claim_source("fr", worker_id="w1", lease_seconds=90, now=at(100))
    assert mine is not None and mine.etag == '"b"'
    assert not await store.claim_source("fr", worker_id="w2", lease_seconds=90, now=at(199))
    assert await store.claim_source("fr", worker_id="w2", lease_seconds=90, now=at(200))
    # A rolled-back transaction drops what this Store remembered: the database decides again.
    with pytest.raises(RuntimeError):
        async with store.transaction() as conn:
            await store.record_polls(
                conn, [PollRecord(source_id="fr", at=at(201), lease_owner="w2", lease_until=at(5000))]
            )
            raise RuntimeError("crash before commit")
    # Had w2 trusted the rolled-back renewal, it would skip renewing and w1 would take over too.
    assert await store.claim_source("fr", worker_id="w2", lease_seconds=90, now=at(300))
    assert not await store.claim_source("fr", worker_id="w1", lease_seconds=90, now=at(300))


async def test_source_leases_race(db_url: str) -> None:
    """Workers race for twenty sources, round after round: each source goes to exactly one."""
    # SQLite serializes writers: fewer of them keeps it quick.
    workers = 5 if db_url.startswith("postgresql") else 3
    stores = [await Store.open(db_url) for _ in range(workers)]
    sources = [f"src{i}" for i in range(20)]
    for s in stores:
        s.single_worker = False
    try:
        for rnd in range(3):
            now = T0 + timedelta(seconds=100 * rnd)  # after the previous round's leases ran out
            attempts = [(w, sid) for w in range(len(stores)) for sid in sources]
            random.Random(rnd).shuffle(attempts)
            won = await asyncio.gather(
                *(
                    stores[w].claim_source(sid, worker_id=f"w{w}", lease_seconds=60, now=now)
                    for w, sid in attempts
                )
            )
            winners: dict[str, list[int]] = {}
            for (w, sid), ok in zip(attempts, won, strict=True):
                if ok:
                    winners.setdefault(sid, []).append(w)
            assert sorted(winners) == sorted(sources) and all(
                len(v) == 1 for v in winners.values()
            ), winners
            states = {s.source_id: s.lease_owner for s in await stores[0].all_source_states()}
            assert states == {sid: f"w{v[0]}" for sid, v in winners.items()}
    finally:
        for s in stores:
            await s.close()


# ---- several workers: outbox claims -----------------------------------------------------


async def test_claim_deliveries_on_sqlite_takes_over_a_crashed_predecessor(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}")
    try:
        alerts = [_alert(i) for i in range(2)]
        await _owe(store, alerts, [(alerts[0].id, "A", "pending"), (alerts[1].id, "B", "held")])
        [row] = await store.claim_deliveries(worker_id="old", now=T0, adapters=["chat"])
        assert await store.claim_held(worker_id="old", now=T0, adapters=["chat"])
        # "old" was killed mid-send; the restarted worker has a new id and need not wait out the lease.
        [again] = await store.claim_deliveries(worker_id="new", now=T0, adapters=["chat"])
        assert again.id == row.id and again.claimed_by == "new"
        assert list(await store.claim_held(worker_id="new", now=T0, adapters=["chat"])) == [
            ("chat", "B")
        ]
        # Its own live claims still hold (two drain passes in one process never share a row).
        assert await store.claim_deliveries(worker_id="new", now=T0, adapters=["chat"]) == []
        assert await store.claim_held(worker_id="new", now=T0, adapters=["chat"]) == {}
    finally:
        await store.close()


async def test_claim_deliveries(store: Store) -> None:
    store.single_worker = False  # the multi-worker statement, on both backends
    alerts = [_alert(i) for i in range(5)]
    await _owe(
        store,
        alerts,
        [
            (alerts[0].id, "A", "pending"),
            (alerts[1].id, "A", "pending"),
            (alerts[2].id, "B", "pending"),
            (alerts[3].id, "C", "held"),
            (alerts[4].id, "D", "pending"),
        ],
    )
    got = await store.claim_deliveries(
        worker_id="w1", now=T0, adapters=["chat"], limit=2, lease_seconds=30
    )
    assert [(d.address, d.claimed_by, d.claimed_until) for d in got] == [
        ("A", "w1", T0 + timedelta(seconds=30)),
        ("B", "w1", T0 + timedelta(seconds=30)),
    ]
    # w2 sees neither A's head nor A's second row (order per destination), only D.
    got2 = await store.claim_deliveries(worker_id="w2", now=T0, adapters=["chat"], lease_seconds=30)
    assert [d.address for d in got2] == ["D"]
    assert (
        await store.claim_deliveries(
            worker_id="w2", now=T0 + timedelta(seconds=29), adapters=["chat"]
        )
        == []
    )
    a_head, b_head = got
    await store.mark_sent([a_head.id], message_id="1", at=T0)
    await store.defer([b_head.id], next_attempt_at=T0 + timedelta(seconds=10), note="429")
    got3 = await store.claim_deliveries(
        worker_id="w2", now=T0 + timedelta(seconds=5), adapters=["chat"], lease_seconds=30
    )
    assert [(d.address, d.alert_id) for d in got3] == [
        ("A", alerts[1].id)
    ]  # B deferred, D still w2's
    rows = {d.id: d for d in await store.deliveries()}
    assert rows[a_head.id].claimed_by is None and rows[b_head.id].claimed_by is None
    # w2 dies holding D (claimed at T0) and A's second row (at T0+5): each comes back when its lease runs out.
    got4 = await store.claim_deliveries(
        worker_id="w1", now=T0 + timedelta(seconds=34), adapters=["chat"]
    )
    assert [d.address for d in got4] == ["B", "D"]
    got5 = await store.claim_deliveries(
        worker_id="w1", now=T0 + timedelta(seconds=35), adapters=["chat"]
    )
    assert [(d.address, d.alert_id, d.claimed_by) for d in got5] == [("A", alerts[1].id, "w1")]
    await store.mark_retry([got4[0].id], error="503", next_attempt_at=T0 + timedelta(seconds=60))
    await store.mark_dead([got4[1].id], error="gone")
    await store.mark_sent([got5[0].id], message_id="2", at=T0)
    assert all(d.claimed_by is None for d in await store.deliveries())


async def test_claim_held_is_exclusive(store: Store) -> None:
    store.single_worker = False
    alerts = [_alert(i) for i in range(3)]
    await _owe(
        store,
        alerts,
        [(alerts[0].id, "A", "held"), (alerts[1].id, "A", "held"), (alerts[2].id, "B", "held")],
    )
    groups = await store.claim_held(worker_id="w1", now=T0, adapters=["chat"], lease_seconds=30)
    assert {k: len(v) for k, v in groups.items()} == {("chat", "A"): 2, ("chat", "B"): 1}
    assert await store.claim_held(worker_id="w2", now=T0, adapters=["chat"]) == {}
    await store.mark_sent([d.id for d in groups["chat", "A"]], message_id="digest", at=T0)
    again = await store.claim_held(
        worker_id="w2", now=T0 + timedelta(seconds=31), adapters=["chat"]
    )
    assert list(again) == [("chat", "B")]
    assert await store.release_claims(worker_id="w2") == 1
    assert (await store.held_due(now=T0, adapters=["chat"]))["chat", "B"][0].claimed_by is None


async def test_outbox_race_each_row_once_in_order(db_url: str) -> None:
    """Three workers drain 40 destinations × 4 rows: every row sent once, each destination in order."""
    seed = await Store.open(db_url)
    alerts = [_alert(i) for i in range(4)]
    routes = [(a.id, f"d{d}", "pending") for a in alerts for d in range(40)]
    await _owe(seed, alerts, routes)
    await seed.close()
    stores = [await Store.open(db_url) for _ in range(3)]
    for s in stores:
        s.single_worker = False  # on SQLite too: three workers, the multi-worker statement
    sent: list[tuple[str, int, str]] = []  # (worker, row id, address) in send order

    async def worker(w: int) -> None:
        store, rng = stores[w], random.Random(w)
        idle = 0
        while idle < 3:
            rows = await store.claim_deliveries(
                worker_id=f"w{w}", now=T0, adapters=["chat"], limit=7, lease_seconds=300
            )
            if not rows:
                idle += 1
                await asyncio.sleep(0.005)
                continue
            idle = 0
            for d in rows:
                sent.append((f"w{w}", d.id, d.address))
                await asyncio.sleep(rng.random() / 1000)
                await store.mark_sent([d.id], message_id=str(d.id), at=T0)

    try:
        await asyncio.gather(*(worker(w) for w in range(3)))
        ids = [i for _, i, _ in sent]
        assert len(ids) == len(routes) and len(set(ids)) == len(ids)
        by_dest: dict[str, list[int]] = {}
        for _, i, address in sent:
            by_dest.setdefault(address, []).append(i)
        assert all(v == sorted(v) for v in by_dest.values())
        if db_url.startswith("postgresql"):
            assert len({w for w, _, _ in sent}) > 1  # the work was shared
        assert {d.status for d in await stores[0].deliveries()} == {"sent"}
    finally:
        for s in stores:
            await s.close()


async def test_dead_worker_hands_back_its_rows(pg_url: str) -> None:
    a, b = await Store.open(pg_url), await Store.open(pg_url)
    alerts = [_alert(i) for i in range(2)]
    await _owe(a, alerts, [(alerts[0].id, "X", "pending"), (alerts[1].id, "X", "pending")])
    [row] = await a.claim_deliveries(worker_id="a", now=T0, adapters=["chat"], lease_seconds=30)
    await a.close()  # died mid-send: nothing marked
    try:
        assert (
            await b.claim_deliveries(
                worker_id="b", now=T0 + timedelta(seconds=29), adapters=["chat"]
            )
            == []
        )
        [again] = await b.claim_deliveries(
            worker_id="b", now=T0 + timedelta(seconds=30), adapters=["chat"]
        )
        assert again.id == row.id and again.claimed_by == "b"
    finally:
        await b.close()


# ---- several workers: leader --------------------------------------------------------------


async def test_leader_on_sqlite_is_always_this_worker(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}")
    try:
        one, two = LeaderLock(store), LeaderLock(store)
        assert await one.try_acquire() and await two.try_acquire() and one.is_leader
        await one.release()
        assert not one.is_leader
    finally:
        await store.close()


@pytest.mark.parametrize("driver", ["asyncpg", "psycopg"])
async def test_leader_lock_exclusive_and_taken_over(pg_url: str, driver: str) -> None:
    store = await Store.open(with_driver(pg_url, driver))
    locks = [LeaderLock(store, name="chat") for _ in range(3)]
    try:
        got = await asyncio.gather(*(lock.try_acquire() for lock in locks))
        assert sum(got) == 1
        leader = locks[got.index(True)]
        others = [lock for lock in locks if lock is not leader]
        assert await leader.try_acquire()  # heartbeat: still leader
        assert not any(await asyncio.gather(*(lock.try_acquire() for lock in others)))
        other = LeaderLock(store, name="other")
        assert await other.try_acquire()  # another name, another lock
        await other.release()

        # The leader's session dies (process killed, connection cut): the lock goes with it.
        assert leader._conn is not None
        pid = await leader._conn.scalar(text("SELECT pg_backend_pid()"))
        async with store.engine.connect() as conn:
            assert await conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        for _ in range(50):
            got = await asyncio.gather(*(lock.try_acquire() for lock in others))
            if any(got):
                break
            await asyncio.sleep(0.05)
        assert sum(got) == 1
        # The old leader notices at its next heartbeat, and does not lead.
        assert not await leader.try_acquire() and not leader.is_leader
        new = others[got.index(True)]
        await new.release()  # a clean hand-over is immediate
        got = await asyncio.gather(*(lock.try_acquire() for lock in locks if lock is not new))
        assert sum(got) == 1
    finally:
        for lock in locks:
            await lock.release()
        await store.close()


@pytest.mark.parametrize("driver", ["asyncpg", "psycopg"])
async def test_leader_run_reports_changes(pg_url: str, driver: str) -> None:
    store = await Store.open(with_driver(pg_url, driver))
    changes: list[tuple[str, bool]] = []
    stop_a, stop_b = asyncio.Event(), asyncio.Event()

    def recorder(name: str):  # type: ignore[no-untyped-def]
        async def on_change(leader: bool) -> None:
            changes.append((name, leader))

        return on_change

    a, b = LeaderLock(store), LeaderLock(store)
    try:
        task_a = asyncio.create_task(a.run(stop_a, interval=0.05, on_change=recorder("a")))
        await asyncio.sleep(0.1)
        task_b = asyncio.create_task(b.run(stop_b, interval=0.05, on_change=recorder("b")))
        await asyncio.sleep(0.1)
        assert changes == [("a", True)]
        stop_a.set()
        await task_a
        for _ in range(40):
            if ("b", True) in changes:
                break
            await asyncio.sleep(0.05)
        stop_b.set()
        await task_b
        assert changes == [("a", True), ("a", False), ("b", True), ("b", False)]
    finally:
        await a.release()
        await b.release()
        await store.close()


def test_worker_ids_are_unique() -> None:
    ids = {make_worker_id() for _ in range(100)}
    assert len(ids) == 100 and all(len(i) <= 64 for i in ids)


def test_delivery_model_accepts_claim_columns() -> None:
    d = Delivery(
        id=1,
        alert_id="a",
        adapter="chat",
        address="1",
        status="pending",
        attempts=0,
        next_attempt_at=T0,
        created_at=T0,
        claimed_by="w",
        claimed_until=T0,
    )
    assert d.claimed_by == "w"


async def test_three_worker_processes_one_killed_every_row_delivered(
    pg_url: str, tmp_path: Path
) -> None:
    """Real processes: three workers drain the outbox; one is SIGKILLed mid-run; every row is sent.

    A row may be sent twice only in the documented window: the killed worker had
    "sent" it (logged) but not yet marked it sent; then it goes out again after its lease.
    """
    seed = await Store.open(pg_url)
    alerts = [_alert(i) for i in range(10)]
    await _owe(seed, alerts, [(a.id, f"d{d}", "pending") for a in alerts for d in range(30)])
    total = len(await seed.deliveries())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    logs = [tmp_path / f"w{i}.log" for i in range(3)]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.support.claim_worker",
            pg_url,
            f"w{i}",
            "1.0",
            str(logs[i]),
            env=env,
        )
        for i in range(3)
    ]
    try:
        for _ in range(400):  # kill w0 once it is well into its share
            if logs[0].exists() and len(logs[0].read_text().splitlines()) >= 20:
                break
            await asyncio.sleep(0.01)
        procs[0].kill()
        await procs[0].wait()
        for p in procs[1:]:
            assert await asyncio.wait_for(p.wait(), timeout=40) == 0
        rows = await seed.deliveries()
        assert len(rows) == total and {r.status for r in rows} == {"sent"}
        sends: dict[int, list[str]] = {}
        for path in logs:
            for line in path.read_text().splitlines():
                row_id, worker = line.split()
                sends.setdefault(int(row_id), []).append(worker)
        assert set(sends) == {r.id for r in rows}
        doubled = {i: w for i, w in sends.items() if len(w) > 1}
        assert len(doubled) <= 1 and all(w[0] == "w0" and len(w) == 2 for w in doubled.values()), (
            doubled
        )
        killed_share = sum(1 for w in sends.values() if "w0" in w)
        assert 20 <= killed_share < total
        by_row = {r.id: r for r in rows}
        assert all(by_row[i].message_id in ("w1", "w2") for i, w in doubled.items())
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
        await seed.close()


async def test_cooldown_check_is_serialized_across_workers(pg_url: str) -> None:
    """Two workers fire the same rule × key at once: the second sees the first's alert."""
    a, b = await Store.open(pg_url), await Store.open(pg_url)
    try:
        async with a.transaction() as conn_a:
            assert await a.last_fired(conn_a, "r", "k") is None

            async def second() -> datetime | None:
                async with b.transaction() as conn_b:
                    return await b.last_fired(conn_b, "r", "k")

            waiting = asyncio.create_task(second())
            await asyncio.sleep(0.2)
            assert not waiting.done()  # blocked until the first worker commits
            assert await a.insert_alert(conn_a, _alert(1))
        assert await asyncio.wait_for(waiting, timeout=5) == _alert(1).created_at
    finally:
        await a.close()
        await b.close()


_HOLD_LEADERSHIP = """
import asyncio, sys
from bot.storage.leader import LeaderLock
from bot.storage.store import Store

async def main():
    store = await Store.open(sys.argv[1])
    lock = LeaderLock(store)
    print("leader" if await lock.try_acquire() else "follower", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_leader_process_killed_hands_over(pg_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLD_LEADERSHIP, pg_url, env=env, stdout=subprocess.PIPE
    )
    store = await Store.open(pg_url)
    lock = LeaderLock(store)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
        assert line.strip() == b"leader"
        assert not await lock.try_acquire()
        proc.kill()  # SIGKILL: no unlock, the OS closes the socket
        await proc.wait()
        for _ in range(100):
            if await lock.try_acquire():
                break
            await asyncio.sleep(0.05)
        assert lock.is_leader
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await lock.release()
        await store.close()
