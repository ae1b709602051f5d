"""Discord delivery over discord.py's real HTTP client against the fake REST server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import discord
import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.adapters.base import Gone, RetryLater, Sent
from bot.adapters.discord import DiscordAdapter
from bot.clock import ManualClock
from bot.models import Alert, Severity
from bot.services import RuleSetHolder, Services
from bot.settings import Settings
from bot.storage.store import Store
from tests.support.fake_discord import APP_ID, FakeDiscord
from tests.support.store_reads import deliveries, enqueue

T0 = datetime(2025, 4, 2, 20, 0, tzinfo=UTC)
TOKEN = "MTIz.fake-discord-token.SECRET-must-not-leak"
CHANNEL = 1_200_000_000_000_000_001


def _alert(n: int = 1, **kw: object) -> Alert:
    base: dict[str, object] = dict(
        id=f"{n:08x}" + "a" * 16,
        rule_id="tariff-announcement",
        rule_description="Tariff announced",
        severity=Severity.critical,
        kind="news",
        event_id=f"e{n}",
        key="k",
        title=f"@everyone US tariffs on China {n}",
        url="https://example.com/n",
        source="feed",
        event_time=T0,
        created_at=T0,
    )
    base.update(kw)
    return Alert.model_validate(base)


def _settings(fake: FakeDiscord, **kw: object) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        discord_bot_token=TOKEN,
        discord_api_base=fake.api_base,
        **kw,
    )


@pytest.fixture
async def services(tmp_path: Path, fake_discord: FakeDiscord) -> AsyncIterator[Services]:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'd.db'}")
    ruleset = SimpleNamespace(
        rules=[], watchlists={}, get=lambda _id: None, tags=lambda: set(), enabled_rules=lambda: []
    )
    yield Services(
        settings=_settings(fake_discord),
        store=store,
        clock=ManualClock(T0),
        rules=RuleSetHolder(ruleset),
    )  # type: ignore[arg-type]
    await store.close()


@pytest.fixture
async def adapter(fake_discord: FakeDiscord, services: Services) -> AsyncIterator[DiscordAdapter]:
    a = DiscordAdapter(_settings(fake_discord), connect_gateway=False)
    await a.start(services)
    yield a
    await a.stop()


async def test_start_logs_in_and_syncs_commands_globally(
    fake_discord: FakeDiscord, adapter: DiscordAdapter
) -> None:
    assert fake_discord.requests("GET", "^/users/@me$")
    assert fake_discord.requests("GET", "^/oauth2/applications/@me$")
    [sync] = fake_discord.requests("PUT", f"^/applications/{APP_ID}/commands$")
    [group] = sync.json
    assert group["name"] == "readout"
    assert group["dm_permission"] is False
    names = {o["name"] for o in group["options"]}
    assert names == {
        "subscribe",
        "unsubscribe",
        "subscriptions",
        "rules",
        "watchlist",
        "recent",
        "status",
        "filter",
        "why",
        "stats",
        "help",
        "mute",
        "unmute",
        "quiet",
        "test-alert",
        "try",
    }
    assert sync.headers["Authorization"] == f"Bot {TOKEN}"


async def test_guild_id_syncs_to_that_guild(fake_discord: FakeDiscord, services: Services) -> None:
    a = DiscordAdapter(_settings(fake_discord, discord_guild_id=777), connect_gateway=False)
    await a.start(services)
    try:
        assert fake_discord.requests("PUT", f"^/applications/{APP_ID}/guilds/777/commands$")
        assert not fake_discord.requests("PUT", f"^/applications/{APP_ID}/commands$")
    finally:
        await a.stop()


async def test_send_alert_posts_an_embed_that_pings_nobody(
    fake_discord: FakeDiscord, adapter: DiscordAdapter
) -> None:
    result = await adapter.send_alert(str(CHANNEL), _alert())
    assert isinstance(result, Sent) and result.message_id
    [posted] = fake_discord.messages(CHANNEL)
    assert posted["id"] == result.message_id
    body = posted["request"]
    assert body["allowed_mentions"] == {"parse": []}
    [embed] = body["embeds"]
    assert embed["title"] == "@\u200beveryone US tariffs on China 1"
    assert embed["url"] == "https://example.com/n"
    assert embed["color"] == 0xE74C3C
    [req] = fake_discord.requests("POST", f"^/channels/{CHANNEL}/messages$")
    assert req.headers["Content-Type"] == "application/json"


async def test_long_429_becomes_retry_later_with_the_delay(
    fake_discord: FakeDiscord, adapter: DiscordAdapter
) -> None:
    fake_discord.rate_limit(f"/channels/{CHANNEL}/messages", retry_after=64.5)
    result = await adapter.send_alert(str(CHANNEL), _alert())
    assert result == RetryLater("discord: rate limited (429)", after=64.5)
    assert fake_discord.messages(CHANNEL) == []
    # the adapter is fine afterwards
    assert isinstance(await adapter.send_alert(str(CHANNEL), _alert(2)), Sent)


async def test_short_429_is_waited_out_by_discord_py(
    fake_discord: FakeDiscord, adapter: DiscordAdapter
) -> None:
    fake_discord.rate_limit(f"/channels/{CHANNEL}/messages", retry_after=0.01)
    result = await adapter.send_alert(str(CHANNEL), _alert())
    assert isinstance(result, Sent)
    assert len(fake_discord.requests("POST", f"^/channels/{CHANNEL}/messages$")) == 2
    assert len(fake_discord.messages(CHANNEL)) == 1


@pytest.mark.parametrize(("status", "code"), [(403, 50001), (404, 10003)])
async def test_lost_channel_is_gone(
    fake_discord: FakeDiscord,
    adapter: DiscordAdapter,
    status: int,
    code: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_discord.fail(f"/channels/{CHANNEL}/messages", status)
    with caplog.at_level(logging.WARNING, logger="bot.adapters.discord"):
        result = await adapter.send_alert(str(CHANNEL), _alert())
    assert isinstance(result, Gone)
    assert f"channel {CHANNEL} unreachable ({status} {code}" in result.reason
    assert str(CHANNEL) in caplog.text


async def test_server_error_is_retried_later(
    fake_discord: FakeDiscord, adapter: DiscordAdapter
) -> None:
    fake_discord.fail(f"/channels/{CHANNEL}/messages", 503)
    result = await adapter.send_alert(str(CHANNEL), _alert())
    assert isinstance(result, RetryLater) and "503" in result.reason


INVALID_FORM = {  # Discord's real answer to an embed over its limits
    "code": 50035,
    "errors": {
        "embeds": {
            "0": {
                "description": {
                    "_errors": [
                        {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 4096 or fewer in length."}
                    ]
                }
            }
        }
    },
    "message": "Invalid Form Body",
}


async def test_bad_request_is_reshaped_once_as_plain_text(
    fake_discord: FakeDiscord, adapter: DiscordAdapter
) -> None:
    fake_discord.fail(f"/channels/{CHANNEL}/messages", 400, body=INVALID_FORM)
    result = await adapter.send_alert(str(CHANNEL), _alert())
    assert isinstance(result, Sent)
    (message,) = fake_discord.messages(CHANNEL)
    assert "US tariffs on China 1" in message["request"]["content"]
    assert not message["request"].get("embeds")


async def test_bad_request_twice_is_rejected_and_the_next_alert_is_not_blocked(
    fake_discord: FakeDiscord, adapter: DiscordAdapter, services: Services
) -> None:
    """Through the real outbox worker: a message Discord never takes is given up at once."""
    from bot.delivery.outbox import OutboxWorker

    store = services.store
    async with store.transaction() as conn:
        for n in (1, 2):
            await store.insert_alert(conn, _alert(n))
            await enqueue(
                store, conn, alert_id=_alert(n).id, adapter="discord", address=str(CHANNEL), status="pending", at=T0
            )
    fake_discord.fail(f"/channels/{CHANNEL}/messages", 400, body=INVALID_FORM, times=2)
    await OutboxWorker(store, {"discord": adapter}, services.clock).drain_once()
    rows = await deliveries(store, adapter="discord")
    assert [r.status for r in rows] == ["dead", "sent"]
    assert "50035" in (rows[0].last_error or "")
    assert [m["request"]["embeds"][0]["title"] for m in fake_discord.messages(CHANNEL)] == [
        "@\u200beveryone US tariffs on China 2"
    ]


async def test_a_resend_of_the_same_alert_posts_nothing_new(
    fake_discord: FakeDiscord, adapter: DiscordAdapter
) -> None:
    """After a timeout the outbox sends again; the alert's id as `nonce` with `enforce_nonce`
    makes Discord answer with the message it already made (issue 12, item 9)."""
    first = await adapter.send_alert(str(CHANNEL), _alert(7))
    again = await adapter.send_alert(str(CHANNEL), _alert(7))
    assert isinstance(first, Sent) and first == again
    (message,) = fake_discord.messages(CHANNEL)
    assert message["request"]["nonce"] == _alert(7).id and message["request"]["enforce_nonce"] is True
    assert isinstance(await adapter.send_alert(str(CHANNEL), _alert(8)), Sent)  # another alert: posted
    assert len(fake_discord.messages(CHANNEL)) == 2


async def test_bad_address_and_not_started(
    fake_discord: FakeDiscord, adapter: DiscordAdapter
) -> None:
    assert isinstance(await adapter.send_alert("general", _alert()), Gone)
    idle = DiscordAdapter(_settings(fake_discord), connect_gateway=False)
    assert await idle.send_alert(str(CHANNEL), _alert()) == RetryLater("discord: not logged in yet")


async def test_digest_is_one_message(fake_discord: FakeDiscord, adapter: DiscordAdapter) -> None:
    alerts = [_alert(i, severity=Severity.info) for i in range(12)]
    assert isinstance(await adapter.send_digest(str(CHANNEL), alerts), Sent)
    [posted] = fake_discord.messages(CHANNEL)
    [embed] = posted["request"]["embeds"]
    assert embed["title"] == "While you were quiet: 12 alerts"
    assert len(embed["description"].splitlines()) == 12
    assert posted["request"]["allowed_mentions"] == {"parse": []}
    assert await adapter.send_digest(str(CHANNEL), []) == Sent(None)


async def test_rejected_token_fails_start_without_leaking_it(
    fake_discord: FakeDiscord, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    fake_discord.bot_token = "the-right-token"
    a = DiscordAdapter(_settings(fake_discord), connect_gateway=False)
    with caplog.at_level(logging.DEBUG), pytest.raises(RuntimeError, match="rejected") as err:
        await a.start(services)
    await a.stop()
    assert TOKEN not in str(err.value)
    assert TOKEN not in caplog.text


async def test_token_never_logged(
    fake_discord: FakeDiscord, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    before = Route.BASE
    with caplog.at_level(logging.DEBUG):
        a = DiscordAdapter(_settings(fake_discord), connect_gateway=False)
        await a.start(services)
        assert Route.BASE == before  # the adapter's client is pointed at the fake, not the process
        fake_discord.rate_limit(f"/channels/{CHANNEL}/messages", retry_after=99)
        await a.send_alert(str(CHANNEL), _alert())
        fake_discord.fail(f"/channels/{CHANNEL}/messages", 403)
        await a.send_alert(str(CHANNEL), _alert())
        await a.send_alert(str(CHANNEL), _alert())
        await a.stop()
    assert caplog.records  # discord.py's debug logs were captured
    assert TOKEN not in caplog.text
    assert "SECRET" not in repr(_settings(fake_discord))
    assert before == Route.BASE


async def test_gateway_connects_to_the_apis_gateway(
    fake_discord: FakeDiscord, services: Services
) -> None:
    """With DISCORD_API_BASE set, the gateway URL comes from GET /gateway/bot, so nothing dials Discord."""
    default_gateway = DiscordWebSocket.DEFAULT_GATEWAY
    a = DiscordAdapter(_settings(fake_discord))
    await a.start(services)
    try:
        await fake_discord.wait_for_gateway()
        assert fake_discord.gateway_clients == 1
        [identify] = [op for op in fake_discord.state.gateway_ops if op["op"] == 2]
        assert identify["d"]["intents"] == discord.Intents(guilds=True).value
        assert isinstance(await a.send_alert(str(CHANNEL), _alert()), Sent)
        assert default_gateway == DiscordWebSocket.DEFAULT_GATEWAY  # per client, not class-wide
    finally:
        await a.stop()
    assert a._task is None


async def test_outbox_unroutes_a_lost_channel_and_honours_429(
    fake_discord: FakeDiscord, adapter: DiscordAdapter, services: Services
) -> None:
    """Through the real outbox worker: 429 defers by Discord's delay; 403 twice disables."""
    from bot.delivery.outbox import OutboxWorker

    store = services.store
    lost = CHANNEL + 1
    for address in (str(CHANNEL), str(lost)):
        await store.ensure_destination("discord", address, at=T0, chat_kind="guild:1")
        await store.subscribe("discord", address, "severity", "info", at=T0)
    async with store.transaction() as conn:
        await store.insert_alert(conn, _alert())
        for address in (str(CHANNEL), str(lost)):
            await enqueue(store,
                conn,
                alert_id=_alert().id,
                adapter="discord",
                address=address,
                status="pending",
                at=T0,
            )
    fake_discord.rate_limit(f"/channels/{CHANNEL}/messages", retry_after=45)
    fake_discord.fail(f"/channels/{lost}/messages", 403, times=2)
    worker = OutboxWorker(store, {"discord": adapter}, services.clock, gone_confirm_seconds=30)
    await worker.drain_once()
    assert isinstance(services.clock, ManualClock)
    services.clock.advance(30)  # the confirming second attempt
    await worker.drain_once()
    rows = {d.address: d for d in await deliveries(store, adapter="discord")}
    assert rows[str(CHANNEL)].status == "pending"
    assert rows[str(CHANNEL)].next_attempt_at == T0 + timedelta(seconds=45)
    assert rows[str(lost)].status == "dead"
    gone = await store.get_destination("discord", str(lost))
    assert (
        gone is not None and gone.disabled_at is not None and "403" in (gone.disabled_reason or "")
    )
    assert len(await store.subscriptions("discord", str(lost))) == 1  # disabled, not deleted
    assert len(await store.subscriptions("discord", str(CHANNEL))) == 1
    services.clock.advance(15)
    await worker.drain_once()
    assert [m["request"]["embeds"][0]["title"] for m in fake_discord.messages(CHANNEL)] == [
        "@\u200beveryone US tariffs on China 1"
    ]


async def test_unreachable_discord_at_start_is_retried_in_the_background(
    fake_discord: FakeDiscord, services: Services
) -> None:
    fake_discord.fail("^/users/@me$", 503)
    a = DiscordAdapter(_settings(fake_discord), connect_gateway=False)
    a.retry_delays = (0.01, 0.05)
    await a.start(services)  # does not raise
    try:
        assert await a.send_alert(str(CHANNEL), _alert()) == RetryLater(
            "discord: not logged in yet"
        )
        for _ in range(500):
            if fake_discord.requests("PUT", f"^/applications/{APP_ID}/commands$"):
                break
            await asyncio.sleep(0.01)
        assert isinstance(await a.send_alert(str(CHANNEL), _alert()), Sent)
    finally:
        await a.stop()
