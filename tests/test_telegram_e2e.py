"""Readout end to end over Telegram: real PTB, real SQLite, the local feed server, the fake Bot API.

Users talk to the bot through the fake (`push_message`); a headline appears on
the local feed; the pipeline routes it; the outbox delivers it through the
real TelegramAdapter. Time is a ManualClock, so quiet hours and 429 delays
are moved through without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import pytest
import yaml

from bot.adapters.base import Gone, RetryLater, Sent
from bot.adapters.telegram import TelegramAdapter
from bot.app import Readout
from bot.clock import ManualClock
from bot.logs import log_filters
from bot.models import Alert, Severity, WatchItem, alert_id
from bot.settings import Settings
from bot.storage.store import Store
from tests.support.fake_telegram import FakeTelegram
from tests.support.feed_server import FeedServer
from tests.support.store_reads import deliveries

T0 = datetime(2025, 4, 2, 20, 0, tzinfo=UTC)
RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
ALICE, BOB = 5001, 5002
GROUP = -1001234567890
HEADLINE = "US to impose new tariffs on <b>Chinese</b> chips & autos"
LINK = "https://news.example.com/2025/04/02/tariffs?a=1&b=2"


def rss(items: list[tuple[str, str, datetime]]) -> bytes:
    body = "".join(
        f"<item><title>{xml_escape(title)}</title><link>{xml_escape(link)}</link>"
        f'<guid isPermaLink="false">{xml_escape(link)}</guid>'
        f"<pubDate>{format_datetime(when)}</pubDate></item>"
        for title, link, when in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Test Wire</title><link>https://news.example.com/</link><description>t</description>{body}"
        "</channel></rss>"
    ).encode()


def rules_dir(tmp_path: Path, feed_url: str) -> Path:
    """The repository's rules with one feed (the local server) and every price source off."""
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    sources = yaml.safe_load((RULES_DIR / "sources.yaml").read_text())
    sources["feeds"] = [
        {"id": "test-wire", "url": feed_url, "interval": 60, "tags": ["us", "tariff"]}
    ]
    for price in sources.get("prices") or []:
        price["enabled"] = False
    (target / "sources.yaml").write_text(yaml.safe_dump(sources))
    return target


class World:
    """A Readout with a TelegramAdapter, its fake Bot API and feed, and a hand-moved clock."""

    def __init__(self, fake: FakeTelegram, feeds: FeedServer, tmp_path: Path) -> None:
        self.fake = fake
        self.feeds = feeds
        self.clock = ManualClock(T0)
        self.feeds.route("/wire.xml", body=rss([]), content_type="application/rss+xml")
        self.settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            telegram_bot_token=fake.token,
            telegram_base_url=fake.base_url,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'readout.db'}",
            rules_dir=rules_dir(tmp_path, feeds.url("/wire.xml")),
            console=False,
            poll_jitter=0,
            delivery_interval=0.05,
        )
        self.readout: Readout | None = None
        self.adapter: TelegramAdapter | None = None

    async def start(self, *, scheduler: bool = False) -> Readout:
        self.adapter = TelegramAdapter(self.settings, poll_timeout=1, per_chat_interval=0)
        self.readout = await Readout.open(self.settings, clock=self.clock, adapters=[self.adapter])
        await self.readout.start(scheduler=scheduler)
        return self.readout

    async def stop(self) -> None:
        if self.readout is not None:
            await self.readout.stop()
            self.readout = None

    @property
    def store(self) -> Store:
        assert self.readout is not None
        return self.readout.store

    def headline(
        self, title: str = HEADLINE, link: str = LINK, *, when: datetime | None = None
    ) -> None:
        self.feeds.route(
            "/wire.xml",
            body=rss([(title, link, when or T0 - timedelta(minutes=5))]),
            content_type="application/rss+xml",
        )

    async def say(self, chat_id: int, text: str, **kw: Any) -> str:
        before = len(self.fake.sent_messages(chat_id))
        self.fake.push_message(chat_id, text, **kw)
        return str((await self.fake.wait_for_reply(chat_id, after=before))["plain"])

    def alerts_to(self, chat_id: int) -> list[dict[str, Any]]:
        """Alert messages (those with the alert buttons) the chat received."""
        return [
            m
            for m in self.fake.sent_messages(chat_id)
            if "Mute this rule 24h" in str(m.get("reply_markup"))
        ]


@pytest.fixture
async def world(
    fake_telegram: FakeTelegram, feed_server: FeedServer, tmp_path: Path
) -> AsyncIterator[World]:
    w = World(fake_telegram, feed_server, tmp_path)
    try:
        yield w
    finally:
        await w.stop()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def sample_alert(n: int = 1, *, severity: Severity = Severity.warning) -> Alert:
    return Alert(
        id=alert_id("tariff-announcement", f"ev-{n}"),
        rule_id="tariff-announcement",
        rule_description="New or higher tariffs announced",
        severity=severity,
        kind="news",
        event_id=f"ev-{n}",
        key=f"k{n}",
        title=f"Headline {n} & <i>more</i>",
        url="https://example.com/x",
        source="wire",
        event_time=T0,
        created_at=T0,
        watchlist=(
            WatchItem(
                name="chips", title="Semiconductors", why="Export controls", tickers=("NVDA",)
            ),
        ),
    )


# ---- the whole bot ---------------------------------------------------------------------


async def test_start_then_headline_reaches_chat_escaped_with_watchlist(world: World) -> None:
    readout = await world.start()
    text = await world.say(ALICE, "/start")
    assert "Subscribed to warning and above" in text
    world.headline()
    alerts = await readout.poll_once()
    fired = {a.rule_id for a in alerts}
    assert "tariff-announcement" in fired
    assert await readout.drain_once() >= 1
    received = world.alerts_to(ALICE)
    tariff = next(m for m in received if "New or higher tariffs announced" in m["plain"])
    alert = next(a for a in alerts if a.rule_id == "tariff-announcement")
    assert "&" in alert.title
    assert alert.title in tariff["plain"]  # shown as text, exactly as the feed had it
    assert "<b>Chinese" not in tariff["text"]  # never as markup
    assert tariff["links"] == [LINK]
    assert "NVDA" in tariff["plain"] and "Semiconductors" in tariff["plain"]
    assert f"#{alert.id[:8]}" in tariff["plain"]
    owed = [d for d in await deliveries(world.store, adapter="telegram") if d.alert_id == alert.id]
    assert [(d.address, d.status) for d in owed] == [(str(ALICE), "sent")]
    assert owed[0].message_id == str(tariff["message_id"])


async def test_scheduler_and_outbox_worker_deliver_on_their_own(world: World) -> None:
    # Alice subscribed in an earlier run; the scheduler polls at start and the worker sends.
    store = await Store.open(world.settings.database_url)
    await store.subscribe("telegram", str(ALICE), "severity", "warning", at=T0)
    await store.close()
    world.headline()
    await world.start(scheduler=True)
    message = await world.fake.wait_for(lambda: world.alerts_to(ALICE), timeout=10)
    assert "New or higher tariffs announced" in message[0]["plain"] or len(message) > 1


async def test_muted_chat_receives_nothing(world: World) -> None:
    readout = await world.start()
    await world.say(ALICE, "/start")
    await world.say(BOB, "/start")
    assert "Muted all alerts" in await world.say(BOB, "/mute 1h")
    sent_to_bob = len(world.fake.sent_messages(BOB))
    world.headline()
    await readout.poll_once()
    await readout.drain_once()
    assert world.alerts_to(ALICE)
    assert len(world.fake.sent_messages(BOB)) == sent_to_bob
    rows = [d for d in await deliveries(world.store, adapter="telegram") if d.address == str(BOB)]
    assert rows and {d.status for d in rows} == {"skipped"}


async def test_quiet_hours_hold_then_one_digest(world: World) -> None:
    readout = await world.start()
    await world.say(BOB, "/start")
    assert "Quiet 19:00–21:00 UTC" in await world.say(BOB, "/quiet 19:00-21:00")
    sent_to_bob = len(world.fake.sent_messages(BOB))
    world.headline()
    alerts = await readout.poll_once()
    assert alerts
    await readout.drain_once()
    assert len(world.fake.sent_messages(BOB)) == sent_to_bob  # held
    assert (await world.store.queue_depth()).get("held", 0) >= 1
    world.clock.set(T0 + timedelta(hours=1, minutes=1))  # quiet hours over
    await readout.drain_once()
    digest = world.fake.sent_messages(BOB)[sent_to_bob:]
    assert len(digest) == 1
    assert digest[0]["plain"].startswith("🌙 Quiet hours are over:")
    assert "New or higher tariffs announced" in digest[0]["plain"]
    assert (await world.store.queue_depth()).get("held", 0) == 0


async def test_403_through_the_outbox_disables_after_confirmation(world: World) -> None:
    readout = await world.start()
    await world.say(ALICE, "/start")
    world.fake.fail_next("sendMessage", 403, count=2)
    world.headline()
    await readout.poll_once()
    await readout.drain_once()
    world.clock.advance(world.settings.delivery_gone_confirm_seconds)
    await readout.drain_once()
    assert world.alerts_to(ALICE) == []
    assert len(await world.store.subscriptions("telegram", str(ALICE))) == 1  # kept
    dest = await world.store.get_destination("telegram", str(ALICE))
    assert (
        dest is not None
        and dest.disabled_at is not None
        and "blocked" in (dest.disabled_reason or "")
    )
    status = await world.say(BOB, "/status")
    assert "Stopped destinations (blocked or removed): 1" in status


async def test_429_through_the_outbox_waits_retry_after(world: World) -> None:
    readout = await world.start()
    await world.say(ALICE, "/start")
    world.fake.fail_next("sendMessage", 429, retry_after=7)
    world.headline()
    await readout.poll_once()
    await readout.drain_once()
    assert world.alerts_to(ALICE) == []
    rows = [d for d in await deliveries(world.store, adapter="telegram") if d.status == "pending"]
    assert rows and rows[0].next_attempt_at == T0 + timedelta(seconds=7) and rows[0].attempts == 0
    world.clock.advance(7)
    await readout.drain_once()
    assert world.alerts_to(ALICE)


async def test_restart_keeps_subscriptions_mutes_and_quiet_hours(world: World) -> None:
    await world.start()
    await world.say(ALICE, "/subscribe tariffs")
    await world.say(ALICE, "/mute 2h tariff-truce")
    await world.say(ALICE, "/quiet 22:00-07:00 Europe/London")
    world.fake.set_admins(GROUP, [7001])
    await world.say(GROUP, "/subscribe critical", from_id=7001, thread_id=9)
    await world.stop()
    await world.start()  # a new adapter, the same database
    text = await world.say(ALICE, "/subscriptions")
    assert (
        "tag tariffs" in text
        and "tariff-truce muted until" in text
        and "quiet 22:00–07:00 Europe/London" in text
    )
    subs = {(s.address, s.value) for s in await world.store.subscriptions("telegram")}
    assert subs == {(str(ALICE), "tariffs"), (f"{GROUP}/9", "critical")}


# ---- the adapter's answers to the outbox -------------------------------------------------


@pytest.fixture
async def adapter(fake_telegram: FakeTelegram, tmp_path: Path) -> AsyncIterator[TelegramAdapter]:
    from bot.rules.loader import load_rules_dir
    from bot.services import RuleSetHolder, Services

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        telegram_bot_token=fake_telegram.token,
        telegram_base_url=fake_telegram.base_url,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'a.db'}",
    )
    store = await Store.open(settings.database_url)
    services = Services(
        settings, store, ManualClock(T0), RuleSetHolder(load_rules_dir(RULES_DIR)), ["telegram"]
    )
    a = TelegramAdapter(settings, poll_timeout=1, per_chat_interval=0)
    await a.start(services)
    try:
        yield a
    finally:
        await a.stop()
        await store.close()


async def test_send_results(adapter: TelegramAdapter, fake_telegram: FakeTelegram) -> None:
    alert = sample_alert()
    result = await adapter.send_alert(str(ALICE), alert)
    assert isinstance(result, Sent) and result.message_id == str(
        fake_telegram.sent_messages(ALICE)[-1]["message_id"]
    )

    fake_telegram.fail_next("sendMessage", 429, retry_after=12)
    assert await adapter.send_alert(str(ALICE), alert) == RetryLater(
        reason="telegram flood limit: retry after 12s", after=12.0
    )

    fake_telegram.fail_next("sendMessage", 403)
    result = await adapter.send_alert(str(ALICE), alert)
    assert isinstance(result, Gone) and "blocked" in result.reason

    fake_telegram.fail_next(
        "sendMessage", 403, description="Forbidden: bot was kicked from the supergroup chat"
    )
    assert isinstance(await adapter.send_alert(str(GROUP), alert), Gone)

    fake_telegram.fail_next("sendMessage", 400)  # chat not found
    assert isinstance(await adapter.send_alert("42", alert), Gone)

    fake_telegram.fail_next("sendMessage", 400, description="Bad Request: message thread not found")
    assert isinstance(await adapter.send_alert(f"{GROUP}/77", alert), Gone)

    for status in (500, 502, 503):
        fake_telegram.fail_next("sendMessage", status)
        result = await adapter.send_alert(str(ALICE), alert)
        assert isinstance(result, RetryLater) and result.after is None, status

    assert isinstance(await adapter.send_alert("not-a-chat", alert), Gone)
    # still healthy afterwards
    assert isinstance(await adapter.send_alert(str(ALICE), alert), Sent)


async def test_topic_address_sends_into_the_thread(
    adapter: TelegramAdapter, fake_telegram: FakeTelegram
) -> None:
    assert isinstance(await adapter.send_alert(f"{GROUP}/42", sample_alert()), Sent)
    [call] = fake_telegram.calls("sendMessage")
    assert call.params["chat_id"] == GROUP and call.params["message_thread_id"] == 42
    assert call.params["parse_mode"] == "HTML"


async def test_long_digest_is_split_into_valid_messages(
    adapter: TelegramAdapter, fake_telegram: FakeTelegram
) -> None:
    alerts = [sample_alert(n) for n in range(120)]
    result = await adapter.send_digest(str(ALICE), alerts)
    assert isinstance(result, Sent)
    messages = fake_telegram.sent_messages(ALICE)
    assert len(messages) > 1  # every one accepted by the fake's strict HTML check
    text = "\n".join(m["plain"] for m in messages)
    assert text.count("Headline ") == 120 and "Headline 3 & <i>more</i>" in text


async def test_migrated_group_moves_subscriptions(
    adapter: TelegramAdapter, fake_telegram: FakeTelegram
) -> None:
    store = adapter.application.bot_data["services"].store
    old, new = -4001, -1004001
    await store.subscribe("telegram", str(old), "severity", "warning", at=T0)
    fake_telegram.fail_next(
        "sendMessage",
        400,
        migrate_to=new,
        description="Bad Request: group chat was upgraded to a supergroup chat",
    )
    assert isinstance(await adapter.send_alert(str(old), sample_alert()), Sent)
    assert fake_telegram.sent_messages(new)
    assert [s.address for s in await store.subscriptions("telegram")] == [str(new)]


async def test_private_chat_paced_after_a_burst(
    adapter: TelegramAdapter, fake_telegram: FakeTelegram
) -> None:
    """Three alerts at once reach a private chat at once; the fourth waits (about a second)."""
    adapter._per_chat_interval = 1.0
    for n in range(3):
        assert isinstance(await adapter.send_alert(str(ALICE), sample_alert(n)), Sent)
    limiter = adapter._chat_limits[ALICE]
    assert not limiter.has_capacity()  # a fourth now would wait for the bucket to leak
    for n in range(3, 8):
        await adapter.send_alert(str(GROUP), sample_alert(n))  # groups: left to the AIORateLimiter
    assert GROUP not in adapter._chat_limits
    await adapter.send_alert(str(ALICE), sample_alert(9))  # waits, then goes
    assert len(fake_telegram.sent_messages(ALICE)) == 4


async def test_token_never_logged(
    fake_telegram: FakeTelegram, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.rules.loader import load_rules_dir
    from bot.services import RuleSetHolder, Services

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        telegram_bot_token=fake_telegram.token,
        telegram_base_url=fake_telegram.base_url,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'a.db'}",
    )
    store = await Store.open(settings.database_url)
    services = Services(
        settings, store, ManualClock(T0), RuleSetHolder(load_rules_dir(RULES_DIR)), ["telegram"]
    )
    a = TelegramAdapter(settings, poll_timeout=1, per_chat_interval=0)
    caplog.set_level(logging.DEBUG)
    for f in log_filters([fake_telegram.token]):  # what setup_logging puts on its handler
        caplog.handler.addFilter(f)
    # PTB's ExtBot logs each call under telegram.ext (which setup_logging quiets: restore it
    # after); sends go through aiohttp, which logs no requests, getUpdates through httpx.
    chatty = {n: logging.getLogger(n).level for n in ("httpx", "httpcore", "telegram", "telegram.ext", "aiohttp")}
    try:
        await a.start(services)
        for name in chatty:
            logging.getLogger(name).setLevel(logging.DEBUG)  # as chatty as it gets
        fake_telegram.push_message(ALICE, "/start")
        await fake_telegram.wait_for(lambda: fake_telegram.sent_messages(ALICE))
        fake_telegram.fail_next("sendMessage", 429, retry_after=3)
        await a.send_alert(str(ALICE), sample_alert())
        fake_telegram.fail_next("sendMessage", 502)
        await a.send_alert(str(ALICE), sample_alert())
    finally:
        await a.stop()
        await store.close()
        for name, level in chatty.items():
            logging.getLogger(name).setLevel(level)
    assert any("sendMessage" in r.getMessage() for r in caplog.records)  # the chatter was captured
    assert not any(
        "Rate limit hit" in r.getMessage() for r in caplog.records
    )  # handled 429: no traceback
    secret = fake_telegram.token.split(":", 1)[1]
    assert secret not in caplog.text
    for record in caplog.records:
        assert secret not in record.getMessage() and secret not in (record.exc_text or "")


async def test_wrong_token_fails_start_without_showing_it(
    fake_telegram: FakeTelegram, tmp_path: Path
) -> None:
    import traceback

    from bot.rules.loader import load_rules_dir
    from bot.services import RuleSetHolder, Services

    wrong = "7000000001:AAWrongTokenWrongTokenWrongToken-xyz"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        telegram_bot_token=wrong,
        telegram_base_url=fake_telegram.base_url,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'a.db'}",
    )
    store = await Store.open(settings.database_url)
    services = Services(
        settings, store, ManualClock(T0), RuleSetHolder(load_rules_dir(RULES_DIR)), ["telegram"]
    )
    adapter = TelegramAdapter(settings, poll_timeout=1)
    try:
        with pytest.raises(RuntimeError, match="rejected TELEGRAM_BOT_TOKEN") as info:
            await adapter.start(services)
        shown = "".join(traceback.format_exception(info.value))
        assert wrong not in shown and wrong.split(":")[1] not in shown
        await adapter.stop()  # harmless after a failed start
    finally:
        await store.close()


def test_python_m_bot_run_serves_telegram(
    fake_telegram: FakeTelegram, feed_server: FeedServer, tmp_path: Path
) -> None:
    """The real entry point, as a user starts it: env vars in, long polling, answers, clean stop."""
    import os
    import signal
    import subprocess
    import sys

    feed_server.route("/wire.xml", body=rss([]), content_type="application/rss+xml")
    env = dict(
        os.environ,
        TELEGRAM_BOT_TOKEN=fake_telegram.token,
        TELEGRAM_BASE_URL=fake_telegram.base_url,
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'run.db'}",
        RULES_DIR=str(rules_dir(tmp_path, feed_server.url("/wire.xml"))),
        NO_PROXY="127.0.0.1,localhost",
        LOG_LEVEL="DEBUG",
    )
    log_path = tmp_path / "stderr.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"],
            cwd=Path(__file__).resolve().parent.parent,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
        try:
            fake_telegram.wait_for_sync(lambda: fake_telegram.calls("getUpdates"), 30)
            fake_telegram.push_message(ALICE, "/start")
            [reply] = fake_telegram.wait_for_sync(lambda: fake_telegram.sent_messages(ALICE), 15)
            assert "Subscribed to warning and above" in reply["plain"]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    assert proc.returncode == 0
    logs = log_path.read_text()
    assert "sendMessage" in logs  # DEBUG chatter was written…
    assert fake_telegram.token.split(":", 1)[1] not in logs  # …without the token


async def test_unreachable_telegram_at_start_is_retried_in_the_background(
    fake_telegram: FakeTelegram, tmp_path: Path
) -> None:
    """The same policy as Discord: start does not fail, sends wait, the adapter connects later."""
    from bot.rules.loader import load_rules_dir
    from bot.services import RuleSetHolder, Services

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        telegram_bot_token=fake_telegram.token,
        telegram_base_url=fake_telegram.base_url,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'a.db'}",
    )
    store = await Store.open(settings.database_url)
    services = Services(
        settings, store, ManualClock(T0), RuleSetHolder(load_rules_dir(RULES_DIR)), ["telegram"]
    )
    fake_telegram.fail_next("getMe", 502, count=2)  # down at start and at the first retry
    adapter = TelegramAdapter(settings, poll_timeout=1)
    adapter.retry_delays = (0.01, 0.05)
    fake_telegram.chat(ALICE)
    try:
        await adapter.start(services)  # does not raise
        assert await adapter.send_alert(str(ALICE), sample_alert()) == RetryLater("telegram: not connected yet")
        await fake_telegram.wait_for(lambda: len(fake_telegram.calls("getMe")) >= 3)
        await fake_telegram.wait_for(lambda: fake_telegram.calls("getUpdates"))  # connected and listening
        assert isinstance(await adapter.send_alert(str(ALICE), sample_alert()), Sent)
    finally:
        await adapter.stop()
        await store.close()
