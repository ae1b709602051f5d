"""Typed models that cross stage boundaries: events in, alerts out.

Events are platform-independent (no feed or chat detail leaks past the source
that made them); alerts are what delivery and the adapters see.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Severity(StrEnum):
    info = "info"
    warning = "warning"
    critical = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank


_SEVERITY_RANK = {Severity.info: 0, Severity.warning: 1, Severity.critical: 2}


class Tone(StrEnum):
    hope = "hope"
    friction = "friction"
    neutral = "neutral"


def stable_id(*parts: str) -> str:
    """A short, stable id from the parts that identify an item (not its wall time)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:24]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NewsEvent(_Frozen):
    """One headline from a news feed (or a replayed statement in a backtest)."""

    kind: Literal["news"] = "news"
    id: str
    source: str
    title: str
    summary: str = ""
    url: str | None = None
    published: datetime | None = None
    seen_at: datetime
    tags: tuple[str, ...] = ()

    @property
    def time(self) -> datetime:
        """When it happened: published time if known, else when we first saw it."""
        return self.published or self.seen_at

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.summary}" if self.summary else self.title


class PriceEvent(_Frozen):
    """One price sample: symbol, time, last, previous close."""

    kind: Literal["price"] = "price"
    id: str
    source: str
    symbol: str
    time: datetime
    last: float
    previous_close: float | None = None
    tags: tuple[str, ...] = ()

    @property
    def change_pct(self) -> float | None:
        if self.previous_close in (None, 0):
            return None
        assert self.previous_close is not None
        return (self.last - self.previous_close) / self.previous_close * 100.0


Event = Annotated[NewsEvent | PriceEvent, Field(discriminator="kind")]


class WatchItem(_Frozen):
    """A sector of a watch-list with its tickers and why they matter."""

    name: str
    title: str
    why: str
    tickers: tuple[str, ...]


class Explanation(_Frozen):
    """Why a rule fired: the words, the price move, the tone terms."""

    matched_terms: tuple[str, ...] = ()
    tone_terms: tuple[tuple[str, float], ...] = ()
    price_detail: str | None = None
    parts: tuple[str, ...] = ()  # for composite rules: the sub-rule ids that fired

    def summary(self) -> str:
        bits: list[str] = []
        if self.matched_terms:
            bits.append("matched " + ", ".join(repr(t) for t in self.matched_terms))
        if self.tone_terms:
            bits.append(
                "tone terms " + ", ".join(f"{t!r} ({w:+.2f})" for t, w in self.tone_terms)
            )
        if self.price_detail:
            bits.append(self.price_detail)
        if self.parts:
            bits.append("confirmed by " + " + ".join(self.parts))
        return "; ".join(bits)


AlertKind = Literal["news", "price", "composite"]


class Alert(_Frozen):
    """A rule firing on an event: what delivery routes and adapters render."""

    id: str
    rule_id: str
    rule_description: str
    severity: Severity
    kind: AlertKind
    event_id: str
    key: str
    title: str
    url: str | None = None
    source: str
    event_time: datetime
    created_at: datetime
    tone: Tone | None = None
    tone_score: float | None = None
    watchlist: tuple[WatchItem, ...] = ()
    explanation: Explanation = Explanation()
    message: str | None = None
    tags: tuple[str, ...] = ()
    # The story (bot.stories) this alert's event belongs to; news alerts only.
    story: str | None = None
    sources: tuple[str, ...] = ()  # sources that had reported the story when this alert fired
    update: bool = False  # an earlier alert of the same story exists: this one edits its message

    @property
    def tickers(self) -> list[str]:
        seen: dict[str, None] = {}
        for item in self.watchlist:
            for t in item.tickers:
                seen.setdefault(t, None)
        return list(seen)

    def to_json_dict(self) -> dict[str, Any]:
        """The `once --json` / `backtest --json` line shape."""
        return {
            "id": self.id,
            "rule": self.rule_id,
            "description": self.rule_description,
            "severity": self.severity.value,
            "kind": self.kind,
            "title": self.title,
            "url": self.url,
            "source": self.source,
            "time": self.event_time.isoformat(),
            "watchlist": self.tickers,
            "sectors": [w.name for w in self.watchlist],
            "tone": self.tone.value if self.tone else None,
            "tone_score": self.tone_score,
            "why": self.explanation.summary(),
            "message": self.message,
            "story": self.story,
            "sources": list(self.sources),
            "update": self.update,
        }


def alert_id(rule_id: str, event_id: str) -> str:
    return stable_id("alert", rule_id, event_id)
