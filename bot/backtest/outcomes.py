"""Event study: what each symbol did after each alert, per rule, against the baseline.

Definitions (issue 16), on each symbol's own samples:

* *base* — the last sample at or before the alert's time (a date-only CSV row
  is a sample at the 16:00 New York close, so a Saturday alert's base is
  Friday's close);
* *after h* — the h-th sample strictly after the base sample (h = 1, 5); a
  horizon past the data's end is absent;
* ``change_pct`` = 100 × (after / base − 1).

Per rule, symbol and horizon: n, mean, median, share up (change > 0), the
unconditional baseline over the same period (mean of 100 × (v[i+h]/v[i] − 1)
over every sample i with both i and i+h in the period), and the difference
from the baseline with a 95 % Student t interval: the reactions are taken as a
sample and the baseline as a known constant (it is averaged over hundreds of
samples), so the interval is diff ± t(0.975, n−1) · sd / √n. Several alerts of
one rule on the same base sample count once for that rule (a burst of tweets
before one close is one observation, not many). Overlapping 5-sample windows of
nearby alerts are not independent, so the h = 5 intervals are optimistic.

Pure: no I/O, no clock; samples are non-positive-free after `build_series`.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from scipy.stats import t as student_t

HORIZONS: tuple[int, ...] = (1, 5)
CI_METHOD = "Student t, 95 %, reactions vs the baseline mean taken as known"
COUNTING = "alerts of one rule on the same base sample are counted once for that rule"
MINUS = "\u2212"


class AlertLike(Protocol):
    """What the study needs of an alert (`bot.models.Alert` has it)."""

    @property
    def id(self) -> str: ...
    @property
    def rule_id(self) -> str: ...
    @property
    def event_time(self) -> datetime: ...


@dataclass(frozen=True)
class Series:
    """One symbol's usable samples in time order (unique times, positive finite values)."""

    symbol: str
    times: tuple[datetime, ...]
    values: tuple[float, ...]
    notes: tuple[str, ...] = ()


def build_series(symbol: str, samples: Iterable[tuple[datetime, float]]) -> Series:
    """Sort, keep the first of duplicate times, drop non-positive or non-finite values.

    Every sample left out is named in `notes` (a ratio needs a positive price).
    """
    seen: set[datetime] = set()
    times: list[datetime] = []
    values: list[float] = []
    notes: list[str] = []
    for when, value in sorted(samples, key=lambda s: s[0]):
        if when in seen:
            notes.append(f"{symbol}: duplicate sample at {when.isoformat()} left out")
            continue
        seen.add(when)
        if not math.isfinite(value) or value <= 0:
            notes.append(
                f"{symbol}: sample at {when.isoformat()} left out: price {value:g} is not "
                "positive (a change in % needs a positive price)"
            )
            continue
        times.append(when)
        values.append(value)
    if len(times) == 1:
        notes.append(f"{symbol}: one usable sample only: no change can be measured")
    elif not times:
        notes.append(f"{symbol}: no usable sample: no change can be measured")
    return Series(symbol, tuple(times), tuple(values), tuple(notes))


def change_pct(base: float, after: float) -> float:
    return 100.0 * (after / base - 1.0)


@dataclass(frozen=True)
class Point:
    time: datetime
    value: float


@dataclass(frozen=True)
class After:
    time: datetime
    value: float
    change_pct: float


@dataclass(frozen=True)
class SymbolOutcome:
    """One alert on one symbol: its base sample and the samples h after it."""

    base_index: int
    base: Point
    after: Mapping[int, After]

    def to_json(self) -> dict[str, Any]:
        return {
            "base": {"time": self.base.time.isoformat(), "value": self.base.value},
            "after": {
                str(h): {
                    "time": a.time.isoformat(),
                    "value": a.value,
                    "change_pct": round(a.change_pct, 6),
                }
                for h, a in sorted(self.after.items())
            },
        }


def outcome_at(
    series: Series, when: datetime, horizons: Sequence[int] = HORIZONS
) -> SymbolOutcome | None:
    """The outcome of an alert at `when`; None when the series has no sample at or before it."""
    i = bisect.bisect_right(series.times, when) - 1
    if i < 0:
        return None
    base = series.values[i]
    after = {
        h: After(series.times[i + h], series.values[i + h], change_pct(base, series.values[i + h]))
        for h in horizons
        if i + h < len(series.times)
    }
    return SymbolOutcome(i, Point(series.times[i], base), after)


@dataclass(frozen=True)
class Baseline:
    mean_pct: float | None
    sd_pct: float | None
    n: int

    def to_json(self) -> dict[str, Any]:
        return {"mean_pct": _r(self.mean_pct), "sd_pct": _r(self.sd_pct), "n": self.n}


def baseline(series: Series, start: datetime, end: datetime, h: int) -> Baseline:
    """Every h-sample change with both samples in [start, end]."""
    lo = bisect.bisect_left(series.times, start)
    hi = bisect.bisect_right(series.times, end)  # samples lo .. hi-1 are in the period
    v = series.values
    changes = [change_pct(v[i], v[i + h]) for i in range(lo, hi - h)]
    if not changes:
        return Baseline(None, None, 0)
    sd = statistics.stdev(changes) if len(changes) > 1 else None
    return Baseline(statistics.fmean(changes), sd, len(changes))


@dataclass(frozen=True)
class Reaction:
    """One rule's reactions on one symbol at one horizon."""

    n: int
    mean_pct: float
    median_pct: float
    up_share: float
    diff_vs_baseline_pct: float | None
    ci95: tuple[float, float] | None
    """Of the difference from the baseline; None with fewer than two observations."""

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "mean_pct": _r(self.mean_pct),
            "median_pct": _r(self.median_pct),
            "up_share": _r(self.up_share),
            "diff_vs_baseline_pct": _r(self.diff_vs_baseline_pct),
            "ci95": [_r(self.ci95[0]), _r(self.ci95[1])] if self.ci95 else None,
        }


def reaction(changes: Sequence[float], baseline_mean: float | None) -> Reaction | None:
    """n, mean, median, share up and the t interval of (mean − baseline); None for no data."""
    n = len(changes)
    if n == 0:
        return None
    mean = statistics.fmean(changes)
    diff = None if baseline_mean is None else mean - baseline_mean
    ci: tuple[float, float] | None = None
    if diff is not None and n > 1:
        half = float(student_t.ppf(0.975, n - 1)) * statistics.stdev(changes) / math.sqrt(n)
        ci = (diff - half, diff + half)
    return Reaction(
        n=n,
        mean_pct=mean,
        median_pct=statistics.median(changes),
        up_share=sum(1 for c in changes if c > 0) / n,
        diff_vs_baseline_pct=diff,
        ci95=ci,
    )


@dataclass
class RuleOutcome:
    alerts: int
    distinct_base: dict[str, int] = field(default_factory=dict)
    """Per symbol: base samples after merging alerts on the same one."""
    outcome: dict[str, dict[int, Reaction]] = field(default_factory=dict)


@dataclass
class EventStudy:
    start: datetime
    end: datetime
    symbols: list[str]
    baselines: dict[str, dict[int, Baseline]]
    rules: dict[str, RuleOutcome]
    alert_outcomes: dict[str, dict[str, SymbolOutcome]]
    """alert id → symbol → outcome (symbols with no base sample absent)."""
    notes: list[str]
    horizons: tuple[int, ...] = HORIZONS

    def outcome_json(self, alert_id: str) -> dict[str, Any]:
        """The `"outcome"` member of one `backtest --json` line."""
        return {s: o.to_json() for s, o in self.alert_outcomes.get(alert_id, {}).items()}

    def to_report(self) -> dict[str, Any]:
        """The `--report FILE.json` document."""
        return {
            "period": {
                "start": self.start.isoformat(),
                "end": self.end.isoformat(),
                "symbols": self.symbols,
                "horizons": {str(h): f"{_horizon_words(h)}" for h in self.horizons},
                "change": "100 * (after / base - 1), after = h-th sample strictly after the "
                "last sample at or before the alert",
                "ci95": CI_METHOD,
                "counting": COUNTING,
                "notes": self.notes,
            },
            "baseline": {
                s: {str(h): b.to_json() for h, b in by_h.items()}
                for s, by_h in self.baselines.items()
            },
            "rules": {
                rule_id: {
                    "n": r.alerts,
                    "outcome": {
                        s: {str(h): x.to_json() for h, x in by_h.items()}
                        for s, by_h in r.outcome.items()
                    },
                }
                for rule_id, r in self.rules.items()
            },
        }


def study(
    alerts: Sequence[AlertLike],
    series: Mapping[str, Series],
    *,
    start: datetime,
    end: datetime,
    rule_order: Sequence[str] = (),
    horizons: Sequence[int] = HORIZONS,
) -> EventStudy:
    """Outcome of every alert on every series, baselines over [start, end], per-rule stats."""
    notes = [n for s in series.values() for n in s.notes]
    baselines = {
        sym: {h: baseline(s, start, end, h) for h in horizons} for sym, s in series.items()
    }
    outcomes: dict[str, dict[str, SymbolOutcome]] = {}
    rules: dict[str, RuleOutcome] = {r: RuleOutcome(0) for r in rule_order}
    per_rule_base: dict[tuple[str, str], dict[int, SymbolOutcome]] = {}
    for sym, s in series.items():
        no_base = 0
        short = dict.fromkeys(horizons, 0)
        for alert in alerts:
            o = outcome_at(s, alert.event_time, horizons)
            if o is None:
                no_base += 1
                continue
            outcomes.setdefault(alert.id, {})[sym] = o
            per_rule_base.setdefault((alert.rule_id, sym), {}).setdefault(o.base_index, o)
            for h in horizons:
                short[h] += h not in o.after
        if no_base:
            notes.append(f"{sym}: {_count(no_base, 'alert')} before its first sample: no outcome")
        for h in horizons:
            if short[h] and s.times:
                notes.append(
                    f"{sym}: {_count(short[h], 'alert')} without a sample {_horizon_words(h)} "
                    f"(data ends {s.times[-1]:%Y-%m-%d %H:%M} UTC): that horizon is absent"
                )
    for alert in alerts:
        rules.setdefault(alert.rule_id, RuleOutcome(0)).alerts += 1
    for (rule_id, sym), by_base in per_rule_base.items():
        row = rules[rule_id]
        row.distinct_base[sym] = len(by_base)
        for h in horizons:
            changes = [o.after[h].change_pct for o in by_base.values() if h in o.after]
            r = reaction(changes, baselines[sym][h].mean_pct)
            if r is not None:
                row.outcome.setdefault(sym, {})[h] = r
    return EventStudy(start, end, list(series), baselines, rules, outcomes, notes, tuple(horizons))


# ---------------------------------------------------------------------------
# Text


def signed(value: float | None, unit: str = " %", digits: int = 2) -> str:
    """+0.05 %, −0.42 % (a real minus sign); "n/a" for None."""
    if value is None:
        return "n/a"
    text = f"{value:+.{digits}f}"
    if float(text) == 0:
        text = f"{0.0:+.{digits}f}"
    return text.replace("-", MINUS) + unit


def _horizon_words(h: int) -> str:
    return "next sample" if h == 1 else f"{h} samples later"


def plain_line(rule_id: str, symbol: str, h: int, r: Reaction, base: Baseline) -> str:
    """One rule, symbol and horizon in words, e.g. `tariff: ES=F next sample −0.42 % vs
    baseline +0.05 %, n = 61, difference −0.47 %, 95 % CI −0.76 … −0.18`."""
    line = (
        f"{rule_id}: {symbol} {_horizon_words(h)} {signed(r.mean_pct)} vs baseline "
        f"{signed(base.mean_pct)}, n = {r.n}"
    )
    if r.ci95 is not None:
        lo, hi = r.ci95
        line += (
            f", difference {signed(r.diff_vs_baseline_pct)}, 95 % CI "
            f"{signed(lo, '')} … {signed(hi, '')}"
        )
        if lo > 0 or hi < 0:
            line += " (clear of the baseline)"
    else:
        line += " (too few for an interval)"
    return line


def format_study(es: EventStudy) -> list[str]:
    """Baselines, the per-rule table, then one plain-words line per rule, symbol and horizon."""
    lines = [
        f"Market reaction after alerts ({', '.join(es.symbols)}; change to the h-th sample "
        "after the last one at or before the alert)",
        f"  {COUNTING}; 95 % CI: {CI_METHOD}",
        "",
        "Baseline (every sample in the period):",
    ]
    header = ["symbol", "h", "n", "mean", "sd"]
    rows = [
        [sym, str(h), str(b.n), signed(b.mean_pct), signed(b.sd_pct).lstrip("+")]
        for sym, by_h in es.baselines.items()
        for h, b in by_h.items()
    ]
    lines += _table(header, rows, right={1, 2, 3, 4})
    lines += ["", "Per rule:"]
    header = ["rule", "alerts", "symbol", "h", "n", "mean", "median", "up", "vs base", "95 % CI"]
    rows = []
    for rule_id, ro in es.rules.items():
        for sym in es.symbols:
            for h in es.horizons:
                r = ro.outcome.get(sym, {}).get(h)
                if r is None:
                    continue
                ci = f"{signed(r.ci95[0], '')} … {signed(r.ci95[1], '')}" if r.ci95 else "-"
                rows.append(
                    [
                        rule_id,
                        str(ro.alerts),
                        sym,
                        str(h),
                        str(r.n),
                        signed(r.mean_pct),
                        signed(r.median_pct),
                        f"{100 * r.up_share:.0f} %",
                        signed(r.diff_vs_baseline_pct),
                        ci,
                    ]
                )
    lines += _table(header, rows, right={1, 3, 4, 5, 6, 7, 8})
    if not rows:
        lines.append("(no alert has an outcome)")
    plain = [
        plain_line(rule_id, sym, h, r, es.baselines[sym][h])
        for rule_id, ro in es.rules.items()
        for sym, by_h in ro.outcome.items()
        for h, r in by_h.items()
    ]
    if plain:
        lines += ["", "In words:", *(f"  {p}" for p in plain)]
        lines.append(chance_line(es))
    if es.notes:
        lines += ["", "Notes:", *(f"  {n}" for n in es.notes)]
    return lines


def chance_line(es: EventStudy) -> str:
    """How many intervals exclude the baseline, against how many would by chance alone."""
    cis = [
        r.ci95
        for ro in es.rules.values()
        for by_h in ro.outcome.values()
        for r in by_h.values()
        if r.ci95 is not None
    ]
    clear = sum(1 for lo, hi in cis if lo > 0 or hi < 0)
    return (
        f"{clear} of {len(cis)} intervals exclude the baseline; about {0.05 * len(cis):.1f} would "
        "by chance alone at 95 %: read single cells as hints"
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], *, right: set[int]) -> list[str]:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
