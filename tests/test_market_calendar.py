"""Market sessions (bot/market_calendar.py) and `session:` on rules, on the real XNYS calendar.

Dates checked against the NYSE holiday list: 2026-11-26 Thanksgiving (closed),
2026-11-27 early close 13:00, 2026-07-03 Independence Day observed (closed).
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.market_calendar import (
    Session,
    add_trading_days,
    fresh_in_session,
    in_session,
    next_open,
    trading_day,
)
from bot.models import NewsEvent, PriceEvent
from bot.rules.engine import RuleEngine
from bot.rules.loader import RuleLoadError, RuleSet, load_rules_dir
from bot.rules.schema import RULE_ADAPTER
from bot.sources.config import SourcesFile


def utc(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


REGULAR, EXTENDED, ANY = Session.us_regular, Session.us_extended, Session.any


def test_holidays_weekends_and_early_closes() -> None:
    assert not trading_day(utc(11, 26, 15).date())  # Thanksgiving
    assert not in_session(utc(11, 26, 15), EXTENDED)
    # day after Thanksgiving: 09:30-13:00 New York = 14:30-18:00 UTC
    assert in_session(utc(11, 27, 14, 30), REGULAR)
    assert in_session(utc(11, 27, 18, 0), REGULAR)  # the close itself belongs to the session
    assert not in_session(utc(11, 27, 18, 1), REGULAR)
    assert in_session(utc(11, 27, 21, 59), EXTENDED)  # after hours end 4 h after the early close
    assert not in_session(utc(11, 27, 22, 1), EXTENDED)
    assert not in_session(utc(11, 28, 15), EXTENDED)  # Saturday
    assert in_session(utc(11, 28, 15), ANY)
    # normal day: 04:00 New York pre-market (09:00 UTC in winter) to 20:00 (01:00 UTC next day)
    assert not in_session(utc(11, 30, 8, 59), EXTENDED)
    assert in_session(utc(11, 30, 9, 0), EXTENDED) and not in_session(utc(11, 30, 9, 0), REGULAR)
    assert in_session(utc(12, 1, 1, 0), EXTENDED)


def test_next_open_and_trading_days_roll_over_weekends_and_holidays() -> None:
    assert next_open(utc(11, 28, 15), REGULAR) == utc(11, 30, 14, 30)
    assert next_open(utc(11, 25, 23), REGULAR) == utc(11, 27, 14, 30)  # over Thanksgiving
    assert next_open(utc(11, 30, 15), REGULAR) == utc(11, 30, 15)  # already open
    # Thursday 2026-07-02 10:00 New York + 1 trading day: Friday 07-03 is a holiday → Monday
    assert add_trading_days(utc(7, 2, 14)) == utc(7, 6, 14)
    assert add_trading_days(utc(11, 28, 15)) == utc(11, 30, 15)  # Saturday → Monday
    assert add_trading_days(utc(11, 30, 15), 2) == utc(12, 2, 15)


def test_a_stale_weekend_quote_is_not_fresh() -> None:
    friday_close = utc(11, 20, 21)  # 16:00 New York
    assert fresh_in_session(friday_close, friday_close + timedelta(minutes=5), REGULAR)
    assert not fresh_in_session(friday_close, utc(11, 21, 15), EXTENDED)  # polled Saturday
    assert not fresh_in_session(utc(11, 21, 15), utc(11, 21, 15), EXTENDED)  # stamped Saturday
    assert fresh_in_session(friday_close, utc(11, 21, 15), ANY)


def _engine(**extra: object) -> RuleEngine:
    rule = RULE_ADAPTER.validate_python(
        {
            "id": "vix-spike",
            "type": "change",
            "description": "VIX up 20%",
            "symbol": "^VIX",
            "pct": 20,
            "cooldown": 0,
            **extra,
        }
    )
    return RuleEngine(RuleSet(sources=SourcesFile(), watchlists={}, rules=[rule]))


def vix(when: datetime, last: float = 30.0, previous: float = 20.0) -> PriceEvent:
    return PriceEvent(
        id=f"vix:{when.isoformat()}",
        source="yahoo",
        symbol="^VIX",
        time=when,
        last=last,
        previous_close=previous,
    )


def test_price_rules_fire_by_default_only_on_fresh_quotes_in_extended_hours() -> None:
    engine = _engine()
    # Saturday: a quote stamped Friday's close, polled on Saturday: stale, never a spike
    assert engine.evaluate(vix(utc(11, 20, 21)), now=utc(11, 21, 15)) == []
    # the same move on a Monday morning, fresh
    [alert] = engine.evaluate(vix(utc(11, 30, 15)), now=utc(11, 30, 15, 5))
    assert alert.rule_id == "vix-spike"
    # pre-market counts as extended hours, not as the regular session
    assert engine.evaluate(vix(utc(12, 1, 10), previous=21), now=utc(12, 1, 10)) != []
    regular = _engine(session="us-regular")
    assert regular.evaluate(vix(utc(12, 1, 10)), now=utc(12, 1, 10)) == []
    anytime = _engine(session="any")
    assert anytime.evaluate(vix(utc(11, 20, 21)), now=utc(11, 21, 15)) != []


def test_news_rule_session_uses_the_time_it_is_seen() -> None:
    rule = RULE_ADAPTER.validate_python(
        {
            "id": "tariff",
            "type": "match",
            "description": "tariffs",
            "any": ["tariff"],
            "session": "us-regular",
        }
    )
    engine = RuleEngine(RuleSet(sources=SourcesFile(), watchlists={}, rules=[rule]))

    def headline(when: datetime) -> NewsEvent:
        return NewsEvent(
            id=f"n:{when.isoformat()}", source="wire", title="New tariff", published=when,
            seen_at=when,
        )  # fmt: skip

    assert engine.evaluate(headline(utc(11, 28, 15)), now=utc(11, 28, 15)) == []  # Saturday
    assert [a.rule_id for a in engine.evaluate(headline(utc(11, 30, 15)), now=utc(11, 30, 15))] == [
        "tariff"
    ]


def test_an_unknown_session_is_a_load_error() -> None:
    with pytest.raises(ValidationError, match="us-regular"):
        RULE_ADAPTER.validate_python(
            {"id": "x", "type": "match", "description": "x", "any": ["a"], "session": "asia"}
        )


def test_a_bad_session_in_a_rule_file_is_reported_with_file_and_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(Path(__file__).resolve().parent.parent / "rules", rules)
    text = (rules / "markets.yaml").read_text()
    text = text.replace("    hysteresis: 1\n", "    hysteresis: 1\n    session: asia\n", 1)
    (rules / "markets.yaml").write_text(text)
    line = text.splitlines().index("    session: asia") + 1
    with pytest.raises(RuleLoadError) as caught:
        load_rules_dir(rules)
    assert [str(p) for p in caught.value.problems] == [
        f"{rules / 'markets.yaml'}:{line}: rules[0].session: expected 'us-regular', "
        "'us-extended', 'fx' or 'any' (got 'asia')"
    ]


def test_the_fx_week_runs_sunday_evening_to_friday_evening_new_york() -> None:
    fx = Session.fx
    # Thanksgiving closes the NYSE, not the currency market; the yuan's Asian session counts
    assert in_session(utc(11, 26, 15), fx) and not in_session(utc(11, 26, 15), EXTENDED)
    assert in_session(utc(11, 24, 3), fx)  # 22:00 New York Monday = Tuesday morning in Shanghai
    # Friday 2026-11-27: open until 17:00 New York (22:00 UTC), then the weekend
    assert in_session(utc(11, 27, 22, 0), fx) and not in_session(utc(11, 27, 22, 1), fx)
    assert not in_session(utc(11, 28, 15), fx)  # Saturday
    assert not in_session(utc(11, 29, 21, 59), fx)  # Sunday 16:59 New York
    assert in_session(utc(11, 29, 22, 0), fx)  # Sunday 17:00 New York: the week opens
    assert next_open(utc(11, 28, 15), fx) == utc(11, 29, 22, 0)
    # a Friday-evening quote polled on Saturday is stale; a fresh Asian-session one is not
    assert not fresh_in_session(utc(11, 27, 21), utc(11, 28, 3), fx)
    assert fresh_in_session(utc(11, 24, 3), utc(11, 24, 3, 10), fx)


def test_the_bundled_yuan_rule_reads_the_fx_week() -> None:
    ruleset = load_rules_dir(Path(__file__).resolve().parents[1] / "rules")
    (yuan,) = [r for r in ruleset.rules if r.id == "yuan-move"]
    assert yuan.session is Session.fx
