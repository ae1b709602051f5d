"""A chat API outage: alerts queue, the rest of the bot carries on, then everything drains in order.

The real TelegramAdapter talks to the fake Bot API, which answers 502 (or
stalls past the client's timeout) on sendMessage for a window; the console
adapter runs beside it. Time is a ManualClock, so the outbox's backoff is
moved through without waiting.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.adapters.console import ConsoleAdapter
from bot.adapters.telegram import TelegramAdapter
from bot.app import Readout
from bot.clock import ManualClock
from bot.settings import Settings
from tests.support.botproc import rss, write_rules
from tests.support.fake_telegram import FakeTelegram
from tests.support.feed_server import FeedServer
from tests.support.store_reads import deliveries

T0 = datetime(2025, 4, 2, 20, 0, tzinfo=UTC)
ALICE, BOB = 5201, 5202


class Bot:
    def __init__(
        self, fake: FakeTelegram, feeds: FeedServer, tmp_path: Path, *, request_timeout: float
    ) -> None:
        self.fake, self.feeds = fake, feeds
        self.clock = ManualClock(T0)
        self.console_out = io.StringIO()
        self.titles: list[str] = []
        self.mode = ""  # "502" or "timeout": how the API fails
        feeds.route("/wire.xml", body=rss([], now=T0), content_type="application/rss+xml")
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            telegram_bot_token=fake.token,  # type: ignore[arg-type]
            telegram_base_url=fake.base_url,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'outage.db'}",
            rules_dir=write_rules(tmp_path / "rules", {"wire": feeds.url("/wire.xml")}),
            console=True,
            poll_jitter=0,
        )
        self.telegram = TelegramAdapter(
            settings, poll_timeout=1, per_chat_interval=0, request_timeout=request_timeout
        )
        self.console = ConsoleAdapter(self.console_out)
        self.settings = settings
        self.readout: Readout  # opened by the fixture (`open`)

    async def open(self) -> Readout:
        self.readout = await Readout.open(self.settings, clock=self.clock, adapters=[self.telegram, self.console])
        return self.readout

    def publish(self, *titles: str) -> None:
        """Add headlines to the feed (the newest published now)."""
        self.titles.extend(titles)
        self.feeds.route(
            "/wire.xml",
            body=rss(self.titles, now=self.clock.now()),
            content_type="application/rss+xml",
        )

    def received(self, chat: int) -> list[str]:
        return [t for m in self.fake.texts(chat) for t in self.titles if t in m]


@pytest.fixture(params=["502", "timeout"])
async def bot(
    request: pytest.FixtureRequest,
    fake_telegram: FakeTelegram,
    feed_server: FeedServer,
    tmp_path: Path,
) -> AsyncIterator[Bot]:
    b = Bot(fake_telegram, feed_server, tmp_path, request_timeout=0.3)
    b.mode = request.param
    await b.open()
    await b.readout.start(scheduler=False)
    for chat in (ALICE, BOB):
        await b.readout.store.subscribe("telegram", str(chat), "severity", "warning", at=T0)
    try:
        yield b
    finally:
        b.fake.set_outage("sendMessage", None)
        b.fake.set_delay("sendMessage", 0)
        await b.readout.stop()


async def test_outage_queues_then_drains_in_order_while_polling_and_console_carry_on(
    bot: Bot,
) -> None:
    readout, fake = bot.readout, bot.fake
    if bot.mode == "502":
        fake.set_outage("sendMessage", 502, description="Bad Gateway")
    else:
        # a stalled gateway: nothing for longer than the client's 0.3 s read timeout, then 504
        fake.set_delay("sendMessage", 0.6)
        fake.set_outage("sendMessage", 504, description="Gateway Timeout")
    polls_before = len(bot.feeds.requests_for("/wire.xml"))

    # Ten minutes of outage: a headline a minute, a poll and a drain every minute.
    for n in range(10):
        bot.publish(f"Tariff outage headline {n}")
        assert len(await readout.poll_once()) == 1
        await readout.drain_once()
        bot.clock.advance(60)
    assert bot.received(ALICE) == [] and bot.received(BOB) == []
    assert len(bot.feeds.requests_for("/wire.xml")) - polls_before == 10  # polling went on
    console_text = bot.console_out.getvalue()
    assert all(t in console_text for t in bot.titles)  # the console got every alert at once
    pending = [
        d for d in await deliveries(readout.store, adapter="telegram") if d.status == "pending"
    ]
    assert len(pending) == 20 and max(d.attempts for d in pending) >= 2  # retried, backing off
    assert all(d.status == "sent" for d in await deliveries(readout.store, adapter="console"))
    status = await readout.services.status()
    assert status.queue.get("pending") == 20 and status.sources[0].healthy

    if bot.mode == "timeout":  # stalled requests get their 504 before the gateway recovers
        await asyncio.sleep(0.7)
    fake.set_outage("sendMessage", None)
    fake.set_delay("sendMessage", 0)
    for _ in range(12):  # the API is back: within a few backoff periods (≤ 5 min each) all drain
        bot.clock.advance(300)
        await readout.drain_once()
        if len(bot.received(ALICE)) == len(bot.received(BOB)) == 10:
            break
    assert bot.received(ALICE) == bot.titles  # each once, in order
    assert bot.received(BOB) == bot.titles
    assert (await readout.store.queue_depth()).get("pending", 0) == 0
    assert [
        d for d in await deliveries(readout.store, adapter="telegram") if d.status != "sent"
    ] == []
