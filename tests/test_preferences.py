"""What chats may set: durations, quiet hours, time zones, filter words, selectors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.commands.parse import (
    PreferenceError,
    parse_duration,
    parse_filter_words,
    parse_quiet,
    parse_timezone,
)
from bot.delivery.preferences import (
    passes_filters,
    quiet_until,
    subscription_matches,
)
from bot.models import Alert, Severity
from bot.storage.store import Destination

UTC = timezone.utc


def _alert(**kw: object) -> Alert:
    base: dict[str, object] = dict(
        id="a" * 24,
        rule_id="tariff-announcement",
        rule_description="Tariff announced",
        severity=Severity.warning,
        kind="news",
        event_id="e1",
        key="k",
        title="US to impose 25% tariffs on Chinese steel",
        source="feed",
        event_time=datetime(2025, 4, 2, tzinfo=UTC),
        created_at=datetime(2025, 4, 2, tzinfo=UTC),
        tags=("tariffs",),
    )
    base.update(kw)
    return Alert.model_validate(base)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("2h", 7200), ("1d", 86400), ("1w", 604800), ("45", 45), ("10 min", 600)],
)
def test_parse_duration_accepts_common_forms(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "soon", "-5m", "0h", "2y", "99999999h", "1" * 40])
def test_parse_duration_rejects_with_the_right_form(text: str) -> None:
    with pytest.raises(PreferenceError) as err:
        parse_duration(text)
    assert "\n" not in str(err.value)


def test_parse_quiet_normalises_and_checks_zone() -> None:
    assert parse_quiet("22:00-7:00", "Asia/Shanghai") == ("22:00", "07:00", "Asia/Shanghai")
    assert parse_quiet("22:00-07:00") == ("22:00", "07:00", "UTC")
    for bad in ("22-07", "25:00-07:00", "22:00-22:00", "22:00"):
        with pytest.raises(PreferenceError):
            parse_quiet(bad)
    with pytest.raises(PreferenceError, match="unknown time zone"):
        parse_quiet("22:00-07:00", "Mars/Olympus")
    with pytest.raises(PreferenceError):
        parse_timezone("../../etc/passwd")


def test_quiet_until_spans_midnight_in_the_chat_zone() -> None:
    dest = Destination(
        adapter="telegram",
        address="1",
        quiet_start="22:00",
        quiet_end="07:00",
        quiet_tz="America/New_York",
    )
    # 03:30 UTC = 23:30 in New York (EDT, UTC-4): inside; ends 07:00 local = 11:00 UTC.
    inside = datetime(2025, 6, 2, 3, 30, tzinfo=UTC)
    assert quiet_until(dest, inside) == datetime(2025, 6, 2, 11, 0, tzinfo=UTC)
    outside = datetime(2025, 6, 2, 15, 0, tzinfo=UTC)
    assert quiet_until(dest, outside) is None
    assert quiet_until(Destination(adapter="t", address="1"), inside) is None


def test_filter_words_are_plain_words_never_regex() -> None:
    assert parse_filter_words(["+soybeans", "-Pork"]) == (["soybeans"], ["pork"])
    for bad in (["soy"], ["+(a+)+"], ["+a b"], []):
        with pytest.raises(PreferenceError):
            parse_filter_words(bad)


def test_passes_filters_include_and_exclude() -> None:
    alert = _alert()
    assert passes_filters(Destination(adapter="t", address="1", include_words=["steel"]), alert)
    assert not passes_filters(
        Destination(adapter="t", address="1", include_words=["soybeans"]), alert
    )
    assert not passes_filters(Destination(adapter="t", address="1", exclude_words=["steel"]), alert)
    # a word inside another word does not count
    assert passes_filters(Destination(adapter="t", address="1", exclude_words=["tar"]), alert)


def test_subscription_matches_severity_and_above_rule_and_tag() -> None:
    alert = _alert(severity=Severity.warning)
    assert subscription_matches("severity", "info", alert)
    assert subscription_matches("severity", "warning", alert)
    assert not subscription_matches("severity", "critical", alert)
    assert subscription_matches("rule", "tariff-announcement", alert)
    assert not subscription_matches("rule", "vix-spike", alert)
    assert subscription_matches("tag", "tariffs", alert)
    assert not subscription_matches("tag", "fx", alert)
