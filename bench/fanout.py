"""Fan-out: one alert to many Telegram subscribers, against a fake Bot API enforcing 30 msg/s.

    .venv/bin/python bench/fanout.py [--subscribers 10000] [--messages 1500]

`--subscribers` private chats subscribe (Store.subscribe, SQLite in a temp dir); one alert is
inserted and routed to the first `--messages` of them (one outbox row each, Store.enqueue_many, one
transaction), so the run ends in about a minute. The real TelegramAdapter (PTB with its
AIORateLimiter) and OutboxWorker then drain the queue until nothing is pending; the fake
answers 429 (retry_after 1) to any sendMessage over 30/s (token bucket, 30 burst).
Figure: accepted sendMessage per second, from the first request to the last answer, and the
number of 429s. Baseline: Telegram's cap, 30 msg/s. Goal: ≥ 95 % of the cap, 0 × 429.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

from bot.adapters.telegram import TelegramAdapter
from bot.clock import SystemClock
from bot.delivery.outbox import OutboxWorker
from bot.models import Alert, Severity
from bot.rules.loader import load_rules_dir
from bot.services import RuleSetHolder, Services
from bot.settings import Settings
from bot.storage.store import OutboxEntry, Store
from tests.support.fake_telegram import FakeTelegram

CAP = 30.0
FIRST_CHAT = 100_000


async def run(subscribers: int, messages: int) -> None:
    print(f"machine: {_common.machine()}")
    with tempfile.TemporaryDirectory() as tmp, FakeTelegram() as fake:
        fake.set_rate_limit("sendMessage", per_second=CAP)
        tmp_path = Path(tmp)
        rules = _common.write_rules_dir(tmp_path / "rules", rules=1)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            telegram_bot_token=fake.token,  # type: ignore[arg-type]
            telegram_base_url=fake.base_url,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'fanout.db'}",
            rules_dir=rules,
            console=False,
        )
        clock = SystemClock()
        store = await Store.open(settings.database_url)
        now = clock.now()
        t0 = time.perf_counter()
        for i in range(subscribers):
            await store.subscribe("telegram", str(FIRST_CHAT + i), "severity", "info", at=now)
        print(f"subscribed {subscribers:,} private chats in {time.perf_counter() - t0:.1f} s")

        alert = Alert(
            id="fanout" + "0" * 26, rule_id="r0000", rule_description="Fan-out bench",
            severity=Severity.warning, kind="news", event_id="e-fanout", key="k",
            title="US imposes tariffs on steel after talks in Geneva", source="bench",
            event_time=now, created_at=now,
        )
        t0 = time.perf_counter()
        async with store.transaction() as conn:
            assert await store.insert_alert(conn, alert)
            rows = [OutboxEntry(alert_id=alert.id, adapter="telegram", address=str(FIRST_CHAT + i), status="pending")
                    for i in range(messages)]
            assert await store.enqueue_many(conn, rows, at=now) == messages
        print(f"routed 1 alert to {messages:,} of them (1 outbox row each, Store.enqueue_many) "
              f"in {time.perf_counter() - t0:.2f} s")

        adapter = TelegramAdapter(settings, poll_timeout=1, per_chat_interval=1.0)
        adapter.listen_on_start = False
        services = Services(settings=settings, store=store, clock=clock,
                            rules=RuleSetHolder(load_rules_dir(rules)), adapters=["telegram"])
        await adapter.start(services)
        worker = OutboxWorker(store, {"telegram": adapter}, clock)
        try:
            t0 = time.perf_counter()
            while True:
                await worker.drain_once()
                depth = await store.queue_depth()
                if not depth.get("pending") and not depth.get("held"):
                    break
                await asyncio.sleep(0.2)  # rows retried after a 429 come due later
            wall = time.perf_counter() - t0
        finally:
            await adapter.stop()
            await store.close()

        sends = fake.calls("sendMessage")
        ok = [c for c in sends if c.status == 200]
        n429 = sum(1 for c in sends if c.status == 429)
        other = len(sends) - len(ok) - n429
        span = max(c.ended for c in ok) - min(c.started for c in sends)
        rate = len(ok) / span
        share = rate / CAP
        print(f"drained in {wall:.1f} s: {len(ok):,} sendMessage accepted, {n429} × 429, {other} other errors")
        print(f"achieved {rate:.2f} msg/s over {span:.1f} s")
        print(f"baseline (cap): {CAP:.0f} msg/s   ratio: {share:.1%} of cap")
        met = share >= 0.95 and n429 == 0 and len(ok) == messages
        print(f"target ≥ 95 % of cap and 0 × 429: {'met' if met else 'NOT met'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subscribers", type=int, default=10_000)
    ap.add_argument("--messages", type=int, default=1_500)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(args.subscribers, min(args.messages, args.subscribers)))


if __name__ == "__main__":
    main()
