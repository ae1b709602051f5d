"""The pipeline: a batch of events becomes seen rows, alerts and outbox rows in one transaction.

Runs on SQLite and PostgreSQL (the `store` fixture) with the rule fixtures in
tests/fixtures/rules/good: `tariff-announcement` has a 15-minute cooldown keyed
on the rule, `entity-list` none of its own beyond the default keyed on the title.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.models import NewsEvent, Severity
from bot.pipeline import Pipeline
from bot.rules.loader import RuleSet, load_rules_dir
from bot.storage.store import Store
from tests.support.store_reads import deliveries, last_fired

GOOD = Path(__file__).parent / "fixtures" / "rules" / "good"
T0 = datetime(2025, 4, 2, 20, 0, tzinfo=UTC)
TARIFF = "US to impose 25% tariffs on Chinese steel"


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return load_rules_dir(GOOD)


def news(n: int, title: str, *, source: str = "wire", minutes: float = 0) -> NewsEvent:
    when = T0 + timedelta(minutes=minutes)
    return NewsEvent(id=f"ev{n}", source=source, title=title, published=when, seen_at=when)


def pipeline(store: Store, ruleset: RuleSet, clock: ManualClock) -> Pipeline:
    return Pipeline(
        store,
        ruleset,
        clock,
        console_min=Severity.info,
        active_adapters=frozenset({"console", "chat"}),
    )


async def test_a_batch_records_every_event_and_alerts_once_per_rule_and_event(
    store: Store, ruleset: RuleSet
) -> None:
    clock = ManualClock(T0 + timedelta(minutes=5))
    p = pipeline(store, ruleset, clock)
    batch = [
        news(1, TARIFF),
        news(2, "Commerce adds 12 firms to the entity list", source="mofcom"),
        news(3, "Markets open flat"),
        news(1, TARIFF),  # the same item twice in one feed
    ]
    alerts = await p.process(batch)
    assert sorted(a.rule_id for a in alerts) == ["entity-list", "tariff-announcement"]
    assert await store.seen_count() == 3
    assert await store.alert_count() == 2
    rows = await deliveries(store, adapter="console")
    assert sorted(d.alert_id for d in rows) == sorted(a.id for a in alerts)
    clock.advance(3600)
    assert await p.process(batch) == []  # seen before: nothing again, whatever the cooldown
    assert await store.alert_count() == 2


async def test_cooldown_holds_inside_one_batch_and_across_batches(
    store: Store, ruleset: RuleSet
) -> None:
    clock = ManualClock(T0)
    p = pipeline(store, ruleset, clock)
    first = await p.process(
        [news(1, TARIFF), news(2, "China to raise tariffs on US soybeans", minutes=1)]
    )
    assert [a.event_id for a in first] == ["ev1"]  # the second is inside the 15-minute cooldown
    clock.advance(10 * 60)
    assert await p.process([news(3, "EU announces tariffs on EV imports", minutes=10)]) == []
    clock.advance(6 * 60)  # 16 minutes after the first alert
    later = await p.process([news(4, "Canada imposes tariffs on aluminium", minutes=16)])
    assert [a.event_id for a in later] == ["ev4"]
    async with store.transaction() as conn:
        assert (
            await last_fired(store, conn, "tariff-announcement", "tariff-announcement")
            == clock.now()
        )


async def test_backlog_is_recorded_without_alerting(store: Store, ruleset: RuleSet) -> None:
    clock = ManualClock(T0 + timedelta(days=3))
    p = pipeline(store, ruleset, clock)
    old, new = (
        news(1, TARIFF),
        news(2, "China to raise tariffs on US soybeans", minutes=3 * 24 * 60),
    )
    alerts = await p.process([old, new], alert_after=T0 + timedelta(days=2))
    assert [a.event_id for a in alerts] == ["ev2"]
    assert await store.seen_count() == 2


async def test_a_failure_mid_batch_leaves_nothing_behind_and_the_retry_alerts(
    store: Store, ruleset: RuleSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All of a batch or none: the feed's validators are not advanced either (see app.poll_source),
    so the next poll brings the same items back and they alert then."""
    clock = ManualClock(T0)
    p = pipeline(store, ruleset, clock)
    batch = [news(1, TARIFF), news(2, "Commerce adds 12 firms to the entity list", source="mofcom")]

    async def outbox_down(*args: object, **kwargs: object) -> int:
        raise ConnectionError("database went away while queueing")

    monkeypatch.setattr(store, "enqueue_many", outbox_down)
    with pytest.raises(ConnectionError):
        await p.process(batch)
    assert await store.seen_count() == 0
    assert await store.alert_count() == 0
    async with store.transaction() as conn:
        assert await last_fired(store, conn, "tariff-announcement", "tariff-announcement") is None
    monkeypatch.undo()
    # Match rules keep no state in the engine: the retry raises the same alerts.
    again = await p.process(batch)
    assert sorted(a.rule_id for a in again) == ["entity-list", "tariff-announcement"]
    assert len(await deliveries(store, adapter="console")) == 2


async def test_routes_go_to_subscribers_in_one_insert_per_batch(
    store: Store, ruleset: RuleSet
) -> None:
    clock = ManualClock(T0)
    for n in range(1200):  # more than one multi-row chunk
        await store.subscribe("chat", f"c{n}", "tag", "tariffs", at=T0)
    await store.subscribe("chat", "rules-only", "rule", "entity-list", at=T0)
    await store.subscribe("elsewhere", "x", "severity", "info", at=T0)  # adapter not running
    p = pipeline(store, ruleset, clock)
    alerts = await p.process(
        [news(1, TARIFF), news(2, "Commerce adds 12 firms to the entity list", source="mofcom")]
    )
    by_rule = {a.rule_id: a.id for a in alerts}
    chat = await deliveries(store, adapter="chat")
    owed = {d.address for d in chat if d.alert_id == by_rule["tariff-announcement"]}
    assert owed == {f"c{n}" for n in range(1200)}
    assert [d.address for d in chat if d.alert_id == by_rule["entity-list"]] == ["rules-only"]
    assert await deliveries(store, adapter="elsewhere") == []
    tariff_ids = [d.id for d in chat if d.alert_id == by_rule["tariff-announcement"]]
    assert tariff_ids == sorted(tariff_ids)  # outbox ids follow subscription order: delivery order


async def test_small_groups_are_matched_inline_large_ones_in_a_worker_thread(
    store: Store, ruleset: RuleSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both paths give the same alerts; only a large group leaves the event loop's thread."""
    import threading

    from bot import pipeline as pipeline_module

    clock = ManualClock(T0 + timedelta(hours=1))
    p = pipeline(store, ruleset, clock)
    threads: list[int] = []
    evaluate = p.engine.evaluate

    def recording(event: NewsEvent, *, now: datetime) -> list:  # type: ignore[type-arg]
        threads.append(threading.get_ident())
        return evaluate(event, now=now)

    monkeypatch.setattr(p.engine, "evaluate", recording)
    loop_thread = threading.get_ident()
    small = [news(n, f"Commerce adds firm {n} to the entity list", source="mofcom") for n in range(3)]
    large = [
        news(n, f"Commerce adds firm {n} to the entity list", source="mofcom")
        for n in range(100, 101 + pipeline_module.INLINE_EVENTS)
    ]
    small_alerts = await p.process(small)
    assert len(small_alerts) == len(small) and set(threads) == {loop_thread}
    threads.clear()
    large_alerts = await p.process(large)
    assert len(large_alerts) == len(large)
    assert len(threads) == len(large) and loop_thread not in threads
    assert {a.rule_id for a in small_alerts} == {a.rule_id for a in large_alerts} == {"entity-list"}
