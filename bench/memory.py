"""Memory: peak RSS of one Readout worker holding a desk-sized load, through a poll cycle.

    .venv/bin/python bench/memory.py [--rules 1000] [--feeds 1000] [--items 5] [--subscribers 10000]

In this process: `--feeds` local feeds (bench/_feedsrv.py, its own process) of `--items`
generated headlines each, `--rules` generated match rules (bench/_common.py), and
`--subscribers` Telegram chats in the Store (SQLite, temp dir), each subscribed to one rule
(chosen at random) — a chat subscribed to everything would be owed every alert. Then a real
`Readout` (its Telegram adapter not started: outbox rows are written, not sent) runs one cold poll
cycle: every feed fetched, parsed, matched, deduplicated, alerts routed to their
subscribers and queued. Figure: peak RSS (getrusage ru_maxrss). Baseline: peak RSS of a
bare `python -c "import bot.app"`, measured in the same run. Goal: < 200 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

from bot.adapters.telegram import TelegramAdapter
from bot.app import Readout, Source
from bot.settings import Settings
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
        paths = _common.write_feeds(tmp_path / "feeds", args.feeds, items=args.items)
        with _common.FeedFolderServer(tmp_path / "feeds") as base_url:
            feeds = [(p.strip("/").removesuffix(".xml"), base_url + p) for p in paths]
            rules_dir = _common.write_rules_dir(tmp_path / "rules", rules=args.rules, feeds=feeds)
            database_url = f"sqlite+aiosqlite:///{tmp_path / 'mem.db'}"

            store = await Store.open(database_url)
            now = datetime.now(UTC)
            rng = random.Random(3)
            t0 = time.perf_counter()
            for i in range(args.subscribers):
                await store.subscribe("telegram", str(100_000 + i), "rule", f"r{rng.randrange(args.rules):04d}", at=now)
            await store.close()
            print(f"subscribed {args.subscribers:,} chats (one rule each) in {time.perf_counter() - t0:.1f} s; "
                  f"peak RSS now {_common.peak_rss_mb():.1f} MB")

            settings = Settings(_env_file=None, rules_dir=rules_dir, database_url=database_url,  # type: ignore[call-arg]
                                console=False, telegram_bot_token="123456:not-started")
            # The adapter routes rows to "telegram" but is never started: nothing is sent.
            t0 = time.perf_counter()
            bot = await Readout.open(settings, adapters=[TelegramAdapter(settings)])
            print(f"loaded {args.rules:,} rules + {args.feeds:,} feeds in {time.perf_counter() - t0:.1f} s; "
                  f"peak RSS now {_common.peak_rss_mb():.1f} MB")
            try:
                t0 = time.perf_counter()
                # As `run` does: each poll's alerts are dropped once queued (poll_once would keep them all).
                async def poll(source: Source) -> int:
                    return len(await bot.poll_source(source))

                alerts = sum(await asyncio.gather(*(poll(s) for s in bot._all_sources())))
                cycle = time.perf_counter() - t0
                depth = await bot.store.queue_depth()
            finally:
                await bot.stop()
            print(f"poll cycle: {args.feeds * args.items:,} headlines, {alerts:,} alerts, "
                  f"{depth.get('pending', 0):,} outbox rows queued, in {cycle:.1f} s")

    peak = _common.peak_rss_mb()
    print(f"peak RSS: {peak:.1f} MB   baseline: {base:.1f} MB   ratio: {peak / base:.2f}× "
          f"(+{peak - base:.1f} MB for the load)")
    print(f"target < {GOAL_MB:.0f} MB: {'met' if peak < GOAL_MB else 'NOT met'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rules", type=int, default=1_000)
    ap.add_argument("--feeds", type=int, default=1_000)
    ap.add_argument("--items", type=int, default=5)
    ap.add_argument("--subscribers", type=int, default=10_000)
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
