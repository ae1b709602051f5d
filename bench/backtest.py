"""Backtest speed: the 2018–2019 archive replayed through the in-memory store, against
the same replay through the SQL Store (SQLite) as the baseline, measured in one run.

    .venv/bin/python bench/backtest.py [--months 1]

The in-memory store exists because the SQL one costs a transaction per event;
this reports both times and their ratio (target: in-memory ≥ 10× faster). The
SQL baseline replays `--months` of the archive (all of it takes minutes); the
in-memory run replays the same slice, then the whole archive for its own time.
Moved here from tests/test_backtest.py, which asserted a wall-clock bound.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

from bot.backtest.replay import read_headlines, read_prices, replay, within
from bot.rules.loader import load_rules_dir

DATA = _common.REPO.parent / "shared" / "data"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, default=1, help="months of 2019 for the SQL baseline")
    args = parser.parse_args()
    tweets_csv, vix_csv = DATA / "trump_tweets_2018_2019.csv", DATA / "vix_daily.csv"
    if not tweets_csv.is_file() or not vix_csv.is_file():
        print(f"data not found in {DATA}", file=sys.stderr)
        return 1
    print(_common.machine())
    rules = load_rules_dir(_common.REPO / "rules")
    tweets = read_headlines(tweets_csv).events
    vix = read_prices(vix_csv, "^VIX").events
    start, end = datetime(2019, 5, 1, tzinfo=UTC), datetime(2019, 5 + args.months, 1, tzinfo=UTC)
    part = [*within(tweets, start, end), *within(vix, start, end)]

    t0 = time.perf_counter()
    sql = await replay(part, rules, database_url="sqlite+aiosqlite:///:memory:")
    sql_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    mem = await replay(part, rules)
    mem_s = time.perf_counter() - t0
    assert mem.alerts == sql.alerts, "the two stores disagree"
    print(f"{len(part):,} events ({args.months} month(s)): SQL store {sql_s:.2f} s, "
          f"in memory {mem_s:.3f} s → {sql_s / mem_s:.0f}× faster")

    everything = [*within(tweets, datetime(2018, 1, 1, tzinfo=UTC), datetime(2020, 1, 1, tzinfo=UTC)),
                  *within(vix, datetime(2018, 1, 1, tzinfo=UTC), datetime(2020, 1, 1, tzinfo=UTC))]
    t0 = time.perf_counter()
    full = await replay(everything, rules)
    full_s = time.perf_counter() - t0
    print(f"whole archive: {len(everything):,} events, {len(full.alerts):,} alerts in memory in {full_s:.2f} s "
          f"({len(everything) / full_s:,.0f} events/s; SQL at the rate above would take ~{full_s * sql_s / mem_s:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
