"""Flood bound: one feed (or one rule) gone mad never buries everyone's chats.

A poll of one source may raise at most `per_poll` alerts, and a rule at most
`per_rule` per `window` seconds. Alerts beyond either bound are still recorded
(dedup, cooldown, `/recent`), but not routed one by one: they become ONE digest
alert per source — "+9,812 more from feed X — feed flood suspected" — routed to
every destination that would have received at least one of them. Within a
poll, the most severe alerts are the ones kept.

The per-rule count lives in memory (one worker's view; it starts empty after a
restart): it bounds a burst, not a daily quota.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.models import Alert, Severity, stable_id

FLOOD_RULE_ID = "readout-flood"  # not a rule file's id: the digest's marker


@dataclass
class FloodSplit:
    routed: list[Alert] = field(default_factory=list)
    # (digest alert, the alerts it stands for), one per flooded source
    digests: list[tuple[Alert, list[Alert]]] = field(default_factory=list)


class FloodGuard:
    """Decides which of a group's new alerts are routed and which go into a digest."""

    def __init__(self, *, per_poll: int, per_rule: int, window: float) -> None:
        """`per_poll`: alerts one poll of one source may raise; `per_rule`: alerts one rule
        may raise per `window` seconds."""
        self.per_poll = per_poll
        self.per_rule = per_rule
        self.window = timedelta(seconds=window)
        self._fired: dict[str, deque[datetime]] = {}  # rule → when its routed alerts fired

    def split(self, polls: Sequence[Sequence[Alert]], *, now: datetime) -> FloodSplit:
        """`polls`: the new alerts of each poll (one source each) in this group."""
        out = FloodSplit()
        held: dict[str, list[Alert]] = {}
        for alerts in polls:
            ranked = sorted(alerts, key=lambda a: (-a.severity.rank, a.event_time))
            kept = 0
            for alert in ranked:
                if kept < self.per_poll and self._room(alert.rule_id, now):
                    kept += 1
                    self._fired.setdefault(alert.rule_id, deque()).append(now)
                    out.routed.append(alert)
                else:
                    held.setdefault(alert.source, []).append(alert)
        # routed alerts keep their original (time) order
        order = {a.id: n for n, a in enumerate(a for alerts in polls for a in alerts)}
        out.routed.sort(key=lambda a: order[a.id])
        for source, excess in held.items():
            out.digests.append((flood_digest(source, excess, now=now), excess))
        return out

    def _room(self, rule_id: str, now: datetime) -> bool:
        fired = self._fired.get(rule_id)
        if fired is None:
            return True
        while fired and now - fired[0] >= self.window:
            fired.popleft()
        return len(fired) < self.per_rule


def flood_digest(source: str, excess: Sequence[Alert], *, now: datetime) -> Alert:
    """The one alert that stands for `excess` (all from `source`)."""
    severity = max((a.severity for a in excess), key=lambda s: s.rank, default=Severity.info)
    rules = sorted({a.rule_id for a in excess})
    tags = sorted({t for a in excess for t in a.tags})
    event_id = stable_id("flood", source, now.isoformat(), excess[0].id)
    return Alert(
        id=stable_id("alert", FLOOD_RULE_ID, event_id),
        rule_id=FLOOD_RULE_ID,
        rule_description="Feed flood suspected",
        severity=severity,
        kind="news",
        event_id=event_id,
        key=source,
        title=f"+{len(excess):,} more from feed {source} — feed flood suspected",
        source=source,
        event_time=now,
        created_at=now,
        message=(
            f"Held back so they do not bury other alerts (rules: {', '.join(rules[:5])}"
            f"{' …' if len(rules) > 5 else ''}). They are recorded: /recent lists the latest."
        ),
        tags=tuple(tags),
    )
