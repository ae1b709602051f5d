"""Polling: 1,000 feeds on a local server, one cycle on one Readout worker, then a cycle of 304s.

    .venv/bin/python bench/polling.py [--feeds 1000] [--items 20] [--rules 1000]

The feed server runs in its own process. Cycle 1 is a cold start: every feed
answers 200 with `--items` new headlines, all parsed, deduplicated, matched
against `--rules` rules and stored. Cycle 2 polls the same unchanged feeds:
conditional GET, 304s. Baseline = cycle 1; the ratio first/second should be
"several times". Runs on SQLite, and on PostgreSQL when the local server answers. The rules are
the repository's own (`rules/`, price sources off) unless `--rules N` asks for N
generated ones; with 1,000 generated rules a cold cycle raises ~9 alerts per
headline and is bound by writing alerts (see the README, "Benchmarks").
Targets: cycle 1 < 10 s; first/second ≥ 3×.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

from bot.app import Readout
from bot.settings import Settings


async def run_cycles(database_url: str, rules_dir: Path, *, archive_days: float = 14.0) -> tuple[float, float, int]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        rules_dir=rules_dir,
        database_url=database_url,
        console=False,
        event_retention_days=archive_days,
    )
    bot = await Readout.open(settings, adapters=[])
    try:
        t0 = time.perf_counter()
        alerts = await bot.poll_once()
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = await bot.poll_once()
        second = time.perf_counter() - t0
        assert not again, "unchanged feeds produced alerts"
        return first, second, len(alerts)
    finally:
        await bot.stop()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--feeds", type=int, default=1000)
    ap.add_argument("--items", type=int, default=20)
    ap.add_argument("--rules", type=int, default=0, help="generated match rules; 0 = the repository's own rules/")
    ap.add_argument(
        "--archive",
        action="store_true",
        help="also measure the event archive's cost: cycle 1 with it off (EVENT_RETENTION_DAYS=0) vs on",
    )
    args = ap.parse_args()
    print(f"machine: {_common.machine()}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        paths = _common.write_feeds(tmp / "feeds", args.feeds, items=args.items)
        with _common.FeedFolderServer(tmp / "feeds") as base:
            feeds = [(p.strip("/").removesuffix(".xml"), base + p) for p in paths]
            if args.rules:
                rules = _common.write_rules_dir(tmp / "rules", rules=args.rules, feeds=feeds)
            else:
                rules = _common.repo_rules_with(tmp / "rules", feeds)
            targets = [("sqlite", f"sqlite+aiosqlite:///{tmp / 'bench.db'}")]
            reason = await _common.pg_reachable()
            if reason is None:
                from tests.support.databases import PostgresDatabase

                targets.append(("postgresql", PostgresDatabase(_common.PG_SERVER)))  # type: ignore[arg-type]
            else:
                print(f"postgresql: skipped ({reason})")
            print(f"feeds: {args.feeds} × {args.items} items, rules: {args.rules or 'the repository rules/'}")
            for name, target in targets:
                if isinstance(target, str):
                    first, second, alerts = await run_cycles(target, rules)
                else:
                    async with target as url:
                        first, second, alerts = await run_cycles(url, rules)
                ratio = first / second
                if args.archive:
                    if isinstance(target, str):
                        target = target.replace("bench.db", "bench-noarchive.db")
                        off, _, _ = await run_cycles(target, rules, archive_days=0)
                    else:
                        async with PostgresDatabase(_common.PG_SERVER) as url:  # type: ignore[name-defined]
                            off, _, _ = await run_cycles(url, rules, archive_days=0)
                    print(
                        f"{name:10s} event archive: cycle 1 {first:6.2f} s with it, {off:6.2f} s without: "
                        f"{first / off:.2f}x"
                    )
                print(
                    f"{name:10s} cycle 1 (200s, {alerts} alerts): {first:6.2f} s "
                    f"[target < 10 s: {'met' if first < 10 else 'MISSED'}]  "
                    f"cycle 2 (304s): {second:6.2f} s  ratio {ratio:.1f}x "
                    f"[target >= 3x: {'met' if ratio >= 3 else 'MISSED'}]"
                )


if __name__ == "__main__":
    asyncio.run(main())
