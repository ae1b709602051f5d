"""Rule models: one pydantic model per rule `type`, joined in a discriminated union.

ElastAlert2-style rules as data. Every model forbids unknown keys so a typo is a
load error with a line number, not a silently ignored setting. Checks that need
more than one rule (unique ids, watch-list names, confirm references) live in
the loader.
"""

from __future__ import annotations

import math
import string
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    field_validator,
    model_validator,
)

from bot.durations import FORMS, parse_seconds
from bot.market_calendar import Session
from bot.models import Severity, Tone
from bot.rules.matcher import check_regex, check_text_term
from bot.rules.tone import build_lexicon

# ---------------------------------------------------------------------------
# Small types

def parse_duration(value: object) -> float:
    """Seconds from `90`, `"90s"`, `"30m"`, `"1.5h"`, `"1d"`, `"1w"` (the grammar of `bot.durations`)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a duration like {FORMS}")
    seconds = parse_seconds(value) if isinstance(value, str) else float(value)
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError("duration must be a non-negative number of seconds")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
RuleId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=128)]
Symbol = Annotated[str, Field(min_length=1, max_length=32)]
TextTerm = Annotated[str, AfterValidator(check_text_term)]

TEMPLATE_FIELDS: frozenset[str] = frozenset(
    {
        "title",
        "source",
        "url",
        "time",
        "symbol",
        "last",
        "previous_close",
        "change_pct",
        "tone",
        "tone_score",
        "rule_id",
        "description",
        "severity",
        "matched",
        "why",
        "tickers",
        "sectors",
    }
)
"""Names a `template` may use; all are plain values (no attribute or index access)."""


def check_template(template: str) -> str:
    """Refuse templates that would fail or leak at render time."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"bad template: {exc}") from None
    for _literal, name, spec, _conversion in parsed:
        if name is None:
            continue
        if name == "" or name.isdigit():
            raise ValueError("template fields must be named, e.g. {title}")
        if name not in TEMPLATE_FIELDS:
            raise ValueError(
                f"unknown template field {{{name}}} (allowed: {', '.join(sorted(TEMPLATE_FIELDS))})"
            )
        if spec and "{" in spec:
            raise ValueError(f"nested fields in the format of {{{name}}} are not allowed")
    return template


# ---------------------------------------------------------------------------
# Match conditions


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegexTerm(_Strict):
    """`{regex: "..."}`: a user regex (case-insensitive, no implicit word boundaries)."""

    regex: Annotated[str, AfterValidator(check_regex)]


Term = Annotated[
    Annotated[TextTerm, Tag("text")] | Annotated[RegexTerm, Tag("regex")],
    Discriminator(
        lambda v: (
            "text"
            if isinstance(v, str)
            else ("regex" if isinstance(v, (dict, RegexTerm)) else None)
        ),
        custom_error_type="term_kind",
        custom_error_message=(
            "expected a word/phrase or {regex: ...} (YAML reads bare on/off/yes/no "
            "as true/false and 2025 as a number: quote them)"
        ),
    ),
]


class NearTerm(_Strict):
    """`{near: [[...], [...]], within: 4, ordered: false}`: terms close together in one clause.

    One term from each list must match, with at most `within` words between
    consecutive matches and no sentence break between them; `ordered` requires
    the lists' order ("China … slaps … tariffs").
    """

    near: Annotated[
        list[Annotated[list[Term], Field(min_length=1)]], Field(min_length=2, max_length=4)
    ]
    within: int = Field(default=4, ge=0, le=30, description="max words between consecutive matches")
    ordered: bool = False


def _item_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "text"
    if isinstance(value, RegexTerm) or (isinstance(value, dict) and "regex" in value):
        return "regex"
    if isinstance(value, NearTerm) or (isinstance(value, dict) and "near" in value):
        return "proximity"  # not "near": a union tag equal to a key confuses error locations
    if isinstance(value, (Group, dict)):
        return "group"
    return None


Item = Annotated[
    Annotated[TextTerm, Tag("text")]
    | Annotated[RegexTerm, Tag("regex")]
    | Annotated[NearTerm, Tag("proximity")]
    | Annotated["Group", Tag("group")],
    Discriminator(
        _item_kind,
        custom_error_type="term_kind",
        custom_error_message=(
            "expected a word/phrase, {regex: ...}, {near: [[...], [...]]} "
            "or a group {any|all|none: [...]}"
        ),
    ),
]
Items = Annotated[list[Item], Field(min_length=1)]


ScopeName = Literal["negated", "denied", "hypothetical"]


class ConditionFields(_Strict):
    """The any/all/none lists shared by match rules and nested groups.

    `ignore_in`: matches of `any`/`all` terms inside these scopes do not count
    ("no plans to raise tariffs", "denies reports of tariffs", "if talks fail");
    nested groups inherit it unless they set their own. See bot/rules/layout.py.
    """

    any: Items | None = None
    all: Items | None = None
    none: Items | None = None
    ignore_in: list[ScopeName] | None = None


class Group(ConditionFields):
    """A nested condition: any (≥1 item) AND all (every item) AND none (no item)."""

    @model_validator(mode="after")
    def _not_empty(self) -> Group:
        if self.any is None and self.all is None and self.none is None:
            raise ValueError("a group needs at least one of any, all, none")
        return self


# ---------------------------------------------------------------------------
# Rules

NewsKey = Literal["rule", "title", "source"]
PriceKey = Literal["symbol", "rule"]
TextField = Literal["title", "summary"]


class SurgeSpec(_Strict):
    """`surge: {sources: [tag or id…], for: 60m, interval: 15s}`: when the rule alerts, poll
    these sources at their floor (or `interval`, whichever is slower) for `for` (issue 17)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    sources: Annotated[list[str], Field(min_length=1)]
    for_: Duration = Field(alias="for", description="how long the surge lasts")
    interval: Duration = Field(default=0.0, description="seconds between polls; below a source's floor means the floor")

    @field_validator("for_")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("for must be longer than 0s")
        if value > 7 * 86400:
            raise ValueError("for must be at most a week (1w)")
        return value


class RuleBase(_Strict):
    """Fields every rule has, whatever its type."""

    kind: ClassVar[Literal["news", "price", "composite"]]

    id: RuleId
    description: str = Field(min_length=1)
    severity: Severity = Severity.warning
    cooldown: Duration = Field(
        default=600.0, description="seconds; applied by the pipeline per (rule, key)"
    )
    watchlist: list[str] = []
    tags: list[str] = []
    enabled: bool = True
    template: Annotated[str, AfterValidator(check_template)] | None = None
    sources: list[str] | None = Field(default=None, description="source ids or tags; default: all")
    session: Session | None = Field(
        default=None,
        description="us-regular | us-extended | fx | any; default: us-extended for price rules "
        "(fresh quotes only), any for the others",
    )
    surge: SurgeSpec | None = None


class MatchRule(RuleBase, ConditionFields):
    """Words, phrases and regexes over a headline's title and summary."""

    kind: ClassVar[Literal["news"]] = "news"
    type: Literal["match"]
    fields: Annotated[list[TextField], Field(min_length=1)] = ["title", "summary"]
    key: NewsKey = "rule"

    @model_validator(mode="after")
    def _needs_positive(self) -> MatchRule:
        if self.any is None and self.all is None:
            raise ValueError(
                "a match rule needs 'any' or 'all' (a 'none' list alone matches everything)"
            )
        return self


class ToneRule(RuleBase):
    """Readout tone (hope/friction) from the weighted phrase lexicon."""

    kind: ClassVar[Literal["news"]] = "news"
    type: Literal["tone"]
    alert_on: Annotated[list[Tone], Field(min_length=1)] = [Tone.hope, Tone.friction]
    min_score: float = Field(default=0.3, ge=0.0, le=1.0, description="minimum |tone_score|")
    require: Group | None = None
    lexicon: dict[TextTerm, float] = {}
    replace_lexicon: bool = False
    fields: Annotated[list[TextField], Field(min_length=1)] = ["title", "summary"]
    key: NewsKey = "rule"

    @field_validator("alert_on")
    @classmethod
    def _no_neutral(cls, value: list[Tone]) -> list[Tone]:
        if Tone.neutral in value:
            raise ValueError("alert_on takes 'hope' and/or 'friction' (neutral never alerts)")
        return value

    @model_validator(mode="after")
    def _check_lexicon(self) -> ToneRule:
        merged = build_lexicon(self.lexicon, replace=self.replace_lexicon)
        if not any(merged.values()):
            raise ValueError("the lexicon is empty: add phrases or drop replace_lexicon")
        return self

    def merged_lexicon(self) -> dict[str, float]:
        return build_lexicon(self.lexicon, replace=self.replace_lexicon)


class ThresholdRule(RuleBase):
    """A price level crossed (fires on the crossing, re-arms on the way back)."""

    kind: ClassVar[Literal["price"]] = "price"
    type: Literal["threshold"]
    symbol: Symbol
    above: float | None = Field(default=None, description="fires when last >= above")
    below: float | None = Field(default=None, description="fires when last <= below")
    hysteresis: float = Field(
        default=0.0, ge=0.0, description="re-arm only this far back across the level"
    )
    key: PriceKey = "symbol"

    @model_validator(mode="after")
    def _one_level(self) -> ThresholdRule:
        if (self.above is None) == (self.below is None):
            raise ValueError("a threshold rule needs exactly one of 'above' or 'below'")
        return self

    @property
    def level(self) -> float:
        return self.above if self.above is not None else self.below  # type: ignore[return-value]


class ChangeRule(RuleBase):
    """A move vs the previous close, or vs the oldest sample within `window`."""

    kind: ClassVar[Literal["price"]] = "price"
    type: Literal["change"]
    symbol: Symbol
    pct: float | None = Field(
        default=None, description="signed: 20 = up 20% or more, -2 = down 2% or more"
    )
    abs_pct: float | None = Field(default=None, gt=0, description="either direction")
    window: Duration | None = None
    key: PriceKey = "symbol"

    @model_validator(mode="after")
    def _one_amount(self) -> ChangeRule:
        if (self.pct is None) == (self.abs_pct is None):
            raise ValueError("a change rule needs exactly one of 'pct' or 'abs_pct'")
        if self.pct == 0:
            raise ValueError("pct must not be 0")
        if self.window is not None and self.window <= 0:
            raise ValueError("window must be longer than 0s")
        return self

    def hit(self, change_pct: float) -> bool:
        if self.abs_pct is not None:
            return abs(change_pct) >= self.abs_pct
        assert self.pct is not None
        return change_pct >= self.pct if self.pct > 0 else change_pct <= self.pct


class ConfirmRule(RuleBase):
    """Composite: every listed rule hit (on distinct events) within `within`."""

    kind: ClassVar[Literal["composite"]] = "composite"
    type: Literal["confirm"]
    rules: Annotated[list[RuleId], Field(min_length=2)]
    within: Duration
    key: Literal["rule"] = "rule"

    @field_validator("rules")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("list each rule once")
        return value

    @field_validator("within")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("within must be longer than 0s")
        return value


RULE_TYPES: dict[str, type[RuleBase]] = {
    "match": MatchRule,
    "tone": ToneRule,
    "threshold": ThresholdRule,
    "change": ChangeRule,
    "confirm": ConfirmRule,
}
"""The registry of rule types (explicit: adding a type means adding it here and to `Rule`)."""

Rule = Annotated[
    MatchRule | ToneRule | ThresholdRule | ChangeRule | ConfirmRule,
    Field(discriminator="type"),
]
NewsRule = MatchRule | ToneRule
PriceRule = ThresholdRule | ChangeRule

RULE_ADAPTER: TypeAdapter[Rule] = TypeAdapter(Rule)


class RuleFileShape(_Strict):
    """A rule file: `rules: [...]` at top level (items validated one by one)."""

    rules: list[Any]


def known_keys() -> set[str]:
    """Every key any rule model accepts (for "did you mean" hints)."""
    keys: set[str] = {
        "rules",
        "regex",
        "any",
        "all",
        "none",
        "near",
        "within",
        "ordered",
        "ignore_in",
        "for",
        "interval",
    }
    for model in RULE_TYPES.values():
        keys |= set(model.model_fields)
    return keys


Group.model_rebuild()
MatchRule.model_rebuild()
ToneRule.model_rebuild()


# ---------------------------------------------------------------------------
# watchlists.yaml

SectorName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
Ticker = Annotated[str, Field(pattern=r"^[A-Z0-9^][A-Z0-9.^=-]{0,15}$")]


class WatchlistEntry(_Strict):
    """One sector: a display title, why it matters for the trade war, its tickers."""

    title: str = Field(min_length=1)
    why: str = Field(min_length=1)
    tickers: Annotated[list[Ticker], Field(min_length=1)]


class WatchlistsFile(_Strict):
    """`watchlists.yaml`: sector name -> entry."""

    watchlists: dict[SectorName, WatchlistEntry]
