"""Surge mode (issue 17): rule `surge:` and calendar.yaml put sources on their floor for a while."""

from __future__ import annotations

import io
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.adapters.console import ConsoleAdapter
from bot.app import Readout
from bot.clock import ManualClock
from bot.models import Alert, Severity
from bot.rules.loader import check_rules_dir, load_rules_dir
from bot.sources.surge import SurgeBoard
from bot.storage.store import Store
from bot.storage.surges import SqlSurges
from tests.support.feed_server import FeedServer
from tests.test_app import settings_for

REPO = Path(__file__).resolve().parents[1]

SOURCES = """\
feeds:
  - id: whitehouse
    url: {wire}
    interval: 300
    tags: [official, us]
  - id: xinhua
    url: {quiet}
    interval: 300
    tags: [state-media]
  - id: sports
    url: {sports}
    interval: 300
    tags: [sports]
"""


def rules_dir(
    tmp_path: Path,
    *,
    wire: str = "http://127.0.0.1:9/wire.xml",
    quiet: str = "http://127.0.0.1:9/q.xml",
    sports: str = "http://127.0.0.1:9/s.xml",
) -> Path:
    """The bundled rules (with their surges) over three local sources; no calendar."""
    rules = tmp_path / "rules"
    rules.mkdir()
    for f in (REPO / "rules").glob("*.yaml"):
        if f.name not in ("sources.yaml", "calendar.yaml"):
            shutil.copy(f, rules / f.name)
    (rules / "sources.yaml").write_text(SOURCES.format(wire=wire, quiet=quiet, sports=sports))
    return rules


def one_rule_dir(tmp_path: Path, rule_yaml: str) -> Path:
    rules = rules_dir(tmp_path)
    for f in rules.glob("*.yaml"):
        if f.name not in ("sources.yaml", "watchlists.yaml", "tone.yaml"):
            f.unlink()
    (rules / "mine.yaml").write_text(rule_yaml)
    return rules


# ---- rule schema -------------------------------------------------------------------------


def test_shipped_rules_surge_the_official_and_wire_sources() -> None:
    ruleset = load_rules_dir(REPO / "rules")
    surged = {r.id for r in ruleset.rules if r.surge is not None}
    assert {"trade-talks", "tariff-announcement", "tariff-retaliation", "tariff-truce",
            "export-controls-chips", "export-controls-minerals", "vix-spike"} <= surged
    talks = ruleset.get("trade-talks")
    assert talks is not None and talks.surge is not None
    assert talks.surge.for_ == 3600 and talks.surge.interval == 15 and "official" in talks.surge.sources
    assert check_rules_dir(REPO / "rules") == []


def test_an_unknown_surge_source_is_reported_at_its_line(tmp_path: Path) -> None:
    rules = one_rule_dir(
        tmp_path,
        "rules:\n"
        "  - id: talks\n"
        "    type: match\n"
        "    description: talks\n"
        "    any: [talks]\n"
        "    surge:\n"
        "      sources: [official, nowhere]\n"
        "      for: 30m\n",
    )
    problems = [str(p) for p in check_rules_dir(rules)]
    assert problems == [
        f"{rules / 'mine.yaml'}:7: rules[0].surge.sources[1]: unknown source id or tag 'nowhere' (not in sources.yaml)"
    ]
    # while running, the rule still loads (its alerts go out); the unknown name surges nothing
    assert load_rules_dir(rules).get("talks") is not None


@pytest.mark.parametrize(
    ("surge", "line", "needle"),
    [
        ("{sources: [official], for: 0}", 6, "for must be longer than 0s"),
        ("{sources: [official], for: 2w}", 6, "at most a week"),
        ("{sources: [], for: 1h}", 6, "sources"),
        ("{sources: [official]}", 6, "missing required key 'for'"),
        ("{sources: [official], for: 1h, fro: 2}", 6, "unknown key 'fro'"),
        ("{sources: [official], for: soon}", 6, "expected a duration"),
    ],
)
def test_bad_surge_blocks_are_reported_with_file_and_line(tmp_path: Path, surge: str, line: int, needle: str) -> None:
    rules = one_rule_dir(
        tmp_path,
        f"rules:\n  - id: talks\n    type: match\n    description: talks\n    any: [talks]\n    surge: {surge}\n",
    )
    problems = check_rules_dir(rules)
    assert problems, surge
    assert any(p.path.endswith("mine.yaml") and p.line == line and needle in p.message for p in problems), problems


# ---- calendar.yaml -----------------------------------------------------------------------


GOOD_CALENDAR = """\
events:
  - name: Talks, Geneva
    start: 2025-05-10 09:00 Europe/Zurich
    end: 2025-05-11T21:00:00+02:00
    surge: {sources: [official, state-media], before: 30m, after: 2h, interval: 20s}
"""


def test_the_shipped_calendar_loads_with_real_entries() -> None:
    calendar = load_rules_dir(REPO / "rules").calendar
    names = [e.name for e in calendar]
    assert any("Geneva" in n for n in names) and any("Kuala Lumpur" in n for n in names)
    assert all(e.url and e.url.startswith("https://") for e in calendar)
    geneva = next(e for e in calendar if "Geneva" in e.name)
    assert geneva.start == datetime(2025, 5, 10, 7, 0, tzinfo=UTC)  # 09:00 CEST


def test_a_calendar_is_loaded_with_zones_resolved(tmp_path: Path) -> None:
    rules = rules_dir(tmp_path)
    (rules / "calendar.yaml").write_text(GOOD_CALENDAR)
    (entry,) = load_rules_dir(rules).calendar
    assert entry.start == datetime(2025, 5, 10, 7, 0, tzinfo=UTC)
    assert entry.window_start == datetime(2025, 5, 10, 6, 30, tzinfo=UTC)
    assert entry.window_end == datetime(2025, 5, 11, 21, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("event", "line", "needle"),
    [
        ("    start: 2025-05-10 09:00\n    surge: {sources: [official]}\n", 3, "needs a zone"),
        ("    start: 2025-05-10 09:00 Mars/Olympus\n    surge: {sources: [official]}\n", 3, "unknown time zone"),
        ("    start: 2025-05-10\n    surge: {sources: [official]}\n", 3, "give a time and a zone"),
        ("    start: 2025-05-10T09:00:00Z\n    end: 2025-05-09T09:00:00Z\n    surge: {sources: [official]}\n", 2, "end is before start"),
        ("    start: 2025-05-10T09:00:00Z\n    surge: {sources: [official], befor: 1h}\n", 4, "unknown key 'befor'"),
        ("    start: 2025-05-10T09:00:00Z\n", 2, "missing required key 'surge'"),
        ("    start: 2025-05-10T09:00:00Z\n    surge: {sources: [nowhere]}\n", 4, "unknown source id or tag 'nowhere'"),
    ],
)
def test_calendar_problems_are_reported_with_file_and_line(tmp_path: Path, event: str, line: int, needle: str) -> None:
    rules = rules_dir(tmp_path)
    (rules / "calendar.yaml").write_text("events:\n  - name: Talks\n" + event)
    problems = check_rules_dir(rules)
    assert any(
        p.path == str(rules / "calendar.yaml") and p.line == line and needle in p.message for p in problems
    ), problems


def test_a_calendar_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    rules = rules_dir(tmp_path)
    (rules / "calendar.yaml").write_text("- name: Talks\n")
    (problem,) = check_rules_dir(rules)
    assert problem.line == 1 and "`events:` list" in problem.message


# ---- the board ---------------------------------------------------------------------------


def _alert(rule_id: str, *, story: str | None = "s1", update: bool = False, title: str = "US, China to hold talks") -> Alert:
    now = datetime(2025, 5, 10, 12, 0, tzinfo=UTC)
    return Alert(
        id=f"a-{rule_id}-{story}-{update}",
        rule_id=rule_id,
        rule_description="x",
        severity=Severity.warning,
        kind="news",
        event_id="e1",
        key="rule",
        title=title,
        source="sports",
        event_time=now,
        created_at=now,
        story=story,
        update=update,
    )


def test_calendar_surges_open_before_the_start_and_close_after_the_end(tmp_path: Path) -> None:
    rules = rules_dir(tmp_path)
    (rules / "calendar.yaml").write_text(GOOD_CALENDAR)
    ruleset = load_rules_dir(rules)
    board = SurgeBoard(ruleset)
    wh, xinhua, sports = ruleset.sources.enabled()
    opens = datetime(2025, 5, 10, 6, 30, tzinfo=UTC)  # 09:00 CEST less 30 min
    closes = datetime(2025, 5, 11, 21, 0, tzinfo=UTC)  # 21:00 CEST + 2 h
    assert board.surging(wh, opens - timedelta(seconds=1)) is None
    assert board.calendar_due(opens - timedelta(seconds=1)) == []
    reason = board.surging(wh, opens)
    assert reason == 'calendar "Talks, Geneva" 10 May 07:00 UTC, until 21:00 UTC'
    assert board.surging(xinhua, opens) == reason and board.surging(sports, opens) is None
    assert board.surge_interval(wh, opens) == 20
    assert board.calendar_due(opens) == ["whitehouse", "xinhua"]
    assert board.calendar_due(opens + timedelta(minutes=5)) == []  # hastened once per window
    assert board.surging(wh, closes - timedelta(seconds=1)) == reason
    assert board.surging(wh, closes) is None and board.active(closes) == []


def test_an_alert_surges_once_per_story_not_per_outlet(tmp_path: Path) -> None:
    ruleset = load_rules_dir(rules_dir(tmp_path))
    board = SurgeBoard(ruleset)
    now = datetime(2025, 5, 10, 12, 0, tzinfo=UTC)
    assert board.on_alerts([_alert("trade-talks")], now=now) == ["whitehouse", "xinhua"]
    # the same story reported by another outlet (an update) or raised again: nothing new
    assert board.on_alerts([_alert("trade-talks", update=True)], now=now + timedelta(minutes=30)) == []
    assert board.on_alerts([_alert("trade-talks")], now=now + timedelta(minutes=30)) == []
    wh = ruleset.sources.enabled()[0]
    assert board.surging(wh, now + timedelta(minutes=59)) is not None
    assert board.surging(wh, now + timedelta(minutes=60)) is None  # `for: 60m`, not extended
    # a rule without `surge:` surges nothing
    assert board.on_alerts([_alert("readout-hope", story="s2")], now=now) == []


async def test_a_surge_raised_on_one_worker_reaches_another(tmp_path: Path) -> None:
    ruleset = load_rules_dir(rules_dir(tmp_path))
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}")
    try:
        a = SurgeBoard(ruleset, store=SqlSurges(store.engine))
        b = SurgeBoard(ruleset, store=SqlSurges(store.engine))
        now = datetime(2025, 5, 10, 12, 0, tzinfo=UTC)
        assert await b.sync(now) == []
        assert a.on_alerts([_alert("tariff-announcement")], now=now) == ["whitehouse", "xinhua"]
        assert await a.sync(now) == []  # its own surges are not news to it
        assert await b.sync(now + timedelta(seconds=5)) == ["whitehouse", "xinhua"]
        wh = ruleset.sources.enabled()[0]
        reason = b.surging(wh, now + timedelta(seconds=5))
        assert reason is not None and "tariff-announcement" in reason and "until 13:00 UTC" in reason
        assert await b.sync(now + timedelta(seconds=10)) == []  # read once
        # a worker that starts later picks up the surges still running, not the ended ones
        c = SurgeBoard(ruleset, store=SqlSurges(store.engine))
        assert await c.sync(now + timedelta(minutes=30)) == ["whitehouse", "xinhua"]
        d = SurgeBoard(ruleset, store=SqlSurges(store.engine))
        assert await d.sync(now + timedelta(minutes=61)) == []
        await a.prune(now + timedelta(days=2))
        assert await SqlSurges(store.engine).since(0, now=now) == ([], 0)  # ended surges pruned
    finally:
        await store.close()


# ---- through the real pipeline -----------------------------------------------------------


async def test_a_real_alert_surges_and_hastens_the_named_sources_then_expires(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.fixture("/wire.xml", "feeds/rss20.xml")  # "US to impose 25% tariffs …"
    feed_server.route("/quiet.xml", body=b"<rss version='2.0'><channel><title>q</title></channel></rss>")
    rules = rules_dir(tmp_path, wire=feed_server.url("/wire.xml"), quiet=feed_server.url("/quiet.xml"))
    clock = ManualClock(datetime(2025, 4, 10, 12, 0, tzinfo=UTC))
    bot = await Readout.open(
        settings_for(tmp_path, rules), adapters=[ConsoleAdapter(io.StringIO())], clock=clock
    )
    hastened: list[list[str]] = []
    await bot.start(scheduler=False)
    bot._hasten = lambda ids: hastened.append(list(ids)) or ids  # type: ignore[method-assign]
    try:
        alerts = await bot.poll_once()
        assert any(a.rule_id == "tariff-announcement" for a in alerts)
        wh, xinhua, sports = bot.pipeline.ruleset.sources.enabled()
        reason = bot.surges.surging(wh, clock.now())
        assert reason is not None and reason.startswith("tariff-") and 'alert "US to impose 25% tariffs' in reason
        assert bot.surges.surging(xinhua, clock.now()) is not None and bot.surges.surging(sports, clock.now()) is None
        assert ["whitehouse", "xinhua"] in hastened
        status = await bot.services.status()
        assert [sid for sid, _ in status.surging] == ["whitehouse", "xinhua"]
        clock.advance(3600)
        assert bot.surges.surging(wh, clock.now()) is None
        assert (await bot.services.status()).surging == []
    finally:
        await bot.stop()


async def test_the_real_scheduler_polls_surged_sources_again_at_their_floor(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Wall clock, real APScheduler: the first round raises a tariff alert; the official and
    state-media sources are polled again at their 5 s floor, the other one waits its 300 s."""
    import asyncio

    feed_server.fixture("/wire.xml", "feeds/rss20.xml")
    feed_server.route("/quiet.xml", body=b"<rss version='2.0'><channel><title>q</title></channel></rss>", etag='"q"')
    feed_server.route("/sports.xml", body=b"<rss version='2.0'><channel><title>s</title></channel></rss>", etag='"s"')
    rules = rules_dir(
        tmp_path, wire=feed_server.url("/wire.xml"), quiet=feed_server.url("/quiet.xml"), sports=feed_server.url("/sports.xml")
    )
    text = (rules / "sources.yaml").read_text().replace("interval: 300", "interval: 300\n    min_interval: 5")
    (rules / "sources.yaml").write_text(text)
    bot = await Readout.open(settings_for(tmp_path, rules), adapters=[ConsoleAdapter(io.StringIO())])
    await bot.start()
    try:
        for _ in range(300):  # up to 30 s on a loaded machine; normally ~5 s
            if len(feed_server.requests_for("/wire.xml")) >= 2 and len(feed_server.requests_for("/quiet.xml")) >= 2:
                break
            await asyncio.sleep(0.1)
        wh = bot.pipeline.ruleset.sources.enabled()[0]
        assert "surge: tariff-" in bot.cadence.next_interval(wh, bot.clock.now()).reason
    finally:
        await bot.stop()
    assert len(feed_server.requests_for("/wire.xml")) >= 2
    assert len(feed_server.requests_for("/quiet.xml")) >= 2  # xinhua: state-media, surged
    assert len(feed_server.requests_for("/sports.xml")) == 1  # not named by the surge


async def test_hot_reload_picks_up_calendar_edits_and_keeps_the_last_good_one(tmp_path: Path) -> None:
    from bot.reload import reload_now

    rules = rules_dir(tmp_path)
    (rules / "calendar.yaml").write_text(GOOD_CALENDAR)
    clock = ManualClock(datetime(2025, 6, 9, 9, 0, tzinfo=UTC))
    bot = await Readout.open(settings_for(tmp_path, rules), adapters=[], clock=clock)
    try:
        wh = bot.pipeline.ruleset.sources.enabled()[0]
        assert bot.surges.surging(wh, clock.now()) is None  # Geneva is a month earlier
        london = GOOD_CALENDAR + (
            "  - name: Talks, London\n    start: 2025-06-09 10:00 Europe/London\n"
            "    surge: {sources: [official]}\n"
        )
        (rules / "calendar.yaml").write_text(london)
        assert await reload_now(bot, rules) is True
        reason = bot.surges.surging(wh, clock.now())
        assert reason is not None and '"Talks, London"' in reason
        assert bot.surges.calendar_due(clock.now()) == ["whitehouse"]
        (rules / "calendar.yaml").write_text(london.replace("2025-06-09 10:00 Europe/London", "2025-06-09 10:00"))
        assert await reload_now(bot, rules) is False  # no zone: rejected, the last good calendar stays
        assert bot.surges.surging(wh, clock.now()) == reason
    finally:
        await bot.stop()


def test_a_surge_says_when_it_last_started_a_new_story_restarts_it(tmp_path: Path) -> None:
    ruleset = load_rules_dir(rules_dir(tmp_path))
    board = SurgeBoard(ruleset)
    wh = ruleset.sources.enabled()[0]
    now = datetime(2025, 5, 10, 12, 0, tzinfo=UTC)
    assert board.surge_since(wh, now) is None
    board.on_alerts([_alert("trade-talks")], now=now)  # for: 60m
    assert board.surge_since(wh, now + timedelta(minutes=10)) == now
    # a second story with a shorter surge: the end and reason stay, the easing restarts from it
    later = now + timedelta(minutes=20)
    # (returned: hastened back to the surge's pace if it had eased)
    assert board.raise_surge(["whitehouse"], until=later + timedelta(minutes=10), interval=0, reason="short", now=later) == [
        "whitehouse"
    ]
    assert board.surge_since(wh, later) == later
    reason = board.surging(wh, later)
    assert reason is not None and reason.startswith("trade-talks") and "until 13:00 UTC" in reason
    assert board.surge_since(wh, now + timedelta(minutes=60)) is None  # ended


def test_a_calendar_surge_restarts_at_the_events_start_and_end(tmp_path: Path) -> None:
    rules = rules_dir(tmp_path)
    (rules / "calendar.yaml").write_text(GOOD_CALENDAR)
    board = SurgeBoard(load_rules_dir(rules))
    wh = load_rules_dir(rules).sources.enabled()[0]
    opens = datetime(2025, 5, 10, 6, 30, tzinfo=UTC)
    start, end = opens + timedelta(minutes=30), datetime(2025, 5, 11, 19, 0, tzinfo=UTC)
    assert board.surge_since(wh, opens + timedelta(minutes=10)) == opens
    assert board.calendar_due(opens + timedelta(minutes=10)) == ["whitehouse", "xinhua"]
    assert board.surge_since(wh, start + timedelta(hours=3)) == start
    assert board.calendar_due(start + timedelta(hours=3)) == ["whitehouse", "xinhua"]  # hastened at the start
    assert board.calendar_due(start + timedelta(hours=4)) == []
    assert board.surge_since(wh, end + timedelta(minutes=1)) == end
    assert board.calendar_due(end + timedelta(minutes=1)) == ["whitehouse", "xinhua"]  # and at the end, once
    assert board.calendar_due(end + timedelta(minutes=2)) == []
    assert board.surge_since(wh, end + timedelta(hours=2)) is None  # the window closed
