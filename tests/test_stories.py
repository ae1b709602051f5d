"""Stories: real headlines of one event join one story; different escalations stay apart;
stories persist in SQLite and PostgreSQL, survive a restart, agree between two workers,
and form the same way in the backtest's memory store; bad input never crashes or duplicates."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.backtest.memory_store import MemoryStore
from bot.clock import ManualClock
from bot.models import NewsEvent
from bot.pipeline import Pipeline
from bot.rules.loader import load_rules_dir
from bot.storage.stories import SqlStories
from bot.storage.store import Store
from bot.stories import Report, StoryIndex, signature, similarity

FIXTURES = Path(__file__).parent / "fixtures"
RULES = Path(__file__).resolve().parent.parent / "rules"
# Real headlines (outlet, date, URL kept in the file): China's 34 % (2025-04-04), 84 % (04-09)
# and 125 % (04-11) counter-tariffs, and the rare-earth controls of 2025-04-04.
APRIL = json.loads((FIXTURES / "stories_april_2025.json").read_text())


def _at(day: str, minutes: int = 0) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(hours=12, minutes=minutes)


def _events(rows: list[dict[str, str]]) -> list[NewsEvent]:
    return [
        NewsEvent(id=f"ev{n}", source=r["outlet"], title=r["title"], url=r["url"],
                  published=_at(r["published"], n), seen_at=_at(r["published"], n))
        for n, r in enumerate(rows)
    ]


def test_signature_reads_numbers_amounts_and_actor() -> None:
    sig = signature("China to impose additional 34-pct tariffs on all U.S. imports starting April 10")
    assert sig.percents == {"34"} and sig.actor == "cn"
    assert signature("United States tariffs on $34B Chinese imports take effect").money == {"$34b"}
    assert signature("China raises duties to 84% from 34%").lead_percent == "84"
    # Real headlines (2018-08-07 story): "16-bln-dollar" is the amount, "Aug. 23" a date.
    assert signature("China begins imposing tariffs on 16-bln-dollar U.S. products").money == {"$16b"}
    assert signature("China to match U.S. tariffs on US$16B of imports from Aug. 23").numbers == frozenset()
    # Other numbers veto only when two headlines share none ("Phase 1" vs "Phase 2").
    one, two = signature("Trump signs phase 1 trade deal"), signature("Trump signs phase 2 trade deal")
    assert similarity(one, two) == 0.0 and similarity(one, one) == 1.0


def test_34_84_125_percent_are_three_stories_and_each_gathers_its_outlets() -> None:
    index = StoryIndex()
    got: dict[str, set[str]] = {}
    for n, row in enumerate(APRIL):
        story = index.assign(Report(f"e{n}", row["outlet"], row["title"], row["url"], _at(row["published"], n))).story
        got.setdefault(row["story"], set()).add(story.id)
    assert len(got["2025-04-04-china-34pct-counter-tariff"]) == 1
    assert len(got["2025-04-09-china-84pct-counter-tariff"]) == 1
    assert len(got["2025-04-11-china-125pct-counter-tariff"]) == 1
    escalations = [got[k] for k in got if "pct" in k]
    assert len(set().union(*escalations)) == 3  # never merged with each other
    assert not got["2025-04-04-china-rare-earth-controls"] & got["2025-04-04-china-34pct-counter-tariff"]


def test_window_closes_a_story() -> None:
    index = StoryIndex(window=timedelta(hours=48))
    title = "China imposes 34% tariff on all U.S. goods in response to new American duties"
    first = index.assign(Report("a", "x", title, None, _at("2025-04-04"))).story
    assert index.assign(Report("b", "y", title, None, _at("2025-04-05"))).story is first
    assert index.assign(Report("c", "z", title, None, _at("2025-04-09"))).story is not first


@pytest.mark.parametrize(
    "title",
    ["", "   ", "中美经贸磋商取得实质性进展", "China 对美加征 34% 关税", "tariff " * 20_000, "\u200b\u0000%%$$"],
)
def test_any_title_gets_a_signature_and_a_story(title: str) -> None:
    index = StoryIndex()
    sig = signature(title)
    assert similarity(sig, sig) in (0.0, 1.0)
    a = index.assign(Report("a", "x", title, None, _at("2025-04-04")))
    b = index.assign(Report("b", "y", title, None, _at("2025-04-04", 5)))
    assert a.opened
    # The same words again join; a title without words never joins anything.
    assert (b.story is a.story) == bool(sig.words)


def test_chinese_headlines_group_by_character_pairs() -> None:
    index = StoryIndex()
    a = index.assign(Report("a", "x", "国务院关税税则委员会对原产于美国的进口商品加征34%关税", None, _at("2025-04-04"))).story
    b = index.assign(Report("b", "y", "对原产于美国的所有进口商品加征34%关税", None, _at("2025-04-04", 9))).story
    c = index.assign(Report("c", "z", "对原产于美国的所有进口商品加征84%关税", None, _at("2025-04-04", 19))).story
    assert a is b and c is not a


# ---- in the pipeline, on every store -------------------------------------------------


async def _pipeline(store: Store) -> tuple[Pipeline, ManualClock]:
    clock = ManualClock(_at("2025-04-04"))
    return Pipeline(store, load_rules_dir(RULES), clock, console_min=None, active_adapters=frozenset()), clock


async def _run(pipe: Pipeline, clock: ManualClock, events: list[NewsEvent]) -> list:  # type: ignore[type-arg]
    out = []
    for ev in events:
        clock.set(ev.time)
        out.extend(await pipe.process([ev]))
    return out


async def test_alerts_carry_story_sources_and_update_flag(db_url: str) -> None:
    store = await Store.open(db_url)
    try:
        pipe, clock = await _pipeline(store)
        alerts = await _run(pipe, clock, _events(APRIL))
    finally:
        await store.close()
    by_story: dict[str, list] = {}  # type: ignore[type-arg]
    for a in alerts:
        assert a.story is not None
        by_story.setdefault(a.story, []).append(a)
    for group in by_story.values():
        assert [a.update for a in group] == [False] + [True] * (len(group) - 1)
        assert group[-1].sources[: len(group[0].sources)] == group[0].sources
    last = [a for a in alerts if "125%" in a.title][-1]
    j = last.to_json_dict()
    assert j["story"] == last.story and j["update"] is True and len(j["sources"]) >= 2
    assert len({a.story for a in alerts if "125%" in a.title}) == 1
    assert len({a.story for a in alerts if "34" in a.title}) == 1


async def test_backtest_memory_store_forms_the_same_stories(db_url: str) -> None:
    events = _events(APRIL)
    store = await Store.open(db_url)
    try:
        pipe, clock = await _pipeline(store)
        live = await _run(pipe, clock, events)
    finally:
        await store.close()
    mem = MemoryStore()
    pipe, clock = await _pipeline(mem)
    replayed = await _run(pipe, clock, events)
    assert [(a.id, a.story, a.sources, a.update) for a in live] == [
        (a.id, a.story, a.sources, a.update) for a in replayed
    ]


async def test_stories_survive_a_restart(db_url: str) -> None:
    events = _events([r for r in APRIL if "125" in r["story"]])
    store = await Store.open(db_url)
    try:
        pipe, clock = await _pipeline(store)
        first = await _run(pipe, clock, events[:1])
    finally:
        await store.close()
    store = await Store.open(db_url)  # a new process: nothing in memory
    try:
        pipe, clock = await _pipeline(store)
        later = await _run(pipe, clock, events[1:])
        reports = await SqlStories(store.engine).reports(first[0].story or "")
    finally:
        await store.close()
    assert {a.story for a in later} == {first[0].story}
    assert all(a.update for a in later)
    assert [r.event_id for r in reports] == [e.id for e in events]
    assert all(r.topics for r in reports)  # the rules each report fired, kept for matching


async def test_two_workers_put_one_event_in_one_story(pg_url: str) -> None:
    """Two pipelines (two workers) on one PostgreSQL, the outlets of one story split between
    them and written at once: the advisory lock orders them, so both see one story."""
    events = _events([r for r in APRIL if "125" in r["story"] or "34pct" in r["story"]])
    a, b = await Store.open(pg_url), await Store.open(pg_url)
    try:
        (pa, ca), (pb, cb) = await _pipeline(a), await _pipeline(b)
        ca.set(events[-1].time)
        cb.set(events[-1].time)
        got = await asyncio.gather(pa.process(events[0::2]), pb.process(events[1::2]))
    finally:
        await a.close()
        await b.close()
    alerts = got[0] + got[1]
    stories = {a.story for a in alerts if "125%" in a.title}
    assert len(stories) == 1
    assert len({a.story for a in alerts if "34" in a.title}) == 1
    assert sum(not x.update for x in alerts) == 2  # one first alert per story, across workers


async def test_republished_title_with_new_guid_joins_its_story_and_edited_headline_is_not_new(db_url: str) -> None:
    row = APRIL[1]
    base = _events([row])[0]
    republished = base.model_copy(update={"id": "ev-new-guid", "published": base.time + timedelta(hours=2),
                                          "seen_at": base.time + timedelta(hours=2)})
    edited = base.model_copy(update={"title": base.title + " (updated)"})  # same GUID → same id
    store = await Store.open(db_url)
    try:
        pipe, clock = await _pipeline(store)
        first = await _run(pipe, clock, [base])
        again = await _run(pipe, clock, [republished])
        none = await _run(pipe, clock, [edited])
    finally:
        await store.close()
    assert first and again and not none
    assert {a.story for a in again} == {first[0].story}
    assert all(a.update for a in again)


async def test_failed_group_leaves_no_story_behind(db_url: str) -> None:
    store = await Store.open(db_url)
    try:
        pipe, clock = await _pipeline(store)
        events = _events(APRIL[1:2])
        clock.set(events[0].time)

        async def broken(*args: object, **kw: object) -> set[str]:
            raise RuntimeError("disk full")

        real = store.insert_alerts
        store.insert_alerts = broken  # type: ignore[method-assign]
        with pytest.raises(RuntimeError):
            await pipe.process(events)
        store.insert_alerts = real  # type: ignore[method-assign]
        assert pipe.stories is not None and not pipe.stories.index.stories
        again = await pipe.process(events)
    finally:
        await store.close()
    assert again and not again[0].update
