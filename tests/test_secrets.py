"""Tokens never leak: the real process at DEBUG, JSON logs, error paths provoked, every line grepped.

`python -m bot run` with a known Telegram token and a known Discord token,
against the fake Bot API, the fake Discord API and the local feed server. A
feed answers 500, another points at a closed port; Telegram answers one send
with 401 and one with 502; Discord answers one post with 401 and one with 500.
Then every line the process wrote and the `/status` reply are searched for
either token (whole, and the secret part alone).
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from datetime import UTC, datetime
from pathlib import Path

from bot.storage.store import Store
from tests.support.botproc import BotProcess, db_query, rss, wait_until, write_rules
from tests.support.fake_discord import FakeDiscord
from tests.support.fake_telegram import FakeTelegram
from tests.support.feed_server import FeedServer

DISCORD_TOKEN = "MTk4NjIyNDgzNDcxOTI1MjQ4.Gx7kQp.SeCrEt-discord-token-must-not-leak_42"
CHAT = 5301
GUILD, CHANNEL = 910_000_000_000_000_001, 910_000_000_000_000_002


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _subscribe(db: Path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{db}")
    try:
        now = datetime.now(UTC)
        await store.subscribe("telegram", str(CHAT), "severity", "warning", at=now)
        await store.subscribe("discord", str(CHANNEL), "severity", "warning", at=now)
    finally:
        await store.close()


def test_tokens_never_appear_in_any_output_or_status(
    fake_telegram: FakeTelegram, fake_discord: FakeDiscord, feed_server: FeedServer, tmp_path: Path
) -> None:
    fake_discord.bot_token = DISCORD_TOKEN
    fake_discord.add_channel(CHANNEL, guild_id=GUILD)
    fake_discord.fail(
        r"^/channels/\d+/messages$",
        401,
        method="POST",
        body={"message": "401: Unauthorized", "code": 0},
    )
    fake_discord.fail(r"^/channels/\d+/messages$", 500, method="POST")
    fake_telegram.fail_next("sendMessage", 401, description="Unauthorized")
    fake_telegram.fail_next("sendMessage", 502, description="Bad Gateway")
    feed_server.route(
        "/wire.xml",
        body=rss(["Tariffs on steel", "Tariffs on soybeans"]),
        content_type="application/rss+xml",
    )
    feed_server.route("/broken.xml", status=500, body=b"oops")
    db = tmp_path / "secrets.db"
    rules = write_rules(
        tmp_path / "rules",
        {
            "wire": feed_server.url("/wire.xml"),
            "broken": feed_server.url("/broken.xml"),
            "nowhere": f"http://127.0.0.1:{_closed_port()}/feed.xml",
        },
    )
    asyncio.run(_subscribe(db))
    env = {
        "TELEGRAM_BOT_TOKEN": fake_telegram.token,
        "TELEGRAM_BASE_URL": fake_telegram.base_url,
        "DISCORD_BOT_TOKEN": DISCORD_TOKEN,
        "DISCORD_API_BASE": fake_discord.api_base,
        "RULES_DIR": str(rules),
        "DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "LOG_LEVEL": "DEBUG",
        "LOG_FORMAT": "json",
        "DELIVERY_INTERVAL": "0.1",
        "DELIVERY_MAX_ATTEMPTS": "2",
        "POLL_JITTER": "0",
        "CONSOLE": "true",
    }
    proc = BotProcess(env, tmp_path / "bot")
    with proc:
        wait_until(lambda: fake_telegram.calls("getUpdates"), 30, "Telegram polling", proc)
        # both error paths of both chat APIs were taken, and the polls failed
        wait_until(
            lambda: (
                len(fake_discord.requests("POST", r"^/channels/\d+/messages$")) >= 2
                and len([c for c in fake_telegram.calls("sendMessage") if c.status >= 400]) >= 2
            ),
            30,
            "failed sends",
            proc,
        )
        wait_until(
            lambda: (
                db_query(db, "SELECT count(*) FROM source_state WHERE consecutive_failures > 0")
                == [(2,)]
            ),
            20,
            "failed polls",
            proc,
        )
        fake_telegram.push_message(CHAT, "/status")
        [status] = wait_until(
            lambda: [m for m in fake_telegram.sent_messages(CHAT) if "Sources" in m["plain"]],
            20,
            f"/status reply (got {fake_telegram.texts(CHAT)})",
            proc,
        )
        proc.signal(signal.SIGTERM)
        assert proc.wait(15) == 0

    telegram_secret = fake_telegram.token.split(":", 1)[1]
    discord_secret = DISCORD_TOKEN.split(".")[-1]
    needles = [fake_telegram.token, telegram_secret, DISCORD_TOKEN, discord_secret]
    stderr, stdout = proc.stderr, proc.stdout
    lines = stderr.splitlines()
    assert len(lines) > 20, stderr  # DEBUG chatter was written
    for line in lines + stdout.splitlines() + [status["text"], status["plain"]]:
        for needle in needles:
            assert needle not in line, f"token leaked: {line[:300]}"
    # LOG_FORMAT=json: every stderr line is one JSON object
    records = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any(r["level"] in ("warning", "error") and "broken" in r["message"] for r in records)
    assert "broken" in status["plain"] and "nowhere" in status["plain"]
    # the sends the chat APIs refused were really attempted with the right tokens
    assert any(c.status == 401 for c in fake_telegram.calls("sendMessage"))
    assert all(
        r.headers.get("Authorization") in (None, f"Bot {DISCORD_TOKEN}")
        for r in fake_discord.requests()
    )
