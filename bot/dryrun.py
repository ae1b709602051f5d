"""Dry run: what the rules on disk would have raised on the events the bot saw, vs what it raised.

The archive (`bot.storage.archive`) holds the headlines and price samples the
pipeline saw; they are replayed through a rule set with the backtest's replay
(live pipeline, simulated clock, in-memory store) and compared, per rule, with
the alerts stored then. Used by `python -m bot dry-run` and, after a hot reload,
by `bot.reload` (one log line per rule).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.backtest.replay import replay
from bot.models import Alert, NewsEvent, PriceEvent
from bot.rules.loader import RuleSet
from bot.storage.archive import EventArchive, PastAlert

SHOW_PER_RULE = 10
"""Gained/lost headlines listed per rule before "… and N more"."""


@dataclass
class RuleDiff:
    rule_id: str
    then: int = 0
    now: int = 0
    gained: list[tuple[datetime, str]] = field(default_factory=list)
    lost: list[tuple[datetime, str]] = field(default_factory=list)

    def line(self) -> str:
        """The one-line summary (also what a hot reload logs)."""
        return f"{self.rule_id}: {self.then} then -> {self.now} now (+{len(self.gained)} gained, -{len(self.lost)} lost)"


@dataclass
class DryRun:
    start: datetime | None
    end: datetime | None
    news: int
    prices: int
    rules: list[RuleDiff]

    @property
    def changed(self) -> list[RuleDiff]:
        return [r for r in self.rules if r.gained or r.lost]


def compare(
    events: Sequence[NewsEvent | PriceEvent], past: Sequence[PastAlert], alerts: Sequence[Alert], order: Sequence[str]
) -> DryRun:
    """Per rule: alerts then (`past`, limited to the archived span) vs now (`alerts`, from the replay)."""
    start = min((e.time for e in events), default=None)
    end = max((e.time for e in events), default=None)
    then = [p for p in past if start is not None and p.created_at >= start]
    diffs: dict[str, RuleDiff] = {}

    def diff(rule_id: str) -> RuleDiff:
        return diffs.setdefault(rule_id, RuleDiff(rule_id))

    then_keys = {(p.rule_id, p.event_id) for p in then}
    now_keys = {(a.rule_id, a.event_id) for a in alerts}
    for p in then:
        d = diff(p.rule_id)
        d.then += 1
        if (p.rule_id, p.event_id) not in now_keys:
            d.lost.append((p.created_at, p.title))
    for a in alerts:
        d = diff(a.rule_id)
        d.now += 1
        if (a.rule_id, a.event_id) not in then_keys:
            d.gained.append((a.created_at, a.title))
    rank = {rule_id: i for i, rule_id in enumerate(order)}
    ordered = sorted(diffs.values(), key=lambda d: (rank.get(d.rule_id, len(rank)), d.rule_id))
    news = sum(1 for e in events if isinstance(e, NewsEvent))
    return DryRun(start, end, news, len(events) - news, ordered)


async def dry_run(archive: EventArchive, ruleset: RuleSet, *, since: datetime) -> DryRun:
    """Replay the archive since `since` through `ruleset` (in a worker thread) and compare."""
    events = await archive.events_since(since)
    past = await archive.alerts_since(since)
    alerts: list[Alert] = []
    if events:
        result = await asyncio.to_thread(lambda: asyncio.run(replay(events, ruleset)))
        alerts = result.alerts
    return compare(events, past, alerts, [r.id for r in ruleset.rules])


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M")


def report(run: DryRun, *, rules_dir: str, since: timedelta) -> list[str]:
    """The `dry-run` command's output."""
    days = since.total_seconds() / 86400
    if run.start is None or run.end is None:
        return [f"dry-run: no stored events in the last {days:g} days (see EVENT_RETENTION_DAYS)"]
    lines = [
        f"dry-run: rules in {rules_dir} on {run.news:,} headlines and {run.prices:,} price samples "
        f"stored from {_when(run.start)} to {_when(run.end)} UTC"
    ]
    if not run.rules:
        lines.append("no rule fired then or now")
    width = max((len(r.rule_id) for r in run.rules), default=4)
    if run.rules:
        lines.append(f"{'rule':<{width}}  {'then':>5}  {'now':>5}  {'gained':>6}  {'lost':>5}")
    for r in run.rules:
        lines.append(f"{r.rule_id:<{width}}  {r.then:>5}  {r.now:>5}  {'+' + str(len(r.gained)):>6}  {'-' + str(len(r.lost)):>5}")
    for r in run.changed:
        lines.append("")
        lines.append(r.line())
        for sign, items in (("+", r.gained), ("-", r.lost)):
            for at, title in items[:SHOW_PER_RULE]:
                lines.append(f"  {sign} {_when(at)}  {' '.join(title.split())[:160]}")
            if len(items) > SHOW_PER_RULE:
                lines.append(f"  {sign} … and {len(items) - SHOW_PER_RULE} more")
    if run.rules and not run.changed:
        lines.append("no change: the rules on disk raise the same alerts")
    return lines
