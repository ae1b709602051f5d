"""Live outcomes (bot/live_outcomes.py, bot/storage/outcomes.py) on SQLite and PostgreSQL.

Times: Monday 2026-11-30 15:00 UTC = 10:00 New York, in the regular session.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.clock import ManualClock
from bot.live_outcomes import OutcomeTracker, due_at, fmt_change
from bot.models import Alert, PriceEvent, Severity
from bot.storage.outcomes import OutcomeStore
from bot.storage.store import Store

T0 = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)


def alert(n: int, created: datetime = T0, rule: str = "tariff-announcement") -> Alert:
    return Alert(
        id=f"alert{n:04d}" + "0" * 15,
        rule_id=rule,
        rule_description="Rule",
        severity=Severity.warning,
        kind="news",
        event_id=f"e{n}",
        key="k",
        title=f"headline {n}",
        source="feed",
        event_time=created,
        created_at=created,
    )


def quote(symbol: str, when: datetime, value: float, source: str = "yahoo") -> PriceEvent:
    return PriceEvent(
        id=f"{source}:{symbol}:{when.isoformat()}",
        source=source,
        symbol=symbol,
        time=when,
        last=value,
    )


async def add_alert(store: Store, a: Alert) -> None:
    async with store.transaction() as conn:
        assert await store.insert_alert(conn, a)


def test_horizons_roll_over_weekends_and_holidays() -> None:
    assert due_at(T0, "30m") == T0 + timedelta(minutes=30)
    friday = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)  # early-close Friday, 12:00 New York
    assert due_at(friday, "1d") == datetime(2026, 11, 30, 17, 0, tzinfo=UTC)  # Monday
    assert [fmt_change(x) for x in (-0.8, 12.04, 0.3, -0.04)] == [
        "−0.8 %",
        "+12 %",
        "+0.3 %",
        "+0.0 %",
    ]


async def test_line_from_quotes_at_alert_and_due_time_stale_and_missing_say_no_quote(
    store: Store,
) -> None:
    outcomes = OutcomeStore(store)
    clock = ManualClock(T0)
    notes: list[tuple[str, str]] = []

    async def annotate(alert_id: str, line: str) -> None:
        notes.append((alert_id, line))

    tracker = OutcomeTracker(outcomes, clock, worker_id="w1", annotate=annotate)
    await outcomes.record_quotes(
        [
            quote("ES=F", T0 - timedelta(minutes=2), 6000.0),
            quote("ES=F", T0 + timedelta(minutes=29), 5952.0),  # −0.8 %
            quote("^VIX", T0 - timedelta(minutes=14), 20.0, source="cboe"),
            quote("^VIX", T0 + timedelta(minutes=16), 22.4, source="cboe"),  # +12 %
            # CNH=X: last quote two hours before the alert: stale → no quote
            quote("CNH=X", T0 - timedelta(hours=2), 7.1),
            quote("CNH=X", T0 + timedelta(minutes=25), 7.2),
        ],
        seen_at=T0,
    )
    await add_alert(store, alert(1))
    assert await tracker.run_once() == 0  # scheduled, nothing due yet
    assert [(j.horizon, j.status) for j in await outcomes.jobs_for(alert(1).id)] == [
        ("30m", "pending"),
        ("1d", "pending"),
    ]
    clock.set(T0 + timedelta(minutes=30))
    assert await tracker.run_once() == 1
    [job, later] = await outcomes.jobs_for(alert(1).id)
    assert job.line == "30 min later: ES −0.8 %, VIX +12 %, USD/CNH no quote"
    assert job.moves is not None and job.moves["CNH=X"] is None
    assert job.moves["ES=F"]["base"] == 6000.0 and job.moves["ES=F"]["value"] == 5952.0
    assert notes == [(alert(1).id, "30 min later: ES −0.8 %, VIX +12 %, USD/CNH no quote")]
    assert later.status == "pending"
    # +1 trading day: Tuesday 10:00 New York; no quote then for anything
    clock.set(T0 + timedelta(days=1))
    assert await tracker.run_once() == 1
    assert notes[-1] == (
        alert(1).id,
        "1 trading day later: ES no quote, VIX no quote, USD/CNH no quote",
    )
    assert await tracker.run_once() == 0  # done once
    assert await outcomes.pending_count() == 0


async def test_a_quote_not_newer_than_the_base_is_no_quote(store: Store) -> None:
    """The feed stalled: the latest quote at +30 min is the one from before the alert."""
    outcomes = OutcomeStore(store)
    clock = ManualClock(T0)
    tracker = OutcomeTracker(outcomes, clock, worker_id="w1", symbols=["ES=F"])
    await outcomes.record_quotes([quote("ES=F", T0 - timedelta(minutes=1), 6000.0)], seen_at=T0)
    await add_alert(store, alert(2))
    await tracker.schedule()
    clock.set(T0 + timedelta(minutes=30))
    await tracker.run_once()
    [job, _] = await outcomes.jobs_for(alert(2).id)
    assert job.line == "30 min later: ES no quote"


async def test_several_workers_compute_each_job_once_and_a_restart_loses_nothing(
    db_url: str,
) -> None:
    first = await Store.open(db_url)
    first.single_worker = False  # run the multi-worker claims on SQLite too
    try:
        clock = ManualClock(T0)
        for n in range(1, 21):
            await add_alert(first, alert(n))
        await OutcomeStore(first).record_quotes(
            [quote("ES=F", T0, 100.0), quote("ES=F", T0 + timedelta(minutes=30), 101.0)],
            seen_at=T0,
        )
        # scheduled by one worker, which then stops before anything is due
        await OutcomeTracker(OutcomeStore(first), clock, worker_id="w0").schedule()
    finally:
        await first.close()

    stores = [await Store.open(db_url) for _ in range(3)]
    try:
        for s in stores:
            s.single_worker = False
        clock.set(T0 + timedelta(minutes=31))
        trackers = [
            OutcomeTracker(OutcomeStore(s), clock, worker_id=f"w{i}", symbols=["ES=F"])
            for i, s in enumerate(stores, 1)
        ]
        done = await asyncio.gather(*(t.run_once() for t in trackers))
        assert sum(done) == 20  # twenty 30-minute jobs, each finished by exactly one worker
        jobs = await OutcomeStore(stores[0]).done_jobs()
        assert len(jobs) == 20 and {j.line for j in jobs} == {"30 min later: ES +1.0 %"}
    finally:
        for s in stores:
            await s.close()


async def test_a_claim_lapses_when_its_worker_dies(store: Store) -> None:
    store.single_worker = False
    outcomes = OutcomeStore(store)
    clock = ManualClock(T0)
    await add_alert(store, alert(3))
    await OutcomeTracker(outcomes, clock, worker_id="w1").schedule()
    now = T0 + timedelta(minutes=31)
    [claimed] = await outcomes.claim_due(worker_id="dead", now=now, lease_seconds=60)
    assert await outcomes.claim_due(worker_id="w2", now=now) == []
    [again] = await outcomes.claim_due(worker_id="w2", now=now + timedelta(seconds=61))
    assert again.id == claimed.id
    assert not await outcomes.finish(claimed.id, worker_id="dead", moves={}, line="x", at=now)
    assert await outcomes.finish(again.id, worker_id="w2", moves={}, line="y", at=now)
