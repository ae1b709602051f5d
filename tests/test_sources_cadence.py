"""Adaptive polling: learned intervals, √-rate allocation at equal cost, bounds, server hints,
host budgets — and the same through the real app poll path against the local feed server."""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from bot.app import Readout
from bot.commands.registry import ChatDestination
from bot.commands.views import status
from bot.rules.loader import RuleLoadError, load_rules_dir
from bot.settings import Settings
from bot.sources.cadence import TAIL_SLACK, Cadence, allocate, hour_of_week, tail_cap
from bot.sources.config import FeedSource, HostBudget, SourcesFile
from bot.sources.hints import ServerHints, feed_period, header_hints
from bot.sources.hosts import HostGate
from tests.support.feed_server import FeedServer

REPO = Path(__file__).resolve().parents[1]
MONDAY = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday, 00:00 UTC


def feed(interval: int = 300, **extra: object) -> FeedSource:
    return FeedSource.model_validate({"id": "wire", "url": "https://news.example/feed", "interval": interval, **extra})


def busy_tuesdays(weeks: int = 3, per_hour: int = 6) -> list[datetime]:
    """Items every Tuesday 14:00–14:59 UTC, nothing else, for `weeks` weeks before MONDAY."""
    times = []
    for w in range(1, weeks + 1):
        tuesday_14 = MONDAY - timedelta(weeks=w) + timedelta(days=1, hours=14)
        times += [tuesday_14 + timedelta(minutes=60 * k / per_hour) for k in range(per_hour)]
    return times


def polls_per_week(plan: tuple[float, ...]) -> float:
    return sum(3600.0 / seconds for seconds in plan)


# ---- learning ---------------------------------------------------------------------------


def test_learns_busy_hours_and_polls_them_more_at_the_same_cost() -> None:
    source = feed(300, min_interval=30, max_interval=1800)
    cadence = Cadence()
    cadence.observe(source, now=MONDAY, item_times=busy_tuesdays(), hints=None)

    busy = cadence.next_interval(source, MONDAY + timedelta(days=1, hours=14, minutes=5))
    quiet = cadence.next_interval(source, MONDAY + timedelta(days=3, hours=3))
    assert busy.seconds < 300 < quiet.seconds
    assert busy.reason.startswith("learned: ") and "Tue 14h" in busy.reason
    assert "Thu 03h" in quiet.reason
    plan = cadence.plan(source, MONDAY)
    assert plan is not None
    # The configured interval is the budget: as many polls a week as fixed polling.
    assert polls_per_week(plan) == pytest.approx(7 * 24 * 3600 / 300, rel=1e-6)
    rates = cadence.rates(source, MONDAY)
    assert rates is not None and max(rates) == rates[hour_of_week(MONDAY + timedelta(days=1, hours=14))]


def test_a_day_spent_above_the_budget_slows_the_learned_plan() -> None:
    source = feed(300, min_interval=30, max_interval=1800)
    cadence = Cadence()
    cadence.observe(source, now=MONDAY, item_times=busy_tuesdays(), hints=None)
    now = MONDAY + timedelta(days=1, hours=14)
    planned = cadence.next_interval(source, now).seconds
    for k in range(12 * 60):  # twelve hours polled every minute: five times the budget
        cadence.observe(source, now=now - timedelta(minutes=12 * 60 - k), item_times=[], hints=None)
    slowed = cadence.next_interval(source, now)
    # Pulled back, at most 2x — and, this being a busy hour, never past the configured interval.
    assert slowed.seconds == pytest.approx(min(planned * 2, 300))
    assert slowed.reason.startswith("learned: ")


def test_too_little_data_polls_at_the_configured_interval() -> None:
    source = feed(300)
    cadence = Cadence()
    assert cadence.next_interval(source, MONDAY) == cadence.next_interval(source, MONDAY)
    assert cadence.next_interval(source, MONDAY).seconds == 300
    cadence.observe(source, now=MONDAY, item_times=[MONDAY - timedelta(hours=30), MONDAY - timedelta(hours=2)], hints=None)
    interval = cadence.next_interval(source, MONDAY)
    assert interval.seconds == 300 and interval.reason == "configured (learning: 2 items so far)"


def test_the_same_items_seen_again_are_counted_once() -> None:
    source = feed(300)
    cadence = Cadence()
    times = busy_tuesdays()
    assert cadence.learn(source.source_id, times, now=MONDAY) == len(times)
    assert cadence.learn(source.source_id, times, now=MONDAY) == 0
    cadence.observe(source, now=MONDAY, item_times=times, hints=None)  # the feed shows them again
    rates_before = cadence.rates(source, MONDAY)
    assert cadence.learn(source.source_id, [*times, MONDAY - timedelta(minutes=1)], now=MONDAY) == 1
    assert cadence.rates(source, MONDAY) != rates_before


def test_date_only_items_count_when_first_seen_not_at_midnight() -> None:
    """A daily CSV's rows are dated 00:00: the hour they appear is when a poll first sees them."""
    source = feed(3600, min_interval=900, max_interval=14_400)
    cadence = Cadence()
    history = [MONDAY - timedelta(days=d) for d in range(1, 40)]
    cadence.observe(source, now=MONDAY + timedelta(hours=1), item_times=history, hints=None)
    assert cadence.next_interval(source, MONDAY).reason == "configured (learning: 0 items so far)"
    for d in range(0, 14):  # each day's row shows up at 15:10 UTC
        seen = MONDAY + timedelta(days=d, hours=15, minutes=10)
        cadence.observe(source, now=seen, item_times=[*history, MONDAY + timedelta(days=d)], hints=None)
    rates = cadence.rates(source, MONDAY + timedelta(days=14))
    assert rates is not None
    assert max(range(168), key=lambda h: rates[h]) % 24 == 15
    assert rates[hour_of_week(MONDAY)] < rates[hour_of_week(MONDAY + timedelta(hours=15))]


def test_smoothing_keeps_one_odd_item_from_swinging_the_schedule() -> None:
    source = feed(300, min_interval=30, max_interval=3600)
    cadence = Cadence()
    steady = [MONDAY - timedelta(hours=h, minutes=30) for h in range(14 * 24)]  # one item an hour for 2 weeks
    cadence.observe(source, now=MONDAY, item_times=[*steady, MONDAY - timedelta(days=3, minutes=30)], hints=None)
    plan = cadence.plan(source, MONDAY)
    assert plan is not None
    assert max(plan) / min(plan) < 2  # an even rhythm stays near even polling


def test_one_day_of_office_hours_makes_the_nights_quiet_and_fills_the_hours_between() -> None:
    """Twelve items on a Monday 13–21h UTC: the prior is worth a few items, not hours, so one day
    already concentrates the polls; an unwatched Tuesday takes the hours of the day it has seen,
    and an hour with no item between busy ones (its neighbours') is busy too."""
    source = feed(300, min_interval=30, max_interval=1800)
    cadence = Cadence()
    monday = [MONDAY + timedelta(hours=13, minutes=40 * k) for k in range(12)]  # 13:00 … 20:20
    now = MONDAY + timedelta(days=1)
    cadence.observe(source, now=MONDAY, item_times=[], hints=None)  # watched since Monday 00:00
    cadence.observe(source, now=now, item_times=monday, hints=None)
    rates = cadence.rates(source, now)
    plan = cadence.plan(source, now)
    assert rates is not None and plan is not None
    tuesday = hour_of_week(now)
    night, busy = rates[tuesday + 3], rates[tuesday + 15]
    assert busy > 20 * night and night < 0.1 * sum(rates) / len(rates)
    assert rates[tuesday + 14] > busy / 2  # 14h had one item, its neighbours many
    assert plan[tuesday + 3] > 4 * plan[tuesday + 15]
    assert polls_per_week(plan) == pytest.approx(7 * 24 * 3600 / 300, rel=1e-6)


def test_an_item_in_the_last_hour_keeps_a_quiet_hour_at_the_configured_interval() -> None:
    """News comes in runs: a story at an hour learned as quiet must not wait at the night's pace."""
    source = feed(300, min_interval=30, max_interval=1800)
    cadence = Cadence()
    cadence.observe(source, now=MONDAY, item_times=busy_tuesdays(per_hour=60), hints=None)
    night = MONDAY + timedelta(days=3, hours=3)
    assert cadence.next_interval(source, night).seconds > 300
    cadence.observe(source, now=night, item_times=[night - timedelta(minutes=10)], hints=None)
    recent = cadence.next_interval(source, night)
    assert recent.seconds == 300 and "item at 02:50" in recent.reason
    assert cadence.next_interval(source, night + timedelta(minutes=49)).seconds == 300
    assert cadence.next_interval(source, night + timedelta(minutes=51)).seconds > 300


def test_a_quiet_hour_just_after_a_surge_is_polled_at_the_configured_interval() -> None:
    """A story runs on after its surge window: for an hour the source is no slower than configured."""
    source = feed(300, min_interval=30, max_interval=1800)
    night = MONDAY + timedelta(days=3, hours=3)

    class Until:
        def surging(self, source: object, now: datetime) -> str | None:
            return "tariff-announcement until 03:05" if now < night + timedelta(minutes=5) else None

        def surge_interval(self, source: object, now: datetime) -> float | None:
            return 0.0 if self.surging(source, now) else None

        def surge_since(self, source: object, now: datetime) -> datetime | None:
            return None  # no easing

    cadence = Cadence(surge=Until())
    cadence.observe(source, now=MONDAY, item_times=busy_tuesdays(per_hour=60), hints=None)
    assert cadence.next_interval(source, night).seconds == source.floor  # surging
    after = cadence.next_interval(source, night + timedelta(minutes=30))
    assert after.seconds == 300 and "surge at 03:00" in after.reason
    assert cadence.next_interval(source, night + timedelta(minutes=61)).seconds > 300


def test_allocation_is_sqrt_of_the_rate_and_beats_fixed_and_proportional_at_equal_cost() -> None:
    # 0.05 is under 1 % of the items (outside the tail cover); the rate-1 bucket is lifted to
    # the tail cap (see the next test); among the others, frequency ∝ √rate.
    rates = [9.0, 1.0, 0.05, 4.0]
    plan = allocate(rates, budget_interval=300, floor=1, ceiling=100_000)
    freqs = [1 / p for p in plan]
    assert freqs[0] / freqs[3] == pytest.approx(1.5)  # √9 / √4
    assert freqs[3] / freqs[2] == pytest.approx(math.sqrt(4 / 0.05))
    budget = len(rates) * 3600 / 300
    assert polls_per_week(plan) == pytest.approx(budget)

    def mean_wait(intervals: list[float] | tuple[float, ...]) -> float:  # Σ λ·I/2 per hour of items
        return sum(r * i / 2 for r, i in zip(rates, intervals, strict=True))

    fixed = [300.0] * len(rates)
    total = sum(rates)
    proportional = [1 / (budget / 3600 * r / total) for r in rates]
    assert polls_per_week(proportional) == pytest.approx(budget)
    assert mean_wait(plan) < mean_wait(fixed)
    assert mean_wait(plan) < mean_wait(proportional)


def test_hours_holding_the_tail_are_capped_at_equal_cost() -> None:
    """√rate alone would poll an hour with 1.7 % of the items every 20 min; the 99th-percentile
    item may be one of them. Every bucket in the 99 % cover gets at most TAIL_SLACK × the even
    spread of the budget over the cover; the budget is unchanged, √rate holds where uncapped."""
    rates = [9.0, 1.0, 0.25, 4.0] + [0.0] * 4  # 0.25 is 1.75 % of the items; four silent hours
    plan = allocate(rates, budget_interval=300, floor=1, ceiling=100_000)
    cap, covered = tail_cap(rates, budget=len(rates) * 3600 / 300, floor=1, ceiling=100_000)
    assert covered == {0, 1, 2, 3}
    assert cap == pytest.approx(TAIL_SLACK * 3600 * 4 / (len(rates) * 12))
    sqrt_only = 1 / (math.sqrt(0.25) / (math.sqrt(9) + 1 + math.sqrt(0.25) + 2) * len(rates) * 12 / 3600)
    assert sqrt_only > cap  # the case that matters: √rate alone leaves it above the cap
    assert all(plan[h] <= cap * (1 + 1e-9) for h in covered)
    assert plan[2] == pytest.approx(cap)
    assert all(plan[h] == pytest.approx(100_000) for h in range(4, 8))  # nothing observed: stays cheap
    assert polls_per_week(plan) == pytest.approx(len(rates) * 3600 / 300)
    assert plan[3] / plan[0] == pytest.approx(1.5)  # √9 / √4 among the uncapped


def test_floor_and_ceiling_bound_the_plan_and_the_rest_keeps_the_budget() -> None:
    rates = [100.0] + [0.001] * 23
    plan = allocate(rates, budget_interval=300, floor=60, ceiling=900)
    assert min(plan) == 60 == plan[0]
    assert max(plan) <= 900 and min(plan[1:]) >= 60
    assert polls_per_week(plan) == pytest.approx(24 * 3600 / 300)
    # A budget the bounds cannot spend: every bucket at the floor, never below it.
    assert set(allocate([1.0] * 24, budget_interval=10, floor=60, ceiling=900)) == {60.0}
    # No rate at all: fixed polling at the budget interval.
    assert set(allocate([0.0] * 24, budget_interval=300, floor=60, ceiling=900)) == {300.0}


def test_floor_and_ceiling_defaults_and_validation() -> None:
    assert (feed(300).floor, feed(300).ceiling) == (75, 1200)
    assert (feed(20).floor, feed(20).ceiling) == (15, 80)
    assert (feed(86_400).ceiling, feed(30).floor) == (86_400, 15)
    assert (feed(300, min_interval=10, max_interval=900).floor, feed(300, max_interval=900).ceiling) == (10, 900)
    with pytest.raises(ValueError, match="min_interval 600 is above interval 300"):
        feed(300, min_interval=600)
    with pytest.raises(ValueError, match="max_interval 100 is below interval 300"):
        feed(300, max_interval=100)


def _rules_with_sources(tmp_path: Path, sources_yaml: str) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "sources.yaml").write_text(sources_yaml)
    (rules / "watchlists.yaml").write_text("watchlists: {}\n")
    (rules / "rules.yaml").write_text("rules: []\n")
    return rules


def test_sources_yaml_bounds_errors_name_file_and_line(tmp_path: Path) -> None:
    rules = _rules_with_sources(
        tmp_path,
        "feeds:\n"
        "  - id: ok\n    url: https://a.example/feed\n"
        "  - id: bad\n    url: https://b.example/feed\n    interval: 300\n    min_interval: 600\n"
        "hosts:\n  news.google.com:\n    requests_per_minut: 4\n",
    )
    with pytest.raises(RuleLoadError) as err:
        load_rules_dir(rules, defaults=None)
    text = str(err.value)
    assert f"{rules}/sources.yaml:4: feeds[1]: min_interval 600 is above interval 300" in text
    assert f"{rules}/sources.yaml:10: hosts.news.google.com: unknown key 'requests_per_minut' (did you mean" in text
    (rules / "sources.yaml").write_text("feeds: []\nhosts:\n  https://x.example/:\n    connections: 1\n")
    with pytest.raises(RuleLoadError) as err:
        load_rules_dir(rules, defaults=None)
    assert f"{rules}/sources.yaml:2: hosts: 'https://x.example/' is not a host name" in str(err.value)


def test_shipped_sources_have_bounds_and_shared_hosts_have_budgets() -> None:
    ruleset = load_rules_dir(REPO / "rules", defaults=None)
    cfg = ruleset.sources
    for source in cfg.enabled():
        assert source.floor <= source.interval <= source.ceiling, source.source_id
    hosts = {s.host for s in cfg.feeds}
    for shared in ("news.google.com", "www.federalregister.gov"):
        assert shared in hosts and cfg.host_budget(shared) != HostBudget()
        on_host = [s for s in cfg.enabled() if s.host == shared]
        assert len(on_host) >= 2
        # Even all at their floor they stay within the host's budget.
        assert sum(60 / s.floor for s in on_host) <= cfg.host_budget(shared).requests_per_minute
    assert cfg.host_budget("example.org") == HostBudget()


# ---- server hints -----------------------------------------------------------------------


def test_header_hints_read_max_age_expires_against_date_and_retry_after() -> None:
    served = datetime(2020, 1, 1, 12, 0, tzinfo=UTC)  # a server clock years off ours
    date = format_datetime(served, usegmt=True)
    assert header_hints(200, {"cache-control": "public, max-age=600"}).max_age == 600
    assert header_hints(200, {"cache-control": "no-cache, max-age=600"}).max_age == 0
    expires = format_datetime(served + timedelta(seconds=300), usegmt=True)
    assert header_hints(200, {"date": date, "expires": expires}).max_age == 300  # skew does not matter
    assert header_hints(200, {"date": date, "expires": "0"}).max_age == 0
    assert header_hints(200, {"cache-control": "max-age=60", "date": date, "expires": expires}).max_age == 60
    assert header_hints(200, {}).max_age is None
    assert header_hints(429, {"retry-after": "120"}).retry_after == 120
    later = format_datetime(served + timedelta(minutes=10), usegmt=True)
    assert header_hints(503, {"date": date, "retry-after": later}).retry_after == 600
    assert header_hints(503, {"retry-after": "soon"}).retry_after is None
    assert header_hints(200, {"retry-after": "120"}).retry_after is None  # only with 429/503
    assert header_hints(429, {}).throttled and not header_hints(304, {}).throttled


def test_feed_period_reads_ttl_and_syndication_hints() -> None:
    assert feed_period(b"<rss><channel><ttl>30</ttl><item/></channel></rss>") == 1800
    sy = b'<rss xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"><channel>'
    assert feed_period(sy + b"<sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>4</sy:updateFrequency>") == 900
    assert feed_period(sy + b"<sy:updatePeriod>daily</sy:updatePeriod>") == 86_400
    assert feed_period(b"<rss><channel><ttl>5</ttl><sy:updatePeriod>hourly</sy:updatePeriod>") == 3600
    assert feed_period(b"<rss><channel><ttl>0</ttl><title>x</title></channel></rss>") is None
    assert feed_period(b"<feed><title>x</title></feed>") is None


def test_max_age_lengthens_the_interval_and_a_year_is_clamped_to_the_ceiling(caplog: pytest.LogCaptureFixture) -> None:
    source = feed(300, min_interval=60, max_interval=1200)
    cadence = Cadence()
    cadence.observe(source, now=MONDAY, item_times=[], hints=ServerHints(status=200, max_age=600))
    assert cadence.next_interval(source, MONDAY) .reason == "server max-age 600 s"
    assert cadence.next_interval(source, MONDAY).seconds == 600
    with caplog.at_level(logging.WARNING, logger="bot.sources.cadence"):
        for _ in range(3):
            cadence.observe(source, now=MONDAY, item_times=[], hints=ServerHints(status=200, max_age=31_536_000))
    assert cadence.next_interval(source, MONDAY).seconds == 1200
    clamped = [r for r in caplog.records if "max-age" in r.getMessage()]
    assert len(clamped) == 1 and "31536000 s clamped to the ceiling 1200 s" in clamped[0].getMessage()
    cadence.observe(source, now=MONDAY, item_times=[], hints=ServerHints(status=200, max_age=0))
    assert cadence.next_interval(source, MONDAY).seconds == 300  # max-age 0: no constraint
    cadence.observe(source, now=MONDAY, item_times=[], hints=ServerHints(status=304, max_age=30))
    assert cadence.next_interval(source, MONDAY).seconds == 300  # shorter than planned: nothing to do


def test_retry_after_wins_even_over_a_surge_and_a_year_is_a_day(caplog: pytest.LogCaptureFixture) -> None:
    source = feed(300, min_interval=30)

    class Surging:
        def surging(self, source: object, now: datetime) -> str | None:
            return "tariff-announcement until 14:05"

        def surge_interval(self, source: object, now: datetime) -> float | None:
            return 0.0  # the floor

        def surge_since(self, source: object, now: datetime) -> datetime | None:
            return None  # no easing

    cadence = Cadence(surge=Surging())
    assert cadence.next_interval(source, MONDAY).reason == "floor (surge: tariff-announcement until 14:05)"
    assert cadence.next_interval(source, MONDAY).seconds == 30
    cadence.observe(source, now=MONDAY, item_times=[], hints=ServerHints(status=429, retry_after=900), failed=True)
    interval = cadence.next_interval(source, MONDAY)
    assert (interval.seconds, interval.reason) == (900, "Retry-After until 00:15 UTC")
    assert cadence.earliest(source, MONDAY) == MONDAY + timedelta(seconds=900)
    with caplog.at_level(logging.WARNING, logger="bot.sources.cadence"):
        cadence.observe(source, now=MONDAY, item_times=[], hints=ServerHints(status=503, retry_after=3e7), failed=True)
        cadence.observe(source, now=MONDAY, item_times=[], hints=ServerHints(status=503, retry_after=3e7), failed=True)
    assert cadence.next_interval(source, MONDAY).seconds == 86_400
    assert len([r for r in caplog.records if "Retry-After" in r.getMessage()]) == 1
    cadence.observe(source, now=MONDAY, item_times=[], hints=ServerHints(status=200))
    assert cadence.next_interval(source, MONDAY).seconds == 30  # answered again: the surge goes on


def test_a_source_live_on_push_is_polled_at_its_ceiling_even_in_a_surge() -> None:
    source = feed(300, min_interval=30, max_interval=1800)

    class Surging:
        def surging(self, source: object, now: datetime) -> str | None:
            return "trade-talks until 15:00"

        def surge_interval(self, source: object, now: datetime) -> float | None:
            return 0.0  # the floor

        def surge_since(self, source: object, now: datetime) -> datetime | None:
            return None  # no easing

    live: set[str] = set()
    cadence = Cadence(surge=Surging())
    cadence.push = lambda source_id: source_id in live
    assert cadence.next_interval(source, MONDAY).seconds == 30
    live.add(source.source_id)
    interval = cadence.next_interval(source, MONDAY)
    assert (interval.seconds, interval.reason) == (1800, "push live; polled at the ceiling as a safety net")
    cadence.observe(source, now=MONDAY, item_times=[], hints=ServerHints(status=429, retry_after=7200), failed=True)
    assert cadence.next_interval(source, MONDAY).seconds == 7200  # politeness still wins
    live.clear()  # the lease lapsed or the hub withdrew: back to polling, the surge applies again
    cadence.observe(source, now=MONDAY, item_times=[], hints=ServerHints(status=200))
    assert cadence.next_interval(source, MONDAY).seconds == 30


def test_429_without_retry_after_backs_off_until_an_answer() -> None:
    source = feed(300, max_interval=1200)
    cadence = Cadence()
    waits = []
    for _ in range(6):
        cadence.observe(source, now=MONDAY, item_times=[], hints=ServerHints(status=429), failed=True)
        waits.append(cadence.next_interval(source, MONDAY))
    assert [w.seconds for w in waits] == [300, 600, 1200, 2400, 3600, 3600]
    assert waits[1].reason == "backing off: HTTP 429 x2"
    cadence.observe(source, now=MONDAY, item_times=[], hints=None, failed=True)  # a network error: no news
    assert cadence.next_interval(source, MONDAY).seconds == 3600
    cadence.observe(source, now=MONDAY, item_times=[], hints=ServerHints(status=200))
    assert cadence.next_interval(source, MONDAY).seconds == 300


def test_feed_hints_are_advice_up_to_the_interval_and_not_while_surging() -> None:
    source = feed(300, min_interval=30)
    cadence = Cadence()
    hourly = ServerHints(status=200, feed_period=3600, body_read=True)
    cadence.observe(source, now=MONDAY, item_times=[], hints=hourly)
    interval = cadence.next_interval(source, MONDAY)
    assert interval.seconds == 300 and interval.reason == "feed announces updates every 60 min"
    cadence.observe(source, now=MONDAY, item_times=[], hints=ServerHints(status=304))  # no body: kept
    assert cadence.next_interval(source, MONDAY).reason.startswith("feed announces")

    class Surging:
        def surging(self, source: object, now: datetime) -> str | None:
            return "talks"

        def surge_interval(self, source: object, now: datetime) -> float | None:
            return 0.0  # the floor

        def surge_since(self, source: object, now: datetime) -> datetime | None:
            return None  # no easing

    cadence.surge = Surging()
    assert cadence.next_interval(source, MONDAY).seconds == 30


def test_host_share_stretches_intervals_even_in_a_surge() -> None:
    sources = [
        FeedSource(id=f"g{i}", url=f"https://news.google.com/rss/search?q={i}", interval=300, min_interval=15)  # type: ignore[arg-type]
        for i in range(3)
    ]

    class Surging:
        def surging(self, source: object, now: datetime) -> str | None:
            return "vix"

        def surge_interval(self, source: object, now: datetime) -> float | None:
            return 0.0  # the floor

        def surge_since(self, source: object, now: datetime) -> datetime | None:
            return None  # no easing

    cadence = Cadence(surge=Surging())
    cadence.configure(sources, {"news.google.com": HostBudget(requests_per_minute=4, connections=1)})
    interval = cadence.next_interval(sources[0], MONDAY)
    assert interval.seconds == 45 and interval.reason == "host budget news.google.com: 4/min"


def test_requests_per_hour_counts_the_last_hour_and_describe_says_it_all() -> None:
    source = feed(300)
    cadence = Cadence()
    for minute in range(0, 120, 5):
        cadence.observe(source, now=MONDAY + timedelta(minutes=minute), item_times=[], hints=None)
    now = MONDAY + timedelta(minutes=119)
    assert cadence.requests_per_hour("wire", now) == 12
    assert cadence.requests_per_hour("unknown", now) == 0
    view = cadence.describe(source, now)
    assert view.budget_per_hour == 12 and view.host == "news.example"
    assert view.line() == "every 5 min — configured (learning: 0 items so far); 12 req/h (budget 12)"


# ---- host budget ------------------------------------------------------------------------


async def test_host_gate_never_exceeds_requests_per_minute_or_connections() -> None:
    clock = [0.0]

    async def sleep(seconds: float) -> None:
        clock[0] += max(seconds, 0.0)
        await asyncio.sleep(0)

    gate = HostGate({"busy.example": HostBudget(requests_per_minute=5, connections=2)}, clock=lambda: clock[0], sleep=sleep)
    starts: list[float] = []
    in_flight = [0, 0]

    async def poll(host: str) -> None:
        async with gate.request(host):
            starts.append(clock[0]) if host == "busy.example" else None
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
            for _ in range(3):
                await asyncio.sleep(0)
            in_flight[0] -= 1

    await asyncio.gather(*(poll("busy.example") for _ in range(23)), *(poll("other.example") for _ in range(4)))
    assert len(starts) == 23
    for t in starts:  # any 60-second window holds at most 5 starts
        assert sum(1 for u in starts if t <= u < t + 60) <= 5
    assert gate.max_in_flight("busy.example") <= 2 and in_flight[1] <= 2 + 2
    assert max(starts) >= 4 * 60  # 23 requests at 5 a minute take four more minutes
    assert gate.max_in_flight("other.example") <= HostBudget().connections


async def test_this_machine_is_limited_only_when_listed() -> None:
    clock = [0.0]

    async def sleep(seconds: float) -> None:
        clock[0] += max(seconds, 0.0)

    gate = HostGate(default=HostBudget(requests_per_minute=1, connections=1), clock=lambda: clock[0], sleep=sleep)
    for _ in range(5):
        async with gate.request("127.0.0.1"):
            pass
    assert clock[0] == 0 and not gate.limited("localhost") and gate.limited("news.google.com")
    gate.configure({"127.0.0.1": HostBudget(requests_per_minute=1, connections=1)})
    for _ in range(2):
        async with gate.request("127.0.0.1"):
            pass
    assert clock[0] == 60
    local = FeedSource(id="l", url="http://127.0.0.1:8080/feed", interval=5)  # type: ignore[arg-type]
    cadence = Cadence(default_host=HostBudget(requests_per_minute=1))
    cadence.configure([local])
    assert cadence.next_interval(local, MONDAY).seconds == 5
    cadence.configure([local], {"127.0.0.1": HostBudget(requests_per_minute=6)})
    assert cadence.next_interval(local, MONDAY).reason == "host budget 127.0.0.1: 6/min"


async def test_host_gate_spreads_a_fractional_budget() -> None:
    clock = [0.0]

    async def sleep(seconds: float) -> None:
        clock[0] += max(seconds, 0.0)

    gate = HostGate(default=HostBudget(requests_per_minute=0.5, connections=1), clock=lambda: clock[0], sleep=sleep)
    starts = []
    for _ in range(3):
        async with gate.request("slow.example"):
            starts.append(clock[0])
    assert starts == [0.0, 120.0, 240.0]


# ---- the real poll path -----------------------------------------------------------------

RSS = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><ttl>1</ttl>'
    b"<item><guid>a</guid><title>Item A</title><pubDate>Mon, 23 Nov 2026 09:00:00 GMT</pubDate></item>"
    b"</channel></rss>"
)


def _settings(tmp_path: Path, rules: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        rules_dir=rules,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'readout.db'}",
        backlog_hours=24 * 365,
        http_timeout=2.0,
        poll_jitter=0,
    )


def _sources_yaml(server: FeedServer, paths: dict[str, str], hosts: str = "") -> str:
    lines = ["feeds:"]
    for fid, path in paths.items():
        lines += [
            f"  - id: {fid}",
            f"    url: {server.url(path)}",
            "    interval: 300",
            "    min_interval: 60",
            "    max_interval: 1200",
        ]
    return "\n".join(lines) + "\n" + hosts


async def test_real_headers_through_the_app_poll_path(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.route("/cached.xml", body=RSS, content_type="application/rss+xml", headers={"Cache-Control": "max-age=900"})
    feed_server.route("/limited.xml", status=429, body=b"slow down", headers={"Retry-After": "600"})
    feed_server.route("/busy.xml", status=503, body=b"busy")
    feed_server.route("/forever.xml", body=RSS, content_type="application/rss+xml", headers={"Cache-Control": "max-age=31536000"})
    paths = {"cached": "/cached.xml", "limited": "/limited.xml", "busy": "/busy.xml", "forever": "/forever.xml"}
    hosts = "hosts:\n  127.0.0.1:\n    requests_per_minute: 100\n    connections: 1\n"
    rules = _rules_with_sources(tmp_path, _sources_yaml(feed_server, paths, hosts))
    bot = await Readout.open(_settings(tmp_path, rules), adapters=[])
    await bot.start(scheduler=False)
    try:
        await bot.poll_once()
        now = bot.clock.now()
        by_id = {s.source_id: s for s in bot.pipeline.ruleset.sources.enabled()}
        cached = bot.cadence.next_interval(by_id["cached"], now)
        assert (cached.seconds, cached.reason) == (900, "server max-age 900 s")
        limited = bot.cadence.next_interval(by_id["limited"], now)
        assert limited.reason.startswith("Retry-After until ") and 590 < limited.seconds <= 600
        busy = bot.cadence.next_interval(by_id["busy"], now)
        assert busy.reason == "backing off: HTTP 503 x1" and busy.seconds == 300
        assert bot.cadence.next_interval(by_id["forever"], now).seconds == 1200  # clamped to the ceiling
        assert bot.hosts.max_in_flight("127.0.0.1") == 1  # one connection to the host at a time
        assert bot.cadence.requests_per_hour("cached", now) == 1
        # The lease outlasts the planned next poll (multi-worker consistency).
        state = await bot.store.get_source_state("cached")
        assert state is not None and state.lease_until is not None
        assert (state.lease_until - now).total_seconds() == pytest.approx(900 * 1.5, abs=5)

        dest = ChatDestination(adapter="console", address="ops")
        text = (await status(bot.services, dest, [])).text()
        assert "every 15 min, 1 req/h (budget 12): server max-age 900 s" in text
        assert "every 5 min, 1 req/h (budget 12): backing off: HTTP 503 x1" in text
    finally:
        await bot.stop()


async def test_the_app_scheduler_plans_the_next_poll_from_the_server_headers(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.route("/cached.xml", body=RSS, content_type="application/rss+xml", headers={"Cache-Control": "max-age=900"})
    rules = _rules_with_sources(tmp_path, _sources_yaml(feed_server, {"cached": "/cached.xml"}))
    bot = await Readout.open(_settings(tmp_path, rules), adapters=[])
    await bot.start()
    try:
        async with asyncio.timeout(10):
            while bot.cadence.requests_per_hour("cached", datetime.now(UTC)) < 1:
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.1)  # the run's reschedule
        assert bot.scheduler is not None
        (source,) = bot.pipeline.ruleset.sources.enabled()
        planned = bot.scheduler.next_run(source)
        assert planned is not None and 890 < (planned - datetime.now(UTC)).total_seconds() <= 900
        assert bot.scheduler.hasten(["cached"], now=datetime.now(UTC)) == []  # max-age holds it back
        assert len(feed_server.requests_for("/cached.xml")) == 1
    finally:
        await bot.stop()


async def test_leases_outlast_a_planned_interval_longer_than_the_configured_one(
    feed_server: FeedServer, tmp_path: Path, pg_url: str
) -> None:
    """Two workers on one PostgreSQL: the one holding the source keeps it while its planned next
    poll (max-age 900 s, beyond 1.5 × the 300 s interval) is pending; the other polls nothing."""
    from bot.clock import ManualClock

    feed_server.route("/cached.xml", body=RSS, content_type="application/rss+xml", headers={"Cache-Control": "max-age=900"})
    rules = _rules_with_sources(tmp_path, _sources_yaml(feed_server, {"cached": "/cached.xml"}))
    settings = _settings(tmp_path, rules).model_copy(update={"database_url": pg_url})
    start = datetime.now(UTC)
    clock_a, clock_b = ManualClock(start), ManualClock(start + timedelta(seconds=600))
    a = await Readout.open(settings, adapters=[], clock=clock_a)
    b = await Readout.open(settings, adapters=[], clock=clock_b)
    try:
        (source,) = a.pipeline.ruleset.sources.enabled()
        await a.poll_source(source)
        await b.poll_source(source)  # 600 s later: past 1.5 × interval, before 1.5 × max-age
        assert len(feed_server.requests_for("/cached.xml")) == 1
        state = await a.store.get_source_state("cached")
        assert state is not None and state.lease_owner == a.worker_id
        assert state.lease_until is not None and (state.lease_until - start).total_seconds() == pytest.approx(1350)
        clock_b.set(start + timedelta(seconds=1400))  # the holder is gone: the lease lapses
        await b.poll_source(source)
        assert len(feed_server.requests_for("/cached.xml")) == 2
    finally:
        await a.stop()
        await b.stop()


async def test_learned_rhythm_survives_a_restart(feed_server: FeedServer, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    items = b"".join(
        b"<item><guid>%d</guid><title>Item %d</title><pubDate>%s</pubDate></item>"
        % (i, i, format_datetime(now - timedelta(hours=3 * i + 1), usegmt=True).encode())
        for i in range(20)
    )
    feed_server.route("/rhythm.xml", body=b"<rss version='2.0'><channel><title>t</title>" + items + b"</channel></rss>", content_type="application/rss+xml")
    rules = _rules_with_sources(tmp_path, _sources_yaml(feed_server, {"rhythm": "/rhythm.xml"}))
    settings = _settings(tmp_path, rules)
    first = await Readout.open(settings, adapters=[])
    await first.start(scheduler=False)
    try:
        await first.poll_once()
        (source,) = first.pipeline.ruleset.sources.enabled()
        before = first.cadence.rates(source, now)
        assert before is not None
    finally:
        await first.stop()
    second = await Readout.open(settings, adapters=[])
    try:
        assert await second.relearn() == 20
        after = second.cadence.rates(source, now)
        assert after is not None
        assert all(math.isclose(a, b, rel_tol=1e-3) for a, b in zip(after, before, strict=True))
        assert second.cadence.next_interval(source, now).reason.startswith("learned: ")
    finally:
        await second.stop()


def test_sources_file_host_names_are_checked_and_folded() -> None:
    cfg = SourcesFile.model_validate({"hosts": {"News.Google.com": {"requests_per_minute": 4}, "*": {"connections": 3}}})
    assert cfg.host_budget("news.google.com").requests_per_minute == 4
    assert cfg.host_budget("elsewhere.example") == HostBudget(connections=3)
    with pytest.raises(ValueError, match="not a host name"):
        SourcesFile.model_validate({"hosts": {"news.google.com/rss": {}}})


# ---- surges ease off a quiet source -------------------------------------------------------


class _Board:
    """A surge running since `since` (at the floor)."""

    def __init__(self, since: datetime | None) -> None:
        self.since = since

    def surging(self, source: object, now: datetime) -> str | None:
        return "tariff-announcement until 14:05" if self.since is not None else None

    def surge_interval(self, source: object, now: datetime) -> float | None:
        return 0.0 if self.since is not None else None

    def surge_since(self, source: object, now: datetime) -> datetime | None:
        return self.since


def test_a_quiet_surge_eases_off_and_a_new_item_brings_the_floor_back() -> None:
    source = feed(300, min_interval=15)
    start = MONDAY + timedelta(hours=14)
    cadence = Cadence(surge=_Board(start))
    first = cadence.next_interval(source, start + timedelta(minutes=10))  # 10 s < the floor
    assert first.seconds == 15 and first.reason == "floor (surge: tariff-announcement until 14:05)"
    eased = cadence.next_interval(source, start + timedelta(minutes=30))
    assert eased.seconds == pytest.approx(30)  # a sixtieth of the 30 quiet minutes
    assert eased.reason == "surge easing: nothing new for 30 min, else floor (surge: tariff-announcement until 14:05)"
    # never slower than the source's pace without the surge (the configured interval here)
    assert cadence.next_interval(source, start + timedelta(hours=6)).seconds == 300
    # an item: the quiet restarts from it
    item = start + timedelta(minutes=40)
    cadence.observe(source, now=item + timedelta(seconds=20), item_times=[item], hints=None)
    assert cadence.next_interval(source, item + timedelta(seconds=20)).seconds == 15
    assert cadence.next_interval(source, item + timedelta(minutes=20)).seconds == pytest.approx(20)
    # 0 holds the surge at its pace until it ends
    cadence.surge_ease = 0
    assert cadence.next_interval(source, start + timedelta(hours=6)).seconds == 15


def test_a_surge_slower_than_the_floor_eases_from_its_own_interval() -> None:
    source = feed(300, min_interval=15)
    start = MONDAY + timedelta(hours=14)

    class Every30(_Board):
        def surge_interval(self, source: object, now: datetime) -> float | None:
            return 30.0

    cadence = Cadence(surge=Every30(start))
    assert cadence.next_interval(source, start + timedelta(minutes=24)).seconds == 30  # 24 s < 30 s
    assert cadence.next_interval(source, start + timedelta(minutes=36)).seconds == pytest.approx(36)
