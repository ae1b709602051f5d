"""One message per story per destination, edited in place: end to end through the fake
Telegram Bot API (editMessageText with Telegram's real refusals), the fake Discord REST API
(PATCH …/messages/{id}) and the console; fallbacks never lose an update."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.adapters.base import Sent
from bot.adapters.console import ConsoleAdapter
from bot.adapters.discord import DiscordAdapter
from bot.adapters.telegram import TelegramAdapter
from bot.clock import ManualClock
from bot.delivery.messages import MessageEditor
from bot.models import Alert, NewsEvent, Severity, alert_id
from bot.services import Services
from bot.storage.store import OutboxEntry, Store
from tests.support.fake_discord import FakeDiscord
from tests.support.fake_telegram import FakeTelegram
from tests.test_discord_delivery import CHANNEL
from tests.test_discord_delivery import adapter as discord_adapter  # noqa: F401 (fixture)
from tests.test_discord_delivery import services  # noqa: F401 (fixture)
from tests.test_telegram_e2e import ALICE, T0, World
from tests.test_telegram_e2e import adapter as telegram_adapter  # noqa: F401 (fixture)
from tests.test_telegram_e2e import world  # noqa: F401 (fixture)

FIXTURES = Path(__file__).parent / "fixtures"
# Real reports of China's 125 % counter-tariff (2025-04-11) by three outlets (file keeps URLs).
REPORTS = [r for r in json.loads((FIXTURES / "stories_april_2025.json").read_text()) if "125pct" in r["story"]]


def _events() -> list[NewsEvent]:
    return [
        NewsEvent(id=f"ev{n}", source=r["outlet"], title=r["title"], url=r["url"] + "?a=1&b=<2>",
                  published=T0 + timedelta(minutes=n), seen_at=T0 + timedelta(minutes=n))
        for n, r in enumerate(REPORTS)
    ]


async def _feed(world: World, events: list[NewsEvent]) -> list[Alert]:
    readout = world.readout
    assert readout is not None
    alerts: list[Alert] = []
    for ev in events:
        world.clock.set(ev.time + timedelta(seconds=1))
        alerts.extend(await readout.pipeline.process([ev]))
        await readout.drain_once()
    return alerts


# ---- Telegram, the whole bot -----------------------------------------------------------


async def test_three_outlets_one_telegram_message_edited_with_sources(world: World, fake_telegram: FakeTelegram) -> None:
    await world.start()
    await world.say(ALICE, "/start")
    alerts = await _feed(world, _events())
    assert len({a.story for a in alerts}) == 1 and len(alerts) >= 3
    [message] = world.alerts_to(ALICE)  # one message for the story
    assert len(fake_telegram.calls("editMessageText")) == len(alerts) - 1
    others = [r["outlet"] for r in REPORTS[1:]]
    assert f"+{len(others)} sources: " + ", ".join(others) in message["plain"]
    assert all(r["url"] + "?a=1&b=<2>" in message["links"] for r in REPORTS)  # links, escaped
    assert "<2>" not in message["text"]
    deliveries = await world.store.deliveries(adapter="telegram")
    assert {d.status for d in deliveries} == {"sent"}
    assert {d.message_id for d in deliveries} == {str(message["message_id"])}


async def test_deleted_message_update_goes_out_as_a_new_message(world: World, fake_telegram: FakeTelegram) -> None:
    await world.start()
    await world.say(ALICE, "/start")
    events = _events()
    await _feed(world, events[:1])
    [first] = world.alerts_to(ALICE)
    fake_telegram.delete_message(ALICE, first["message_id"])
    await _feed(world, events[1:2])
    [second] = world.alerts_to(ALICE)  # the deleted one is gone; the update is not
    assert second["message_id"] != first["message_id"]
    assert REPORTS[1]["outlet"] in second["plain"] and REPORTS[0]["title"] in second["plain"]
    await _feed(world, events[2:])  # and later reports edit the new message
    [third] = world.alerts_to(ALICE)
    assert third["message_id"] == second["message_id"] and REPORTS[2]["outlet"] in third["plain"]


async def test_message_too_old_to_edit_update_goes_out_as_a_new_message(world: World, fake_telegram: FakeTelegram) -> None:
    await world.start()
    await world.say(ALICE, "/start")
    events = _events()
    await _feed(world, events[:1])
    [first] = world.alerts_to(ALICE)
    fake_telegram.make_uneditable(ALICE, first["message_id"])
    await _feed(world, events[1:2])
    messages = world.alerts_to(ALICE)
    assert len(messages) == 2 and REPORTS[1]["outlet"] in messages[-1]["plain"]
    assert {d.status for d in await world.store.deliveries(adapter="telegram")} == {"sent"}


# ---- the editor API, with the real Telegram adapter --------------------------------------


def _alert(n: int, *, story: str = "story-1", source: str = "Reuters", severity: Severity = Severity.warning,
           rule: str = "tariff-retaliation") -> Alert:
    return Alert(
        id=alert_id(rule, f"e{n}"), rule_id=rule, rule_description=f"Rule {rule}", severity=severity,
        kind="news", event_id=f"e{n}", key=f"k{n}", title=f"China raises duties on US goods to 125% <{n}> & more",
        url=f"https://example.com/{n}?x=1&y=2", source=source, event_time=T0, created_at=T0, story=story,
    )


async def _store_alerts(store: Store, alerts: list[Alert]) -> None:
    async with store.transaction() as conn:
        await store.insert_alerts(conn, alerts)


async def test_not_modified_counts_as_done_and_critical_sends_anew(
    telegram_adapter: TelegramAdapter, fake_telegram: FakeTelegram  # noqa: F811
) -> None:
    store = telegram_adapter._services.store  # type: ignore[union-attr]
    editor = MessageEditor(store, {"telegram": telegram_adapter}, ManualClock(T0))
    a1, a2 = _alert(1), _alert(2, source="Xinhua")
    crit = _alert(3, source="MOFCOM", severity=Severity.critical, rule="tariff-vix-confirm")
    await _store_alerts(store, [a1, a2, crit])
    assert isinstance(await editor.deliver("telegram", str(ALICE), a1), Sent)
    assert isinstance(await editor.deliver("telegram", str(ALICE), a2), Sent)
    # The same view again: Telegram answers "message is not modified"; nothing is lost or resent.
    before = len(fake_telegram.sent_messages(ALICE))
    assert isinstance(await editor.deliver("telegram", str(ALICE), a2), Sent)
    assert len(fake_telegram.sent_messages(ALICE)) == before
    assert [c.status for c in fake_telegram.calls("editMessageText")] == [200, 400]  # "not modified"
    # A rise to critical notifies: a new message, led by the critical alert, with the story so far.
    result = await editor.deliver("telegram", str(ALICE), crit)
    assert isinstance(result, Sent)
    last = fake_telegram.sent_messages(ALICE)[-1]
    assert str(last["message_id"]) == result.message_id and len(fake_telegram.sent_messages(ALICE)) == before + 1
    assert "Rule tariff-vix-confirm" in last["plain"] and "+2 sources: Reuters, Xinhua" in last["plain"]


async def test_annotate_edits_every_message_that_shows_the_alert(
    telegram_adapter: TelegramAdapter, fake_telegram: FakeTelegram  # noqa: F811
) -> None:
    """The API another branch uses to add "30 min later: …" to delivered alerts."""
    store = telegram_adapter._services.store  # type: ignore[union-attr]
    editor = MessageEditor(store, {"telegram": telegram_adapter}, ManualClock(T0))
    a1 = _alert(1)
    await _store_alerts(store, [a1])
    async with store.transaction() as conn:
        await store.enqueue_many(conn, [OutboxEntry(a1.id, "telegram", str(ALICE), "pending")], at=T0)
    [row] = await store.deliveries()
    result = await editor.deliver("telegram", str(ALICE), a1)
    assert isinstance(result, Sent)
    await store.mark_sent([row.id], message_id=result.message_id, at=T0)
    results = await editor.annotate(a1.id, "30 min later: ES −0.8 % <b>")
    assert results == {("telegram", str(ALICE)): Sent(result.message_id)}
    [msg] = fake_telegram.sent_messages(ALICE)
    assert "30 min later: ES −0.8 % <b>" in msg["plain"] and "<b>" not in msg["text"].split("later")[1]
    assert await editor.annotate("no-such-alert", "x") == {}


# ---- Discord ------------------------------------------------------------------------------


async def test_discord_story_message_is_patched_and_recreated_when_deleted(
    discord_adapter: DiscordAdapter, fake_discord: FakeDiscord, services: Services  # noqa: F811
) -> None:
    editor = MessageEditor(services.store, {"discord": discord_adapter}, ManualClock(T0))
    a1, a2, a3 = _alert(1), _alert(2, source="Xinhua"), _alert(3, source="MOFCOM")
    await _store_alerts(services.store, [a1, a2, a3])
    first = await editor.deliver("discord", str(CHANNEL), a1)
    assert isinstance(first, Sent)
    assert isinstance(await editor.deliver("discord", str(CHANNEL), a2), Sent)
    [msg] = fake_discord.messages(CHANNEL)
    assert msg["edits"] == 1 and msg["id"] == first.message_id
    fields = {f["name"]: f["value"] for f in msg["embeds"][0]["fields"]}
    assert "Xinhua" in fields["+1 source"]
    assert fake_discord.requests("PATCH")
    fake_discord.delete_message(CHANNEL, msg["id"])
    again = await editor.deliver("discord", str(CHANNEL), a3)
    assert isinstance(again, Sent) and again.message_id != first.message_id
    [msg] = fake_discord.messages(CHANNEL)
    fields = {f["name"]: f["value"] for f in msg["embeds"][0]["fields"]}
    assert "Xinhua" in fields["+2 sources"] and "MOFCOM" in fields["+2 sources"]


# ---- console -----------------------------------------------------------------------------


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    s = await Store.open(db_url)  # SQLite and PostgreSQL
    yield s
    await s.close()


async def test_console_prints_the_alert_once_then_compact_source_lines(store: Store) -> None:
    out = io.StringIO()
    console = ConsoleAdapter(out)
    editor = MessageEditor(store, {"console": console}, ManualClock(datetime(2025, 4, 11, tzinfo=UTC)))
    alerts = [_alert(1), _alert(2, source="Xinhua"), _alert(3, source="MOFCOM")]
    await _store_alerts(store, alerts)
    for a in alerts:
        assert isinstance(await editor.deliver("console", "stdout", a), Sent)
    text = out.getvalue()
    assert text.count("China raises duties") == 3  # the full alert once, then one short line each
    assert text.rstrip().splitlines()[-1].startswith("  ↳ #1 ")
    assert text.rstrip().endswith("+2 sources: Xinhua, MOFCOM")
    # The record survives in the database: a new editor (a restart) edits the same message.
    record = await MessageEditor(store, {"console": console}, ManualClock(T0)).messages.get("console", "stdout", "story-1")
    assert record is not None and record.message_id == "1" and record.alert_ids == tuple(a.id for a in alerts)
    async with store.transaction() as conn:
        await store.enqueue_many(conn, [OutboxEntry(alerts[0].id, "console", "stdout", "pending")], at=T0)
    [row] = await store.deliveries()
    await store.mark_sent([row.id], message_id="1", at=T0)
    later = MessageEditor(store, {"console": console}, ManualClock(T0))
    assert await later.annotate(alerts[0].id, "30 min later: ES -0.8 %") == {("console", "stdout"): Sent("1")}
    assert out.getvalue().rstrip().endswith("· 30 min later: ES -0.8 %")

