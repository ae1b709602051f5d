"""The demo scenario: real headlines with demo times, and a VIX path (see scenario.yaml)."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

SCENARIO_FILE = Path(__file__).resolve().parent / "scenario.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NewsStep(_Strict):
    at: time
    outlet: str = Field(min_length=1)
    title: str = Field(min_length=1)
    summary: str = ""
    summary_source: str | None = None
    published: str  # the outlet's own date, kept for the record
    url: str


class Quote(_Strict):
    at: time
    last: float


class PricePath(_Strict):
    symbol: str
    previous_close: float
    quotes: list[Quote]


class Scenario(_Strict):
    title: str
    start: time
    end: time
    news: list[NewsStep]
    prices: PricePath

    @property
    def minutes(self) -> float:
        """Length of the scenario day in minutes."""
        return (_minutes(self.end) - _minutes(self.start)) or 1.0

    def offset_minutes(self, at: time) -> float:
        return _minutes(at) - _minutes(self.start)

    def outlets(self) -> dict[str, str]:
        """Feed id → outlet name, one loopback feed per outlet."""
        return {feed_id(step.outlet): step.outlet for step in self.news}


def _minutes(at: time) -> float:
    return at.hour * 60 + at.minute + at.second / 60


def feed_id(outlet: str) -> str:
    """`National Post (Reuters)` → `national-post-reuters` (a valid source id)."""
    return re.sub(r"[^a-z0-9]+", "-", outlet.lower()).strip("-")[:64] or "outlet"


def load_scenario(path: Path = SCENARIO_FILE) -> Scenario:
    return Scenario.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def scenario_datetime(day: datetime, at: time) -> datetime:
    """`at` on the scenario's day (`day` is midnight UTC)."""
    return day + timedelta(hours=at.hour, minutes=at.minute, seconds=at.second)
