"""Memory: peak RSS of a process holding a Readout-sized load.

    .venv/bin/python bench/memory.py [--rules 1000] [--feeds 1000] [--subscribers 10000] [--headlines 1000]

In this process: a rules folder with `--feeds` feed sources and `--rules` generated match
rules (bench/_common.py) is loaded into a RuleSet and a RuleEngine; `--subscribers`
Telegram chats subscribe in a Store (SQLite, temp dir); the routing table for all of them is
loaded (as the pipeline does per batch) and `--headlines` generated headlines are evaluated
and the first `--routed` (20) resulting alerts routed. No feed is fetched (no poll cycle). Figure: peak RSS
(getrusage ru_maxrss). Baseline: peak RSS of a bare `python -c "import bot.app"`, measured
in the same run. Goal: < 200 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

from bot.delivery.routing import RoutingTable
from bot.models import NewsEvent
from bot.rules.engine import RuleEngine
from bot.rules.loader import load_rules_dir
from bot.storage.store import Store

GOAL_MB = 200.0


def baseline_mb() -> float:
    code = "import resource, bot.app; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    out = subprocess.run([sys.executable, "-c", code], cwd=_common.REPO, capture_output=True,
                         text=True, check=True)
    return int(out.stdout.strip()) / 1024


async def run(args: argparse.Namespace) -> None:
    print(f"machine: {_common.machine()}")
    base = baseline_mb()
    print(f"baseline: bare `import bot.app` peak RSS {base:.1f} MB")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        feeds = [(f"feed{i:04d}", f"http://127.0.0.1:9/feed{i:04d}.xml") for i in range(args.feeds)]
        t0 = time.perf_counter()
        rules_dir = _common.write_rules_dir(tmp_path / "rules", rules=args.rules, feeds=feeds)
        ruleset = load_rules_dir(rules_dir)
        engine = RuleEngine(ruleset)
        print(f"loaded {args.rules:,} rules + {args.feeds:,} feeds in {time.perf_counter() - t0:.1f} s; "
              f"peak RSS now {_common.peak_rss_mb():.1f} MB")

        store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'mem.db'}")
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        for i in range(args.subscribers):
            await store.subscribe("telegram", str(100_000 + i), "severity", "info", at=now)
        print(f"subscribed {args.subscribers:,} chats in {time.perf_counter() - t0:.1f} s; "
              f"peak RSS now {_common.peak_rss_mb():.1f} MB")

        t0 = time.perf_counter()
        table = await RoutingTable.load(store, now=now, console_min=None,
                                        active_adapters=frozenset({"telegram"}))
        alerts = routes = 0
        for i, title in enumerate(_common.headlines(args.headlines)):
            event = NewsEvent(id=f"h{i}", source="bench", title=title, seen_at=now, published=now)
            for alert in engine.evaluate(event, now=now):
                alerts += 1
                if alerts <= args.routed:  # routing all ~9,000 alerts × 10,000 subs takes minutes
                    routes += len(table.routes(alert, now=now))
        print(f"routing table for {args.subscribers:,} subscribers + {args.headlines:,} headlines: "
              f"{alerts:,} alerts, first {args.routed} routed: {routes:,} routes in {time.perf_counter() - t0:.1f} s")
        await store.close()

    peak = _common.peak_rss_mb()
    print(f"peak RSS: {peak:.1f} MB   baseline: {base:.1f} MB   ratio: {peak / base:.2f}× "
          f"(+{peak - base:.1f} MB for the load)")
    print(f"target < {GOAL_MB:.0f} MB: {'met' if peak < GOAL_MB else 'NOT met'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rules", type=int, default=1_000)
    ap.add_argument("--feeds", type=int, default=1_000)
    ap.add_argument("--subscribers", type=int, default=10_000)
    ap.add_argument("--headlines", type=int, default=1_000)
    ap.add_argument("--routed", type=int, default=20)
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
