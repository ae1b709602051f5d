"""Event archive cost: the pipeline's group transaction with the archive on vs off.

    .venv/bin/python bench/archive.py [--groups 20] [--size 500]

Groups of `--size` new headlines (real labelled titles, numbered so each is new)
go through `Pipeline.process` on a real database, alternating a pipeline with the
archive and one without (same store, same rules), so machine noise hits both
alike. Reports the median time per group of each and the ratio (baseline: archive
off, same run). Runs on SQLite, and on PostgreSQL when the local server answers.
Target: ratio <= 1.3x (the archive is one multi-row INSERT next to the seen rows).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

from bot.clock import ManualClock
from bot.models import NewsEvent
from bot.pipeline import Pipeline
from bot.rules.loader import load_rules_dir
from bot.storage.archive import EventArchive
from bot.storage.store import Store

ROOT = Path(__file__).resolve().parents[1]
TITLES = [x["title"] for x in json.loads((ROOT.parent / "shared/data/news_headlines_labelled.json").read_text())]


async def measure(url: str, groups: int, size: int) -> tuple[float, float]:
    store = await Store.open(url)
    clock = ManualClock(datetime(2025, 4, 2, 20, 0, tzinfo=UTC))
    rules = load_rules_dir(ROOT / "rules")
    archive = EventArchive(store.engine, retention=timedelta(days=14))
    on = Pipeline(store, rules, clock, console_min=None, active_adapters=frozenset(), archive=archive)
    off = Pipeline(store, rules, clock, console_min=None, active_adapters=frozenset())
    times: dict[bool, list[float]] = {True: [], False: []}
    n = 0
    try:
        for g in range(groups * 2):
            with_archive = g % 2 == 0
            events = []
            for _ in range(size):
                n += 1
                clock.advance(1)
                title = f"{TITLES[n % len(TITLES)]} ({n})"
                events.append(NewsEvent(id=f"b{n}", source="wire", title=title, summary="s " * 40,
                                        url=f"https://news.example.com/{n}", published=clock.now(),
                                        seen_at=clock.now()))
            t0 = time.perf_counter()
            await (on if with_archive else off).process(events)
            times[with_archive].append(time.perf_counter() - t0)
    finally:
        await store.close()
    return statistics.median(times[True]), statistics.median(times[False])


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=20)
    ap.add_argument("--size", type=int, default=500)
    args = ap.parse_args()
    print(f"machine: {_common.machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        targets: list[tuple[str, str | None]] = [("sqlite", f"sqlite+aiosqlite:///{tmp}/archive.db")]
        reason = await _common.pg_reachable()
        if reason is None:
            targets.append(("postgresql", None))
        else:
            print(f"postgresql: skipped ({reason})")
        for name, url in targets:
            if url is None:
                from tests.support.databases import PostgresDatabase

                async with PostgresDatabase(_common.PG_SERVER) as pg_url:
                    with_, without = await measure(pg_url, args.groups, args.size)
            else:
                with_, without = await measure(url, args.groups, args.size)
            ratio = with_ / without
            print(
                f"{name:10s} group of {args.size} new headlines: {without * 1000:7.1f} ms without the archive, "
                f"{with_ * 1000:7.1f} ms with it: {ratio:.2f}x [target <= 1.3x: {'met' if ratio <= 1.3 else 'MISSED'}]"
            )


if __name__ == "__main__":
    asyncio.run(main())
