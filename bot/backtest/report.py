"""Text output of a backtest: the alert list and the per-rule summary table.

Tone: an alert from a `tone` rule carries its own tone; for other news alerts
the column shows the default lexicon's reading of the text (the same scorer
the tone rules use), so every headline gets a hope/friction/neutral label.
Price alerts have no tone ("-").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.models import Alert
from bot.rules.loader import RuleSet
from bot.rules.matcher import normalize_text
from bot.rules.tone import ToneScorer, build_lexicon

TIME_FORMAT = "%Y-%m-%d %H:%M"
TEXT_WIDTH = 100
EXAMPLES = 3


@dataclass
class RuleSummary:
    rule_id: str
    severity: str
    kind: str
    fired: int = 0
    first: datetime | None = None
    last: datetime | None = None
    examples: list[Alert] = field(default_factory=list)


def summarize(
    alerts: Iterable[Alert], ruleset: RuleSet | None = None, *, examples: int = EXAMPLES
) -> list[RuleSummary]:
    """One row per enabled rule (rule-file order; rules that never fired included), then any
    rule only seen in the alerts; examples spread over the period."""
    rows: dict[str, RuleSummary] = {}
    if ruleset is not None:
        for rule in ruleset.enabled_rules():
            rows[rule.id] = RuleSummary(rule.id, rule.severity.value, rule.kind)
    by_rule: dict[str, list[Alert]] = {}
    for alert in sorted(alerts, key=lambda a: a.event_time):
        by_rule.setdefault(alert.rule_id, []).append(alert)
    for rule_id, fired in by_rule.items():
        row = rows.get(rule_id)
        if row is None:
            row = rows[rule_id] = RuleSummary(rule_id, fired[0].severity.value, fired[0].kind)
        row.fired, row.first, row.last = len(fired), fired[0].event_time, fired[-1].event_time
        row.examples = spread(fired, examples)
    return list(rows.values())


def spread(items: Sequence[Alert], n: int) -> list[Alert]:
    """Up to `n` items evenly spread from first to last (first, middle, last for n=3)."""
    if len(items) <= n:
        return list(items)
    if n == 1:
        return [items[0]]
    picks = sorted({round(i * (len(items) - 1) / (n - 1)) for i in range(n)})
    return [items[i] for i in picks]


class ToneLabeller:
    """The tone shown for an alert (see module docstring)."""

    def __init__(self) -> None:
        self._scorer = ToneScorer(build_lexicon())

    def __call__(self, alert: Alert) -> str:
        if alert.tone is not None:
            return alert.tone.value
        if alert.kind != "news":
            return "-"
        return self._scorer.score(normalize_text(alert.title)).tone.value


def alert_text(alert: Alert) -> str:
    """The text that triggered the alert, on one line."""
    text = (alert.explanation.price_detail or alert.title) if alert.kind == "price" else alert.title
    return " ".join(text.split())


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(
    header: Sequence[str], rows: Sequence[Sequence[str]], *, right: frozenset[int] = frozenset()
) -> list[str]:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, (cell, w) in enumerate(zip(cells, widths, strict=True)):
            out.append(cell.rjust(w) if i in right else cell.ljust(w))
        return "  ".join(out).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def format_alerts(alerts: Sequence[Alert], *, width: int = TEXT_WIDTH) -> list[str]:
    """Every alert: time (UTC), rule, severity, tone, text."""
    label = ToneLabeller()
    rows = [
        [
            a.event_time.strftime(TIME_FORMAT),
            a.rule_id,
            a.severity.value,
            label(a),
            clip(alert_text(a), width),
        ]
        for a in sorted(alerts, key=lambda a: (a.event_time, a.rule_id))
    ]
    return _table(["time (UTC)", "rule", "severity", "tone", "text"], rows)


def format_summary(summaries: Sequence[RuleSummary], *, width: int = TEXT_WIDTH) -> list[str]:
    """The per-rule table, then up to three examples per rule that fired."""

    def day(when: datetime | None) -> str:
        return when.strftime("%Y-%m-%d") if when else "-"

    rows = [
        [s.rule_id, s.kind, s.severity, str(s.fired), day(s.first), day(s.last)] for s in summaries
    ]
    total = sum(s.fired for s in summaries)
    lines = _table(
        ["rule", "kind", "severity", "fired", "first", "last"], rows, right=frozenset({3})
    )
    active = sum(1 for s in summaries if s.fired)
    plural = "s" if total != 1 else ""
    lines.append(f"{total} alert{plural} from {active} of {len(summaries)} rules")
    fired = [s for s in summaries if s.examples]
    if fired:
        lines += ["", "Examples (first, middle and last alert of each rule):"]
        for s in fired:
            lines.append(f"  {s.rule_id}")
            for a in s.examples:
                lines.append(
                    f"    {a.event_time.strftime(TIME_FORMAT)}  {clip(alert_text(a), width)}"
                )
    return lines
