"""The whole pipeline with the bundled rules: local feeds → rules → alerts → outbox → console."""

from __future__ import annotations

import io
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.adapters.console import ConsoleAdapter
from bot.app import Readout
from bot.clock import Clock, ManualClock
from bot.settings import Settings
from tests.support.feed_server import FeedServer

REPO = Path(__file__).resolve().parents[1]


def make_rules_dir(tmp_path: Path, server: FeedServer, feeds: dict[str, str], prices: dict[str, str]) -> Path:
    """The bundled rules and watch-lists, with a sources.yaml pointing at the local server."""
    rules = tmp_path / "rules"
    rules.mkdir()
    for f in (REPO / "rules").glob("*.yaml"):
        if f.name != "sources.yaml":
            shutil.copy(f, rules / f.name)
    lines = ["feeds:"]
    for fid, path in feeds.items():
        lines += [f"  - id: {fid}", f"    url: {server.url(path)}", "    interval: 60", "    tags: [test]"]
    lines.append("prices:" if prices else "prices: []")
    for symbol, path in prices.items():
        lines += [f'  - symbol: "{symbol}"', "    provider: yahoo", f"    url: {server.url(path)}", "    interval: 60"]
    (rules / "sources.yaml").write_text("\n".join(lines) + "\n")
    return rules


def settings_for(tmp_path: Path, rules: Path, **extra: object) -> Settings:
    values: dict[str, object] = dict(
        rules_dir=rules,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'readout.db'}",
        backlog_hours=24 * 365 * 20,  # fixture headlines are from 2018-2023
        http_timeout=2.0,
        poll_jitter=0,
    )
    values.update(extra)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def run_once(settings: Settings, clock: Clock | None = None) -> tuple[list[str], str]:
    out = io.StringIO()
    bot = await Readout.open(settings, adapters=[ConsoleAdapter(out)], clock=clock)
    await bot.start(scheduler=False)
    try:
        alerts = await bot.poll_once()
        await bot.drain_once()
    finally:
        await bot.stop()
    return [f"{a.rule_id}|{a.title}" for a in alerts], out.getvalue()


@pytest.fixture
def tape(feed_server: FeedServer, tmp_path: Path) -> Path:
    feed_server.fixture("/wire.xml", "feeds/rss20.xml")
    feed_server.fixture("/vix.json", "prices/yahoo_vix.json")
    return make_rules_dir(tmp_path, feed_server, {"wire": "/wire.xml"}, {"^VIX": "/vix.json"})


# The VIX fixture's last quote is 2025-04-08 16:15 New York (20:15 UTC); polled 5 minutes later.
QUOTE_FRESH = ManualClock(datetime(2025, 4, 8, 20, 20, tzinfo=UTC))


async def test_bundled_rules_fire_on_the_tape_and_not_on_near_misses(tape: Path, tmp_path: Path) -> None:
    fired, printed = await run_once(settings_for(tmp_path, tape), QUOTE_FRESH)
    rules_for = lambda needle: {f.split("|")[0] for f in fired if needle in f}  # noqa: E731
    assert "tariff-announcement" in rules_for("US to impose 25% tariffs")
    assert "readout-friction" in rules_for("China firmly opposes")
    assert "readout-hope" in rules_for("candid, in-depth and constructive")
    assert rules_for("tariff-free shopping") == set()
    assert rules_for("Entity List")  # export controls on chips
    # ^VIX 52.33 against a previous close of 46.98: above 30 and 40, not a 20% spike.
    vix = {f.split("|")[0] for f in fired if f.split("|")[1].startswith("^VIX")}
    assert {"vix-above-30", "vix-above-40"} <= vix and "vix-spike" not in vix
    # the console shows each alert on one line with its watch-list's tickers
    line = next(x for x in printed.splitlines() if "US to impose 25% tariffs" in x)
    assert "watch " in line and "SOYB" in printed


async def test_second_poll_is_a_304_and_alerts_nothing_again(
    tape: Path, tmp_path: Path, feed_server: FeedServer
) -> None:
    settings = settings_for(tmp_path, tape)
    bot = await Readout.open(settings, adapters=[ConsoleAdapter(io.StringIO())])
    await bot.start(scheduler=False)
    try:
        first = await bot.poll_once()
        second = await bot.poll_once()
    finally:
        await bot.stop()
    assert first and second == []
    polls = feed_server.requests_for("/wire.xml")
    assert len(polls) == 2 and polls[0].header("If-None-Match") is None
    # the validator sent back is the one served, so the server answered 304 Not Modified
    assert polls[1].header("If-None-Match") == feed_server.fixture("/wire.xml", "feeds/rss20.xml").etag


async def test_a_stale_quote_never_fires_a_bundled_price_rule(tape: Path, tmp_path: Path) -> None:
    """The same VIX 52.33 quote polled a day later (the market closed since): no price alert."""
    next_day = ManualClock(datetime(2025, 4, 9, 20, 20, tzinfo=UTC))
    fired, _ = await run_once(settings_for(tmp_path, tape), next_day)
    assert [f for f in fired if f.split("|")[1].startswith("^VIX")] == []
    assert any(f.startswith("tariff-announcement|") for f in fired)  # news rules are unaffected


async def test_dedup_holds_across_a_restart_even_when_the_feed_changes_its_etag(
    tape: Path, tmp_path: Path, feed_server: FeedServer
) -> None:
    settings = settings_for(tmp_path, tape)
    first, _ = await run_once(settings)
    feed_server.fixture("/wire.xml", "feeds/rss20.xml", etag='"changed"')  # same items, new validator
    again, printed = await run_once(settings)
    assert first and again == [] and printed == ""


async def test_backlog_on_first_poll_is_recorded_not_alerted(tape: Path, tmp_path: Path) -> None:
    fired, _ = await run_once(settings_for(tmp_path, tape, backlog_hours=24))
    assert [f for f in fired if not f.split("|")[1].startswith("^VIX")] == []


async def test_a_broken_feed_is_logged_once_and_the_others_go_on(
    feed_server: FeedServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    feed_server.fixture("/wire.xml", "feeds/rss20.xml")
    feed_server.route("/down.xml", status=500, body=b"oops")
    feed_server.fixture("/page.xml", "feeds/html_page.html")
    feed_server.fixture("/bad.xml", "feeds/malformed.xml")
    feed_server.route("/slow.xml", delay=5, body=b"<rss/>")
    rules = make_rules_dir(
        tmp_path, feed_server,
        {"wire": "/wire.xml", "down": "/down.xml", "page": "/page.xml", "bad": "/bad.xml", "slow": "/slow.xml"},
        {},
    )
    settings = settings_for(tmp_path, rules)
    caplog.set_level(logging.WARNING, logger="bot.app")
    bot = await Readout.open(settings, adapters=[ConsoleAdapter(io.StringIO())])
    await bot.start(scheduler=False)
    try:
        first = await bot.poll_once()
        await bot.poll_once()
        status = await bot.services.status()
    finally:
        await bot.stop()
    assert any("US to impose 25% tariffs" in a.title for a in first)
    failing = {s.source_id: s for s in status.sources if not s.healthy}
    assert set(failing) == {"down", "page", "slow"} | ({"bad"} if "bad" in failing else set())
    assert failing["down"].state is not None and failing["down"].state.consecutive_failures == 2
    assert "500" in (failing["down"].state.last_error or "")
    # logged once per failing source, not once per poll
    down_lines = [r for r in caplog.records if "down: " in r.getMessage()]
    assert len(down_lines) == 1
    assert "failing x2" in failing["down"].line()


def test_a_source_that_keeps_failing_is_polled_less_often() -> None:
    from datetime import datetime, timedelta, timezone

    from bot.app import failure_backoff
    from bot.storage.store import SourceState

    t = datetime(2025, 4, 7, 14, 0, tzinfo=timezone.utc)
    state = lambda n: SourceState(source_id="s", consecutive_failures=n, last_error_at=t)  # noqa: E731
    assert failure_backoff(state(2), 60) is None
    assert failure_backoff(state(3), 60) == t + timedelta(seconds=120)
    assert failure_backoff(state(5), 60) == t + timedelta(seconds=480)
    assert failure_backoff(state(30), 60) == t + timedelta(hours=1)
    assert failure_backoff(state(3), 7200) == t + timedelta(seconds=7200)  # never faster than the interval


async def test_backoff_skips_polls_until_the_wait_is_over(feed_server: FeedServer, tmp_path: Path) -> None:
    from datetime import datetime, timezone

    from bot.clock import ManualClock

    feed_server.route("/down.xml", status=503, body=b"busy")
    rules = make_rules_dir(tmp_path, feed_server, {"down": "/down.xml"}, {})
    clock = ManualClock(datetime(2025, 4, 7, 14, 0, tzinfo=timezone.utc))
    bot = await Readout.open(settings_for(tmp_path, rules), adapters=[], clock=clock)
    await bot.start(scheduler=False)
    try:
        for _ in range(3):
            await bot.poll_once()
        assert len(feed_server.requests_for("/down.xml")) == 3
        await bot.poll_once()  # third failure → wait 2 × interval
        assert len(feed_server.requests_for("/down.xml")) == 3
        clock.advance(120)
        await bot.poll_once()
        assert len(feed_server.requests_for("/down.xml")) == 4
    finally:
        await bot.stop()


async def test_validators_are_kept_only_after_the_items_are_processed(
    tape: Path, tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between fetching and processing must not turn the refetch into a 304."""
    bot = await Readout.open(settings_for(tmp_path, tape), adapters=[])
    await bot.start(scheduler=False)
    try:
        wire = next(f for f in bot.pipeline.ruleset.sources.feeds if f.id == "wire")
        real_process = bot.pipeline.process

        async def crash(*args: object, **kwargs: object) -> list[object]:
            raise RuntimeError("process died mid-batch")

        monkeypatch.setattr(bot.pipeline, "process", crash)
        with pytest.raises(RuntimeError):
            await bot.poll_source(wire)
        monkeypatch.setattr(bot.pipeline, "process", real_process)
        alerts = await bot.poll_source(wire)
    finally:
        await bot.stop()
    polls = feed_server.requests_for("/wire.xml")
    assert len(polls) == 2 and polls[1].header("If-None-Match") is None
    assert any("US to impose 25% tariffs" in a.title for a in alerts)


@pytest.mark.parametrize("first", ["304", "empty"])
async def test_first_poll_is_the_first_that_read_items(
    first: str, feed_server: FeedServer, tmp_path: Path
) -> None:
    """A 304 (or an empty feed) on the very first poll must not switch the backlog filter off:
    when items finally arrive, the three-day-old ones are recorded, only the fresh one alerts."""
    from datetime import UTC, datetime, timedelta

    from tests.support.botproc import rss, write_rules

    rules = write_rules(tmp_path / "rules", {"wire": feed_server.url("/wire.xml")})
    if first == "304":
        feed_server.route("/wire.xml", status=304)
    else:
        feed_server.route("/wire.xml", body=rss([]), content_type="application/rss+xml")
    bot = await Readout.open(settings_for(tmp_path, rules, backlog_hours=24), adapters=[])
    await bot.start(scheduler=False)
    try:
        assert await bot.poll_once() == []
        assert len(feed_server.requests_for("/wire.xml")) == 1
        old = rss(["Old tariff story one", "Old tariff story two"], now=datetime.now(UTC) - timedelta(days=3))
        fresh = rss(["Fresh tariff story"])
        body = old.replace(b"</channel></rss>", fresh.split(b"</description>", 1)[1].split(b"</channel>")[0] + b"</channel></rss>")
        feed_server.route("/wire.xml", body=body, content_type="application/rss+xml")
        fired = await bot.poll_once()
    finally:
        await bot.stop()
    assert [a.title for a in fired] == ["Fresh tariff story"]
