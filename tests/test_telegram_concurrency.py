"""A flooded group (issue 12, item 5): other chats are answered at once, SIGTERM exits quickly.

`python -m bot run` against the fake Bot API. Forty people send /help in one
group — Telegram lets a bot post 20 messages a minute there — and then a user
asks /help in a private chat.
"""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

from bot.adapters.telegram_concurrency import BUSY_NOTE
from bot.storage.store import Store
from tests.support.botproc import BotProcess, rss, wait_until, write_rules
from tests.support.fake_telegram import FakeTelegram
from tests.support.feed_server import FeedServer

GROUP = -1005550001
ALICE = 5501
PEOPLE = [9100 + n for n in range(40)]


def _env(fake: FakeTelegram, rules: Path, db: Path) -> dict[str, str]:
    return {
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_BASE_URL": fake.base_url,
        "RULES_DIR": str(rules),
        "DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "DELIVERY_INTERVAL": "0.1",
        "POLL_JITTER": "0",
        "CONSOLE": "false",
    }


def _flood_group(fake: FakeTelegram) -> None:
    fake.chat(GROUP, chat_type="supergroup")
    for person in PEOPLE:
        fake.push_message(GROUP, "/help", from_id=person)


def test_private_command_is_not_stuck_behind_a_flooded_group(
    fake_telegram: FakeTelegram, feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.route("/wire.xml", body=rss([]), content_type="application/rss+xml")
    rules = write_rules(tmp_path / "rules", {"wire": feed_server.url("/wire.xml")})
    with BotProcess(_env(fake_telegram, rules, tmp_path / "c.db"), tmp_path / "bot") as proc:
        wait_until(lambda: fake_telegram.calls("getUpdates"), 30, "polling", proc)
        _flood_group(fake_telegram)
        asked = time.monotonic()
        fake_telegram.push_message(ALICE, "/help")
        # Telegram paces the group at 20 a minute: Alice's answer must not wait for that.
        wait_until(lambda: fake_telegram.sent_messages(ALICE), 15, "the private /help answered", proc)
        print(f"\nprivate /help answered {time.monotonic() - asked:.2f}s after a 40-command group flood")
        wait_until(
            lambda: any(BUSY_NOTE in t for t in fake_telegram.texts(GROUP)), 15, "the busy note", proc
        )
        group = fake_telegram.texts(GROUP)
        assert sum(BUSY_NOTE in t for t in group) == 1  # one note, not one per command
        assert len(group) <= 20  # the excess was shed, not queued for minutes
        proc.signal(signal.SIGTERM)
        assert proc.wait(10) == 0


async def _subscribe(db: Path, chats: list[int]) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{db}")
    try:
        for chat in chats:
            await store.subscribe("telegram", str(chat), "severity", "warning", at=datetime.now(UTC))
    finally:
        await store.close()


def test_sigterm_exits_within_10s_with_a_flooded_group_and_a_stalled_api(
    fake_telegram: FakeTelegram, feed_server: FeedServer, tmp_path: Path
) -> None:
    """Every kind of wait in flight at once: paced group replies, slow sends, an outbox pass."""
    db = tmp_path / "stall.db"
    rules = write_rules(tmp_path / "rules", {"wire": feed_server.url("/wire.xml")})
    asyncio.run(_subscribe(db, [ALICE, ALICE + 1]))
    feed_server.route(
        "/wire.xml", body=rss(["Tariff headline in a stall"]), content_type="application/rss+xml"
    )
    fake_telegram.set_delay("sendMessage", 60)  # every send hangs (the client times out at 10 s)
    with BotProcess(_env(fake_telegram, rules, db), tmp_path / "bot") as proc:
        wait_until(lambda: fake_telegram.calls("getUpdates"), 30, "polling", proc)
        wait_until(lambda: fake_telegram.in_flight() >= 2, 30, "the alert sends in flight", proc)
        _flood_group(fake_telegram)
        wait_until(lambda: fake_telegram.in_flight() >= 4, 30, "replies in flight too", proc)
        signalled = time.monotonic()
        proc.signal(signal.SIGTERM)
        assert proc.wait(10) == 0, proc.stderr[-3000:]
        print(f"\nSIGTERM → exit {time.monotonic() - signalled:.2f}s with sends stalled and a group flooding")
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
