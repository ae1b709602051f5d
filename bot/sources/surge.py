"""Surge mode: the sources most likely to carry a story's follow-up are polled at their floor.

Why: a polled item waits on average half the poll interval. When a `trade-talks`, tariff or
export-control alert fires (or a scheduled round of talks is about to start), the official
readout and the wires are where the next headline comes from, so for a while they are polled
as fast as politeness allows (their floor in sources.yaml, or the surge's `interval` when that
is slower) instead of at their learned rate.

`SurgeBoard` is the `SurgeLookup` the cadence asks (`surging(source, now)` → the reason, shown
in /status and `probe`, or None). Two inputs:

- rules with `surge:` — `on_alerts` raises a surge once per story (the first alert of a story,
  not one per outlet that reports it later);
- `calendar.yaml` — each entry's window (`start - before` … `end + after`) surges its sources.

A surge also says when it (last) started (`surge_since`): the cadence eases a surging source
that stays quiet (`bot.sources.cadence`, `SURGE_EASE`), timing the quiet from the later of that
start and the source's newest item. An alert surge starts when a story raises it (a new story
on a surging source starts it again); a calendar window starts as it opens, at the event's
start and at its end — when readouts come.

Several workers: surges raised by alerts are written to the `surges` table and read back by
the others (`sync`); calendar windows need no sharing, every worker loads the same file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.models import Alert
from bot.rules.calendar import CalendarEntry
from bot.rules.loader import RuleSet
from bot.sources.config import Source
from bot.storage.surges import SqlSurges, SurgeRow

log = logging.getLogger(__name__)

TITLE_IN_REASON = 60  # characters of the alert's headline in a reason
STORIES_REMEMBERED = 10_000  # stories that already raised their surge (oldest forgotten first)


@dataclass(frozen=True)
class Surge:
    """One source surging until `until` at `interval` seconds (0: its floor), and why;
    `since`: when the latest story that raised it did (easing times the quiet from there)."""

    source_id: str
    until: datetime
    interval: float
    reason: str
    since: datetime


def _phase(entry: CalendarEntry, now: datetime) -> datetime:
    """The latest of a calendar window's opening, its event's start and its end that `now` has
    reached: readouts come as the talks open and as they close, so the easing restarts at each."""
    return max(t for t in (entry.window_start, entry.start, entry.end or entry.start) if t <= now)


def _hm(when: datetime) -> str:
    return when.strftime("%H:%M UTC")


def _short(title: str) -> str:
    title = " ".join(title.split())
    return title if len(title) <= TITLE_IN_REASON else title[: TITLE_IN_REASON - 1].rstrip() + "…"


def resolve(names: Iterable[str], sources: Sequence[Source]) -> list[str]:
    """The enabled source ids that `names` (ids, symbols or tags) pick, in sources.yaml order."""
    wanted = set(names)
    picked: list[str] = []
    for s in sources:
        if not s.enabled:
            continue
        symbol = getattr(s, "symbol", None)
        if s.source_id in wanted or (symbol is not None and symbol in wanted) or wanted & set(s.tags):
            picked.append(s.source_id)
    return picked


class SurgeBoard:
    """Which sources surge now, from alerts (shared through the database) and the calendar."""

    def __init__(self, ruleset: RuleSet, *, store: SqlSurges | None = None) -> None:
        self._store = store
        self._active: dict[str, Surge] = {}
        self._stories: dict[str, None] = {}  # stories whose first alert raised its surge
        self._opened: set[tuple[str, datetime, datetime]] = set()  # calendar windows (and starts, ends) hastened
        self._last_id = 0
        self._unsent: list[SurgeRow] = []
        self.replace_ruleset(ruleset)

    def replace_ruleset(self, ruleset: RuleSet) -> None:
        """New rules, sources and calendar (hot reload); running alert surges carry over."""
        self._ruleset = ruleset
        self._sources = ruleset.sources.enabled()
        self._calendar: list[tuple[CalendarEntry, list[str]]] = [
            (entry, resolve(entry.surge.sources, self._sources)) for entry in ruleset.calendar
        ]

    # ---- raising -------------------------------------------------------------

    def on_alerts(self, alerts: Iterable[Alert], *, now: datetime) -> list[str]:
        """Raise the surges of these alerts' rules, once per story; the source ids to hasten."""
        hasten: dict[str, None] = {}
        for alert in alerts:
            rule = self._ruleset.get(alert.rule_id)
            if rule is None or rule.surge is None:
                continue
            story = alert.story or alert.id
            key = f"{story}\x00{rule.id}"
            if alert.update or key in self._stories:
                continue  # the story already surged: another outlet reporting it adds nothing
            self._remember(key)
            spec = rule.surge
            until = now + timedelta(seconds=spec.for_)
            reason = f'{rule.id} alert "{_short(alert.title)}", until {_hm(until)}'
            ids = resolve(spec.sources, self._sources)
            for sid in self.raise_surge(ids, until=until, interval=spec.interval, reason=reason, now=now):
                hasten[sid] = None
        return list(hasten)

    def _remember(self, key: str) -> None:
        self._stories[key] = None
        while len(self._stories) > STORIES_REMEMBERED:
            del self._stories[next(iter(self._stories))]

    def raise_surge(
        self, source_ids: Iterable[str], *, until: datetime, interval: float, reason: str, now: datetime
    ) -> list[str]:
        """Surge these sources until `until`; the ones that were not surging already, or whose
        surge this restarts (to hasten).

        A longer surge replaces a shorter one; a shorter one leaves its end, interval and reason
        alone (its story restarts the easing: `_merge`)."""
        fresh: list[str] = []
        for sid in source_ids:
            if self._merge(Surge(sid, until, interval, reason, now), now=now):
                fresh.append(sid)
            self._unsent.append(SurgeRow(sid, until, interval, reason, now))
        if fresh:
            log.info("surge: %s — %s", ", ".join(fresh), reason)
        return fresh

    def _merge(self, surge: Surge, *, now: datetime) -> bool:
        """Take `surge` in; True when its source was not surging before, or its surge restarts
        (a new story: an eased source is hastened back to the surge's pace). A shorter surge
        leaves the longer one's end, interval and reason, but its story restarts the easing."""
        old = self._active.get(surge.source_id)
        was = old is not None and old.until > now
        restarted = False
        if old is None or not was:
            self._active[surge.source_id] = surge
        else:
            since = max(old.since, surge.since)
            restarted = since > old.since
            if surge.until > old.until:
                interval = min(old.interval, surge.interval)
                self._active[surge.source_id] = Surge(surge.source_id, surge.until, interval, surge.reason, since)
            elif restarted:
                self._active[surge.source_id] = Surge(old.source_id, old.until, old.interval, old.reason, since)
        return restarted or (not was and self._calendar_surge(surge.source_id, now) is None)

    # ---- the cadence asks -----------------------------------------------------

    def surging(self, source: Source, now: datetime) -> str | None:
        """Why `source` should be polled at its floor now, or None (the `SurgeLookup` protocol)."""
        found = self._surge(source.source_id, now)
        return found.reason if found is not None else None

    def surge_interval(self, source: Source, now: datetime) -> float | None:
        """Seconds between polls the surge asks for (0: the floor), or None when not surging.
        The cadence polls at the larger of this and the source's floor."""
        found = self._surge(source.source_id, now)
        return found.interval if found is not None else None

    def surge_since(self, source: Source, now: datetime) -> datetime | None:
        """When the surges running on `source` last started (the latest of them), or None when
        not surging: the cadence eases a source that stays quiet from then (or from its newest item)."""
        alert = self._active.get(source.source_id)
        starts = [alert.since] if alert is not None and alert.until > now else []
        scheduled = self._calendar_surge(source.source_id, now)
        if scheduled is not None:
            starts.append(scheduled.since)
        return max(starts) if starts else None

    def _surge(self, sid: str, now: datetime) -> Surge | None:
        alert = self._active.get(sid)
        if alert is not None and alert.until <= now:
            del self._active[sid]
            alert = None
        scheduled = self._calendar_surge(sid, now)
        if alert is None or (scheduled is not None and scheduled.until > alert.until):
            return scheduled
        return alert

    def _calendar_surge(self, sid: str, now: datetime) -> Surge | None:
        best: Surge | None = None
        for entry, ids in self._calendar:
            if sid in ids and entry.window_start <= now < entry.window_end:
                until = entry.window_end
                since = _phase(entry, now)
                if best is None or until > best.until or (until == best.until and since > best.since):
                    reason = (
                        f'calendar "{_short(entry.name)}" {entry.start.strftime("%d %b %H:%M UTC")}, until {_hm(until)}'
                    )
                    best = Surge(sid, until, entry.surge.interval, reason, since)
        return best

    def calendar_due(self, now: datetime) -> list[str]:
        """Sources whose calendar window has opened since the last call, or whose event has
        started or ended since (the easing restarts: hastened back to the surge's pace), each once."""
        due: dict[str, None] = {}
        for entry, ids in self._calendar:
            if not entry.window_start <= now < entry.window_end:
                continue
            phase = _phase(entry, now)
            key = (entry.name, entry.start, phase)
            if key not in self._opened:
                self._opened.add(key)
                what = "opens its window" if phase == entry.window_start else ("starts" if phase == entry.start else "ends")
                log.info("surge: calendar event %r %s: %s", entry.name, what, ", ".join(ids))
                due.update(dict.fromkeys(ids))
        return list(due)

    def active(self, now: datetime) -> list[tuple[str, str]]:
        """(source id, reason) for every source surging now, in sources.yaml order."""
        out: list[tuple[str, str]] = []
        for s in self._sources:
            found = self._surge(s.source_id, now)
            if found is not None:
                out.append((s.source_id, found.reason))
        return out

    # ---- several workers -------------------------------------------------------

    async def sync(self, now: datetime) -> list[str]:
        """Write the surges raised here, read the ones other workers raised; the source ids that
        started surging from those (to hasten). No-op without a store (one worker, tests)."""
        if self._store is None:
            self._unsent.clear()
            return []
        unsent, self._unsent = self._unsent, []
        try:
            await self._store.record(unsent)
            rows, newest = await self._store.since(self._last_id, now=now)
        except Exception:
            self._unsent[:0] = unsent  # try again next time; the local surge already runs
            raise
        self._last_id = newest
        fresh: list[str] = []
        for row in rows:
            if self._merge(Surge(row.source_id, row.until, row.interval, row.reason, row.raised_at), now=now):
                fresh.append(row.source_id)
        return [sid for sid in dict.fromkeys(fresh) if any(s.source_id == sid for s in self._sources)]

    async def prune(self, now: datetime) -> None:
        if self._store is not None:
            await self._store.prune(before=now - timedelta(days=1))
