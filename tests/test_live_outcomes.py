"""Live outcomes (bot/live_outcomes.py, bot/storage/outcomes.py) on SQLite and PostgreSQL.

Times: Monday 2026-11-30 15:00 UTC = 10:00 New York, in the regular session.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import yaml

from bot.adapters.telegram import TelegramAdapter
from bot.app import Readout
from bot.clock import ManualClock
from bot.live_outcomes import OutcomeTracker, due_at, fmt_change
from bot.models import Alert, PriceEvent, Severity
from bot.settings import Settings
from bot.storage.outcomes import OutcomeStore
from bot.storage.store import Store
from tests.support.fake_telegram import FakeTelegram
from tests.support.feed_server import FeedServer

T0 = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
RULES_DIR = Path(__file__).resolve().parent.parent / "rules"


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


# ---- end to end: fake Bot API, local price server, restart in between ----------------


def cboe(value: float, at_new_york: str) -> bytes:
    """A CBOE delayed quote (the previous close equal to the price: no price rule fires)."""
    return json.dumps(
        {"data": {"current_price": value, "prev_day_close": value, "last_trade_time": at_new_york}}
    ).encode()


def e2e_rules(tmp_path: Path, feeds: FeedServer) -> Path:
    """The shipped rules; the feed and the three watched symbols come from the local server."""
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    sources = yaml.safe_load((RULES_DIR / "sources.yaml").read_text())
    sources["feeds"] = [
        {"id": "wire", "url": feeds.url("/wire.xml"), "interval": 60, "tags": ["us"]}
    ]
    sources["prices"] = [
        {"symbol": s, "provider": "cboe", "id": f"local-{n}", "url": feeds.url(f"/q{n}.json")}
        for n, s in enumerate(["ES=F", "^VIX", "CNH=X"])
    ]
    (target / "sources.yaml").write_text(yaml.safe_dump(sources))
    return target


def serve_quotes(feeds: FeedServer, es: float, vix: float, cnh: float, at_new_york: str) -> None:
    for n, value in enumerate([es, vix, cnh]):
        feeds.route(f"/q{n}.json", body=cboe(value, at_new_york), content_type="application/json")


async def test_alert_message_is_edited_with_the_market_30_minutes_later_across_a_restart(
    fake_telegram: FakeTelegram, feed_server: FeedServer, tmp_path: Path
) -> None:
    alice = 5001
    clock = ManualClock(T0)  # Monday 10:00 New York
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        telegram_bot_token=fake_telegram.token,
        telegram_base_url=fake_telegram.base_url,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'readout.db'}",
        rules_dir=e2e_rules(tmp_path, feed_server),
        console=False,
        poll_jitter=0,
    )
    headline = "US to impose new tariffs on Chinese chips"
    published = format_datetime(T0 - timedelta(minutes=1))
    feed_server.route(
        "/wire.xml",
        body=(
            '<?xml version="1.0"?><rss version="2.0"><channel><title>w</title><link>https://w/</link>'
            f"<description>w</description><item><title>{headline}</title>"
            f"<link>https://news.example.com/a</link><pubDate>{published}</pubDate></item>"
            "</channel></rss>"
        ).encode(),
        content_type="application/rss+xml",
    )
    serve_quotes(feed_server, 6000.0, 20.0, 7.1, "2026-11-30T09:59:00")

    first = await Readout.open(
        settings,
        clock=clock,
        adapters=[TelegramAdapter(settings, poll_timeout=1, per_chat_interval=0)],
    )
    await first.start(scheduler=False)
    try:
        fake_telegram.push_message(alice, "/start")
        await fake_telegram.wait_for_reply(alice, after=0)
        alerts = await first.poll_once()
        tariff = next(a for a in alerts if a.rule_id == "tariff-announcement")
        assert await first.drain_once() >= 1
        message = next(m for m in fake_telegram.sent_messages(alice) if headline in m["plain"])
        assert await first.outcomes.run_once() == 0  # scheduled; nothing due yet
    finally:
        await first.stop()  # the restart: only the database carries over

    # 29 minutes later the market has moved; a new process polls it
    clock.set(T0 + timedelta(minutes=29))
    serve_quotes(feed_server, 5952.0, 22.4, 7.1213, "2026-11-30T10:28:00")
    second = await Readout.open(
        settings,
        clock=clock,
        adapters=[TelegramAdapter(settings, poll_timeout=1, per_chat_interval=0)],
    )
    await second.start(scheduler=False)
    try:
        await second.poll_once()
        assert await second.outcomes.run_once() == 0  # +30 min not reached
        clock.set(T0 + timedelta(minutes=30))
        assert await second.outcomes.run_once() == 1
        edited = next(
            m
            for m in fake_telegram.sent_messages(alice)
            if m["message_id"] == message["message_id"]
        )
        assert "30 min later: ES −0.8 %, VIX +12 %, USD/CNH +0.3 %" in edited["plain"]
        assert headline in edited["plain"]  # the alert itself is still there
        assert len(fake_telegram.calls("editMessageText")) == 1
        [job, later] = await second.outcomes.outcomes.jobs_for(tariff.id)
        assert (job.status, later.status) == ("done", "pending")
        assert await second.outcomes.run_once() == 0  # done once
    finally:
        await second.stop()
