"""Hostile chat API answers (issue 12, items 1, 3, 9): one bad message, a bogus 403, a slow API.

The real Readout (pipeline, SQLite outbox, worker) and the real TelegramAdapter talk to
the fake Bot API, which answers with Telegram's own error bodies; time is a ManualClock,
so backoff and confirmation delays are moved through without waiting.
"""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.adapters.console import ConsoleAdapter
from bot.adapters.telegram import TelegramAdapter
from bot.app import Readout
from bot.clock import ManualClock
from bot.delivery.errors import FaultKind, classify_discord, classify_telegram
from bot.settings import Settings
from tests.support.botproc import rss, write_rules
from tests.support.fake_telegram import FakeTelegram
from tests.support.store_reads import deliveries
from tests.support.feed_server import FeedServer

T0 = datetime(2025, 4, 2, 20, 0, tzinfo=UTC)
ALICE = 5301
CHATS = [5310 + n for n in range(10)]


class Bot:
    """Readout + TelegramAdapter on the fake Bot API, one feed, a hand-moved clock."""

    def __init__(
        self, fake: FakeTelegram, feeds: FeedServer, tmp_path: Path, **adapter: float
    ) -> None:
        self.fake, self.feeds = fake, feeds
        self.clock = ManualClock(T0)
        self.titles: list[str] = []
        feeds.route("/wire.xml", body=rss([], now=T0), content_type="application/rss+xml")
        self.settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            telegram_bot_token=fake.token,  # type: ignore[arg-type]
            telegram_base_url=fake.base_url,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'faults.db'}",
            rules_dir=write_rules(tmp_path / "rules", {"wire": feeds.url("/wire.xml")}),
            console=True,
            poll_jitter=0,
        )
        self.telegram = TelegramAdapter(
            self.settings, poll_timeout=1, per_chat_interval=0, **adapter
        )
        self.adapters = [self.telegram, ConsoleAdapter(io.StringIO())]
        self.readout: Readout  # opened by the fixture

    async def open(self) -> None:
        self.readout = await Readout.open(self.settings, clock=self.clock, adapters=self.adapters)

    async def publish(self, *titles: str) -> None:
        self.titles.extend(titles)
        self.feeds.route(
            "/wire.xml", body=rss(self.titles, now=self.clock.now()), content_type="application/rss+xml"
        )
        assert len(await self.readout.poll_once()) == len(titles)

    def received(self, chat: int) -> list[str]:
        return [t for m in self.fake.texts(chat) for t in self.titles if t in m]

    async def subscribe(self, *chats: int) -> None:
        for chat in chats:
            await self.readout.store.subscribe("telegram", str(chat), "severity", "warning", at=T0)


@pytest.fixture
async def bot(
    fake_telegram: FakeTelegram, feed_server: FeedServer, tmp_path: Path
) -> AsyncIterator[Bot]:
    b = Bot(fake_telegram, feed_server, tmp_path, request_timeout=0.3, patient_timeout=5.0)
    await b.open()
    await b.readout.start(scheduler=False)
    try:
        yield b
    finally:
        fake_telegram.set_outage("sendMessage", None)
        fake_telegram.set_delay("sendMessage", 0)
        await b.readout.stop()


# ---- item 1: a permanent per-message error never blocks the chat -----------------------------


async def test_message_refused_for_good_is_given_up_and_the_next_alert_goes_at_once(bot: Bot) -> None:
    await bot.subscribe(ALICE)
    # Telegram refuses the alert, and the reshaped (plain, short) try too.
    bot.fake.fail_next("sendMessage", 400, description="Bad Request: message is too long", count=2)
    await bot.publish("Tariff headline one")
    await bot.readout.drain_once()
    await bot.publish("Tariff headline two")
    await bot.readout.drain_once()  # no clock moved: nothing waits for a backoff
    assert bot.received(ALICE) == ["Tariff headline two"]
    rows = await deliveries(bot.readout.store, adapter="telegram")
    assert [r.status for r in rows] == ["dead", "sent"]
    assert "message is too long" in (rows[0].last_error or "").lower()


async def test_message_refused_once_goes_reshaped_as_plain_text(bot: Bot) -> None:
    await bot.subscribe(ALICE)
    bot.fake.fail_next("sendMessage", 400, description="Bad Request: message is too long")
    # two different events (two stories: each is a message of its own, none an edit)
    await bot.publish(
        "Tariff headline reshaped", "Soybean farmers in Iowa brace for steep losses from tariffs on exports this autumn"
    )
    await bot.readout.drain_once()
    assert bot.received(ALICE) == bot.titles  # both, in order, none waiting
    first = bot.fake.sent_messages(ALICE)[0]
    assert first["plain"] == first["text"]  # the reshaped one went as plain text
    calls = bot.fake.calls("sendMessage")
    assert [c.status for c in calls] == [400, 200, 200]
    assert "parse_mode" not in calls[1].params


def test_classification_of_real_error_bodies() -> None:
    tg = classify_telegram
    assert tg(400, "Bad Request: message is too long").kind is FaultKind.MESSAGE
    assert tg(400, "Bad Request: BUTTON_DATA_INVALID").kind is FaultKind.MESSAGE
    assert tg(400, "Bad Request: chat not found").kind is FaultKind.CHAT
    assert tg(403, "Forbidden: bot was blocked by the user").kind is FaultKind.CHAT
    assert tg(403, "Forbidden: bot was kicked from the supergroup chat").kind is FaultKind.CHAT
    assert tg(403, "Forbidden: user is deactivated").kind is FaultKind.CHAT
    assert tg(403, "Forbidden").kind is FaultKind.TRANSIENT  # a proxy, an incident
    assert tg(502, "Bad Gateway").kind is FaultKind.TRANSIENT
    limited = tg(429, "Too Many Requests: retry after 7", retry_after=7)
    assert limited.kind is FaultKind.RATE_LIMIT and limited.retry_after == 7
    dc = classify_discord
    assert dc(400, 50035, "Invalid Form Body").kind is FaultKind.MESSAGE
    assert dc(403, 50013, "Missing Permissions").kind is FaultKind.CHAT
    assert dc(404, 10003, "Unknown Channel").kind is FaultKind.CHAT
    assert dc(403, 0, "Forbidden").kind is FaultKind.TRANSIENT
    assert dc(503, 0, "upstream").kind is FaultKind.TRANSIENT


# ---- item 3: a 403 ends a chat only when Telegram says so, confirmed; bursts are faults ------


async def test_plain_forbidden_for_every_chat_unsubscribes_nobody(bot: Bot) -> None:
    await bot.subscribe(*CHATS)
    bot.fake.set_outage("sendMessage", 403, description="Forbidden")
    await bot.publish("Tariff headline during the incident")
    for _ in range(3):
        await bot.readout.drain_once()
        bot.clock.advance(60)
    bot.fake.set_outage("sendMessage", None)
    for _ in range(6):
        bot.clock.advance(300)
        await bot.readout.drain_once()
    assert all(bot.received(c) == bot.titles for c in CHATS)
    dests = await bot.readout.store.destinations("telegram")
    assert [d.address for d in dests if d.disabled_at is not None] == []
    assert len(await bot.readout.store.subscriptions("telegram")) == len(CHATS)


async def test_blocked_chat_is_disabled_after_confirmation_keeps_subscriptions_and_resumes(
    bot: Bot,
) -> None:
    await bot.subscribe(ALICE)
    bot.fake.fail_next("sendMessage", 403, description="Forbidden: bot was blocked by the user")
    await bot.publish("Tariff headline while blocked")
    await bot.readout.drain_once()
    dest = await bot.readout.store.get_destination("telegram", str(ALICE))
    assert dest is None or dest.disabled_at is None  # one answer is not enough
    bot.fake.fail_next("sendMessage", 403, description="Forbidden: bot was blocked by the user")
    bot.clock.advance(bot.settings.delivery_gone_confirm_seconds)
    await bot.readout.drain_once()
    dest = await bot.readout.store.get_destination("telegram", str(ALICE))
    assert dest is not None and dest.disabled_at is not None and "blocked" in (dest.disabled_reason or "")
    assert len(await bot.readout.store.subscriptions("telegram", str(ALICE))) == 1  # kept

    await bot.publish("Tariff headline nobody gets")  # disabled: not routed
    await bot.readout.drain_once()
    bot.fake.push_member_update(ALICE, "member")  # unblocked
    await bot.fake.wait_for(lambda: bot.fake.pending_updates() == 0)
    await _eventually_enabled(bot, ALICE)
    await bot.publish("Tariff headline after coming back")
    await bot.readout.drain_once()
    assert bot.received(ALICE) == ["Tariff headline after coming back"]


async def test_burst_of_blocked_answers_across_chats_is_an_api_fault(bot: Bot) -> None:
    await bot.subscribe(*CHATS)
    bot.fake.set_outage("sendMessage", 403, description="Forbidden: bot was blocked by the user")
    await bot.publish("Tariff headline in a bogus burst")
    for _ in range(4):  # past the confirmation delay, several times over
        await bot.readout.drain_once()
        bot.clock.advance(bot.settings.delivery_gone_confirm_seconds + 1)
    dests = await bot.readout.store.destinations("telegram")
    assert [d.address for d in dests if d.disabled_at is not None] == []
    bot.fake.set_outage("sendMessage", None)
    for _ in range(3):
        bot.clock.advance(bot.settings.delivery_fault_pause_seconds)
        await bot.readout.drain_once()
    assert all(bot.received(c) == bot.titles for c in CHATS)


async def _eventually_enabled(bot: Bot, chat: int) -> None:
    for _ in range(500):
        dest = await bot.readout.store.get_destination("telegram", str(chat))
        if dest is not None and dest.disabled_at is None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("chat not resumed")


# ---- item 9: a slow API that delivers late gets each message at most twice ------------------


async def test_timeouts_of_a_slow_api_that_delivers_never_make_a_third_copy(bot: Bot) -> None:
    await bot.subscribe(ALICE)
    bot.fake.set_delay("sendMessage", 0.8)  # past the 0.3 s client timeout, then delivered
    await bot.publish("Tariff headline on a slow day")
    for _ in range(6):
        await bot.readout.drain_once()
        bot.clock.advance(300)
    # requests the client gave up on still land: wait until the fake has answered them all
    await bot.fake.wait_for(lambda: bot.fake.in_flight() == 0)
    copies = Counter(bot.received(ALICE))
    assert copies["Tariff headline on a slow day"] in (1, 2)
    rows = await deliveries(bot.readout.store, adapter="telegram")
    assert [r.status for r in rows] == ["sent"]
