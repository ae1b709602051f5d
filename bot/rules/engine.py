"""The rule engine: events in, candidate alerts out. Pure of I/O.

`RuleEngine.evaluate(event, now=...)` never touches the network, a database or
the clock: time is `now` (stamped on alerts as `created_at`) and the event's own
time. The only state kept is in memory and only what rules need: recent price
samples per symbol (for `change` over a window), threshold/change crossing
state (so a level fires once per crossing, not on every sample beyond it), and
recent sub-rule hits for `confirm` rules.

Cooldown and dedup are NOT applied here: the pipeline does that with persistent
storage, per (rule id, `alert.key`), using `rule.cooldown`.
"""

from __future__ import annotations

import bisect
import copy
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.market_calendar import Session, fresh_in_session, in_session
from bot.models import (
    Alert,
    Event,
    Explanation,
    NewsEvent,
    PriceEvent,
    WatchItem,
    alert_id,
    stable_id,
)
from bot.rules.loader import RuleSet
from bot.rules.matcher import (
    CompiledTerm,
    Condition,
    KeywordIndex,
    Near,
    Needs,
    SubCondition,
    normalize_text,
    tokens_of,
)
from bot.rules.schema import (
    ChangeRule,
    ConditionFields,
    ConfirmRule,
    Group,
    MatchRule,
    NearTerm,
    RegexTerm,
    Rule,
    ThresholdRule,
    ToneRule,
)
from bot.rules.tone import ToneResult, ToneScorer

PRICE_SESSION = Session.us_extended
"""Price rules without `session:` act only on fresh quotes in US extended hours."""

MAX_KEY_LENGTH = 256
MAX_CONFIRM_HITS = 64
"""Recent hits kept per confirm sub-rule (bounds memory on a noisy tape)."""


# ---------------------------------------------------------------------------
# Compilation


def compile_condition(cond: ConditionFields, inherited: frozenset[str] = frozenset()) -> Condition:
    """A schema condition (rule or nested group) as a compiled matcher Condition."""
    ignore = frozenset(cond.ignore_in) if cond.ignore_in is not None else inherited

    def term(v: str | RegexTerm) -> CompiledTerm:
        return CompiledTerm.text(v) if isinstance(v, str) else CompiledTerm.from_regex(v.regex)

    def items(
        values: Iterable[str | RegexTerm | NearTerm | Group] | None, kinds: frozenset[str]
    ) -> list[CompiledTerm | SubCondition] | None:
        if values is None:
            return None
        out: list[CompiledTerm | SubCondition] = []
        for v in values:
            if isinstance(v, (str, RegexTerm)):
                out.append(term(v))
            elif isinstance(v, NearTerm):
                lists = [[term(t) for t in terms] for terms in v.near]
                out.append(Near(lists, within=v.within, ordered=v.ordered, ignore=kinds))
            else:
                out.append(compile_condition(v, kinds))
        return out

    return Condition.build(
        any=items(cond.any, ignore),
        all=items(cond.all, ignore),
        none=items(cond.none, frozenset()),
        ignore=ignore,
    )


@dataclass(slots=True)
class CompiledNewsRule:
    """A news rule ready to evaluate: its condition (match, or a tone rule's `require`) and scorer."""

    order: int
    rule: MatchRule | ToneRule
    condition: Condition | None
    scorer: ToneScorer | None
    sources: frozenset[str] | None

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.rule.fields))

    def needs(self) -> Needs:
        if self.condition is not None:
            needs = self.condition.needs()
            if needs is not None or self.scorer is None:
                return needs
        return self.scorer.needs() if self.scorer is not None else None


@dataclass(slots=True)
class NewsHit:
    """A news rule that fired: the snippets its condition matched and the tone, if scored."""

    rule: MatchRule | ToneRule
    matched: list[str]
    tone: ToneResult | None


def news_texts(title: str, summary: str = "") -> dict[tuple[str, ...], str]:
    """The normalised text each `fields` choice reads (title, summary, or both)."""
    title = normalize_text(title)
    summary = normalize_text(summary)
    both = f"{title}\n{summary}" if summary else title
    return {
        ("title",): title,
        ("summary",): summary,
        ("title", "summary"): both,
        ("summary", "title"): both,
    }


def tone_fires(rule: ToneRule, tone: ToneResult) -> bool:
    """A tone rule fires when the tone is one it alerts on, strongly enough."""
    return tone.tone in rule.alert_on and abs(tone.score) >= rule.min_score


# ---------------------------------------------------------------------------
# State


@dataclass(slots=True)
class _Window:
    """Price samples of one symbol, sorted by time, trimmed to `retention` seconds."""

    retention: float
    times: list[datetime] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def add(self, time: datetime, value: float) -> None:
        i = bisect.bisect_left(self.times, time)
        if i < len(self.times) and self.times[i] == time:
            self.values[i] = value
        else:
            self.times.insert(i, time)
            self.values.insert(i, value)
        cutoff = self.times[-1] - timedelta(seconds=self.retention)
        drop = bisect.bisect_left(self.times, cutoff)
        if drop:
            del self.times[:drop]
            del self.values[:drop]

    def reference(self, time: datetime, window: float) -> tuple[datetime, float] | None:
        """The oldest sample in [time - window, time), if any."""
        i = bisect.bisect_left(self.times, time - timedelta(seconds=window))
        if i < len(self.times) and self.times[i] < time:
            return self.times[i], self.values[i]
        return None


@dataclass(slots=True)
class _ChangeState:
    fired: bool = False
    session: float | None = None


@dataclass(slots=True)
class _ConfirmState:
    hits: dict[str, list[Alert]] = field(default_factory=dict)
    newest: datetime | None = None


# ---------------------------------------------------------------------------
# Rendering helpers


class _SafeFormatter(string.Formatter):
    """str.format over known fields; None renders as "n/a", bad specs fall back to str()."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if value is None:
            return "n/a"
        try:
            return format(value, format_spec)
        except (TypeError, ValueError):
            return str(value)


_FORMATTER = _SafeFormatter()


def fmt_price(value: float) -> str:
    """4 decimals for FX-sized numbers, 2 otherwise, thousands separators."""
    return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.2f}"


def fmt_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _dedupe_watchlist(items: Iterable[WatchItem]) -> tuple[WatchItem, ...]:
    seen: dict[str, WatchItem] = {}
    for item in items:
        seen.setdefault(item.name, item)
    return tuple(seen.values())


# ---------------------------------------------------------------------------
# Engine


class RuleEngine:
    """Evaluates one event at a time against a RuleSet (see module docstring)."""

    def __init__(self, ruleset: RuleSet) -> None:
        # price state is per (rule or symbol, source): two providers of one symbol
        # (a delayed and a live quote) are two series and must not interleave
        self._windows: dict[tuple[str, str], _Window] = {}
        self._threshold: dict[tuple[str, str], bool] = {}
        self._change: dict[tuple[str, str], _ChangeState] = {}
        self._confirm: dict[str, _ConfirmState] = {}
        self._install(ruleset)

    @property
    def ruleset(self) -> RuleSet:
        return self._ruleset

    def fresh(self) -> RuleEngine:
        """A new engine over the same compiled rules, with no price, crossing or confirm state.

        Compiling a rule set costs ~150 ms (its regexes outnumber `re`'s cache); rule tests
        start every case from nothing, so they compile once and take a fresh engine per case.
        """
        twin = copy.copy(self)
        twin._windows, twin._threshold, twin._change, twin._confirm = {}, {}, {}, {}
        return twin

    def replace_ruleset(self, ruleset: RuleSet) -> None:
        """Swap rules (hot reload), keeping state of rules whose id and type survive."""
        old = self._ruleset
        self._install(ruleset)

        def same(rule_id: str) -> Rule | None:
            new_rule, old_rule = ruleset.get(rule_id), old.get(rule_id)
            if new_rule is None or old_rule is None or type(new_rule) is not type(old_rule):
                return None
            if getattr(new_rule, "symbol", None) != getattr(old_rule, "symbol", None):
                return None
            return new_rule

        self._threshold = {k: v for k, v in self._threshold.items() if same(k[0])}
        self._change = {k: v for k, v in self._change.items() if same(k[0])}
        kept: dict[str, _ConfirmState] = {}
        for rule_id, state in self._confirm.items():
            rule = same(rule_id)
            if isinstance(rule, ConfirmRule):
                state.hits = {k: v for k, v in state.hits.items() if k in rule.rules}
                kept[rule_id] = state
        self._confirm = kept
        windows: dict[tuple[str, str], _Window] = {}
        for (symbol, source), window in self._windows.items():
            retention = self._retention.get(symbol)
            if retention is not None:
                window.retention = retention
                windows[(symbol, source)] = window
        self._windows = windows

    def _install(self, ruleset: RuleSet) -> None:
        self._ruleset = ruleset
        rules = ruleset.rules
        self._order = {r.id: i for i, r in enumerate(rules)}
        active = self._active_ids(ruleset)

        scorers: _Scorers = {}
        self._news: list[CompiledNewsRule] = []
        self._price: dict[str, list[ThresholdRule | ChangeRule]] = {}
        self._retention: dict[str, float] = {}
        self._listeners: dict[str, list[ConfirmRule]] = {}
        self._sources: dict[str, frozenset[str] | None] = {}
        for rule in rules:
            if rule.id not in active:
                continue
            self._sources[rule.id] = (
                _allowed_sources(rule.sources, ruleset) if rule.sources is not None else None
            )
            _RULE_TYPES[type(rule)].install(self, rule, scorers)
        self._index: KeywordIndex[int] = KeywordIndex((n.order, n.needs()) for n in self._news)

    # Installing one rule: each rule type's own step (see `_RULE_TYPES` below the class).

    def _install_match(self, rule: MatchRule, scorers: _Scorers) -> None:
        compiled = CompiledNewsRule(len(self._news), rule, compile_condition(rule), None, self._sources[rule.id])
        self._news.append(compiled)

    def _install_tone(self, rule: ToneRule, scorers: _Scorers) -> None:
        lexicon = tuple(sorted(rule.merged_lexicon().items()))
        scorer = scorers.get(lexicon) or scorers.setdefault(lexicon, ToneScorer(dict(lexicon)))
        condition = compile_condition(rule.require) if rule.require is not None else None
        self._news.append(CompiledNewsRule(len(self._news), rule, condition, scorer, self._sources[rule.id]))

    def _install_threshold(self, rule: ThresholdRule, scorers: _Scorers) -> None:
        self._price.setdefault(rule.symbol, []).append(rule)

    def _install_change(self, rule: ChangeRule, scorers: _Scorers) -> None:
        self._price.setdefault(rule.symbol, []).append(rule)
        if rule.window is not None:
            self._retention[rule.symbol] = max(self._retention.get(rule.symbol, 0.0), rule.window)

    def _install_confirm(self, rule: ConfirmRule, scorers: _Scorers) -> None:
        for ref in rule.rules:
            self._listeners.setdefault(ref, []).append(rule)

    @staticmethod
    def _active_ids(ruleset: RuleSet) -> set[str]:
        """Enabled rules plus everything an enabled confirm rule needs (even if disabled)."""
        active: set[str] = set()
        stack = [r.id for r in ruleset.rules if r.enabled]
        while stack:
            rule_id = stack.pop()
            if rule_id in active:
                continue
            active.add(rule_id)
            rule = ruleset.get(rule_id)
            if isinstance(rule, ConfirmRule):
                stack.extend(rule.rules)
        return active

    # -- evaluation ---------------------------------------------------------

    def evaluate(self, event: Event, *, now: datetime) -> list[Alert]:
        """Candidate alerts for one event, in rule-file order."""
        if isinstance(event, NewsEvent):
            hits = self._evaluate_news(event, now)
        else:
            hits = self._evaluate_price(event, now)
        i = 0
        while i < len(hits):  # composites may feed further composites
            rule, alert = hits[i]
            i += 1
            for confirm in self._listeners.get(rule.id, ()):
                if not self._source_ok(confirm.id, event):
                    continue
                composite = self._confirm_hit(confirm, rule.id, alert, event, now)
                if composite is not None:
                    hits.append((confirm, composite))
        fired = [
            (self._order[r.id], n, a)
            for n, (r, a) in enumerate(hits)
            if r.enabled and (r.kind == "price" or r.session is None or in_session(now, r.session))
        ]
        return [a for _, _, a in sorted(fired, key=lambda x: (x[0], x[1]))]

    def _source_ok(self, rule_id: str, event: Event) -> bool:
        allowed = self._sources.get(rule_id)
        return allowed is None or event.source in allowed or any(t in allowed for t in event.tags)

    def _evaluate_news(self, event: NewsEvent, now: datetime) -> list[tuple[Rule, Alert]]:
        return [
            (hit.rule, self._news_alert(hit.rule, event, now, hit.matched, hit.tone))
            for hit in self.news_hits(event.title, event.summary, event=event)
        ]

    @property
    def news_rules(self) -> list[CompiledNewsRule]:
        """The active news rules as compiled (file order); what `explain` reads."""
        return list(self._news)

    def news_hits(
        self, title: str, summary: str = "", *, event: NewsEvent | None = None
    ) -> list[NewsHit]:
        """The news rules that fire on a title/summary, in file order.

        With `event`, rules restricted to other sources are skipped (live and
        backtest); without it (explain), every active rule is tried.
        """
        texts = news_texts(title, summary)
        both = texts[("title", "summary")]
        tone_cache: dict[tuple[int, tuple[str, ...]], ToneResult] = {}
        token_cache: dict[tuple[str, ...], frozenset[str]] = {}
        out: list[NewsHit] = []
        for order in sorted(self._index.candidates(both)):
            compiled = self._news[order]
            rule = compiled.rule
            if (
                event is not None
                and compiled.sources is not None
                and not self._source_ok(rule.id, event)
            ):
                continue
            fields = compiled.fields
            text = texts[fields]
            matched: list[str] = []
            if compiled.condition is not None:
                tokens = token_cache.get(fields)
                if tokens is None:
                    tokens = token_cache[fields] = tokens_of(text)
                found = compiled.condition.test(text, tokens)
                if found is None:
                    continue
                matched = found
            tone: ToneResult | None = None
            if compiled.scorer is not None:
                assert isinstance(rule, ToneRule)
                cache_key = (id(compiled.scorer), fields)
                tone = tone_cache.get(cache_key)
                if tone is None:
                    tone = tone_cache[cache_key] = compiled.scorer.score(text)
                if not tone_fires(rule, tone):
                    continue
            out.append(NewsHit(rule, matched, tone))
        return out

    def _news_alert(
        self,
        rule: MatchRule | ToneRule,
        event: NewsEvent,
        now: datetime,
        matched: list[str],
        tone: ToneResult | None,
    ) -> Alert:
        if rule.key == "title":
            key = " ".join(event.title.casefold().split())[:MAX_KEY_LENGTH]
        elif rule.key == "source":
            key = event.source
        else:
            key = rule.id
        alert = Alert(
            id=alert_id(rule.id, event.id),
            rule_id=rule.id,
            rule_description=rule.description,
            severity=rule.severity,
            kind="news",
            event_id=event.id,
            key=key,
            title=event.title,
            url=event.url,
            source=event.source,
            event_time=event.time,
            created_at=now,
            tone=tone.tone if tone else None,
            tone_score=tone.score if tone else None,
            watchlist=self._ruleset.watchlist_for(rule),
            explanation=Explanation(
                matched_terms=tuple(matched),
                tone_terms=tone.terms if tone else (),
            ),
            tags=tuple(rule.tags),
        )
        return self._render(rule, alert, {})

    def _evaluate_price(self, event: PriceEvent, now: datetime) -> list[tuple[Rule, Alert]]:
        window = None
        retention = self._retention.get(event.symbol)
        if retention is not None:
            series = (event.symbol, event.source)
            window = self._windows.get(series)
            if window is None:
                window = self._windows[series] = _Window(retention)
            window.add(event.time, event.last)
        out: list[tuple[Rule, Alert]] = []
        for rule in self._price.get(event.symbol, ()):
            if not self._source_ok(rule.id, event):
                continue
            if not fresh_in_session(event.time, now, rule.session or PRICE_SESSION):
                continue  # a stale or out-of-session quote must never look like a move
            hit = _RULE_TYPES[type(rule)].price_hit
            alert = hit(self, rule, event, now, window) if hit is not None else None
            if alert is not None:
                out.append((rule, alert))
        return out

    def _threshold_hit(
        self, rule: ThresholdRule, event: PriceEvent, now: datetime, window: _Window | None = None
    ) -> Alert | None:
        level, last = rule.level, event.last
        if rule.above is not None:
            beyond, back, sign = last >= level, last < level - rule.hysteresis, "≥"
        else:
            beyond, back, sign = last <= level, last > level + rule.hysteresis, "≤"
        series = (rule.id, event.source)
        state = self._threshold.get(
            series
        )  # None: unknown (fresh start) - True: beyond - False: armed
        if beyond:
            self._threshold[series] = True
            if state is True:
                return None
            detail = f"{event.symbol} {fmt_price(last)} {sign} {level:g}"
            return self._price_alert(rule, event, now, detail, event.change_pct, None)
        if back or state is None:
            self._threshold[series] = False
        return None

    def _change_hit(
        self, rule: ChangeRule, event: PriceEvent, now: datetime, window: _Window | None
    ) -> Alert | None:
        if rule.window is None:
            change = event.change_pct
            if change is None:
                return None
            assert event.previous_close is not None
            session: float | None = event.previous_close
            detail = (
                f"{event.symbol} {change:+.2f}% vs previous close {fmt_price(event.previous_close)}"
            )
            span = None
        else:
            ref = window.reference(event.time, rule.window) if window is not None else None
            if ref is None or ref[1] == 0:
                return None
            ref_time, ref_value = ref
            change = (event.last - ref_value) / ref_value * 100.0
            session = None
            span = fmt_duration(rule.window)
            detail = (
                f"{event.symbol} {change:+.2f}% within {span} "
                f"({fmt_price(ref_value)} at {ref_time:%H:%M} → {fmt_price(event.last)})"
            )
        state = self._change.setdefault((rule.id, event.source), _ChangeState())
        if state.session != session:
            state.fired, state.session = False, session
        if not rule.hit(change):
            state.fired = False
            return None
        if state.fired:
            return None
        state.fired = True
        return self._price_alert(rule, event, now, detail, change, span)

    def _price_alert(
        self,
        rule: ThresholdRule | ChangeRule,
        event: PriceEvent,
        now: datetime,
        detail: str,
        change: float | None,
        span: str | None,
    ) -> Alert:
        title = f"{event.symbol} {fmt_price(event.last)}"
        if change is not None:
            title += f" ({change:+.1f}%{' in ' + span if span else ''})"
        alert = Alert(
            id=alert_id(rule.id, event.id),
            rule_id=rule.id,
            rule_description=rule.description,
            severity=rule.severity,
            kind="price",
            event_id=event.id,
            key=event.symbol if rule.key == "symbol" else rule.id,
            title=title,
            source=event.source,
            event_time=event.time,
            created_at=now,
            watchlist=self._ruleset.watchlist_for(rule),
            explanation=Explanation(price_detail=detail),
            tags=tuple(rule.tags),
        )
        return self._render(rule, alert, _price_values(event, change))

    def _confirm_hit(
        self, rule: ConfirmRule, sub_id: str, hit: Alert, event: Event, now: datetime
    ) -> Alert | None:
        """Record a sub-rule hit; fire (consuming the hits) once every sub-rule has one in the window."""
        state = self._confirm.setdefault(rule.id, _ConfirmState())
        within = timedelta(seconds=rule.within)
        t = hit.event_time
        state.newest = t if state.newest is None or t > state.newest else state.newest
        cutoff = state.newest - within
        for rid, hits in state.hits.items():
            state.hits[rid] = [h for h in hits if h.event_time >= cutoff]

        parts: dict[str, Alert] = {sub_id: hit}
        used = {hit.event_id}
        for other in rule.rules:
            if other == sub_id:
                continue
            options = [
                h
                for h in state.hits.get(other, ())
                if abs(h.event_time - t) <= within and h.event_id not in used
            ]
            if not options:
                break
            best = min(options, key=lambda h: abs(h.event_time - t))
            parts[other] = best
            used.add(best.event_id)
        else:
            times = [a.event_time for a in parts.values()]
            if max(times) - min(times) <= within:
                for rid, part in parts.items():
                    if rid != sub_id:
                        state.hits[rid] = [h for h in state.hits[rid] if h is not part]
                return self._composite(rule, [(rid, parts[rid]) for rid in rule.rules], event, now)

        recent = state.hits.setdefault(sub_id, [])
        if all(h.event_id != hit.event_id for h in recent):
            recent.append(hit)
            del recent[:-MAX_CONFIRM_HITS]
        return None

    def _composite(
        self, rule: ConfirmRule, parts: list[tuple[str, Alert]], event: Event, now: datetime
    ) -> Alert:
        alerts = [a for _, a in parts]
        matched: dict[str, str] = {}
        for a in alerts:
            for term in a.explanation.matched_terms:
                matched.setdefault(term.casefold(), term)
        details = [a.explanation.price_detail for a in alerts if a.explanation.price_detail]
        alert = Alert(
            id=stable_id("confirm", rule.id, *(a.event_id for a in alerts)),
            rule_id=rule.id,
            rule_description=rule.description,
            severity=rule.severity,
            kind="composite",
            event_id=event.id,
            key=rule.id,
            title=" + ".join(a.title for a in alerts),
            url=next((a.url for a in alerts if a.url), None),
            source=event.source,
            event_time=max(a.event_time for a in alerts),
            created_at=now,
            watchlist=self._ruleset.watchlist_for(rule)
            or _dedupe_watchlist(w for a in alerts for w in a.watchlist),
            explanation=Explanation(
                matched_terms=tuple(matched.values()),
                tone_terms=tuple(t for a in alerts for t in a.explanation.tone_terms),
                price_detail="; ".join(details) or None,
                parts=tuple(rid for rid, _ in parts),
            ),
            tags=tuple(rule.tags),
        )
        return self._render(
            rule,
            alert,
            _price_values(event, event.change_pct) if isinstance(event, PriceEvent) else {},
        )

    # -- templates ------------------------------------------------------------

    def _render(self, rule: Rule, alert: Alert, extra: Mapping[str, Any]) -> Alert:
        if rule.template is None:
            return alert
        values = template_values(alert, extra)
        return alert.model_copy(update={"message": _FORMATTER.format(rule.template, **values)})


_Scorers = dict[tuple[tuple[str, float], ...], ToneScorer]


@dataclass(frozen=True)
class _RuleType:
    """What the engine does with one rule type: install it; for price rules, test an event.

    Adding a rule type: its schema class, its `_install_…` step (and `…_hit` for a
    price rule) on RuleEngine, and one entry here.
    """

    install: Callable[..., None]  # (engine, rule, scorers)
    price_hit: Callable[..., Alert | None] | None = None  # (engine, rule, event, now, window)


_RULE_TYPES: dict[type, _RuleType] = {
    MatchRule: _RuleType(RuleEngine._install_match),
    ToneRule: _RuleType(RuleEngine._install_tone),
    ThresholdRule: _RuleType(RuleEngine._install_threshold, RuleEngine._threshold_hit),
    ChangeRule: _RuleType(RuleEngine._install_change, RuleEngine._change_hit),
    ConfirmRule: _RuleType(RuleEngine._install_confirm),
}


def template_values(alert: Alert, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The named fields a rule `template` can use (see schema.TEMPLATE_FIELDS)."""
    return {
        "title": alert.title,
        "source": alert.source,
        "url": alert.url,
        "time": alert.event_time.isoformat(),
        "symbol": None,
        "last": None,
        "previous_close": None,
        "change_pct": None,
        "tone": alert.tone.value if alert.tone else None,
        "tone_score": alert.tone_score,
        "rule_id": alert.rule_id,
        "description": alert.rule_description,
        "severity": alert.severity.value,
        "matched": ", ".join(alert.explanation.matched_terms),
        "why": alert.explanation.summary(),
        "tickers": ", ".join(alert.tickers),
        "sectors": ", ".join(w.name for w in alert.watchlist),
        **(extra or {}),
    }


def _price_values(event: PriceEvent, change: float | None) -> dict[str, Any]:
    return {
        "symbol": event.symbol,
        "last": event.last,
        "previous_close": event.previous_close,
        "change_pct": round(change, 4) if change is not None else None,
    }


def _allowed_sources(names: list[str], ruleset: RuleSet) -> frozenset[str]:
    """A rule's `sources` (ids or tags) as the source ids they cover, plus the names
    themselves (events may carry the tags directly)."""
    wanted = set(names)
    allowed = set(wanted)
    for feed in ruleset.sources.feeds:
        if wanted & set(feed.tags):
            allowed.add(feed.id)
    for price in ruleset.sources.prices:
        if wanted & set(price.tags) or price.symbol in wanted:
            allowed.add(price.source_id)
    return frozenset(allowed)
