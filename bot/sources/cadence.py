"""When to poll each source next: learned from when it publishes, bounded by politeness.

Why: a polled item waits on average half the interval, so the requests a source is
worth (its configured `interval` sets the budget: as many a day as fixed polling)
should go where items are likely. For publish rate λ_h in each hour-of-week h, the
mean wait Σ λ_h·I_h/2 at a fixed number of requests Σ 1/I_h is lowest (Lagrange)
when the poll frequency 1/I_h ∝ √λ_h — so busy hours get the floor and quiet nights
the ceiling, at the same cost.

Rates are learned from the items' own times (published, else first seen), decayed
(half-life four weeks) and smoothed toward the source's rate at that hour of day, that
toward the rate of the hours around it, and that toward its overall rate — each prior
worth a fixed number of items (`PRIOR_ITEMS`), so a few items never swing the schedule,
yet a day with a dozen items already says which hours are busy (see `learned_rates`).

A surge polls at its interval (or the floor) while the source yields; when it stays quiet the
surge eases: the wait grows to `SURGE_EASE` (a sixtieth) of the time since the surge (re)started
or the source's newest item, whichever is later — never slower than the source's pace without
the surge. A surge at 15 s holds that pace for the first quiet quarter hour and then spends
60·ln(q2/q1) polls from q1 to q2 quiet (a quiet hour: 144 polls, not 240); each new item or
story restarts it. A story's follow-ups come mostly in its first minutes, which keep the pace.

Politeness wins over everything, a surge included: `Retry-After` (clamped to a
day), 429/503 without it (exponential back-off), `max-age` (clamped to the ceiling;
0 means nothing), and the host's share of its budget (`hosts:` in sources.yaml).
Feed hints (`<ttl>`, `sy:updatePeriod`) are advice: honoured up to the configured
interval only (a CMS default of "hourly" must not slow an official feed to once an
hour), and not while surging. Each clamped or skewed value is logged once per source.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.sources.config import HostBudget, Source, is_local_host
from bot.sources.hints import ServerHints

log = logging.getLogger(__name__)

WEEK_HOURS = 168
HALF_LIFE = timedelta(days=28)
HORIZON = timedelta(days=56)  # item times older than this are forgotten
MAX_TIMES = 4_000  # item times remembered per source (a 5-minute price series: two weeks)
PRIOR_ITEMS = 1.0  # smoothing: the coarser rate counts as this many items in each bucket
NEAR_HOURS = (1.0, 2 / 3, 1 / 3)  # weights of the hour itself and its neighbours ±1 h, ±2 h
MIN_ITEMS = 5  # fewer items than this: poll at the configured interval
MIN_HOURS = 24.0  # ... and so for a source watched for less than a day
RETRY_AFTER_MAX = 86_400.0  # a Retry-After of a year is a day
THROTTLE_MAX = 3_600.0  # 429/503 without Retry-After: back off up to an hour (or the ceiling)
RECENT = timedelta(hours=1)  # an item or a surge this recent: no slower than the configured interval
TAIL_COVER = 0.99  # buckets holding this share of expected items get a capped interval
TAIL_MIN = 0.1  # ... and above this fraction of the mean rate (silent hours stay cheap)
TAIL_SLACK = 1.25  # ... of this many times the even spread of the budget over them
SURGE_EASE = 1 / 60  # a quiet surging source waits this fraction of its quiet time (0: surges hold their pace)
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class Interval:
    """The wait until a source's next poll, and why (for /status and probe)."""

    seconds: float
    reason: str

    def label(self) -> str:
        return f"{format_seconds(self.seconds)} ({self.reason})"


class SurgeLookup(Protocol):
    """Who says a source should be polled at its floor for now (surge mode)."""

    def surging(self, source: Source, now: datetime) -> str | None:
        """A reason while `source` should be polled at its floor, else None."""
        ...

    def surge_interval(self, source: Source, now: datetime) -> float | None:
        """Seconds between polls the surge asks for (0: the floor), None when not surging."""
        ...

    def surge_since(self, source: Source, now: datetime) -> datetime | None:
        """When the surge on `source` (re)started, None when not surging (easing counts from it)."""
        ...


PushLookup = Callable[[str], bool]
"""Whether a source's new items arrive by push (WebSub) now: it is then polled at its ceiling."""


@dataclass(frozen=True)
class CadenceView:
    """One source's cadence as /status and probe show it."""

    source_id: str
    interval: Interval
    requests_per_hour: float
    budget_per_hour: float  # what fixed polling at the configured interval would spend
    host: str

    def line(self) -> str:
        return (
            f"every {format_seconds(self.interval.seconds)} — {self.interval.reason}; "
            f"{self.requests_per_hour:g} req/h (budget {self.budget_per_hour:.3g})"
        )


@dataclass
class _SourceState:
    """What the cadence knows about one source."""

    times: Counter[datetime] = field(default_factory=Counter)  # items' own times seen (to skip repeats)
    placed: Counter[datetime] = field(default_factory=Counter)  # when each counted item appeared
    watched_since: datetime | None = None
    polls: deque[datetime] = field(default_factory=deque)  # poll times of the last hour
    day_polls: deque[datetime] = field(default_factory=deque)  # ... of the last day (budget check)
    first_poll: datetime | None = None
    retry_until: datetime | None = None
    throttled: int = 0  # 429/503 in a row without Retry-After
    last_status: int | None = None
    max_age: float | None = None  # clamped to the ceiling
    max_age_said: float | None = None  # as the server said it
    feed_period: float | None = None
    plan: tuple[float, ...] | None = None  # seconds per hour-of-week bucket
    tail: tuple[float, frozenset[int]] | None = None  # the tail cap and the buckets it holds for
    rates: tuple[float, ...] | None = None
    plan_key: tuple[int, int] | None = None  # (items version, hour) the plan was made for
    latest: datetime | None = None  # the newest counted item's time
    surged: datetime | None = None  # the last time the source was found surging
    version: int = 0
    observed: int = 0  # polls observed in this process


class Cadence:
    """Decides each source's next poll; one per running bot (the scheduler asks it)."""

    def __init__(
        self,
        surge: SurgeLookup | None = None,
        *,
        hosts: Mapping[str, HostBudget] | None = None,
        default_host: HostBudget | None = None,
    ) -> None:
        self.surge = surge
        self.surge_ease = SURGE_EASE
        self.push: PushLookup | None = None
        self._hosts: dict[str, HostBudget] = {k.lower(): v for k, v in (hosts or {}).items()}
        self._default_host = default_host or HostBudget()
        self._on_host: Counter[str] = Counter()
        self._states: dict[str, _SourceState] = {}
        self._logged: set[tuple[str, str]] = set()

    # ---- configuration -----------------------------------------------------

    def configure(
        self,
        sources: Sequence[Source],
        hosts: Mapping[str, HostBudget] | None = None,
        default_host: HostBudget | None = None,
    ) -> None:
        """The sources in force and the host budgets (at start and on every reload)."""
        if hosts is not None:
            self._hosts = {k.lower(): v for k, v in hosts.items()}
        if default_host is not None:
            self._default_host = default_host
        self._on_host = Counter(s.host for s in sources)

    def host_budget(self, host: str) -> HostBudget | None:
        """The host's budget; None for this machine's own unless `hosts:` lists it."""
        listed = self._hosts.get(host.lower())
        if listed is None and is_local_host(host):
            return None
        return listed or self._default_host

    # ---- what happened -----------------------------------------------------

    def observe(
        self,
        source: Source,
        *,
        now: datetime,
        item_times: Sequence[datetime],
        hints: ServerHints | None,
        failed: bool = False,
    ) -> None:
        """Record one poll: its time, the items it saw (repeats are ignored), what the server said."""
        state = self._state(source.source_id)
        state.polls.append(now)
        state.day_polls.append(now)
        if state.first_poll is None:
            state.first_poll = now
        self._prune_polls(state, now)
        if hints is not None:
            self._take_hints(source, state, hints, now)
        elif not failed:
            state.throttled = 0
            state.retry_until = None
        if item_times:
            live = bool(state.times) or state.observed > 0  # not the first look at its history
            self.learn(source.source_id, item_times, now=now, live=live)
        state.observed += 1
        if state.watched_since is None:
            state.watched_since = now

    def learn(self, source_id: str, item_times: Iterable[datetime], *, now: datetime, live: bool = False) -> int:
        """Count items not counted before (the same time seen again is the same item); returns
        how many were new. Also how the state is rebuilt at start from stored item times.

        An item dated without a time of day (00:00:00 UTC: a daily CSV row, a date-only
        pubDate) says nothing about the hour it appeared: counted at `now` when it is new
        in a `live` poll, else (history, relearning) only remembered as seen."""
        state = self._state(source_id)
        oldest = now - HORIZON
        batch = Counter(_utc(t) for t in item_times)
        added = 0
        for when, n in batch.items():
            if when < oldest or when > now + timedelta(minutes=5):
                continue
            extra = n - state.times.get(when, 0)
            if extra <= 0:
                continue
            state.times[when] += extra
            if _date_only(when):
                if not live:
                    continue
                placed = _utc(now)
            else:
                placed = when
            state.placed[placed] += extra
            if state.latest is None or placed > state.latest:
                state.latest = placed
            added += extra
        dated = [t for t in batch if not _date_only(t)]
        if dated:
            first = max(min(dated), oldest)
            if state.watched_since is None or first < state.watched_since:
                state.watched_since = min(first, now)
        if added:
            state.version += 1
            self._forget(state, now)
        return added

    # ---- decisions ---------------------------------------------------------

    def next_interval(self, source: Source, now: datetime) -> Interval:
        """How long after a poll at `now` to poll `source` again, and why."""
        state = self._state(source.source_id)
        floor, ceiling = float(source.floor), float(source.ceiling)
        surge = self.surge.surging(source, now) if self.surge is not None else None
        if self.push is not None and self.push(source.source_id):
            # Items arrive by push within a second: polling is only the safety net.
            chosen = Interval(ceiling, "push live; polled at the ceiling as a safety net")
        elif surge is not None and self.surge is not None:
            state.surged = now
            # A surge's own `interval` may ask for less than the floor's pace.
            wanted = self.surge.surge_interval(source, now) or 0.0
            pace = f"{'floor' if wanted <= floor else format_seconds(wanted)}"
            chosen = Interval(max(floor, wanted), f"{pace} (surge: {surge})")
            eased = self._eased(source, state, chosen.seconds, now)
            if eased is not None:
                seconds, quiet = eased
                chosen = Interval(
                    seconds, f"surge easing: nothing new for {format_seconds(quiet)}, else {pace} (surge: {surge})"
                )
        else:
            chosen = self._learned(source, state, now)
            period = state.feed_period
            if period is not None and period > chosen.seconds:
                chosen = Interval(
                    min(period, float(source.interval)), f"feed announces updates every {format_seconds(period)}"
                )
        if state.max_age is not None and state.max_age > chosen.seconds:
            said = state.max_age_said or state.max_age
            clamped = " (clamped to the ceiling)" if said > state.max_age else ""
            chosen = Interval(min(state.max_age, ceiling), f"server max-age {said:g} s{clamped}")
        return self._polite(source, state, chosen, now)

    def earliest(self, source: Source, now: datetime) -> datetime:
        """The soonest politeness allows another poll (hastening never goes before it)."""
        state = self._state(source.source_id)
        last = state.polls[-1] if state.polls else None
        gap = self._polite(source, state, Interval(0.0, ""), now)
        if last is None:
            return now + timedelta(seconds=gap.seconds) if state.retry_until else now
        candidates = [now, last + timedelta(seconds=max(gap.seconds, float(source.floor)))]
        if state.max_age is not None:
            candidates.append(last + timedelta(seconds=min(state.max_age, float(source.ceiling))))
        if state.retry_until is not None:
            candidates.append(state.retry_until)
        return max(candidates)

    def requests_per_hour(self, source_id: str, now: datetime) -> float:
        """Polls of the source in the last hour (as observed)."""
        state = self._states.get(source_id)
        if state is None:
            return 0.0
        self._prune_polls(state, now)
        return float(len(state.polls))

    def describe(self, source: Source, now: datetime) -> CadenceView:
        return CadenceView(
            source_id=source.source_id,
            interval=self.next_interval(source, now),
            requests_per_hour=self.requests_per_hour(source.source_id, now),
            budget_per_hour=3600.0 / source.interval,
            host=source.host,
        )

    def rates(self, source: Source, now: datetime) -> tuple[float, ...] | None:
        """Learned items per hour for each hour-of-week bucket (Monday 00h UTC first), or None."""
        state = self._state(source.source_id)
        self._plan(source, state, now)
        return state.rates

    def plan(self, source: Source, now: datetime) -> tuple[float, ...] | None:
        """Seconds between polls for each hour-of-week bucket, or None while still learning."""
        state = self._state(source.source_id)
        self._plan(source, state, now)
        return state.plan

    # ---- internals ---------------------------------------------------------

    def _state(self, source_id: str) -> _SourceState:
        state = self._states.get(source_id)
        if state is None:
            state = self._states[source_id] = _SourceState()
        return state

    @staticmethod
    def _prune_polls(state: _SourceState, now: datetime) -> None:
        hour_ago = now - timedelta(hours=1)
        while state.polls and state.polls[0] <= hour_ago:
            state.polls.popleft()

    @staticmethod
    def _forget(state: _SourceState, now: datetime) -> None:
        oldest = now - HORIZON
        for counter in (state.times, state.placed):
            for t in [t for t in counter if t < oldest]:
                del counter[t]
            if len(counter) > MAX_TIMES:
                for t in sorted(counter)[: len(counter) - MAX_TIMES]:
                    del counter[t]
        if state.watched_since is not None and state.watched_since < oldest:
            state.watched_since = oldest

    def _once(self, source_id: str, what: str, message: str, *args: object) -> None:
        if (source_id, what) not in self._logged:
            self._logged.add((source_id, what))
            log.warning(message, *args)

    def _take_hints(self, source: Source, state: _SourceState, hints: ServerHints, now: datetime) -> None:
        sid = source.source_id
        state.last_status = hints.status
        if hints.throttled:
            if hints.retry_after is not None:
                wait = hints.retry_after
                if wait > RETRY_AFTER_MAX:
                    self._once(sid, "retry-after", "source %s: Retry-After of %.0f s clamped to a day", sid, wait)
                    wait = RETRY_AFTER_MAX
                state.retry_until = now + timedelta(seconds=wait)
                state.throttled = 0
            else:
                state.throttled += 1
                state.retry_until = None
        else:
            state.throttled = 0
            state.retry_until = None
        age = hints.max_age
        if age is not None and age > source.ceiling:
            self._once(
                sid, "max-age", "source %s: server max-age %.0f s clamped to the ceiling %d s", sid, age, source.ceiling
            )
            age = float(source.ceiling)
        if hints.status is not None and not hints.throttled:
            state.max_age = age if age else None  # max-age 0 / no-cache: no constraint
            state.max_age_said = hints.max_age
        if hints.body_read:
            period = hints.feed_period
            if period is not None and period > source.interval:
                self._once(
                    sid,
                    "feed-period",
                    "source %s: feed announces updates every %.0f s; polled at least every %d s (its interval)",
                    sid,
                    period,
                    source.interval,
                )
            state.feed_period = period

    def _polite(self, source: Source, state: _SourceState, chosen: Interval, now: datetime) -> Interval:
        """`chosen`, stretched by the host's budget share and by throttling."""
        host = source.host
        budget = self.host_budget(host)
        if budget is not None:
            share = 60.0 * max(1, self._on_host.get(host, 1)) / budget.requests_per_minute
            if share > chosen.seconds:
                chosen = Interval(share, f"host budget {host or '?'}: {budget.requests_per_minute:g}/min")
        if state.retry_until is not None and state.retry_until > now:
            wait = (state.retry_until - now).total_seconds()
            if wait > chosen.seconds:
                chosen = Interval(wait, f"Retry-After until {state.retry_until:%H:%M} UTC")
        elif state.throttled:
            cap = max(float(source.ceiling), THROTTLE_MAX)
            wait = min(max(chosen.seconds, float(source.interval)) * 2 ** (state.throttled - 1), cap)
            if wait >= chosen.seconds:
                chosen = Interval(wait, f"backing off: HTTP {state.last_status} x{state.throttled}")
        return chosen

    def _eased(self, source: Source, state: _SourceState, pace: float, now: datetime) -> tuple[float, float] | None:
        """A surging source's wait once it has stayed quiet: `surge_ease` of the time since the
        surge (re)started or its newest item, whichever is later, between the surge's `pace` and
        the source's pace without the surge; with the quiet time. None: keep the surge's pace."""
        started = self.surge.surge_since(source, now) if self.surge is not None and self.surge_ease > 0 else None
        if started is None:
            return None
        since = started if state.latest is None else min(max(started, state.latest), now)
        quiet = (now - since).total_seconds()
        wait = min(self.surge_ease * quiet, self._learned(source, state, now).seconds)
        return (wait, quiet) if wait > pace else None

    def _learned(self, source: Source, state: _SourceState, now: datetime) -> Interval:
        self._plan(source, state, now)
        if state.plan is None or state.rates is None:
            seen = sum(state.placed.values())
            return Interval(float(source.interval), f"configured (learning: {seen} items so far)")
        h = hour_of_week(now)
        day, hour = divmod(h, 24)
        seconds = state.plan[h] * self._overspend(source, state, now)
        if state.tail is not None and h in state.tail[1]:
            # The pull-back spares the tail: no slower than the cap or fixed polling's pace.
            seconds = min(seconds, max(state.plan[h], state.tail[0], float(source.interval)))
        seconds = min(seconds, float(source.ceiling))
        if seconds > source.interval:
            # News comes in runs: an item or a surge in the last hour says the source is active now,
            # whatever the hour's learned rate (a story at an unusual hour, or running on after its
            # surge ended, must not wait at a night's pace).
            for when, what in ((state.latest, "item"), (state.surged, "surge")):
                if when is not None and now - when < RECENT:
                    return Interval(float(source.interval), f"configured ({what} at {when:%H:%M} UTC; a quiet hour)")
        return Interval(seconds, f"learned: {state.rates[h]:.2g} items/h on {_DAYS[day]} {hour:02d}h")

    @staticmethod
    def _overspend(source: Source, state: _SourceState, now: datetime) -> float:
        """Polls of the last day over the budget for that time (≥ 1): the plan is on budget for
        the week, but rates learned as items arrive favour the hour at hand; this pulls back."""
        day_ago = now - timedelta(days=1)
        while state.day_polls and state.day_polls[0] <= day_ago:
            state.day_polls.popleft()
        if state.first_poll is None:
            return 1.0
        span = (now - max(state.first_poll, day_ago)).total_seconds()
        if span < 6 * 3600:
            return 1.0
        return min(max(len(state.day_polls) * source.interval / span, 1.0), 2.0)

    def _plan(self, source: Source, state: _SourceState, now: datetime) -> None:
        hour = int(now.timestamp() // 3600)
        key = (state.version, hour)
        if state.plan_key == key:
            return
        state.plan_key = key
        rates = learned_rates(state.placed, state.watched_since, now)
        if rates is None:
            state.plan = state.rates = state.tail = None
            return
        state.rates = rates
        state.plan = allocate(rates, budget_interval=source.interval, floor=source.floor, ceiling=source.ceiling)
        budget = WEEK_HOURS * 3600.0 / source.interval
        state.tail = tail_cap(rates, budget=budget, floor=source.floor, ceiling=source.ceiling)


def hour_of_week(when: datetime) -> int:
    """0 for Monday 00:00–00:59 UTC … 167 for Sunday 23h."""
    when = _utc(when)
    return when.weekday() * 24 + when.hour


def learned_rates(
    times: Mapping[datetime, int], since: datetime | None, now: datetime
) -> tuple[float, ...] | None:
    """Items per hour for each hour-of-week, decayed and smoothed; None with too little data.

    Four levels, each the Poisson–gamma posterior mean (c + s) / (e + s/m) of a bucket with
    c items over e watched hours, shrunk toward its coarser level's rate m by a prior worth
    s items: the source's overall rate; the hours of the day around each hour (±2 h,
    `NEAR_HOURS`: publishing rhythms are smooth in the time of day, so items at 13h and 15h
    say 14h is busy even when it had none yet); the hour of the day over all days; the
    hour of the week. A bucket never watched takes its coarser level's rate (an unseen
    Tuesday 14h is the 14h of the other days). The prior is measured in items, not hours:
    moving a bucket away from its coarser level takes about `PRIOR_ITEMS` items there,
    whatever the source's rate. At the first level it is `PRIOR_ITEMS` spread over the
    day (not per hour): its weight fades as the items grow, so one day with a dozen items
    in office hours already makes the nights quiet (a 47:1 rate, where pseudo-hours gave
    3:1), while one odd item in a steady fortnight moves the plan by 1.17× (1.13× before)."""
    total = sum(times.values())
    if since is None or total < MIN_ITEMS:
        return None
    start = max(_utc(since), now - HORIZON)
    watched = (now - start).total_seconds() / 3600
    if watched < MIN_HOURS:
        return None
    decay = math.log(2) / (HALF_LIFE.total_seconds() / 3600)
    counts = [0.0] * WEEK_HOURS
    for when, n in times.items():
        age = max(0.0, (now - when).total_seconds() / 3600)
        counts[hour_of_week(when)] += n * math.exp(-decay * age)
    exposure = [0.0] * WEEK_HOURS
    cursor = start
    while cursor < now:  # each watched hour, weighted like an item of that age
        step = min(timedelta(hours=1) - timedelta(minutes=cursor.minute, seconds=cursor.second), now - cursor)
        age = (now - cursor).total_seconds() / 3600
        exposure[hour_of_week(cursor)] += step.total_seconds() / 3600 * math.exp(-decay * age)
        cursor += step
    overall = sum(counts) / max(sum(exposure), 1e-9)
    day_c = [sum(counts[d::24]) for d in range(24)]
    day_e = [sum(exposure[d::24]) for d in range(24)]
    spread = PRIOR_ITEMS / 24 * (2 * sum(NEAR_HOURS) - NEAR_HOURS[0])  # the day's prior over the neighbourhoods
    near = [_posterior(c, e, overall, spread) for c, e in zip(_around(day_c), _around(day_e), strict=True)]
    by_hour = [_posterior(day_c[d], day_e[d], near[d], PRIOR_ITEMS) for d in range(24)]
    return tuple(_posterior(counts[h], exposure[h], by_hour[h % 24], PRIOR_ITEMS) for h in range(WEEK_HOURS))


def _around(by_hour: Sequence[float]) -> list[float]:
    """Each hour of the day's value summed with its neighbours' (`NEAR_HOURS` weights, wrapping at midnight)."""
    return [
        by_hour[d] * NEAR_HOURS[0] + sum(w * (by_hour[(d - j) % 24] + by_hour[(d + j) % 24]) for j, w in enumerate(NEAR_HOURS) if j)
        for d in range(24)
    ]


def _posterior(count: float, exposure: float, prior: float, items: float) -> float:
    """Rate of a bucket with `count` items over `exposure` hours, shrunk toward `prior` (items
    per hour) by a prior worth `items` items: (c + s) / (e + s / m); `prior` when unwatched."""
    if prior <= 0:
        return count / exposure if exposure > 0 else 0.0
    return (count + items) / (exposure + items / prior)


def allocate(rates: Sequence[float], *, budget_interval: float, floor: float, ceiling: float) -> tuple[float, ...]:
    """Seconds between polls per hour bucket: frequency ∝ √rate, as many polls over the
    buckets as fixed polling every `budget_interval` s, each within [floor, ceiling] — and
    no bucket that matters for the tail (`tail_cap`) slower than its cap.

    With bounds the optimum is f_h = clamp(k·√λ_h, 1/upper_h, 1/floor) for the k that
    spends the budget; the total grows with k, so k is found by bisection. A budget the
    bounds cannot spend (or must exceed) leaves every bucket at the floor (its upper bound)."""
    budget = len(rates) * 3600.0 / budget_interval  # polls over the buckets
    roots = [math.sqrt(max(r, 0.0)) for r in rates]
    positive = [r for r in roots if r > 0]
    if not positive:
        return tuple(float(min(max(budget_interval, floor), ceiling)) for _ in rates)
    cap, covered = tail_cap(rates, budget=budget, floor=floor, ceiling=ceiling)
    slowest = [1.0 / (cap if h in covered else ceiling) for h in range(len(rates))]
    fastest = 1.0 / floor

    def polls(k: float) -> float:
        return sum(3600.0 * min(max(k * r, low_f), fastest) for r, low_f in zip(roots, slowest, strict=True))

    low, high = 0.0, fastest / min(positive)  # at `high` every bucket with items is at the floor
    if polls(high) <= budget:
        low = high
    else:
        for _ in range(200):
            mid = (low + high) / 2
            if polls(mid) < budget:
                low = mid
            else:
                high = mid
    k = (low + high) / 2 if low != high else low
    return tuple(1.0 / min(max(k * r, low_f), fastest) for r, low_f in zip(roots, slowest, strict=True))


def tail_cap(rates: Sequence[float], *, budget: float, floor: float, ceiling: float) -> tuple[float, frozenset[int]]:
    """The slowest interval allowed in the buckets that hold the tail, and those buckets.

    √rate minimises the mean wait but leaves an hour with a few percent of the items near
    the ceiling, and the 99th-percentile item is one of them. So: the busiest buckets that
    together hold `TAIL_COVER` of the expected items are "covered", and none of them is
    polled slower than `TAIL_SLACK` times the interval that spreading the whole budget
    evenly over them would give (the best worst case the budget allows). The caps then cost
    at most 1/`TAIL_SLACK` of the budget; the rest still follows √rate, and the buckets
    outside the cover keep the ceiling — and so does any bucket under `TAIL_MIN` times the mean
    rate: smoothing gives every silent night a trickle, and a hundred trickles must not buy
    the nights a capped interval."""
    total = sum(max(r, 0.0) for r in rates)
    least = TAIL_MIN * total / max(len(rates), 1)
    order = sorted(range(len(rates)), key=lambda h: -rates[h])
    covered: set[int] = set()
    held = 0.0
    for h in order:
        if held >= TAIL_COVER * total or rates[h] <= least:
            break
        covered.add(h)
        held += rates[h]
    even = 3600.0 * len(covered) / max(budget, 1e-9)
    return min(max(TAIL_SLACK * even, floor), ceiling), frozenset(covered)


def format_seconds(seconds: float) -> str:
    """`45 s`, `5 min`, `2.5 h`: an interval as a person reads it."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def _date_only(when: datetime) -> bool:
    return when.hour == when.minute == when.second == when.microsecond == 0


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
