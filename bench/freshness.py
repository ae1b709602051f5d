"""Freshness at equal cost: publish → alert handed to the adapter, fixed intervals vs adaptive + surge.

    python bench/freshness.py [--days 3] [--sources 20] [--seed 7]

Method (issue 17). Twenty simulated feeds on the local feed server (tests/support/feed_server.py,
in a thread): 6 official (US-hours bursts of statements, silent nights and weekends), 6 wires
(steady by day, thin at night), 8 others (a few items a day at any hour). The last day is a talks
day: at 09:00 UTC an official source publishes "US and China hold trade talks", which fires a
rule with `surge:` (official + wire sources, 60 min); over the next 90 minutes the official
and wire sources publish the follow-ups in a burst. The calendar also lists that round of talks
(a scheduled surge, 30 min before to 2 h after).

Time is simulated: a `ManualClock` drives the real bot (`Readout`), so days of publishing take
minutes. Each step moves the clock to the next due poll, sets that feed's contents to the
items published by then (ETag = newest item, so unchanged feeds answer 304), and runs the
real poll path (`Readout.poll_source`: lease, host gate, conditional GET over HTTP, parse,
`Cadence.observe`, rules, outbox) and a delivery pass; the console adapter's stream records
the virtual time at which each alert is handed to it. Only the APScheduler loop is replaced,
by a priority queue of due times that asks the same things the real scheduler asks:
`Cadence.next_interval` after each poll, and `Cadence.earliest` when a surge hastens a source
(`SurgeBoard` via `Readout._hasten`, and calendar windows via `Readout.surge_tick`). The host
gate (`bot.sources.hosts.HostGate`) runs on the virtual clock too.

Runs: (b) adaptive + surge first, counting its requests; then (a) fixed intervals, with the
interval chosen so that the total requests equal (b)'s. Reported: p50 and p99 of publish →
alert over the items published after the first day (day one is the cadence's learning), the
requests per hour, and the busiest 60-second window on the host against its budget.
Goal: p50 ≥ 3× lower and p99 ≥ 2× lower for (b).

(c) is the shipped configuration: the same feeds, each given the interval of one of the
shipped sources in rules/sources.yaml (cycled), adaptive + surge — the figure the README quotes.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import heapq
import io
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.adapters.console import ConsoleAdapter
from bot.app import Readout
from bot.clock import ManualClock
from bot.rules.loader import load_rules_dir
from bot.settings import Settings
from bot.sources.hosts import HostGate
from tests.support.feed_server import FeedServer

REPO = Path(__file__).resolve().parent.parent
START = datetime(2025, 7, 21, 0, 0, tzinfo=UTC)  # a Monday
TOKEN = re.compile(r"\[i(\d+)\]")
HOST_RPM = 300.0
PROGRESS = True
T0 = time.perf_counter()  # the local host's budget: requests per minute


@dataclass(order=True)
class Item:
    at: datetime
    n: int = field(compare=False)
    source: int = field(compare=False)
    title: str = field(compare=False)


def kind_of(i: int) -> str:
    return "official" if i < 6 else ("wire" if i < 12 else "other")


def publish_plan(n_sources: int, days: int, seed: int) -> tuple[list[Item], datetime]:
    """Every item every source publishes, and the trigger time on the talks day."""
    rng = random.Random(seed)
    items: list[Item] = []
    counter = 0

    def add(at: datetime, src: int, what: str) -> None:
        nonlocal counter
        counter += 1
        items.append(Item(at, counter, src, f"{what} tariff update [i{counter}]"))

    for d in range(days):
        day = START + timedelta(days=d)
        weekend = day.weekday() >= 5
        for src in range(n_sources):
            kind = kind_of(src)
            if kind == "official":
                if weekend:
                    continue
                for _ in range(rng.randint(1, 3)):  # bursts of statements in US office hours
                    burst_at = day + timedelta(hours=rng.uniform(13, 22))
                    for k in range(rng.randint(2, 4)):
                        add(burst_at + timedelta(minutes=k * rng.uniform(2, 10)), src, "Official")
            elif kind == "wire":
                for _ in range(rng.randint(18, 30)):
                    hour = rng.uniform(11, 23) if rng.random() < 0.85 else rng.uniform(0, 24)
                    add(day + timedelta(hours=hour), src, "Wire")
            else:
                for _ in range(rng.randint(2, 6)):
                    add(day + timedelta(hours=rng.uniform(0, 24)), src, "Other")
    talks = START + timedelta(days=days - 1, hours=9)
    counter += 1
    items.append(Item(talks, counter, 0, f"US and China hold trade talks in Stockholm [i{counter}]"))
    for src in range(12):  # the follow-ups: readouts and wire copy in the next 90 minutes
        for _ in range(3):
            add(talks + timedelta(minutes=rng.uniform(2, 90)), src, "Talks readout")
    items.sort()
    return items, talks


def rss(items: list[Item]) -> bytes:
    entries = "".join(
        f"<item><title>{it.title}</title><link>https://example.test/{it.n}</link>"
        f"<guid>i{it.n}</guid><pubDate>{format_datetime(it.at)}</pubDate></item>"
        for it in reversed(items[-20:])
    )
    return f"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>{entries}</channel></rss>".encode()


def write_rules(root: Path, server: FeedServer, n: int, intervals: list[int], talks: datetime) -> Path:
    rules = root / "rules"
    rules.mkdir()
    shutil.copy(REPO / "rules" / "watchlists.yaml", rules / "watchlists.yaml")
    lines = ["hosts:", f'  "127.0.0.1": {{requests_per_minute: {HOST_RPM:g}, connections: 4}}', "feeds:"]
    for i in range(n):
        tag = {"official": "official", "wire": "media", "other": "misc"}[kind_of(i)]
        lines += [f"  - id: s{i:02d}", f"    url: {server.url(f'/s{i}.xml')}", f"    interval: {intervals[i]}", f"    tags: [{tag}]"]
    (rules / "sources.yaml").write_text("\n".join(lines) + "\n")
    (rules / "bench.yaml").write_text(
        "rules:\n"
        "  - id: trade-talks\n    type: match\n    description: talks\n    any: [trade talks]\n"
        "    cooldown: 0\n    key: title\n"
        "    surge: {sources: [official, media], for: 60m, interval: 15s}\n"
        "  - id: tariff\n    type: match\n    description: any tariff item\n    any: [tariff update]\n"
        "    cooldown: 0\n    key: title\n"
    )
    (rules / "calendar.yaml").write_text(
        "events:\n  - name: Talks, Stockholm\n"
        f"    start: {talks.isoformat()}\n"
        "    end: " + (talks + timedelta(hours=2)).isoformat() + "\n"
        "    surge: {sources: [official], before: 30m, after: 2h}\n"
    )
    return rules


class Stamp(io.StringIO):
    """The console adapter's stream: when (virtual time) each item's alert was handed over."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__()
        self.clock = clock
        self.seen: dict[int, datetime] = {}

    def write(self, text: str) -> int:
        for m in TOKEN.finditer(text):
            self.seen.setdefault(int(m.group(1)), self.clock.now())
        return len(text)


@dataclass
class Result:
    latencies: list[float]
    requests: int
    missed: int
    busiest_minute: int
    hours: float

    def pct(self, q: float) -> float:
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


async def simulate(
    items: list[Item], talks: datetime, *, n: int, days: int, intervals: list[int], fixed: float | None
) -> Result:
    end = START + timedelta(days=days)
    measured_from = START + timedelta(days=1)
    by_source: dict[int, list[Item]] = {i: [] for i in range(n)}
    for it in items:
        by_source[it.source].append(it)
    shm = "/dev/shm" if Path("/dev/shm").is_dir() else None  # the database in memory: no fsync per poll
    with tempfile.TemporaryDirectory(dir=shm) as tmp, FeedServer() as server:
        root = Path(tmp)
        rules = write_rules(root, server, n, intervals, talks)
        clock = ManualClock(START)
        stamp = Stamp(clock)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            rules_dir=rules,
            database_url=f"sqlite+aiosqlite:///{root / 'bench.db'}",
            console=True,
            poll_jitter=0,
            backlog_hours=0.5,
            event_retention_days=0,
        )
        bot = await Readout.open(settings, adapters=[ConsoleAdapter(stamp)], clock=clock, ruleset=load_rules_dir(rules))
        bot.pipeline.stories = None  # every item is its own alert line: one latency per item
        start_mono = START.timestamp()

        async def virtual_sleep(seconds: float) -> None:
            clock.advance(seconds)

        budgets = bot.pipeline.ruleset.sources
        bot.hosts = HostGate(
            budgets.hosts, default=budgets.host_budget("*"),
            clock=lambda: clock.now().timestamp() - start_mono, sleep=virtual_sleep,
        )
        if fixed is not None:
            bot.cadence.surge = None  # (a): no surges, no learning — every `fixed` seconds
        hastened: list[str] = []
        bot._hasten = lambda ids: hastened.extend(ids) or list(ids)  # type: ignore[method-assign]
        await bot.start(scheduler=False)
        sources = {s.source_id: s for s in bot.pipeline.ruleset.sources.enabled()}
        queue: list[tuple[datetime, str]] = []
        due: dict[str, datetime] = {}
        for k, sid in enumerate(sources):
            first = START + timedelta(seconds=(k * 7.3) % (fixed or intervals[k]))
            due[sid] = first
            heapq.heappush(queue, (first, sid))
        requests = 0
        window: deque[float] = deque()
        busiest = 0
        try:
            while queue:
                at, sid = heapq.heappop(queue)
                if due.get(sid) != at:
                    continue  # superseded by a hastened time
                if at >= end:
                    break
                clock.set(max(at, clock.now()))
                src = int(sid[1:])
                now = clock.now()
                published = [it for it in by_source[src] if it.at <= now]
                body = rss(published)
                etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
                server.route(f"/s{src}.xml", body=body, etag=etag, content_type="application/rss+xml")
                source = sources[sid]
                raised = await bot.poll_source(source)
                requests += 1
                if PROGRESS and requests % 500 == 0:
                    print(f"  {requests} polls, simulated {clock.now():%d %H:%M}, wall {time.perf_counter() - T0:.0f} s", file=sys.stderr)
                t = clock.now().timestamp()
                window.append(t)
                while window and window[0] <= t - 60:
                    window.popleft()
                busiest = max(busiest, len(window))
                if raised:
                    await bot.drain_once()
                now = clock.now()
                step = fixed if fixed is not None else bot.cadence.next_interval(source, now).seconds
                nxt = now + timedelta(seconds=step)
                due[sid] = nxt
                heapq.heappush(queue, (nxt, sid))
                if fixed is None:
                    hastened.extend(await bot.surge_tick())
                    for hid in dict.fromkeys(hastened):
                        when = bot.cadence.earliest(sources[hid], now)
                        if when < due[hid]:
                            due[hid] = when
                            heapq.heappush(queue, (when, hid))
                    hastened.clear()
        finally:
            await bot.stop()
        lat = [
            (stamp.seen[it.n] - it.at).total_seconds()
            for it in items
            if it.at >= measured_from and it.at < end and it.n in stamp.seen
        ]
        wanted = sum(1 for it in items if measured_from <= it.at < end)
        return Result(lat, requests, wanted - len(lat), busiest, (end - START).total_seconds() / 3600)


def shipped_intervals(n: int) -> list[int]:
    ruleset = load_rules_dir(REPO / "rules")
    feeds = [f.interval for f in ruleset.sources.feeds if f.enabled]
    return [feeds[i % len(feeds)] for i in range(n)]


def fmt(x: float) -> str:
    return f"{x:.0f} s" if x < 120 else f"{x / 60:.1f} min"


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--sources", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--interval", type=int, default=300, help="configured interval (the cadence's budget) of each feed")
    args = ap.parse_args()
    n = args.sources
    items, talks = publish_plan(n, args.days, args.seed)
    t0 = time.perf_counter()
    adaptive = await simulate(items, talks, n=n, days=args.days, intervals=[args.interval] * n, fixed=None)
    hours = adaptive.hours
    fixed_interval = n * hours * 3600 / adaptive.requests
    fixed = await simulate(items, talks, n=n, days=args.days, intervals=[args.interval] * n, fixed=fixed_interval)
    shipped = await simulate(items, talks, n=n, days=args.days, intervals=shipped_intervals(n), fixed=None)
    shipped_fixed = await simulate(
        items, talks, n=n, days=args.days, intervals=shipped_intervals(n), fixed=statistics.mean(shipped_intervals(n))
    )
    took = time.perf_counter() - t0
    print(f"{n} feeds, {args.days} simulated days ({len(items)} items; latency over days 2–{args.days}), seed {args.seed}")
    print(f"| run | requests/h | p50 publish → alert | p99 | busiest minute (budget {HOST_RPM:g}) | missed |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in [
        (f"(a) fixed every {fixed_interval:.0f} s", fixed),
        ("(b) adaptive + surge", adaptive),
        ("(c) shipped intervals, adaptive + surge", shipped),
        (f"(d) shipped intervals, fixed (mean {statistics.mean(shipped_intervals(n)):.0f} s)", shipped_fixed),
    ]:
        print(f"| {name} | {r.requests / r.hours:.0f} | {fmt(r.pct(0.5))} | {fmt(r.pct(0.99))} | {r.busiest_minute} | {r.missed} |")
    print(
        f"p50 ratio fixed/adaptive: {fixed.pct(0.5) / adaptive.pct(0.5):.1f}× (goal ≥ 3×); "
        f"p99 ratio: {fixed.pct(0.99) / adaptive.pct(0.99):.1f}× (goal ≥ 2×); "
        f"requests {fixed.requests} vs {adaptive.requests}; wall {took:.0f} s"
    )


if __name__ == "__main__":
    asyncio.run(main())
