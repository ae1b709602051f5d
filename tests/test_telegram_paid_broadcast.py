"""Telegram paid broadcast (issue 17, part 4): opt-in, capped per UTC day, falls back without loss.

The real TelegramAdapter (PTB with its AIORateLimiter) and OutboxWorker against the
fake Bot API, which enforces 30 msg/s for normal messages and 1,000 msg/s for
`allow_paid_broadcast` ones, and keeps a Stars balance each paid message draws 0.1
from. The spend ledger runs on SQLite and PostgreSQL, with two stores at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from telegram.ext import AIORateLimiter, ApplicationBuilder

from bot.adapters.telegram import TelegramAdapter
from bot.adapters.telegram_paid import PaidBroadcast, is_out_of_stars
from bot.clock import ManualClock
from bot.delivery.outbox import OutboxWorker
from bot.logs import log_filters
from bot.models import Alert, Severity
from bot.rules.loader import load_rules_dir
from bot.services import RuleSetHolder, Services
from bot.settings import Settings, settings_problems
from bot.storage.paid import PaidSpend, day_of
from bot.storage.store import OutboxEntry, Store
from tests.support.botproc import write_rules
from tests.support.fake_telegram import FakeTelegram

T0 = datetime(2025, 4, 2, 20, 0, tzinfo=UTC)
DAY = day_of(T0)
FIRST = 300_000
ADMIN, STRANGER = 5701, 5702


def _settings(fake: FakeTelegram, tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        telegram_bot_token=fake.token,  # type: ignore[arg-type]
        telegram_base_url=fake.base_url,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'paid.db'}",
        rules_dir=write_rules(tmp_path / "rules", {"wire": "http://127.0.0.1:9/wire.xml"}),
        console=False,
        admins=f"telegram:{ADMIN}",
        **extra,
    )


def _alert(n: int, severity: Severity) -> Alert:
    return Alert(
        id=f"paid{n:028d}", rule_id="tariff-test", rule_description="Paid broadcast test",
        severity=severity, kind="news", event_id=f"e-paid-{n}", key=f"k{n}",
        title=f"Tariff headline {n}", source="test", event_time=T0, created_at=T0,
    )


class World:
    """Store, adapter and outbox worker over one fake Bot API."""

    def __init__(self, fake: FakeTelegram, settings: Settings) -> None:
        self.fake = fake
        self.settings = settings
        self.clock = ManualClock(T0)
        self.store: Store | None = None
        self.adapter: TelegramAdapter | None = None
        self.worker: OutboxWorker | None = None
        self.services: Services | None = None

    async def start(self) -> None:
        self.store = await Store.open(self.settings.database_url)
        self.services = Services(self.settings, self.store, self.clock,
                                 RuleSetHolder(load_rules_dir(self.settings.rules_dir)), ["telegram"])
        self.adapter = TelegramAdapter(self.settings, poll_timeout=1, per_chat_interval=0)
        self.adapter.listen_on_start = False
        await self.adapter.start(self.services)
        self.worker = OutboxWorker(self.store, {"telegram": self.adapter}, self.clock)

    async def stop(self) -> None:
        if self.adapter is not None:
            await self.adapter.stop()
        if self.store is not None:
            await self.store.close()

    async def owe(self, alert: Alert, chats: range) -> None:
        assert self.store is not None
        async with self.store.transaction() as conn:
            assert await self.store.insert_alert(conn, alert)
            rows = [OutboxEntry(alert_id=alert.id, adapter="telegram", address=str(c), status="pending") for c in chats]
            await self.store.enqueue_many(conn, rows, at=T0)

    async def drain(self) -> None:
        assert self.worker is not None and self.store is not None
        for _ in range(200):
            await self.worker.drain_once()
            depth = await self.store.queue_depth()
            if not depth.get("pending") and not depth.get("held"):
                return
            self.clock.advance(timedelta(seconds=5))  # rows deferred by a 429 come due
            await asyncio.sleep(0.05)
        raise AssertionError(f"outbox not drained: {depth}")

    async def spent(self) -> int:
        assert self.store is not None
        return await PaidSpend(self.store).spent(DAY)


@pytest.fixture
async def world_factory(fake_telegram: FakeTelegram, tmp_path: Path) -> AsyncIterator[Any]:
    worlds: list[World] = []

    async def make(**extra: Any) -> World:
        w = World(fake_telegram, _settings(fake_telegram, tmp_path, **extra))
        await w.start()
        worlds.append(w)
        return w

    yield make
    for w in worlds:
        await w.stop()


def _delivered(fake: FakeTelegram, chats: range) -> Counter[int]:
    counts = Counter(m["chat"]["id"] for m in fake.sent_messages())
    return Counter({c: counts[c] for c in chats})


def _exactly_once(fake: FakeTelegram, chats: range) -> None:
    counts = _delivered(fake, chats)
    lost = [c for c in chats if counts[c] == 0]
    doubled = [c for c in chats if counts[c] > 1]
    assert not lost and not doubled, (lost[:5], doubled[:5])


def _redacting(caplog: pytest.LogCaptureFixture, fake: FakeTelegram) -> None:
    """Capture as the running bot logs: every record through setup_logging's filters."""
    caplog.set_level(logging.INFO)
    for f in log_filters([fake.token]):
        caplog.handler.addFilter(f)


def _paid_chats(fake: FakeTelegram) -> set[int]:
    return {m["chat"]["id"] for m in fake.sent_messages() if m.get("paid")}


# ---- settings ------------------------------------------------------------------------


def test_paid_broadcast_is_off_unless_asked(tmp_path: Path) -> None:
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.telegram_paid_broadcast == "off" and s.paid_broadcast_from() is None


def test_paid_broadcast_needs_a_daily_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_PAID_BROADCAST", "critical")
    with pytest.raises(ValidationError) as exc:
        Settings(_env_file=None)  # type: ignore[call-arg]
    problems = settings_problems(exc.value)
    assert any("TELEGRAM_PAID_BROADCAST_DAILY_STARS" in p for p in problems), problems

    monkeypatch.setenv("TELEGRAM_PAID_BROADCAST_DAILY_STARS", "250")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.paid_broadcast_from() is Severity.critical and s.telegram_paid_broadcast_daily_stars == 250

    monkeypatch.setenv("TELEGRAM_PAID_BROADCAST", "warning")
    assert Settings(_env_file=None).paid_broadcast_from() is Severity.warning  # type: ignore[call-arg]


@pytest.mark.parametrize(("name", "value"), [
    ("TELEGRAM_PAID_BROADCAST", "high"),
    ("TELEGRAM_PAID_BROADCAST", "info"),
    ("TELEGRAM_PAID_BROADCAST_DAILY_STARS", "-5"),
    ("TELEGRAM_PAID_BROADCAST_DAILY_STARS", "2.5"),
])
def test_bad_paid_broadcast_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv("TELEGRAM_PAID_BROADCAST", "critical")
    monkeypatch.setenv("TELEGRAM_PAID_BROADCAST_DAILY_STARS", "10")
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as exc:
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert any(p.startswith(f"{name}={value!r}") for p in settings_problems(exc.value))


def test_out_of_stars_answers_are_recognised() -> None:
    assert is_out_of_stars(400, "Bad Request: BALANCE_TOO_LOW")
    assert is_out_of_stars(400, "Bad Request: not enough Stars on the bot's balance")
    assert is_out_of_stars(402, "Payment Required")
    assert is_out_of_stars(None, "Payment Required: not enough Stars")
    assert not is_out_of_stars(400, "Bad Request: chat not found")
    assert not is_out_of_stars(400, "Bad Request: can't parse entities: Unsupported start tag \"x\"")


# ---- the spend ledger ----------------------------------------------------------------


async def test_reservations_never_pass_the_cap_across_two_stores(db_url: str) -> None:
    """Two workers (two engines on one database) reserving at once get exactly the cap."""
    a, b = await Store.open(db_url), await Store.open(db_url)
    try:
        cap = 500
        ledgers = [PaidSpend(a), PaidSpend(b)]

        async def reserve(i: int) -> int:
            return await ledgers[i % 2].reserve(DAY, 7, cap=cap, at=T0)

        grants = await asyncio.gather(*(reserve(i) for i in range(120)))  # 840 wanted
        assert sum(grants) == cap
        assert all(0 <= g <= 7 for g in grants)
        assert await ledgers[0].spent(DAY) == cap == await ledgers[1].spent(DAY)
        assert await ledgers[1].reserve(DAY, 1, cap=cap, at=T0) == 0

        await ledgers[0].release(DAY, 3, at=T0)  # handed back: exactly that much is free again
        assert await ledgers[1].reserve(DAY, 10, cap=cap, at=T0) == 3
        tomorrow = day_of(T0 + timedelta(days=1))
        assert await ledgers[0].reserve(tomorrow, 10, cap=cap, at=T0) == 10  # a new UTC day
    finally:
        await a.close()
        await b.close()
    again = await Store.open(db_url)  # a restart: the day's spend is still there
    try:
        assert await PaidSpend(again).spent(DAY) == 500
    finally:
        await again.close()


async def test_reservations_double_while_they_run_out_fast_and_never_pass_the_cap(db_url: str) -> None:
    """A fan-out reserves in growing blocks (few round trips, each a wait for every paid send);
    the cap still holds to the message, and what is left over is handed back."""
    store = await Store.open(db_url)
    budget = PaidBroadcast(store, ManualClock(T0), from_severity=Severity.critical, daily_stars=100,
                           block=10, max_block=200)
    asked: list[int] = []
    reserve = budget.spend.reserve

    async def counting(day: str, wanted: int, *, cap: int, at: datetime) -> int:
        asked.append(wanted)
        return await reserve(day, wanted, cap=cap, at=at)

    budget.spend.reserve = counting  # type: ignore[method-assign]
    try:
        paid = [await budget.take(Severity.critical) for _ in range(1_050)]
        assert sum(paid) == 1_000  # 100 Stars: exactly the cap
        assert asked[:6] == [10, 20, 40, 80, 160, 200]  # doubling, then the ceiling
        assert len(asked) < 15  # not 100 round trips of ten
        await budget.close()
        assert await PaidSpend(store).spent(DAY) == 1_000
    finally:
        await store.close()


async def test_two_budgets_take_exactly_the_cap(db_url: str) -> None:
    """Two workers' PaidBroadcast, each reserving blocks, send exactly cap messages paid."""
    a, b = await Store.open(db_url), await Store.open(db_url)
    clock = ManualClock(T0)
    budgets = [
        PaidBroadcast(s, clock, from_severity=Severity.critical, daily_stars=5, block=7, idle_release=0.05)
        for s in (a, b)
    ]
    try:
        async def take(i: int) -> bool:
            return await budgets[i % 2].take(Severity.critical)

        first = await asyncio.gather(*(take(i) for i in range(80)))
        paid = sum(first)
        await asyncio.sleep(0.2)  # idle: each budget hands back what it holds
        for budget in budgets:
            budget.recheck = 0  # look at the cap again now
        more = [await take(i) for i in range(30)]  # the handed-back part gets used
        paid += sum(more)
        assert paid == 50
        for budget in budgets:
            await budget.close()
        assert await PaidSpend(a).spent(DAY) == 50
        assert not await budgets[0].take(Severity.warning)  # below the chosen severity
    finally:
        await a.close()
        await b.close()


# ---- the adapter against the fake --------------------------------------------------------


async def test_only_the_opted_in_severity_goes_paid(world_factory: Any, fake_telegram: FakeTelegram) -> None:
    fake_telegram.set_rate_limit("sendMessage", per_second=30)
    fake_telegram.set_star_balance(100)
    w = await world_factory(telegram_paid_broadcast="critical", telegram_paid_broadcast_daily_stars=10)
    critical, warning = range(FIRST, FIRST + 5), range(FIRST + 5, FIRST + 8)
    await w.owe(_alert(1, Severity.critical), critical)
    await w.owe(_alert(2, Severity.warning), warning)
    await w.drain()
    _exactly_once(fake_telegram, range(FIRST, FIRST + 8))
    assert _paid_chats(fake_telegram) == set(critical)
    assert fake_telegram.star_balance == pytest.approx(99.5)
    await w.adapter.stop()  # hands back the reservation it still holds
    assert await w.spent() == 5


async def test_off_by_default_sends_nothing_paid(world_factory: Any, fake_telegram: FakeTelegram) -> None:
    fake_telegram.set_star_balance(100)
    w = await world_factory()
    await w.owe(_alert(1, Severity.critical), range(FIRST, FIRST + 3))
    await w.drain()
    _exactly_once(fake_telegram, range(FIRST, FIRST + 3))
    assert not _paid_chats(fake_telegram)
    assert not fake_telegram.calls("getMyStarBalance")
    assert fake_telegram.star_balance == 100


async def test_paid_sends_are_paced_under_the_paid_limit(world_factory: Any, fake_telegram: FakeTelegram) -> None:
    """PTB's own paid limiter lets requests bunch up to the very cap; `TELEGRAM_PAID_MAX_RATE`
    paces them first, a little under it (here the fake's paid cap is 20/s, ours 15/s)."""
    fake_telegram.set_rate_limit("sendMessage", per_second=30, paid_per_second=20)
    fake_telegram.set_star_balance(100)
    w = await world_factory(
        telegram_paid_broadcast="critical", telegram_paid_broadcast_daily_stars=10, telegram_paid_max_rate=15
    )
    chats = range(FIRST, FIRST + 60)
    await w.owe(_alert(1, Severity.critical), chats)
    await w.drain()
    _exactly_once(fake_telegram, chats)
    assert _paid_chats(fake_telegram) == set(chats)
    assert not [c for c in fake_telegram.calls("sendMessage") if c.status == 429]


async def test_cap_reached_midway_sends_the_rest_normally_once(
    world_factory: Any, fake_telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    fake_telegram.set_rate_limit("sendMessage", per_second=30)
    fake_telegram.set_star_balance(100)
    w = await world_factory(telegram_paid_broadcast="critical", telegram_paid_broadcast_daily_stars=1)
    chats = range(FIRST, FIRST + 25)
    _redacting(caplog, fake_telegram)
    await w.owe(_alert(1, Severity.critical), chats)
    await w.drain()
    _exactly_once(fake_telegram, chats)
    assert len(_paid_chats(fake_telegram)) == 10  # 1 Star = 10 messages
    assert await w.spent() == 10
    assert fake_telegram.star_balance == pytest.approx(99.0)
    assert caplog.text.count("paid broadcast cap reached") == 1
    assert not [c for c in fake_telegram.calls("sendMessage") if c.status == 429]
    assert fake_telegram.token not in caplog.text
    assert fake_telegram.token.split(":")[1] not in caplog.text


@pytest.mark.parametrize(("status", "description"), [
    (400, "Bad Request: BALANCE_TOO_LOW"),
    (402, "Payment Required: not enough Stars"),
])
async def test_balance_running_out_midway_resends_the_refused_normally(
    world_factory: Any, fake_telegram: FakeTelegram, caplog: pytest.LogCaptureFixture,
    status: int, description: str,
) -> None:
    fake_telegram.set_star_balance(50)  # what getMyStarBalance says at first
    fake_telegram.set_out_of_stars_answer(status, description)
    w = await world_factory(telegram_paid_broadcast="critical", telegram_paid_broadcast_daily_stars=100)
    _redacting(caplog, fake_telegram)
    await w.owe(_alert(1, Severity.critical), range(FIRST, FIRST + 1))
    await w.drain()
    assert fake_telegram.calls("getMyStarBalance")
    fake_telegram.set_star_balance(0.6)  # spent elsewhere since the read: 6 more paid messages
    chats = range(FIRST + 1, FIRST + 21)
    await w.owe(_alert(2, Severity.critical), chats)
    await w.drain()
    _exactly_once(fake_telegram, range(FIRST, FIRST + 21))
    paid = _paid_chats(fake_telegram)
    assert len(paid) == 7 and fake_telegram.paid_accepted == 7
    refused = [c for c in fake_telegram.calls("sendMessage") if c.status == status]
    assert refused  # Telegram said no at least once, and each refused one went again normally
    assert {c.params["chat_id"] for c in refused} <= set(range(FIRST, FIRST + 21)) - paid
    assert caplog.text.count("paid broadcast off for now") == 1
    await w.adapter.stop()
    assert await w.spent() == 7  # refused messages were handed back, never counted
    assert fake_telegram.token not in caplog.text


async def test_a_balance_read_of_too_little_never_tries_paid(
    world_factory: Any, fake_telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    fake_telegram.set_star_balance(0)
    w = await world_factory(telegram_paid_broadcast="warning", telegram_paid_broadcast_daily_stars=10)
    _redacting(caplog, fake_telegram)
    chats = range(FIRST, FIRST + 6)
    await w.owe(_alert(1, Severity.critical), chats)
    await w.drain()
    _exactly_once(fake_telegram, chats)
    assert not _paid_chats(fake_telegram)
    assert not [c for c in fake_telegram.calls("sendMessage") if c.status != 200]
    assert caplog.text.count("balance read says too little") == 1
    await w.adapter.stop()
    assert await w.spent() == 0


async def test_status_shows_todays_spend_to_admins_only(world_factory: Any, fake_telegram: FakeTelegram) -> None:
    fake_telegram.set_star_balance(100)
    w = await world_factory(telegram_paid_broadcast="critical", telegram_paid_broadcast_daily_stars=5)
    await w.owe(_alert(1, Severity.critical), range(FIRST, FIRST + 4))
    await w.drain()
    assert w.adapter.paid is not None
    await w.adapter.paid.release()  # what it holds back, unspent
    await w.adapter.set_listening(True)

    async def say(chat: int) -> str:
        before = len(fake_telegram.sent_messages(chat))
        fake_telegram.push_message(chat, "/status")
        return str((await fake_telegram.wait_for_reply(chat, after=before))["plain"])

    admin = await say(ADMIN)
    assert "Paid broadcast (critical and above): 0.4 of 5 Stars spent today (UTC)" in admin
    stranger = await say(STRANGER)
    assert "Paid broadcast" not in stranger and "Stars" not in stranger


# ---- the fake enforces the real limits ----------------------------------------------------


async def test_fake_enforces_30_normal_1000_paid_and_the_balance(fake_telegram: FakeTelegram) -> None:
    fake_telegram.set_rate_limit("sendMessage", per_second=30)
    fake_telegram.set_star_balance(8)  # 80 paid messages
    app = (ApplicationBuilder().token(fake_telegram.token).base_url(fake_telegram.base_url)
           .rate_limiter(AIORateLimiter(overall_max_rate=0, max_retries=0)).job_queue(None).build())
    await app.initialize()
    try:
        async def send(chat: int, paid: bool) -> int:
            try:
                await app.bot.send_message(chat, "x", allow_paid_broadcast=True if paid else None)
                return 200
            except Exception as exc:  # the answer is what we look at
                return 429 if "retry" in str(exc).lower() else 400

        normal = await asyncio.gather(*(send(FIRST + i, False) for i in range(60)))
        assert normal.count(429) >= 20  # a burst of 60 over a 30/s bucket
        paid = await asyncio.gather(*(send(FIRST + i, True) for i in range(80)))
        assert paid.count(200) == 80  # 80 at once: far over 30/s, within 1,000/s
        assert fake_telegram.star_balance == 0
        balance = await app.bot.get_my_star_balance()
        assert (balance.amount, balance.nanostar_amount or 0) == (0, 0)
        assert await send(FIRST, True) == 400  # BALANCE_TOO_LOW, nothing delivered
        assert fake_telegram.paid_accepted == 80
    finally:
        await app.shutdown()


# ---- channels: the free way to reach many ----------------------------------------------------

CHANNEL = -1009876543210


async def test_a_channel_subscribes_and_gets_one_post_per_alert(
    world_factory: Any, fake_telegram: FakeTelegram
) -> None:
    """README, "Channels": the bot, an admin of the channel, takes `/subscribe` posted there;
    an alert is then one post in the channel, whoever and however many read it — never paid."""
    fake_telegram.set_star_balance(100)
    w = await world_factory(telegram_paid_broadcast="critical", telegram_paid_broadcast_daily_stars=5)
    fake_telegram.chat(CHANNEL, chat_type="channel", title="Readout alerts")
    assert w.adapter is not None and w.store is not None
    await w.adapter.set_listening(True)
    fake_telegram.push_message(CHANNEL, "/subscribe critical")
    reply = await fake_telegram.wait_for_reply(CHANNEL)
    assert "critical" in reply["plain"].lower()
    subs = await w.store.subscriptions("telegram", str(CHANNEL))
    assert [(s.selector, s.value) for s in subs] == [("severity", "critical")]

    before = len(fake_telegram.sent_messages(CHANNEL))
    await w.owe(_alert(1, Severity.critical), range(CHANNEL, CHANNEL + 1))
    await w.drain()
    posts = fake_telegram.sent_messages(CHANNEL)[before:]
    assert len(posts) == 1 and "Tariff headline 1" in posts[0]["plain"]
    assert posts[0]["paid"]  # a critical alert to a channel is one paid message: 0.1 Star for everyone


async def test_only_a_channels_admins_can_use_the_buttons_under_its_alerts(
    world_factory: Any, fake_telegram: FakeTelegram
) -> None:
    """Any reader of a channel can press an alert's buttons: muting it for everyone is for
    the channel's admins (a post in the channel is always an admin's)."""
    reader, admin = 7101, 7102
    w = await world_factory()
    fake_telegram.chat(CHANNEL, chat_type="channel", title="Readout alerts")
    fake_telegram.set_admins(CHANNEL, [admin])
    assert w.adapter is not None and w.store is not None
    await w.adapter.set_listening(True)
    fake_telegram.push_message(CHANNEL, "/subscribe critical")
    await fake_telegram.wait_for_reply(CHANNEL)
    await w.owe(_alert(1, Severity.critical), range(CHANNEL, CHANNEL + 1))
    await w.drain()
    post = fake_telegram.sent_messages(CHANNEL)[-1]

    fake_telegram.push_callback(CHANNEL, "mute:tariff-test", from_id=reader, message_id=post["message_id"])
    await fake_telegram.wait_for(lambda: len(fake_telegram.callback_answers()) == 1)
    assert fake_telegram.callback_answers()[0].get("show_alert")  # a refusal, as a popup
    assert not await w.store.active_mutes(now=T0, adapter="telegram", address=str(CHANNEL))

    fake_telegram.push_callback(CHANNEL, "mute:tariff-test", from_id=admin, message_id=post["message_id"])
    await fake_telegram.wait_for(lambda: len(fake_telegram.callback_answers()) == 2)
    assert await w.store.active_mutes(now=T0, adapter="telegram", address=str(CHANNEL))
