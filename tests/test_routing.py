"""Routing: which destinations owe an alert, and whether it goes now, later or not at all.

The table indexes subscriptions by selector; these tests pin it to the plain
definition (`subscription_matches` over every subscription) on random tables,
and pin the per-destination decisions: disabled, muted, filtered, quiet hours.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from bot.delivery.preferences import subscription_matches
from bot.delivery.routing import CONSOLE_ADDRESS, RoutingTable
from bot.models import Alert, Severity
from bot.storage.store import Destination, Mute, Subscription

NOW = datetime(2025, 4, 2, 12, 0, tzinfo=UTC)
RULES = ["tariff-announcement", "vix-spike", "entity-list", "yuan-move"]
TAGS = ["tariffs", "fx", "chips", "tone"]
ACTIVE = frozenset({"telegram", "discord"})


def alert(
    rule: str = "tariff-announcement", *, severity: Severity = Severity.warning, tags: tuple[str, ...] = ("tariffs",)
) -> Alert:
    return Alert(
        id=f"{rule[:8]:0<8}" + "a" * 16,
        rule_id=rule,
        rule_description="Rule",
        severity=severity,
        kind="news",
        event_id="e1",
        key="k",
        title="US raises tariffs on steel",
        source="wire",
        event_time=NOW,
        created_at=NOW,
        tags=tags,
    )


def table(
    subscriptions: list[Subscription],
    destinations: list[Destination] | None = None,
    mutes: list[Mute] | None = None,
    *,
    console_min: Severity | None = None,
) -> RoutingTable:
    return RoutingTable(
        subscriptions=subscriptions,
        destinations=destinations or [],
        mutes=mutes or [],
        console_min=console_min,
        active_adapters=ACTIVE,
    )


@pytest.mark.parametrize("seed", range(20))
def test_the_index_routes_exactly_what_the_subscriptions_select(seed: int) -> None:
    rng = random.Random(seed)
    subs = []
    for _ in range(rng.randint(0, 60)):
        selector = rng.choice(["rule", "tag", "severity"])
        value = {
            "rule": lambda: rng.choice(RULES),
            "tag": lambda: rng.choice(TAGS),
            "severity": lambda: rng.choice(list(Severity)).value,
        }[selector]()
        adapter = rng.choice(["telegram", "discord", "stopped"])
        subs.append(Subscription(adapter=adapter, address=str(rng.randint(1, 15)), selector=selector, value=value))
    routing = table(subs)
    for _ in range(20):
        a = alert(
            rng.choice(RULES),
            severity=rng.choice(list(Severity)),
            tags=tuple(rng.sample(TAGS, rng.randint(0, 2))),
        )
        expected: list[tuple[str, str]] = []  # first-subscription order, once per destination
        for s in subs:
            where = (s.adapter, s.address)
            if s.adapter in ACTIVE and where not in expected and subscription_matches(s.selector, s.value, a):
                expected.append(where)
        expected.sort(key=lambda w: next(i for i, s in enumerate(subs) if (s.adapter, s.address) == w))
        assert routing.subscribers(a) == expected
        assert [(r.adapter, r.address) for r in routing.routes(a, now=NOW)] == expected


def test_console_gets_alerts_from_its_minimum_severity() -> None:
    routing = table([], console_min=Severity.warning)
    assert [(r.adapter, r.address, r.status) for r in routing.routes(alert(), now=NOW)] == [
        ("console", CONSOLE_ADDRESS, "pending")
    ]
    assert routing.routes(alert(severity=Severity.info), now=NOW) == []


def test_each_destination_decides_now_later_or_never() -> None:
    subs = [Subscription(adapter="telegram", address=str(n), selector="tag", value="tariffs") for n in range(1, 6)]
    dests = [
        Destination(adapter="telegram", address="2", disabled_at=NOW - timedelta(days=1), disabled_reason="blocked"),
        Destination(adapter="telegram", address="4", exclude_words=["steel"]),
        Destination(adapter="telegram", address="5", quiet_start="11:00", quiet_end="13:00", quiet_tz="UTC"),
    ]
    mutes = [
        Mute(adapter="telegram", address="3", rule_id="tariff-announcement", until=NOW + timedelta(hours=1)),
        Mute(adapter="telegram", address="1", rule_id=None, until=NOW - timedelta(minutes=1)),  # over
    ]
    routes = {r.address: r for r in table(subs, dests, mutes).routes(alert(), now=NOW)}
    assert sorted(routes) == ["1", "3", "4", "5"]  # the disabled chat owes nothing
    assert routes["1"].status == "pending" and routes["1"].not_before is None
    assert routes["3"].status == "skipped" and "muted (rule tariff-announcement)" in (routes["3"].note or "")
    assert (routes["4"].status, routes["4"].note) == ("skipped", "filtered by chat words")
    assert routes["5"].status == "held" and routes["5"].not_before == NOW.replace(hour=13)
    # Critical alerts go through quiet hours.
    urgent = {r.address: r for r in table(subs, dests, mutes).routes(alert(severity=Severity.critical), now=NOW)}
    assert urgent["5"].status == "pending"


def test_a_chat_market_session_holds_alerts_until_the_next_open() -> None:
    """`/quiet us-regular`: on Saturday 2026-11-28 an alert waits for Monday's 09:30 New York open
    (14:30 UTC); the early close on Friday 2026-11-27 (13:00 New York) is honoured."""
    subs = [Subscription(adapter="telegram", address=a, selector="tag", value="tariffs") for a in ("1", "2")]
    dests = [
        Destination(adapter="telegram", address="1", session="us-regular"),
        Destination(adapter="telegram", address="2", session="us-extended"),
    ]
    saturday = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
    routes = {r.address: r for r in table(subs, dests).routes(alert(), now=saturday)}
    assert (routes["1"].status, routes["1"].note) == ("held", "outside us-regular")
    assert routes["1"].not_before == datetime(2026, 11, 30, 14, 30, tzinfo=UTC)
    assert routes["2"].not_before == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # 04:00 New York
    friday_after_close = datetime(2026, 11, 27, 18, 30, tzinfo=UTC)
    routes = {r.address: r for r in table(subs, dests).routes(alert(), now=friday_after_close)}
    assert routes["1"].status == "held" and routes["2"].status == "pending"  # after hours till 17:00
    urgent = table(subs, dests).routes(alert(severity=Severity.critical), now=saturday)
    assert {r.status for r in urgent} == {"pending"}
