"""Telegram commands with real python-telegram-bot against the fake Bot API, real SQLite.

Each test starts the real TelegramAdapter (long polling in the test's loop),
pushes updates as users would send them, and reads what the bot answered and
what the store now holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.adapters.telegram import TelegramAdapter
from bot.clock import ManualClock
from bot.models import Alert, Explanation, Severity, Tone, WatchItem, alert_id
from bot.rules.loader import RuleSet, load_rules_dir
from bot.services import RuleSetHolder, Services
from bot.settings import Settings
from bot.storage.store import Store
from tests.support.command_cases import CASES, Case
from tests.support.fake_telegram import FakeTelegram

T0 = datetime(2025, 4, 2, 20, 0, tzinfo=UTC)
RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
ALICE = 5001  # a private chat (= her user id)
GROUP = -1001234567890
ADMIN, MEMBER = 7001, 7002


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return load_rules_dir(RULES_DIR)


def make_settings(fake: FakeTelegram, db: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        telegram_bot_token=fake.token,
        telegram_base_url=fake.base_url,
        database_url=f"sqlite+aiosqlite:///{db}",
        rules_dir=RULES_DIR,
    )


@dataclass
class Bot:
    fake: FakeTelegram
    adapter: TelegramAdapter
    services: Services
    clock: ManualClock

    @property
    def store(self) -> Store:
        return self.services.store

    async def say(self, chat_id: int, text: str, **kw: object) -> str:
        """Send `text` as a user; return the bot's next reply's visible text."""
        before = len(self.fake.sent_messages(chat_id))
        self.fake.push_message(chat_id, text, **kw)  # type: ignore[arg-type]
        reply = await self.fake.wait_for_reply(chat_id, after=before)
        return str(reply["plain"])


async def start_bot(fake: FakeTelegram, db: Path, ruleset: RuleSet, clock: ManualClock) -> Bot:
    settings = make_settings(fake, db)
    store = await Store.open(settings.database_url)
    services = Services(
        settings=settings,
        store=store,
        clock=clock,
        rules=RuleSetHolder(ruleset),
        adapters=["telegram"],
    )
    adapter = TelegramAdapter(settings, poll_timeout=1, per_chat_interval=0)
    await adapter.start(services)
    return Bot(fake, adapter, services, clock)


@pytest.fixture
async def bot(fake_telegram: FakeTelegram, tmp_path: Path, ruleset: RuleSet) -> AsyncIterator[Bot]:
    b = await start_bot(fake_telegram, tmp_path / "readout.db", ruleset, ManualClock(T0))
    try:
        yield b
    finally:
        await b.adapter.stop()
        await b.store.close()


def sample_alert(
    *,
    title: str = "US raises tariffs on Chinese goods to 145%",
    rule_id: str = "tariff-announcement",
) -> Alert:
    return Alert(
        id=alert_id(rule_id, "ev-1"),
        rule_id=rule_id,
        rule_description="New or higher tariffs announced",
        severity=Severity.warning,
        kind="news",
        event_id="ev-1",
        key=title,
        title=title,
        url="https://example.com/news?id=1&x=2",
        source="example-wire",
        event_time=T0,
        created_at=T0,
        tone=Tone.friction,
        tone_score=-0.62,
        watchlist=(
            WatchItem(
                name="chips",
                title="Semiconductors",
                why="Export controls bite",
                tickers=("NVDA", "AMD"),
            ),
        ),
        explanation=Explanation(
            matched_terms=("tariffs", "raises"), tone_terms=(("retaliate", -0.4),)
        ),
    )


async def store_alert(store: Store, alert: Alert) -> None:
    async with store.transaction() as conn:
        await store.insert_alert(conn, alert)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Await `check()` until true (the bot handles updates in the background)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


# ---- start, menu, help -----------------------------------------------------------------


async def test_start_registers_menu_and_subscribes_private_chat(bot: Bot) -> None:
    names = {c["command"] for c in bot.fake.commands}
    assert {
        "start",
        "subscribe",
        "unsubscribe",
        "subscriptions",
        "filter",
        "why",
        "rules",
        "watchlist",
        "recent",
        "mute",
        "unmute",
        "quiet",
        "status",
        "help",
    } <= names
    text = await bot.say(ALICE, "/start")
    assert "Readout" in text and "warning and above" in text
    subs = await bot.store.subscriptions("telegram", str(ALICE))
    assert [(s.selector, s.value) for s in subs] == [("severity", "warning")]
    dest = await bot.store.get_destination("telegram", str(ALICE))
    assert dest is not None and dest.chat_kind == "private"
    # a second /start does not add another subscription
    text = await bot.say(ALICE, "/start")
    assert "This chat gets" in text
    assert len(await bot.store.subscriptions("telegram", str(ALICE))) == 1


async def test_help_lists_every_command_from_docstrings(bot: Bot) -> None:
    text = await bot.say(ALICE, "/help")
    for cmd in (
        "/subscribe",
        "/mute <duration> [rule-id]",
        "/quiet 22:00-07:00",
        "/why <alert>",
        "/status",
    ):
        assert cmd in text
    assert "Why an alert fired" in text


async def test_unknown_command_gets_one_line(bot: Bot) -> None:
    text = await bot.say(ALICE, "/frobnicate now")
    assert text == "Unknown command /frobnicate. See /help."


# ---- subscriptions ------------------------------------------------------------------------


async def test_subscribe_rule_tag_severity_and_unsubscribe(bot: Bot) -> None:
    assert "tag tariffs" in await bot.say(ALICE, "/subscribe tariffs")
    assert "rule tariff-truce" in await bot.say(ALICE, "/subscribe tariff-truce")
    assert "info and above" in await bot.say(ALICE, "/subscribe INFO")
    assert "Already subscribed" in await bot.say(ALICE, "/subscribe tariffs")
    subs = {(s.selector, s.value) for s in await bot.store.subscriptions("telegram", str(ALICE))}
    assert subs == {("tag", "tariffs"), ("rule", "tariff-truce"), ("severity", "info")}
    listing = await bot.say(ALICE, "/subscriptions")
    assert "tag tariffs" in listing and "rule tariff-truce" in listing
    assert "Unsubscribed this chat from tag tariffs" in await bot.say(ALICE, "/unsubscribe tariffs")
    assert "No subscription to tariffs" in await bot.say(ALICE, "/unsubscribe tariffs")
    assert "everything (2 subscriptions)" in await bot.say(ALICE, "/unsubscribe")
    assert await bot.store.subscriptions("telegram", str(ALICE)) == []


async def test_subscribe_keyboard_and_buttons(bot: Bot) -> None:
    await bot.say(ALICE, "/subscribe ?")
    keyboard = bot.fake.sent_messages(ALICE)[-1]["reply_markup"]["inline_keyboard"]
    data = [b["callback_data"] for row in keyboard for b in row]
    assert (
        "sub:severity:critical" in data
        and "sub:tag:tariffs" in data
        and "sub:rule:tariff-truce" in data
    )
    bot.fake.push_callback(ALICE, "sub:rule:tariff-truce")
    await bot.fake.wait_for(lambda: bot.fake.callback_answers())
    assert "Subscribed this chat to rule tariff-truce" in bot.fake.callback_answers()[-1]["text"]
    subs = await bot.store.subscriptions("telegram", str(ALICE))
    assert [(s.selector, s.value) for s in subs] == [("rule", "tariff-truce")]


async def test_forum_topic_subscription_includes_thread(bot: Bot) -> None:
    bot.fake.set_admins(GROUP, [ADMIN])
    text = await bot.say(GROUP, "/subscribe critical", from_id=ADMIN, thread_id=42)
    assert "critical and above" in text
    assert bot.fake.sent_messages(GROUP)[-1]["message_thread_id"] == 42  # answered inside the topic
    subs = await bot.store.subscriptions("telegram")
    assert [(s.address, s.value) for s in subs] == [(f"{GROUP}/42", "critical")]


# ---- groups: only admins change settings --------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "/subscribe",
        "/unsubscribe",
        "/mute 1h",
        "/unmute",
        "/quiet 22:00-07:00",
        "/quiet off",
        "/filter +china",
        "/filter clear",
    ],
)
async def test_group_member_cannot_change_settings(bot: Bot, command: str) -> None:
    bot.fake.set_admins(GROUP, [ADMIN])
    text = await bot.say(GROUP, command, from_id=MEMBER)
    assert text == "Sorry, only this group's admins can change what Readout sends here."
    assert await bot.store.subscriptions("telegram") == []
    assert await bot.store.active_mutes(now=T0) == []
    dest = await bot.store.get_destination("telegram", str(GROUP))
    assert dest is None or (dest.quiet_start is None and dest.include_words == [])


async def test_group_admin_and_owner_can_change_settings(bot: Bot) -> None:
    bot.fake.set_admins(GROUP, [ADMIN], owner=ADMIN + 100)
    assert "warning and above" in await bot.say(GROUP, "/subscribe", from_id=ADMIN)
    assert "Muted all alerts" in await bot.say(GROUP, "/mute 2h", from_id=ADMIN + 100)
    assert "Quiet 22:00–07:00 America/New_York" in await bot.say(
        GROUP, "/quiet 22:00-07:00 America/New_York", from_id=ADMIN
    )
    dest = await bot.store.get_destination("telegram", str(GROUP))
    assert dest is not None and (dest.quiet_start, dest.quiet_end, dest.quiet_tz) == (
        "22:00",
        "07:00",
        "America/New_York",
    )
    assert dest.chat_kind == "supergroup"
    assert [m.until for m in await bot.store.active_mutes(now=T0)] == [T0 + timedelta(hours=2)]
    # reading is open to everyone
    assert "warning and above" in await bot.say(GROUP, "/subscriptions", from_id=MEMBER)


async def test_group_member_buttons_refused(bot: Bot) -> None:
    bot.fake.set_admins(GROUP, [ADMIN])
    bot.fake.push_callback(GROUP, "mute:tariff-truce", from_id=MEMBER)
    await bot.fake.wait_for(lambda: bot.fake.callback_answers())
    answer = bot.fake.callback_answers()[-1]
    assert answer["show_alert"] is True and "only this group's admins" in answer["text"]
    assert await bot.store.active_mutes(now=T0) == []


async def test_anonymous_admin_posting_as_group_may_change(bot: Bot) -> None:
    text = await bot.say(GROUP, "/subscribe", from_id=1087968824, sender_chat_id=GROUP)
    assert "warning and above" in text


async def test_settings_never_reach_another_chat(bot: Bot) -> None:
    other = 5002
    await bot.say(other, "/start")
    await bot.say(ALICE, "/unsubscribe")
    await bot.say(ALICE, "/mute 1h")
    await bot.say(ALICE, f"/unsubscribe {other}")
    assert [s.selector for s in await bot.store.subscriptions("telegram", str(other))] == [
        "severity"
    ]
    assert await bot.store.active_mutes(now=T0, address=str(other)) == []


# ---- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/mute", "give a duration and optionally a rule id. Use: /mute <duration> [rule-id]"),
        (
            "/mute soon",
            "duration must look like 30m, 2h, 1d or 1w. Use: /mute <duration> [rule-id]",
        ),
        ("/mute 400d", "duration can be at most 365d. Use: /mute <duration> [rule-id]"),
        (
            "/mute 1h no-such-rule",
            "unknown rule 'no-such-rule' (see /rules). Use: /mute <duration> [rule-id]",
        ),
        (
            "/quiet 25:00-07:00",
            "quiet hours must look like 22:00-07:00 [Europe/London]. Use: /quiet 22:00-07:00 [timezone] | us-regular | us-extended | fx | any | off",
        ),
        (
            "/quiet 22:00-07:00 Mars/Olympus",
            "unknown time zone 'Mars/Olympus': use an IANA name such as America/New_York. Use: /quiet 22:00-07:00 [timezone] | us-regular | us-extended | fx | any | off",
        ),
        (
            "/quiet 22:00-07:00 ../../etc/passwd",
            "time zone must be an IANA name such as UTC, America/New_York or Asia/Shanghai. Use: /quiet 22:00-07:00 [timezone] | us-regular | us-extended | fx | any | off",
        ),
        (
            "/subscribe nonsense",
            "unknown rule, tag or severity 'nonsense': see /rules; severities are info, warning, critical. Use: /subscribe [rule-id | tag | severity | ?]",
        ),
        (
            "/subscribe " + "x" * 300,
            "argument too long (at most 64 characters). Use: /subscribe [rule-id | tag | severity | ?]",
        ),
        (
            "/subscribe a b",
            "one argument at a time. Use: /subscribe [rule-id | tag | severity | ?]",
        ),
        (
            "/filter china",
            "each filter word must be +word or -word, letters and digits only. Use: /filter +word -word | clear",
        ),
        (
            "/filter +(.*)+$",
            "each filter word must be +word or -word, letters and digits only. Use: /filter +word -word | clear",
        ),
        ("/recent 50", "n must be a number from 1 to 20. Use: /recent [n]"),
        ("/recent -1", "n must be a number from 1 to 20. Use: /recent [n]"),
        ("/why", "an argument is needed. Use: /why <alert>"),
        (
            "/watchlist moon",
            "unknown sector 'moon'; sectors: agriculture, chips, rare-earths, autos-ev, industrials, energy, consumer-importers, china-adrs, defensives. Use: /watchlist [sector]",
        ),
    ],
)
async def test_bad_input_gets_one_line(bot: Bot, command: str, expected: str) -> None:
    text = await bot.say(ALICE, command)
    assert text == expected
    assert "\n" not in text


async def test_why_unknown_handle(bot: Bot) -> None:
    text = await bot.say(ALICE, "/why <b>&amp;")
    assert text.startswith("No alert '<b>&amp;'") and "\n" not in text


# ---- read-only views ----------------------------------------------------------------------


async def test_rules_and_watchlist(bot: Bot, ruleset: RuleSet) -> None:
    text = await bot.say(ALICE, "/rules")
    for rule in ruleset.rules:
        assert rule.id in text
    assert "tariff-announcement warning New or higher tariffs announced" in text
    text = await bot.say(ALICE, "/watchlist chips")
    assert "Semiconductors" in text and "NVDA" in text and "Export controls" in text
    text = await bot.say(ALICE, "/watchlist")
    assert "Agriculture" in text and "SOYB" in text


async def test_recent_and_why(bot: Bot) -> None:
    assert await bot.say(ALICE, "/recent") == "No alerts yet."
    alert = sample_alert(title="Tariffs <b>bold</b> & co")
    await store_alert(bot.store, alert)
    text = await bot.say(ALICE, "/recent 3")
    assert "Tariffs <b>bold</b> & co" in text and f"#{alert.id[:8]}" in text
    text = await bot.say(ALICE, f"/why #{alert.id[:8]}")
    assert "Rule tariff-announcement" in text
    assert "Matched: tariffs, raises" in text
    assert "friction (-0.62) from retaliate (-0.40)" in text


async def test_why_button(bot: Bot) -> None:
    alert = sample_alert()
    await store_alert(bot.store, alert)
    await bot.adapter.send_alert(str(ALICE), alert)
    before = len(bot.fake.sent_messages(ALICE))
    bot.fake.push_callback(ALICE, f"why:{alert.id[:16]}")
    reply = await bot.fake.wait_for_reply(ALICE, after=before)
    assert f"Why #{alert.id[:8]}" in reply["plain"]


async def test_alert_buttons_mute_and_more(bot: Bot) -> None:
    alert = sample_alert()
    await bot.adapter.send_alert(str(ALICE), alert)
    buttons = bot.fake.sent_messages(ALICE)[-1]["reply_markup"]["inline_keyboard"][0]
    assert [b["text"] for b in buttons] == ["Mute this rule 24h", "More like this", "Why?"]
    bot.fake.push_callback(ALICE, buttons[0]["callback_data"])
    bot.fake.push_callback(ALICE, buttons[1]["callback_data"])
    await bot.fake.wait_for(lambda: len(bot.fake.callback_answers()) == 2)
    # the buttons run the commands: the same answers as /mute 24h and /subscribe <rule>
    texts = sorted(a["text"] for a in bot.fake.callback_answers())
    assert texts == [
        "✅ Subscribed this chat to rule tariff-announcement.",
        "🔇 Muted rule tariff-announcement in this chat until 2025-04-03 20:00 UTC. /unmute ends it.",
    ]
    mutes = await bot.store.active_mutes(now=T0, address=str(ALICE))
    assert [(m.rule_id, m.until) for m in mutes] == [
        ("tariff-announcement", T0 + timedelta(hours=24))
    ]
    subs = await bot.store.subscriptions("telegram", str(ALICE))
    assert [(s.selector, s.value) for s in subs] == [("rule", "tariff-announcement")]


async def test_filter_and_quiet_round_trip(bot: Bot) -> None:
    assert await bot.say(ALICE, "/filter +China -soybeans") == "Filter: +china -soybeans"
    assert await bot.say(ALICE, "/filter +soybeans") == "Filter: +china +soybeans"
    assert (
        await bot.say(ALICE, "/filter")
        == "Filter: +china +soybeans. Change it with /filter +word -word."
    )
    assert await bot.say(ALICE, "/filter clear") == "Filter cleared."
    await bot.say(ALICE, "/quiet 23:30-6:00 Asia/Shanghai")
    assert "23:30–06:00 Asia/Shanghai" in await bot.say(ALICE, "/quiet")
    assert await bot.say(ALICE, "/quiet off") == "⏰ Quiet hours in this chat are off."
    dest = await bot.store.get_destination("telegram", str(ALICE))
    assert dest is not None and dest.quiet_start is None and dest.include_words == []


async def test_mute_rule_and_unmute(bot: Bot) -> None:
    text = await bot.say(ALICE, "/mute 30m tariff-truce")
    assert "Muted rule tariff-truce in this chat until 2025-04-02 20:30 UTC" in text
    assert "tariff-truce muted until" in await bot.say(ALICE, "/subscriptions")
    assert await bot.say(ALICE, "/unmute") == "🔔 Unmuted this chat."
    assert await bot.say(ALICE, "/unmute") == "Nothing is muted in this chat."


async def test_status_shows_health_and_never_the_token(bot: Bot) -> None:
    now = T0
    await bot.store.record_poll("ft-china", at=now, error=None)
    await bot.store.record_poll("ft-china", at=now, error="HTTP 503 from upstream")
    text = await bot.say(ALICE, "/status")
    assert "Rules:" in text and "Queue: 0 pending, 0 held" in text and "Sources" in text
    assert bot.fake.token not in text
    assert bot.fake.token.split(":")[1] not in text


async def test_handler_crash_is_logged_and_answered(
    bot: Bot, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def boom(limit: int = 10) -> list[Alert]:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(bot.store, "recent_alerts", boom)
    with caplog.at_level(logging.ERROR):
        text = await bot.say(ALICE, "/recent")
    assert text == "Something went wrong on Readout's side; it has been logged."
    assert any(
        "database on fire" in (r.exc_text or "")
        or (r.exc_info and "database on fire" in str(r.exc_info[1]))
        for r in caplog.records
    )
    # the bot still answers afterwards
    assert "Readout commands" in await bot.say(ALICE, "/help")


async def test_blocked_by_user_stops_the_chat_and_unblocking_resumes_it(bot: Bot) -> None:
    await bot.say(ALICE, "/start")
    bot.fake.push_member_update(ALICE, "kicked")

    async def disabled() -> bool:
        dest = await bot.store.get_destination("telegram", str(ALICE))
        return dest is not None and dest.disabled_at is not None

    await eventually(disabled)
    assert len(await bot.store.subscriptions("telegram", str(ALICE))) >= 1  # kept for a comeback
    bot.fake.push_member_update(ALICE, "member")  # unblocked: delivery resumes

    async def enabled() -> bool:
        dest = await bot.store.get_destination("telegram", str(ALICE))
        return dest is not None and dest.disabled_at is None

    await eventually(enabled)


async def test_forged_or_stale_buttons_change_nothing(bot: Bot) -> None:
    for data in (
        "sub:rule:no-such-rule",
        "sub:tag:tariffs-x",
        "mute:no-such-rule",
        "garbage",
        "why:zzzz",
        "sub:tag:info",
    ):
        bot.fake.push_callback(ALICE, data)
    answers = await bot.fake.wait_for(
        lambda: len(bot.fake.callback_answers()) == 6 and bot.fake.callback_answers()
    )
    texts = [a.get("text", "") for a in answers]
    assert any("unknown rule, tag or severity" in t for t in texts)
    assert "That rule is not loaded any more." in texts
    assert "That button is out of date." in texts
    assert "That alert is no longer in the database." in texts
    assert await bot.store.subscriptions("telegram") == []
    assert await bot.store.active_mutes(now=T0) == []


async def test_group_start_by_member_only_welcomes(bot: Bot) -> None:
    bot.fake.set_admins(GROUP, [ADMIN])
    text = await bot.say(GROUP, "/start", from_id=MEMBER)
    assert "An admin of this group can subscribe it with /subscribe" in text
    assert await bot.store.subscriptions("telegram") == []


async def test_unknown_commands_in_groups_only_when_addressed(bot: Bot) -> None:
    bot.fake.push_message(GROUP, "/othercmd", from_id=MEMBER)
    text = await bot.say(GROUP, "/othercmd@readout_test_bot", from_id=MEMBER)
    assert text == "Unknown command /othercmd. See /help."
    assert len(bot.fake.sent_messages(GROUP)) == 1  # the unaddressed one got no answer
    # a command addressed to another bot is not ours at all
    bot.fake.push_message(GROUP, "/subscribe@some_other_bot", from_id=ADMIN)
    assert await bot.say(GROUP, "/help@readout_test_bot", from_id=MEMBER)
    assert await bot.store.subscriptions("telegram") == []


async def test_html_refused_falls_back_to_plain_text(bot: Bot) -> None:
    bot.fake.fail_next("sendMessage", 400, description="Bad Request: can't parse entities: oops")
    result = await bot.adapter.send_alert(str(ALICE), sample_alert())
    assert result.__class__.__name__ == "Sent"
    [call_html, call_plain] = bot.fake.calls("sendMessage")
    assert call_html.params["parse_mode"] == "HTML" and "parse_mode" not in call_plain.params
    assert "US raises tariffs on Chinese goods to 145%" in call_plain.params["text"]


async def test_command_flood_gets_one_refusal_then_silence(bot: Bot) -> None:
    from bot.commands.limit import REFUSAL, CommandLimiter

    ticks = [0.0]
    bot.services.command_limit = CommandLimiter(burst=3, period=60, clock=lambda: ticks[0])
    for _ in range(3):
        assert "Readout" in await bot.say(ALICE, "/help")
    assert await bot.say(ALICE, "/help") == REFUSAL
    before = len(bot.fake.sent_messages(ALICE))
    for _ in range(5):
        bot.fake.push_message(ALICE, "/subscribe critical")
    await bot.fake.wait_for(lambda: bot.fake.pending_updates() == 0)
    await asyncio.sleep(0.3)
    assert len(bot.fake.sent_messages(ALICE)) == before  # silence, and nothing was done
    assert await bot.store.subscriptions("telegram", str(ALICE)) == []
    assert "Readout" in await bot.say(MEMBER, "/help")  # another user is not affected
    ticks[0] += 20  # one token back
    assert "Subscribed" in await bot.say(ALICE, "/subscribe critical")


# ---- the shared case table (the same cases run against Discord) ---------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_shared_command_cases(bot: Bot, case: Case) -> None:
    address = str(ALICE)
    if case.subscribed_before:
        await bot.store.ensure_destination("telegram", address, at=T0, chat_kind="private")
    for selector, value in case.subscribed_before:
        await bot.store.subscribe("telegram", address, selector, value, at=T0)  # type: ignore[arg-type]
    text = await bot.say(ALICE, " ".join([f"/{case.command}", *case.args]))
    assert case.expected in text
    if case.outcome == "refusal":
        assert "\n" not in text
    after = {(s.selector, s.value) for s in await bot.store.subscriptions("telegram", address)}
    expected = case.subscribed_before if case.subscribed_after is None else case.subscribed_after
    assert after == set(expected)


# ---- /try ----------------------------------------------------------------------------------

# @realDonaldTrump, 2019-02-24T22:50:14Z: https://twitter.com/realDonaldTrump/status/1099803719435239426
TRY_TWEET = (
    "....productive talks, I will be delaying the U.S. increase in tariffs now scheduled for March 1. "
    "Assuming both sides make additional progress, we will be planning a Summit for President Xi and myself, "
    "at Mar-a-Lago, to conclude an agreement. A very good weekend for U.S. & China!"
)


async def test_try_explains_a_pasted_headline_to_a_group_member(
    fake_telegram: FakeTelegram, tmp_path: Path
) -> None:
    """Anyone may ask (a plain group member), the text is escaped (`&`), nothing is stored."""
    good = load_rules_dir(Path(__file__).parent / "fixtures/rules/good")
    b = await start_bot(fake_telegram, tmp_path / "try.db", good, ManualClock(T0))
    try:
        text = await b.say(GROUP, f"/try {TRY_TWEET}", from_id=MEMBER)
        lines = text.splitlines()
        assert lines[:2] == ["How Readout's rules read it", TRY_TWEET]
        # a delay is no announcement: tariff-announcement is a near miss, with explain's reason
        assert lines[2:6] == [
            "Would fire",
            "readout-hope info",
            "Near misses",
            r"tariff-announcement — all[1]: none of impose*, raise*, hike*, announce*, retaliat*, "
            r"/\d+(?:\.\d+)?\s?%/ found",
        ]
        # the lexicon's weights are tuned elsewhere: pin the shape of the tone, not its numbers
        assert lines[6].startswith("readout-friction — tone: hope (+")
        assert lines[7].startswith("Tone: hope (+") and "productive +" in lines[7]
        assert lines[8:] == ["Watch-list: -", "Nothing was sent or stored; cooldowns and sources are not applied."]
        assert await b.store.destinations("telegram") == []
        assert await b.store.seen_count() == 0
        assert (await b.say(ALICE, "/try")).startswith("paste a headline after the command")
    finally:
        await b.adapter.stop()
        await b.store.close()
