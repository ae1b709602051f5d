"""The event archive on real SQLite and PostgreSQL: written in the pipeline's group transaction.

What dry-run replays must be exactly what the pipeline saw: every new headline and
price sample once, with its text, source, link, tags and time; nothing from the
backlog; nothing older than the retention once pruned.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.clock import ManualClock
from bot.models import NewsEvent, PriceEvent
from bot.pipeline import Pipeline
from bot.rules.loader import load_rules_dir
from bot.storage.archive import EventArchive
from bot.storage.store import Store

GOOD_RULES = Path(__file__).resolve().parent / "fixtures/rules/good"
T0 = datetime(2025, 4, 3, 14, 0, tzinfo=UTC)


def news(n: int, title: str, at: datetime) -> NewsEvent:
    return NewsEvent(
        id=f"news-{n}",
        source="wire",
        title=title,
        summary=f"summary {n} <b>&</b>",
        url=f"https://news.example.com/{n}",
        published=at,
        seen_at=at,
        tags=("media",),
    )


def price(n: int, value: float, prev: float, at: datetime) -> PriceEvent:
    return PriceEvent(
        id=f"price-{n}", source="cboe-vix", symbol="^VIX", time=at, last=value, previous_close=prev, tags=("vol",)
    )


def pipeline(store: Store, archive: EventArchive, clock: ManualClock) -> Pipeline:
    return Pipeline(
        store, load_rules_dir(GOOD_RULES), clock, console_min=None, active_adapters=frozenset(), archive=archive
    )


async def test_new_events_archived_once_with_everything_replay_needs(store: Store) -> None:
    clock = ManualClock(T0)
    archive = EventArchive(store.engine, retention=timedelta(days=14))
    p = pipeline(store, archive, clock)
    first = [news(1, "US to impose 25% tariffs on Chinese goods", T0), price(1, 30.02, 21.51, T0)]
    alerts = await p.process(first)
    assert {a.rule_id for a in alerts} >= {"tariff-announcement", "vix-30"}
    clock.advance(60)
    # the same items again (the next poll) and one new: only the new one is added
    await p.process([*first, news(2, "Soybean harvest ahead of schedule", T0 + timedelta(seconds=60))])
    assert await archive.count() == 3
    stored = await archive.events_since(T0 - timedelta(days=1))
    assert stored == sorted([*first, news(2, "Soybean harvest ahead of schedule", T0 + timedelta(seconds=60))],
                            key=lambda e: (e.time, e.id))
    assert await archive.events_since(T0 + timedelta(seconds=1)) == [stored[-1]]


async def test_backlog_is_not_archived(store: Store) -> None:
    clock = ManualClock(T0)
    archive = EventArchive(store.engine, retention=timedelta(days=14))
    p = pipeline(store, archive, clock)
    old = news(1, "US to impose 25% tariffs on Chinese goods", T0 - timedelta(days=2))
    fresh = news(2, "US to raise tariffs on Chinese goods", T0)
    await p.process([old, fresh], alert_after=T0 - timedelta(hours=24))
    assert [e.id for e in await archive.events_since(T0 - timedelta(days=30))] == ["news-2"]


async def test_rows_older_than_retention_are_pruned_hourly(store: Store) -> None:
    clock = ManualClock(T0)
    archive = EventArchive(store.engine, retention=timedelta(days=2), prune_every=timedelta(hours=1))
    p = pipeline(store, archive, clock)

    async def ids() -> list[str]:
        return [e.id for e in await archive.events_since(T0 - timedelta(days=30))]

    await p.process([news(1, "first", T0), news(2, "early", T0 + timedelta(minutes=15))])
    clock.set(T0 + timedelta(days=2, minutes=10))  # prune due: "first" is past the 2 days
    await p.process([news(3, "second", clock.now())])
    assert await ids() == ["news-2", "news-3"]
    clock.set(T0 + timedelta(days=2, minutes=30))  # "early" is past too, but the last prune was 20 min ago
    await p.process([news(4, "third", clock.now())])
    assert await ids() == ["news-2", "news-3", "news-4"]
    clock.set(T0 + timedelta(days=2, hours=1, minutes=20))
    await p.process([news(5, "fourth", clock.now())])
    assert await ids() == ["news-3", "news-4", "news-5"]


async def test_alerts_since_reads_what_fired_then(store: Store) -> None:
    clock = ManualClock(T0)
    archive = EventArchive(store.engine, retention=timedelta(days=14))
    p = pipeline(store, archive, clock)
    await p.process([news(1, "US to impose 25% tariffs on Chinese goods", T0)])
    past = await archive.alerts_since(T0 - timedelta(hours=1))
    assert [(a.rule_id, a.event_id, a.title, a.created_at) for a in past] == [
        ("tariff-announcement", "news-1", "US to impose 25% tariffs on Chinese goods", T0)
    ]
    assert await archive.alerts_since(T0 + timedelta(seconds=1)) == []
