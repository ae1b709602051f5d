"""Schema of `rules/calendar.yaml`: scheduled events (talks, tariff deadlines) that surge sources.

Why a file and not rules: the date of a round of talks or a tariff deadline is known in
advance, so the official sources can be polled at their floor *before* the readout is
published instead of after the first headline about it. Each entry's window is
`start - before` … `(end or start) + after`; `bot.sources.surge.SurgeBoard` reads it.

Times must carry their zone — an offset (`2025-05-10T10:00:00+02:00`, `…Z`) or an IANA name
after the time (`2025-05-10 10:00 Europe/Zurich`): a talks date without one is an hour or
eight off, which is the whole point of the file.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from bot.clock import ensure_utc
from bot.rules.schema import Duration

CALENDAR_FILE = "calendar.yaml"
_ZONED = re.compile(r"^(?P<when>\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}(?::\d{2})?)\s+(?P<zone>[A-Za-z_]+(?:/[A-Za-z0-9_+-]+)*)$")
MAX_WINDOW = timedelta(days=14)


def parse_zoned(value: object) -> datetime:
    """An aware UTC datetime from YAML's datetime, ISO text with an offset, or `date time Zone/Name`."""
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, date):
        raise ValueError("give a time and a zone, e.g. 2025-05-10T10:00:00+02:00 or '2025-05-10 10:00 Europe/Zurich'")
    elif isinstance(value, str):
        text = value.strip()
        m = _ZONED.match(text)
        if m is not None:
            try:
                zone = ZoneInfo(m.group("zone"))
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {m.group('zone')!r} (an IANA name such as Asia/Shanghai)") from None
            return ensure_utc(datetime.fromisoformat(m.group("when")).replace(tzinfo=zone))
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                "expected a time with its zone, e.g. 2025-05-10T10:00:00+02:00 or '2025-05-10 10:00 Europe/Zurich'"
            ) from None
    else:
        raise ValueError("expected a time with its zone, e.g. 2025-05-10T10:00:00+02:00")
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("the time needs a zone: add an offset (+08:00, Z) or a zone name (Asia/Shanghai)")
    return ensure_utc(when)


ZonedTime = Annotated[datetime, BeforeValidator(parse_zoned)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CalendarSurge(_Strict):
    """Which sources to poll at their floor around the event, and for how long."""

    sources: Annotated[list[str], Field(min_length=1)]
    before: Duration = Field(default=1800.0, description="surge starts this long before `start`")
    after: Duration = Field(default=7200.0, description="and lasts this long after `end` (or `start`)")
    interval: Duration = Field(default=0.0, description="seconds between polls; below a source's floor means the floor")


class CalendarEntry(_Strict):
    """One scheduled event: a round of talks, a tariff deadline, a scheduled statement."""

    name: str = Field(min_length=1, max_length=200)
    start: ZonedTime
    end: ZonedTime | None = None
    surge: CalendarSurge
    url: str | None = Field(default=None, description="where the date comes from")

    @model_validator(mode="after")
    def _ordered(self) -> CalendarEntry:
        if self.end is not None and self.end < self.start:
            raise ValueError("end is before start")
        if (self.end or self.start) - self.start > MAX_WINDOW:
            raise ValueError("an event longer than two weeks is not a surge: split it")
        return self

    @property
    def window_start(self) -> datetime:
        return self.start - timedelta(seconds=self.surge.before)

    @property
    def window_end(self) -> datetime:
        return (self.end or self.start) + timedelta(seconds=self.surge.after)


class CalendarFile(_Strict):
    """`calendar.yaml`: `events: [...]`."""

    events: list[CalendarEntry] = []


CALENDAR_KEYS = frozenset({"events", "name", "start", "end", "surge", "url", "sources", "before", "after", "interval"})
