"""The shape of a rule-test file (`rules/tests/*.yaml`), strict like the rule files.

Every model forbids unknown keys, so a typo (`expect_non`) is a `file:line` error
instead of a test that silently asserts less than its author meant.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from bot.models import Severity, Tone
from bot.rules.schema import Duration, RuleId, Symbol


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HeadlineSpec(_Strict):
    """A headline as a news source would hand it over."""

    at: Duration
    headline: Annotated[str, Field(min_length=1)]
    summary: str = ""
    source: Annotated[str, Field(min_length=1)] = "test"
    url: str | None = None

    @field_validator("headline")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("headline is blank")
        return value


class PriceQuote(_Strict):
    symbol: Symbol
    value: float
    previous_close: float | None = None

    @field_validator("value", "previous_close")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("expected a finite number")
        return value


class PriceSpec(_Strict):
    """One price sample (`last` = value) as a price source would hand it over."""

    at: Duration
    price: PriceQuote


def _event_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        if "price" in value:
            return "price-event"
        if "headline" in value:
            return "headline-event"
    return None


EventSpec = Annotated[
    Annotated[HeadlineSpec, Tag("headline-event")] | Annotated[PriceSpec, Tag("price-event")],
    Discriminator(
        _event_kind,
        custom_error_type="event_kind",
        custom_error_message="an event needs either `headline` or `price`",
    ),
]


class Expectation(_Strict):
    """An alert that must occur; every field but `rule` narrows the match (partial matching)."""

    rule: RuleId
    at: Duration | None = None
    severity: Severity | None = None
    tone: Tone | None = None
    watchlist: list[str] | None = None
    """Sector names or tickers that must all be on the alert's watch-list (a subset)."""
    count: Annotated[int, Field(ge=1)] | None = None
    """Exactly this many matching alerts (default: at least one)."""


class RuleTest(_Strict):
    name: Annotated[str, Field(min_length=1)]
    start: datetime | None = None
    """Absolute time of `at: 0` (default: a fixed Monday, 2025-01-06 14:30 UTC)."""
    events: list[EventSpec]
    expect: list[Expectation] | None = None
    """Alerts that must occur; `[]` means nothing may fire."""
    expect_none: list[RuleId] = []
    """Rules that must not fire."""

    @field_validator("events")
    @classmethod
    def _has_events(cls, value: list[HeadlineSpec | PriceSpec]) -> list[HeadlineSpec | PriceSpec]:
        if not value:
            raise ValueError("a test needs at least one event")
        return value

    @model_validator(mode="after")
    def _asserts_something(self) -> RuleTest:
        if self.expect is None and not self.expect_none:
            raise ValueError("a test needs `expect` (use [] for \"nothing fires\") or `expect_none`")
        return self


class RuleTestFile(_Strict):
    tests: list[RuleTest]

    @field_validator("tests")
    @classmethod
    def _has_tests(cls, value: list[RuleTest]) -> list[RuleTest]:
        if not value:
            raise ValueError("no tests: `tests:` lists none")
        return value


KNOWN_KEYS: frozenset[str] = frozenset(
    name
    for model in (HeadlineSpec, PriceQuote, PriceSpec, Expectation, RuleTest, RuleTestFile)
    for name in model.model_fields
)
