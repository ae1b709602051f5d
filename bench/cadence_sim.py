"""Adaptive polling alone, in simulated time: publish → poll wait, fixed vs learned, at equal cost.

    python bench/cadence_sim.py [--sources 20] [--weeks 4] [--seed 7]

No network and no bot: each simulated source publishes as an inhomogeneous Poisson
process with a realistic week (official: bursts on weekday business hours, nothing at
night; wire: busy days, slow nights; talks-day: one very busy day). The real `Cadence`
learns from the polls it makes over the first weeks (it sees an item at the first poll
after its publication, with the item's own time) and plans the last week; the baseline
polls the same sources every `interval` s. Reported: p50/p99 of the wait from
publication to the poll that sees the item in the last week, and requests in that week
for both (the adaptive side must not spend more). Surge mode, hints and the network
are left out on purpose: the freshness bench measures the whole path.
"""

from __future__ import annotations

import argparse
import bisect
import random
import statistics
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.sources.cadence import Cadence
from bot.sources.config import FeedSource

START = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday


def week_profile(kind: str, rng: random.Random) -> list[float]:
    """Items per hour for each hour of the week (Monday 00h UTC first)."""
    rates = []
    busy_day = rng.randrange(5)
    for h in range(168):
        day, hour = divmod(h, 24)
        weekday = day < 5
        if kind == "official":
            rate = 1.5 if weekday and 13 <= hour < 22 else 0.01
        elif kind == "wire":
            rate = (3.0 if 12 <= hour < 23 else 0.3) * (1.0 if weekday else 0.3)
        else:  # talks-day: quiet, then one very busy day a week
            rate = 4.0 if day == busy_day and 6 <= hour < 16 else 0.05
        rates.append(rate)
    return rates


def publish_times(rates: list[float], weeks: int, rng: random.Random) -> list[datetime]:
    times = []
    for w in range(weeks):
        for h, rate in enumerate(rates):
            hour_start = START + timedelta(weeks=w, hours=h)
            t = 0.0
            while True:
                t += rng.expovariate(rate) if rate > 0 else 1e9
                if t >= 1.0:
                    break
                times.append(hour_start + timedelta(hours=t))
    return sorted(times)


def simulate(source: FeedSource, items: list[datetime], weeks: int, cadence: Cadence | None) -> tuple[list[float], int]:
    """Poll from START to the end; waits (s) and requests of the last week."""
    end = START + timedelta(weeks=weeks)
    last_week = end - timedelta(weeks=1)
    now = START
    seen = 0
    waits: list[float] = []
    requests = 0
    while now < end:
        upto = bisect.bisect_right(items, now)
        new = items[seen:upto]
        seen = upto
        if now >= last_week:
            requests += 1
            waits += [(now - t).total_seconds() for t in new if t >= last_week]
        if cadence is None:
            step = float(source.interval)
        else:
            visible = items[max(0, upto - 50) : upto]  # the feed shows its last 50 items
            cadence.observe(source, now=now, item_times=visible, hints=None)
            step = cadence.next_interval(source, now).seconds
        now += timedelta(seconds=step)
    return waits, requests


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=20)
    parser.add_argument("--weeks", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    kinds = ["official", "wire", "talks-day"]
    fixed_waits: list[float] = []
    adaptive_waits: list[float] = []
    fixed_requests = adaptive_requests = 0
    for i in range(args.sources):
        kind = kinds[i % len(kinds)]
        interval = rng.choice([120, 300, 600])
        source = FeedSource(  # type: ignore[call-arg]
            id=f"{kind}-{i}", url=f"https://{kind}{i}.example/feed", interval=interval,
            min_interval=max(15, interval // 4), max_interval=interval * 4,
        )
        items = publish_times(week_profile(kind, rng), args.weeks, rng)
        waits, requests = simulate(source, items, args.weeks, None)
        fixed_waits += waits
        fixed_requests += requests
        waits, requests = simulate(source, items, args.weeks, Cadence())
        adaptive_waits += waits
        adaptive_requests += requests
    print(f"{args.sources} sources, {len(fixed_waits)} items in the last of {args.weeks} weeks (seed {args.seed})")
    print(f"{'':10} {'p50 wait':>10} {'p99 wait':>10} {'mean':>8} {'requests':>9}")
    for name, waits, requests in (
        ("fixed", fixed_waits, fixed_requests),
        ("adaptive", adaptive_waits, adaptive_requests),
    ):
        print(f"{name:10} {pct(waits, 0.5):9.0f}s {pct(waits, 0.99):9.0f}s {statistics.mean(waits):7.0f}s {requests:9d}")
    print(
        f"ratio fixed/adaptive: p50 {pct(fixed_waits, 0.5) / pct(adaptive_waits, 0.5):.2f}x, "
        f"p99 {pct(fixed_waits, 0.99) / pct(adaptive_waits, 0.99):.2f}x, "
        f"mean {statistics.mean(fixed_waits) / statistics.mean(adaptive_waits):.2f}x; "
        f"requests adaptive/fixed {adaptive_requests / fixed_requests:.3f}"
    )


if __name__ == "__main__":
    main()
