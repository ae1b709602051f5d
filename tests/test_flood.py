"""A feed flood (issue 12, item 2): bounded per poll and per rule, one digest, critical first.

The real Readout polls the local feed server and delivers through the real
TelegramAdapter to the fake Bot API; time is a ManualClock.
"""

from __future__ import annotations

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
from tests.support.store_reads import deliveries
from tests.support.feed_server import FeedServer

T0 = datetime(2025, 4, 2, 20, 0, tzinfo=UTC)
ALICE = 5401
RULES = """\
rules:
  - id: tariff-test
    type: match
    description: Test tariff headlines
    severity: warning
    key: title
    any: [tariff*]
  - id: embargo-test
    type: match
    description: Test embargo headlines
    severity: critical
    key: title
    any: [embargo*]
"""


class Bot:
    def __init__(self, fake: FakeTelegram, feeds: FeedServer, tmp_path: Path) -> None:
        self.fake, self.feeds = fake, feeds
        self.clock = ManualClock(T0)
        for path in ("/flood.xml", "/wire.xml"):
            feeds.route(path, body=rss([], now=T0), content_type="application/rss+xml")
        self.settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            telegram_bot_token=fake.token,  # type: ignore[arg-type]
            telegram_base_url=fake.base_url,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'flood.db'}",
            rules_dir=write_rules(
                tmp_path / "rules",
                {"flood": feeds.url("/flood.xml"), "wire": feeds.url("/wire.xml")},
                rule_file=RULES,
            ),
            console=True,
            poll_jitter=0,
            alerts_per_poll_max=20,
            alerts_per_rule_max=30,
        )
        self.telegram = TelegramAdapter(self.settings, poll_timeout=1, per_chat_interval=0)
        self.adapters = [self.telegram, ConsoleAdapter(io.StringIO())]
        self.readout: Readout  # opened by the fixture

    async def open(self) -> None:
        self.readout = await Readout.open(self.settings, clock=self.clock, adapters=self.adapters)

    def feed(self, path: str, titles: list[str]) -> None:
        self.feeds.route(path, body=rss(titles, now=self.clock.now()), content_type="application/rss+xml")


@pytest.fixture
async def bot(
    fake_telegram: FakeTelegram, feed_server: FeedServer, tmp_path: Path
) -> AsyncIterator[Bot]:
    b = Bot(fake_telegram, feed_server, tmp_path)
    await b.open()
    await b.readout.start(scheduler=False)
    await b.readout.store.subscribe("telegram", str(ALICE), "severity", "warning", at=T0)
    try:
        yield b
    finally:
        await b.readout.stop()


async def test_flood_is_bounded_digested_and_a_fresh_critical_goes_first(bot: Bot) -> None:
    flood = [f"Tariff spam item {n:04d}" for n in range(300)]
    bot.feed("/flood.xml", flood)
    assert len(await bot.readout.poll_once()) == 300  # every item is recorded
    bot.feed("/wire.xml", ["Embargo announced on rare earths"])
    await bot.readout.poll_once()

    rows = await deliveries(bot.readout.store, adapter="telegram")
    assert len(rows) == 20 + 1 + 1  # the bound, the digest, the critical alert

    await bot.readout.drain_once()
    texts = bot.fake.texts(ALICE)
    assert "Embargo announced on rare earths" in texts[0]  # never behind the flood
    digests = [t for t in texts if "feed flood suspected" in t]
    assert len(digests) == 1 and "+280 more from feed flood" in digests[0]
    assert sum("Tariff spam item" in t for t in texts) == 20

    # The next poll of the same flood: the rule's bound per window (30) leaves room for 10.
    bot.clock.advance(60)
    more = [f"Tariff spam item {n:04d}" for n in range(300, 500)]
    bot.feed("/flood.xml", more)
    assert len(await bot.readout.poll_once()) == 200
    await bot.readout.drain_once()
    texts = bot.fake.texts(ALICE)
    assert sum("Tariff spam item" in t for t in texts) == 30
    digests = [t for t in texts if "feed flood suspected" in t]
    assert len(digests) == 2 and "+190 more from feed flood" in digests[1]
