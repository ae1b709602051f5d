"""Paid fan-out: one critical alert to 10,000 Telegram subscribers with `allow_paid_broadcast`.

    python bench/paid_fanout.py [--subscribers 10000] [--tail 300]

The fake Bot API enforces Telegram's limits: 30 msg/s for normal messages, 1,000 msg/s for
paid broadcast ones (separate token buckets, 429 retry_after 1 beyond either), and a Stars
balance each paid message draws 0.1 from (400 BALANCE_TOO_LOW when it cannot pay). The real
TelegramAdapter (PTB with its AIORateLimiter) and OutboxWorker drain one outbox row per
subscriber (SQLite in a temp dir), with `TELEGRAM_PAID_BROADCAST=critical`. The fake runs
in a process of its own (`bench/_fake_process.py`: Telegram's work is not the bot's, and the
two do not share a GIL); `--fake thread` runs it in a thread of this process, as before.
Each run prints the CPU this process spent per message.

First, the sender alone (PTB, no database): paid sends per second through PTB's default httpx
transport and through the aiohttp one Readout uses (`bot/adapters/telegram_http.py`).

Then three runs, each with a fresh database and fake:

1. **paid**: cap and balance cover everyone. Figure: seconds from the first request to the
   last answer, accepted messages, 429s. Baseline: the same count at Telegram's free
   30 msg/s (10,000 / 30 = 333 s). Goal: all delivered in ≤ 15 s, 0 × 429.
2. **cap midway**: `TELEGRAM_PAID_BROADCAST_DAILY_STARS` covers all but `--tail` messages;
   the rest must go through the normal limiter (their rate is reported).
3. **balance midway**: the cap is ample but the bot's balance covers all but `--tail`;
   Telegram refuses the next paid message and the rest go the normal way.

For runs 2 and 3 the normal-rate tail is capped at `--tail` messages so the run ends in
seconds, not minutes (10,000 at 30/s would take 5½ minutes). Each run checks: every
subscriber got exactly one message (nothing lost, nothing doubled), no 429s, the paid
count equals what the cap / balance allows, and the spend recorded equals the paid count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common
from _fake_process import FakeTelegramProcess
from telegram.ext import AIORateLimiter, ApplicationBuilder
from telegram.request import HTTPXRequest

from bot.adapters.telegram import TelegramAdapter
from bot.adapters.telegram_http import AiohttpRequest
from bot.clock import SystemClock
from bot.delivery.outbox import OutboxWorker
from bot.models import Alert, Severity
from bot.rules.loader import load_rules_dir
from bot.services import RuleSetHolder, Services
from bot.settings import Settings
from bot.storage.paid import PaidSpend, day_of
from bot.storage.store import OutboxEntry, Store
from tests.support.fake_telegram import FakeTelegram

FREE, PAID = 30.0, 1000.0
FIRST_CHAT = 100_000
FAKE_IN = {"where": "process"}  # --fake: the fake Bot API in its own process, or a thread of ours


def _fake() -> Any:
    """The fake Bot API: in a process of its own (as Telegram is), or a thread of this one."""
    return FakeTelegramProcess() if FAKE_IN["where"] == "process" else FakeTelegram()


async def one_run(
    name: str, subscribers: int, *, cap_stars: int, balance_stars: float, expect_paid: int, db: str, concurrency: int
) -> bool:
    async with _database(db) as database_url:
        return await _one_run(name, subscribers, cap_stars=cap_stars, balance_stars=balance_stars,
                              expect_paid=expect_paid, database_url=database_url, concurrency=concurrency)


async def _one_run(
    name: str, subscribers: int, *, cap_stars: int, balance_stars: float, expect_paid: int, database_url: str,
    concurrency: int,
) -> bool:
    with tempfile.TemporaryDirectory() as tmp, _fake() as fake:
        fake.set_rate_limit("sendMessage", per_second=FREE, paid_per_second=PAID)
        fake.set_star_balance(balance_stars)
        tmp_path = Path(tmp)
        rules = _common.write_rules_dir(tmp_path / "rules", rules=1)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            telegram_bot_token=fake.token,  # type: ignore[arg-type]
            telegram_base_url=fake.base_url,
            database_url=database_url,
            rules_dir=rules,
            console=False,
            telegram_paid_broadcast="critical",
            telegram_paid_broadcast_daily_stars=cap_stars,
        )
        clock = SystemClock()
        store = await Store.open(settings.database_url)
        now = clock.now()
        alert = Alert(
            id="paidfanout" + "0" * 22, rule_id="r0000", rule_description="Paid fan-out bench",
            severity=Severity.critical, kind="news", event_id="e-paid-fanout", key="k",
            title="US imposes tariffs on steel after talks in Geneva", source="bench",
            event_time=now, created_at=now,
        )
        async with store.transaction() as conn:
            assert await store.insert_alert(conn, alert)
            rows = [OutboxEntry(alert_id=alert.id, adapter="telegram", address=str(FIRST_CHAT + i), status="pending")
                    for i in range(subscribers)]
            assert await store.enqueue_many(conn, rows, at=now) == subscribers

        adapter = TelegramAdapter(settings, poll_timeout=1, per_chat_interval=1.0)
        adapter.listen_on_start = False
        services = Services(settings=settings, store=store, clock=clock,
                            rules=RuleSetHolder(load_rules_dir(rules)), adapters=["telegram"])
        await adapter.start(services)
        worker = OutboxWorker(store, {"telegram": adapter}, clock, concurrency=concurrency)
        try:
            t0, cpu0 = time.perf_counter(), time.process_time()
            while True:
                await worker.drain_once()
                depth = await store.queue_depth()
                if not depth.get("pending") and not depth.get("held"):
                    break
                await asyncio.sleep(0.2)
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            await adapter.stop()  # hands back any reservation in hand
            spent = await PaidSpend(store).spent(day_of(clock.now()))
        finally:
            await store.close()

        sends = fake.calls("sendMessage")
        ok = [c for c in sends if c.status == 200]
        n429 = sum(1 for c in sends if c.status == 429)
        refused = sum(1 for c in sends if c.status == 400)
        per_chat = Counter(m["chat"]["id"] for m in fake.sent_messages())
        lost = subscribers - len(per_chat)
        doubled = sum(1 for n in per_chat.values() if n > 1)
        paid = [c for c in ok if c.params.get("allow_paid_broadcast") is True]
        normal = [c for c in ok if c.params.get("allow_paid_broadcast") is not True]
        span = max(c.ended for c in ok) - min(c.started for c in sends)
        print(f"\n== {name}: {subscribers:,} subscribers, cap {cap_stars:,} Stars, balance {balance_stars:,.1f} Stars")
        print(f"drained in {wall:.1f} s; first request → last answer {span:.2f} s")
        print(f"CPU while draining (this process: outbox, adapter, SQLite{', the fake' if FAKE_IN['where'] == 'thread' else ''}): "
              f"{cpu:.1f} s = {1000 * cpu / subscribers:.2f} ms a message; {_cpu_share():.0%} of one core "
              f"was ours in a busy loop just after")
        print(f"accepted {len(ok):,} (paid {len(paid):,}, normal {len(normal):,}); {n429} × 429; "
              f"{refused} refused for Stars; lost {lost}; doubled {doubled}")
        print(f"Stars spent (recorded) {spent / 10:,.1f}; fake balance left {fake.star_balance:,.1f}")
        if paid:
            p_span = max(c.ended for c in paid) - min(c.started for c in paid)
            print(f"paid phase: {len(paid):,} in {p_span:.2f} s = {len(paid) / max(p_span, 1e-9):,.0f} msg/s")
        if normal:
            n_span = max(c.ended for c in normal) - min(c.started for c in normal)
            print(f"normal phase: {len(normal):,} in {n_span:.2f} s = {len(normal) / max(n_span, 1e-9):,.1f} msg/s")
        baseline = subscribers / FREE
        print(f"baseline at the free {FREE:.0f} msg/s: {baseline:,.0f} s   ratio: {baseline / span:,.1f}× faster")
        met = lost == 0 and doubled == 0 and n429 == 0 and len(paid) == expect_paid and spent == len(paid)
        if name == "paid":
            met = met and span <= 15.0
        print(f"checks (nothing lost or doubled, 0 × 429, paid = {expect_paid:,}, spend = paid"
              f"{', ≤ 15 s' if name == 'paid' else ''}): {'met' if met else 'NOT met'}")
        return met


def _cpu_share() -> float:
    """CPU this process gets in a short busy loop (1.0: a whole core): how loaded the machine is."""
    t0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < 0.5:
        sum(range(1000))
    return (time.process_time() - c0) / (time.perf_counter() - t0)


async def _paid_send(bot: Any, gate: asyncio.Semaphore, chat: int) -> None:
    async with gate:
        await bot.send_message(chat, "<b>US</b> tariffs", parse_mode="HTML", allow_paid_broadcast=True)


async def sender_ceiling(messages: int, concurrency: int) -> None:
    """PTB alone (no database, no outbox): paid sendMessage calls per second through PTB's
    default httpx transport and through Readout's aiohttp one, over the same fake."""
    for name, request in (("httpx (PTB default)", HTTPXRequest(connection_pool_size=256)),
                          ("aiohttp (Readout)", AiohttpRequest())):
        with _fake() as fake:
            # The transport's own ceiling: here the fake does not cap paid sends (on a quiet machine
            # aiohttp goes past 1,000/s, and PTB's limiter alone lets requests bunch over the cap).
            fake.set_rate_limit("sendMessage", per_second=FREE, paid_per_second=1_000_000)
            fake.set_star_balance(messages)
            app = (ApplicationBuilder().token(fake.token).base_url(fake.base_url).request(request)
                   .rate_limiter(AIORateLimiter(max_retries=0)).job_queue(None).build())
            await app.initialize()
            gate = asyncio.Semaphore(concurrency)
            t0 = time.perf_counter()
            await asyncio.gather(*(_paid_send(app.bot, gate, FIRST_CHAT + i) for i in range(messages)))
            dt = time.perf_counter() - t0
            await app.shutdown()
            n429 = sum(1 for c in fake.calls("sendMessage") if c.status == 429)
            print(f"sender ceiling, {name}: {messages:,} paid sends, {concurrency} in flight: "
                  f"{messages / dt:,.0f} msg/s ({n429} × 429)")


async def run(subscribers: int, tail: int, only: str | None, db: str, concurrency: int) -> None:
    print(f"machine: {_common.machine()}; fake Bot API in {'its own process' if FAKE_IN['where'] == 'process' else 'a thread of this one'}")
    if only in (None, "ceiling"):
        await sender_ceiling(2000, concurrency)
    paid_part = subscribers - tail
    results = []
    if only in (None, "paid"):
        results.append(await one_run("paid", subscribers, cap_stars=subscribers, balance_stars=subscribers,
                                     expect_paid=subscribers, db=db, concurrency=concurrency))
    if only in (None, "cap"):
        assert paid_part % 10 == 0, "subscribers - tail must be a whole number of Stars (10 messages each)"
        results.append(await one_run("cap midway", subscribers, cap_stars=paid_part // 10,
                                     balance_stars=subscribers, expect_paid=paid_part, db=db, concurrency=concurrency))
    if only in (None, "balance"):
        results.append(await one_run("balance midway", subscribers, cap_stars=subscribers,
                                     balance_stars=paid_part / 10, expect_paid=paid_part, db=db, concurrency=concurrency))
    if results:
        print(f"\nall checks: {'met' if all(results) else 'NOT met'}")


@contextlib.asynccontextmanager
async def _database(kind: str) -> AsyncIterator[str]:
    """A fresh database: a SQLite file in a temp dir, or a scratch database on the PostgreSQL server."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite+aiosqlite:///{Path(tmp) / 'fanout.db'}"
        return
    from tests.support.databases import PostgresDatabase

    async with PostgresDatabase(_common.PG_SERVER) as url:
        yield url


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subscribers", type=int, default=10_000)
    ap.add_argument("--tail", type=int, default=300, help="messages left for the normal rate in runs 2 and 3")
    ap.add_argument("--only", choices=["ceiling", "paid", "cap", "balance"])
    ap.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--concurrency", type=int, default=32, help="outbox sends in flight (its default, 32)")
    ap.add_argument("--fake", choices=["process", "thread"], default="process",
                    help="the fake Bot API in its own process (default) or in a thread of the bench's")
    args = ap.parse_args()
    FAKE_IN["where"] = args.fake
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(run(args.subscribers, min(args.tail, args.subscribers), args.only, args.database, args.concurrency))


if __name__ == "__main__":
    main()
