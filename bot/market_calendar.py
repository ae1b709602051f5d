"""The US market calendar: NYSE sessions, extended hours, trading days (exchange_calendars XNYS).

One place answers "is the US market open?" for rules (`session:`), chats
(deliver only in a session) and live outcomes (+1 trading day). Holidays and
early closes come from `exchange_calendars` (rule-based, works offline).

Sessions:
* ``us-regular``  — the NYSE session, open to close inclusive (a quote stamped at
  the 16:00 close belongs to the session it closes; early closes at 13:00);
* ``us-extended`` — 04:00 New York to four hours after the close (20:00, or 17:00
  on early-close days), on NYSE trading days only;
* ``fx``          — the currency market's week: Sunday 17:00 New York to Friday 17:00
  New York (the usual FX convention; NYSE holidays do not close it), so a yuan quote
  in the Asian session counts and a weekend quote does not;
* ``any``         — always.
"""

from __future__ import annotations

import functools
import logging
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    import exchange_calendars as xcals

log = logging.getLogger(__name__)

NEW_YORK = ZoneInfo("America/New_York")
PRE_MARKET = time(4, 0)
AFTER_HOURS = timedelta(hours=4)
_FRIDAY, _SATURDAY, _SUNDAY = 4, 5, 6
FX_WEEK_TURN = time(17, 0)
"""FX trading week: opens Sunday and closes Friday at this New York time."""
QUOTE_MAX_AGE = timedelta(hours=1)
"""A quote older than this when a rule looks at it is stale (delayed feeds lag ~15 min)."""
_FIRST = date(2000, 1, 3)
_YEARS_AHEAD = 3


class Session(StrEnum):
    us_regular = "us-regular"
    us_extended = "us-extended"
    fx = "fx"
    any = "any"


@functools.cache
def _calendar() -> xcals.ExchangeCalendar:
    # Imported on first use: loading rules (which name `Session`) stays free of pandas.
    import exchange_calendars as xcals

    last = date(datetime.now(UTC).year + _YEARS_AHEAD, 12, 31)
    return xcals.get_calendar("XNYS", start=_FIRST.isoformat(), end=last.isoformat())


@functools.lru_cache(maxsize=4096)
def _hours(day: date) -> tuple[datetime, datetime] | None:
    """(open, close) in UTC of the NYSE session on `day`; None when it is not a trading day."""
    import pandas as pd

    cal = _calendar()
    stamp = pd.Timestamp(day)
    if not cal.first_session <= stamp <= cal.last_session:
        # outside the calendar's range: weekdays 09:30-16:00, no holidays (logged once per day)
        log.warning("market calendar: %s is outside XNYS data; assuming a plain weekday", day)
        if day.weekday() >= 5:
            return None
        return (
            datetime.combine(day, time(9, 30), NEW_YORK).astimezone(UTC),
            datetime.combine(day, time(16, 0), NEW_YORK).astimezone(UTC),
        )
    if not cal.is_session(stamp):
        return None
    open_, close = cal.session_open_close(stamp)
    return open_.to_pydatetime(), close.to_pydatetime()


def trading_day(day: date) -> bool:
    return _hours(day) is not None


def window(day: date, session: Session) -> tuple[datetime, datetime] | None:
    """The UTC span of `session` on New York date `day` (None: no session that day)."""
    if session is Session.fx:
        return _fx_window(day)
    hours = _hours(day)
    if hours is None:
        return None
    if session is Session.us_regular:
        return hours
    if session is Session.us_extended:
        start = datetime.combine(day, PRE_MARKET, NEW_YORK).astimezone(UTC)
        return start, hours[1] + AFTER_HOURS
    start = datetime.combine(day, time(0), NEW_YORK).astimezone(UTC)
    return start, start + timedelta(days=1)


def _fx_window(day: date) -> tuple[datetime, datetime] | None:
    """The FX week's part of New York date `day`: none on Saturday, from 17:00 on Sunday,
    until 17:00 on Friday, the whole day otherwise."""
    weekday = day.weekday()  # Monday 0 … Sunday 6
    if weekday == _SATURDAY:
        return None
    start = datetime.combine(day, time(0), NEW_YORK)
    end = start + timedelta(days=1)
    if weekday == _SUNDAY:  # Sunday: the week opens
        start = datetime.combine(day, FX_WEEK_TURN, NEW_YORK)
    elif weekday == _FRIDAY:  # Friday: the week closes
        end = datetime.combine(day, FX_WEEK_TURN, NEW_YORK)
    return start.astimezone(UTC), end.astimezone(UTC)


def in_session(when: datetime, session: Session) -> bool:
    """Is `when` (aware) inside `session`? Ends are inclusive."""
    if session is Session.any:
        return True
    span = window(when.astimezone(NEW_YORK).date(), session)
    return span is not None and span[0] <= when <= span[1]


def next_open(when: datetime, session: Session) -> datetime:
    """`when` if it is in `session`, else the start of the next one."""
    if in_session(when, session):
        return when
    day = when.astimezone(NEW_YORK).date()
    for _ in range(30):  # the longest NYSE closure is days, not weeks
        span = window(day, session)
        if span is not None and span[0] > when:
            return span[0]
        day += timedelta(days=1)
    raise ValueError(f"no {session.value} session within 30 days of {when.isoformat()}")


def add_trading_days(when: datetime, days: int = 1) -> datetime:
    """The same New York wall time on the `days`-th trading day after `when`'s date
    (a Friday or Saturday alert's +1 is Monday; a holiday is skipped)."""
    local = when.astimezone(NEW_YORK)
    day = local.date()
    left = days
    while left > 0:
        day += timedelta(days=1)
        if trading_day(day):
            left -= 1
    return datetime.combine(day, local.time(), NEW_YORK).astimezone(UTC)


def fresh_in_session(
    quote_time: datetime, now: datetime, session: Session, *, max_age: timedelta = QUOTE_MAX_AGE
) -> bool:
    """May a rule with `session` act on a quote stamped `quote_time`, looked at `now`?

    `any`: always (the old behaviour; daily CSV series need it). Otherwise the quote
    must be inside the session and no older than `max_age`: a Friday close polled on
    Saturday is stale, and a pre-market quote never fires a `us-regular` rule.
    """
    if session is Session.any:
        return True
    return in_session(quote_time, session) and now - quote_time <= max_age
