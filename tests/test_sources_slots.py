"""Slow feeds cannot starve healthy ones: more slow-drip feeds than poll slots, one healthy feed.

Readout in-process against the local feed server (real httpx, real SQLite).
The dripping feeds send a byte now and then and never finish; they are
polled first and would take every slot until their deadline. The assertion is
about order, not time: the healthy feed's alert is committed while no slow
feed has yet ended; the one left dripping in the slow slot then meets its
deadline, which counts the whole fetch.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from bot.adapters.console import ConsoleAdapter
from bot.app import Readout
from bot.settings import Settings
from tests.support.botproc import rss, write_rules
from tests.support.feed_server import FeedServer

SLOW = [f"drip{n}" for n in range(6)]


async def _states(bot: Readout) -> dict[str, str | None]:
    return {s.source_id: s.last_error for s in await bot.store.all_source_states()}


async def test_healthy_feed_alerts_while_slow_feeds_drip(feed_server: FeedServer, tmp_path: Path) -> None:
    for name in SLOW:
        feed_server.route(f"/{name}.xml", stream_bytes=4_000_000, chunk_delay=0.2, content_type="application/rss+xml")
    feed_server.route("/healthy.xml", body=rss(["Tariff news from the healthy feed"]), content_type="application/rss+xml")
    feeds = {name: feed_server.url(f"/{name}.xml") for name in SLOW} | {"healthy": feed_server.url("/healthy.xml")}
    rules = write_rules(tmp_path / "rules", feeds)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        rules_dir=rules,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'slots.db'}",
        poll_jitter=0,
        poll_concurrency=2,
        poll_slow_slots=1,
        poll_slow_after=0.5,
        poll_deadline=8,  # far beyond what the healthy poll needs: the order below is robust
        http_timeout=20,
    )
    bot = await Readout.open(settings, adapters=[ConsoleAdapter(io.StringIO())])
    await bot.start(scheduler=False)
    sources = {s.id: s for s in bot.pipeline.ruleset.sources.feeds}
    try:
        slow_tasks = [asyncio.create_task(bot.poll_source(sources[name])) for name in SLOW]
        await asyncio.sleep(0)  # the slow polls ask for their slots first
        healthy = await bot.poll_source(sources["healthy"])
        states = await _states(bot)
        # no slow poll ended (deadline, size cap, ...) before the healthy one: only "given up" ones
        ended = [sid for sid, err in states.items() if err and "slow:" not in err]
        assert ended == [], f"the healthy feed waited for slow polls to end: {states}"
        assert [a.title for a in healthy] == ["Tariff news from the healthy feed"]
        # those that found the slow slot busy were given up for this round, with a reason
        given_up = [sid for sid, err in states.items() if err and "slow:" in err]
        assert given_up, states
        assert not all(t.done() for t in slow_tasks), "one slow feed still drips in the slow slot"
        assert set(SLOW) <= bot._poll_slots.slow_sources  # known slow: next time they queue for a slow slot
        # the per-source deadline ends the one that kept dripping (its whole fetch, not per read)
        assert await asyncio.gather(*slow_tasks) == [[]] * len(SLOW)
        states = await _states(bot)
        timed_out = [sid for sid, err in states.items() if err and "timeout" in err]
        assert len(timed_out) == 1 and "no complete answer within 8 s" in (states[timed_out[0]] or ""), states
    finally:
        await bot.stop()


async def test_known_slow_sources_queue_for_the_slow_slot_not_the_general_ones() -> None:
    """PollSlots alone, with events instead of a network: once sources are known slow, they wait
    for the single slow slot before taking a general one, so a healthy poll finds a slot free."""
    from bot.sources.slots import PollSlots

    slots = PollSlots(general=2, slow=1, slow_after=5.0)  # far beyond any step here: no timing race
    release = asyncio.Event()
    order: list[str] = []

    async def poll(sid: str) -> str:
        async with slots.poll(sid) as slot:
            async def work() -> str:
                if sid.startswith("slow"):
                    await release.wait()
                return sid

            result = await slot.fetch(work(), lambda why: f"{sid} given up: {why}")
            order.append(result)
            return result

    slots.slow_sources |= {"slow0", "slow1", "slow2"}
    slow = [asyncio.create_task(poll(f"slow{n}")) for n in range(3)]
    await asyncio.sleep(0)
    assert await poll("healthy") == "healthy"  # a general slot was free: slow ones hold at most one
    assert order == ["healthy"]
    release.set()
    assert sorted(await asyncio.gather(*slow)) == ["slow0", "slow1", "slow2"]
    # slow1 and slow2 answered at once when their turn came: known healthy again
    assert not {"slow1", "slow2"} & slots.slow_sources
