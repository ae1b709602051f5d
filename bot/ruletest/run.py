"""Run one rule test through the real pipeline under a simulated clock, and judge it.

A test is a tiny backtest: its events go through `bot.backtest.replay.replay`
(the live `Pipeline` with a `ManualClock` and an in-memory store), so dedup,
cooldowns, change windows and confirm windows behave exactly as they do live.
Each test starts from nothing: a fresh engine, a fresh store.

Judging is partial matching: an expectation names a rule and, optionally, the
time, severity, tone, some watch-list entries and a count; anything it does not
name is not compared, so rewording a rule's description breaks no test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.backtest.replay import replay
from bot.clock import ensure_utc
from bot.models import Alert, NewsEvent, PriceEvent
from bot.rules.engine import RuleEngine, fmt_duration
from bot.rules.loader import RuleSet
from bot.ruletest.load import LoadedTest
from bot.ruletest.schema import Expectation, HeadlineSpec, PriceSpec, RuleTest
from bot.sources.config import PriceSource

DEFAULT_START = datetime(2025, 1, 6, 14, 30, tzinfo=UTC)
"""`at: 0` when a test gives no `start`: a Monday during US market hours."""

WHY_CHARS = 300
"""A near-miss reason is cut here: nested conditions can print very long."""

NearMiss = Callable[[str, list[str]], str | None]
"""(rule id, the test's headline texts) -> why the rule did not fire, if known (see `why`)."""


@dataclass
class Outcome:
    loaded: LoadedTest
    alerts: list[Alert]
    start: datetime
    failures: list[str] = field(default_factory=list)
    """One line per unmet expectation."""
    why: list[str] = field(default_factory=list)
    """Near-miss reasons for expected rules that did not fire."""

    @property
    def passed(self) -> bool:
        return not self.failures


def build_events(test: RuleTest, ruleset: RuleSet) -> tuple[datetime, list[NewsEvent | PriceEvent]]:
    """The test's events as the sources would make them (source ids and tags from sources.yaml)."""
    start = ensure_utc(test.start) if test.start is not None else DEFAULT_START
    feeds = {f.id: f for f in ruleset.sources.feeds}
    prices: dict[str, PriceSource] = {}
    for p in ruleset.sources.prices:
        prices.setdefault(p.symbol, p)
    events: list[NewsEvent | PriceEvent] = []
    for n, spec in enumerate(test.events):
        when = start + timedelta(seconds=spec.at)
        if isinstance(spec, HeadlineSpec):
            feed = feeds.get(spec.source)
            events.append(
                NewsEvent(
                    id=f"test:{n}",
                    source=spec.source,
                    title=spec.headline,
                    summary=spec.summary,
                    url=spec.url,
                    published=when,
                    seen_at=when,
                    tags=feed.tags if feed is not None else (),
                )
            )
        else:
            assert isinstance(spec, PriceSpec)
            src = prices.get(spec.price.symbol)
            events.append(
                PriceEvent(
                    id=f"test:{n}",
                    source=src.source_id if src is not None else f"test:{spec.price.symbol}",
                    symbol=spec.price.symbol,
                    time=when,
                    last=spec.price.value,
                    previous_close=spec.price.previous_close,
                    tags=src.tags if src is not None else (),
                )
            )
    return start, events


async def run_test(
    loaded: LoadedTest,
    ruleset: RuleSet,
    *,
    near_miss: NearMiss | None = None,
    engine: RuleEngine | None = None,
) -> Outcome:
    """Run one test from nothing; `engine` (compiled once for many tests) is copied without state."""
    start, events = build_events(loaded.test, ruleset)
    result = await replay(events, ruleset, engine=engine.fresh() if engine is not None else None)
    outcome = Outcome(loaded, result.alerts, start)
    judge(outcome, near_miss)
    return outcome


def _matches(exp: Expectation, alert: Alert, start: datetime) -> bool:
    if alert.rule_id != exp.rule:
        return False
    if exp.at is not None and alert.created_at - start != timedelta(seconds=exp.at):
        return False
    if exp.severity is not None and alert.severity != exp.severity:
        return False
    if exp.tone is not None and alert.tone != exp.tone:
        return False
    if exp.watchlist:
        have = {w.name for w in alert.watchlist} | set(alert.tickers)
        if not set(exp.watchlist) <= have:
            return False
    return True


def describe_expectation(exp: Expectation) -> str:
    bits = [exp.rule]
    if exp.at is not None:
        bits.append(f"at {_at(exp.at)}")
    if exp.severity is not None:
        bits.append(f"severity {exp.severity.value}")
    if exp.tone is not None:
        bits.append(f"tone {exp.tone.value}")
    if exp.watchlist:
        bits.append(f"watchlist ⊇ {', '.join(exp.watchlist)}")
    if exp.count is not None:
        bits.append(f"× {exp.count}")
    return " ".join(bits)


def _at(seconds: float) -> str:
    return fmt_duration(seconds) if seconds else "0m"


def describe_alert(alert: Alert, start: datetime) -> str:
    at = _at((alert.created_at - start).total_seconds())
    tone = f", tone {alert.tone.value}" if alert.tone is not None else ""
    return f"{alert.rule_id} at {at} ({alert.severity.value}{tone})"


def judge(outcome: Outcome, near_miss: NearMiss | None) -> None:
    test = outcome.loaded.test
    alerts, start = outcome.alerts, outcome.start
    missed: list[str] = []
    if test.expect == [] and alerts:
        outcome.failures.append("expected: nothing fires")
    for exp in test.expect or []:
        found = [a for a in alerts if _matches(exp, a, start)]
        if (exp.count is None and not found) or (exp.count is not None and len(found) != exp.count):
            got = f" (matched {len(found)})" if exp.count is not None else ""
            outcome.failures.append(f"expected: {describe_expectation(exp)}{got}")
            if not any(a.rule_id == exp.rule for a in alerts):
                missed.append(exp.rule)
    fired = {a.rule_id for a in alerts}
    for rule_id in test.expect_none:
        if rule_id in fired:
            outcome.failures.append(f"expected not to fire: {rule_id}")
    if outcome.failures and near_miss is not None:
        texts = [e.headline for e in test.events if isinstance(e, HeadlineSpec)]
        for rule_id in dict.fromkeys(missed):
            reason = near_miss(rule_id, texts) if texts else None
            if reason:
                outcome.why.append(f"{rule_id}: {reason}")


def format_failure(outcome: Outcome) -> list[str]:
    """The block printed for one failing test."""
    lines = [f"FAILED {outcome.loaded.where}: {outcome.loaded.test.name}"]
    lines += [f"  {f}" for f in outcome.failures]
    got = [describe_alert(a, outcome.start) for a in outcome.alerts]
    lines.append("  got:      " + ("; ".join(got) if got else "nothing fired"))
    lines += [f"  why not:  {w if len(w) <= WHY_CHARS else w[: WHY_CHARS - 1] + '…'}" for w in outcome.why]
    return lines
