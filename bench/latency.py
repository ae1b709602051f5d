"""Detection latency: a headline appears on a local feed → sendMessage reaches the fake Bot API.

    .venv/bin/python bench/latency.py [--trials 30] [--interval 5] [--feeds 3]

A real `python -m bot run` (SQLite, Telegram adapter) polls `--feeds` local
feeds every `--interval` seconds (5 s is the smallest sources.yaml allows;
POLL_JITTER=0.5) for one subscribed chat. Every ~interval/2·feeds⁻¹ seconds a
new headline is added to a random feed; its latency is from the moment the
feed serves it to the moment the fake Bot API receives the sendMessage that
carries it. Baseline: the poll interval itself (a headline waits on average
interval/2 for the next poll, at worst interval + jitter).
Goal: p99 ≤ interval + 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

from bot.storage.store import Store
from tests.support.botproc import BotProcess
from tests.support.fake_telegram import FakeTelegram
from tests.support.feed_server import FeedServer

CHAT = 9001


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--interval", type=int, default=5)
    ap.add_argument("--feeds", type=int, default=3)
    ap.add_argument("--delivery-interval", type=float, default=1.0, help="DELIVERY_INTERVAL for the bot")
    args = ap.parse_args()
    print(f"machine: {_common.machine()}")
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as tmp_name, FeedServer() as feeds, FakeTelegram() as fake:
        tmp = Path(tmp_name)
        names = [f"wire{i}" for i in range(args.feeds)]
        items: dict[str, list[str]] = {n: [f"{n} old story {k}" for k in range(3)] for n in names}
        for n in names:
            feeds.route(f"/{n}.xml", body=_common.rss(items[n], tag=n), content_type="application/rss+xml")
        rules = tmp / "rules"
        rules.mkdir()
        (rules / "sources.yaml").write_text(
            "feeds:\n" + "".join(f'  - id: {n}\n    url: "{feeds.url(f"/{n}.xml")}"\n    interval: {args.interval}\n' for n in names)
        )
        (rules / "watchlists.yaml").write_text("watchlists: {}\n")
        (rules / "rules.yaml").write_text(_common.TARIFF_RULE)
        db = f"sqlite+aiosqlite:///{tmp / 'bot.db'}"
        store = await Store.open(db)
        await store.ensure_destination("telegram", str(CHAT), at=datetime.now(UTC), chat_kind="private")
        await store.subscribe("telegram", str(CHAT), "severity", "info", at=datetime.now(UTC))
        await store.close()
        env = {
            "DATABASE_URL": db, "RULES_DIR": str(rules), "TELEGRAM_BOT_TOKEN": fake.token,
            "TELEGRAM_BASE_URL": fake.base_url, "POLL_JITTER": "0.5", "CONSOLE": "false",
            "DELIVERY_INTERVAL": str(args.delivery_interval), "LOG_LEVEL": "WARNING",
        }
        published: dict[str, float] = {}
        with BotProcess(env, tmp / "bot") as bot:
            await asyncio.sleep(args.interval + 3)  # first polls done: the old stories are history
            gap = args.interval / 2 / max(1, args.feeds) + 0.8
            for trial in range(args.trials):
                feed = rng.choice(names)
                title = f"{feed} tariff story {trial} for the latency bench"
                items[feed].insert(0, title)
                feeds.route(f"/{feed}.xml", body=_common.rss(items[feed], tag=feed), content_type="application/rss+xml")
                published[title] = time.monotonic()
                await asyncio.sleep(rng.uniform(0.5 * gap, 1.5 * gap))
            deadline = time.monotonic() + args.interval * 3 + 5
            while time.monotonic() < deadline:
                got = {t for c in fake.calls("sendMessage") for t in published if t in str(c.params.get("text"))}
                if len(got) == len(published):
                    break
                await asyncio.sleep(0.2)
            assert bot.alive(), bot.stderr[-2000:]
        latencies, waits, handling = [], [], []
        for title, at in published.items():
            sends = [c.started for c in fake.calls("sendMessage") if title in str(c.params.get("text"))]
            if not sends:
                continue
            latencies.append(min(sends) - at)
            # Split: waiting for the next poll of its feed, then everything after the fetch
            # (parse, rules, database, outbox, pacing, Bot API call).
            feed = title.split(" ", 1)[0]
            polls = [r.at for r in feeds.requests_for(f"/{feed}.xml") if r.at >= at]
            if polls:
                waits.append(min(polls) - at)
                handling.append(min(sends) - min(polls))
        missing = len(published) - len(latencies)
        p50, p99 = _common.percentile(latencies, 50), _common.percentile(latencies, 99)
        goal = args.interval + 1
        print(f"trials: {len(published)} ({missing} never delivered), poll interval {args.interval} s, jitter 0.5 s, "
              f"DELIVERY_INTERVAL {args.delivery_interval} s")
        print(f"latency p50 {p50:.2f} s, p99 {p99:.2f} s, max {max(latencies):.2f} s, mean {statistics.mean(latencies):.2f} s")
        if waits:
            print(f"  wait for the poll: p50 {_common.percentile(waits, 50):.2f} s, max {max(waits):.2f} s; "
                  f"fetch → sendMessage: p50 {_common.percentile(handling, 50):.2f} s, p99 {_common.percentile(handling, 99):.2f} s, "
                  f"max {max(handling):.2f} s")
        print(f"baseline (poll interval): {args.interval} s → p99/interval {p99 / args.interval:.2f}; "
              f"p50 vs interval/2: {p50 / (args.interval / 2):.2f}")
        print(f"goal p99 <= interval + 1 s = {goal} s: {'met' if p99 <= goal and not missing else 'MISSED'}")


if __name__ == "__main__":
    asyncio.run(main())
