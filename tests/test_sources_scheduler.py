"""SourceScheduler on the real APScheduler: each poll rescheduled by the Cadence, `hasten`
bringing polls forward but never before politeness allows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.sources.cadence import Cadence
from bot.sources.config import FeedSource, Source
from bot.sources.hints import ServerHints
from bot.sources.scheduler import SourceScheduler


def feed(sid: str, interval: int = 300, **extra: object) -> FeedSource:
    return FeedSource.model_validate({"id": sid, "url": f"https://{sid}.example/feed", "interval": interval, **extra})


class Recorder:
    """A poll function that records each poll and tells the cadence what the 'server' said."""

    def __init__(self, cadence: Cadence) -> None:
        self.cadence = cadence
        self.polls: list[tuple[str, datetime]] = []
        self.hints: dict[str, ServerHints] = {}
        self.backdate = timedelta(0)  # pretend the poll happened this long ago
        self.polled = asyncio.Event()
        self.hold: asyncio.Event | None = None
        self.clock = lambda: datetime.now(UTC)  # the bot's clock

    async def __call__(self, source: Source) -> None:
        now = self.clock()
        self.polls.append((source.source_id, now))
        self.polled.set()
        if self.hold is not None:
            await self.hold.wait()
        self.cadence.observe(source, now=now - self.backdate, item_times=[], hints=self.hints.get(source.source_id))

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.polls) < count:
                self.polled.clear()
                await self.polled.wait()


@pytest.fixture
async def cadence() -> AsyncIterator[Cadence]:
    yield Cadence()


async def _started(cadence: Cadence, recorder: Recorder, sources: list[FeedSource]) -> SourceScheduler:
    scheduler = SourceScheduler(recorder, jitter=0, cadence=cadence)
    cadence.configure(sources)
    scheduler.start(sources)
    await recorder.wait_for(len(sources))
    await asyncio.sleep(0.05)  # let each run's reschedule happen
    return scheduler


async def test_each_poll_is_rescheduled_by_the_cadence(cadence: Cadence) -> None:
    recorder = Recorder(cadence)
    recorder.hints["cached"] = ServerHints(status=200, max_age=900)
    sources = [feed("plain"), feed("cached")]
    scheduler = await _started(cadence, recorder, sources)
    try:
        now = datetime.now(UTC)
        plain, cached = (scheduler.next_run(s) for s in sources)
        assert plain is not None and cached is not None
        assert 290 < (plain - now).total_seconds() <= 300
        assert 890 < (cached - now).total_seconds() <= 900  # server max-age, not the interval
        assert {sid for sid, _ in recorder.polls} == {"plain", "cached"}
        assert scheduler.job_ids() == ["feed:cached", "feed:plain"]
    finally:
        scheduler.shutdown()


async def test_hasten_polls_at_once_when_politeness_allows(cadence: Cadence) -> None:
    recorder = Recorder(cadence)
    recorder.backdate = timedelta(hours=1)  # the last poll was long ago: nothing holds the next one
    sources = [feed("official"), feed("other")]
    scheduler = await _started(cadence, recorder, sources)
    try:
        assert scheduler.hasten(["official", "nonexistent"], now=datetime.now(UTC)) == ["official"]
        await recorder.wait_for(3)
        assert [sid for sid, _ in recorder.polls[2:]] == ["official"]
        other = scheduler.next_run(sources[1])
        assert other is not None and (other - datetime.now(UTC)).total_seconds() > 250  # untouched
    finally:
        scheduler.shutdown()


async def test_hasten_respects_retry_after_and_the_floor(cadence: Cadence) -> None:
    recorder = Recorder(cadence)
    recorder.hints["limited"] = ServerHints(status=429, retry_after=600)
    sources = [feed("limited", min_interval=30), feed("fresh", min_interval=60)]
    scheduler = await _started(cadence, recorder, sources)
    try:
        now = datetime.now(UTC)
        scheduler.hasten(["limited", "fresh"], now=now)
        limited, fresh = (scheduler.next_run(s) for s in sources)
        assert limited is not None and 590 < (limited - now).total_seconds() <= 600
        # Polled a moment ago: brought forward to the floor after that poll, not to now.
        assert fresh is not None and 55 < (fresh - now).total_seconds() <= 60
        assert len(recorder.polls) == 2
    finally:
        scheduler.shutdown()


async def test_hasten_during_a_poll_reschedules_when_it_ends(cadence: Cadence) -> None:
    recorder = Recorder(cadence)
    recorder.backdate = timedelta(hours=1)
    recorder.hold = asyncio.Event()
    source = feed("slow")
    scheduler = SourceScheduler(recorder, jitter=0, cadence=cadence)
    scheduler.start([source])
    try:
        await recorder.wait_for(1)
        assert scheduler.hasten(["slow"], now=datetime.now(UTC)) == ["slow"]
        recorder.hold.set()
        recorder.hold = None
        await recorder.wait_for(2)  # the hastened poll, right after the one in flight
    finally:
        scheduler.shutdown()


async def test_reload_keeps_the_planned_time_and_drops_removed_sources(cadence: Cadence) -> None:
    recorder = Recorder(cadence)
    sources = [feed("a"), feed("b")]
    scheduler = await _started(cadence, recorder, sources)
    try:
        before = scheduler.next_run(sources[0])
        changed = feed("a", interval=600)
        scheduler.start([changed])
        assert scheduler.job_ids() == ["feed:a"]
        assert scheduler.next_run(changed) == before
        assert len(recorder.polls) == 2  # a reload does not poll again
    finally:
        scheduler.shutdown()


async def test_a_bot_clock_in_the_past_still_schedules_on_wall_time(cadence: Cadence) -> None:
    """A ManualClock (tests, backtests) drives the cadence; APScheduler keeps wall time."""
    past = datetime(2020, 1, 6, 9, 0, tzinfo=UTC)
    recorder = Recorder(cadence)
    recorder.clock = lambda: past
    recorder.hints["limited"] = ServerHints(status=429, retry_after=120)
    sources = [feed("plain"), feed("limited")]
    scheduler = SourceScheduler(recorder, jitter=0, cadence=cadence, now=lambda: past)
    cadence.configure(sources)
    scheduler.start(sources)
    try:
        await recorder.wait_for(2)  # the first polls run at once, not "missed" in 2020
        await asyncio.sleep(0.05)
        wall = datetime.now(UTC)
        plain, limited = (scheduler.next_run(s) for s in sources)
        assert plain is not None and 290 < (plain - wall).total_seconds() <= 300
        assert limited is not None and 110 < (limited - wall).total_seconds() <= 300
        scheduler.hasten(["limited"], now=past)
        limited = scheduler.next_run(sources[1])
        assert limited is not None and 110 < (limited - wall).total_seconds() <= 121  # Retry-After holds
    finally:
        scheduler.shutdown()
