"""Crash safety of the real process: `kill -9` mid-burst, restart, count what the chats got.

`python -m bot run` against the fake Bot API (made slow, so a burst is in
flight) and the local feed server. The outbox promises: every alert reaches
every chat; a message is sent twice only when the process died between the
API accepting it and `mark_sent` committing — at most one per destination,
since only the oldest owed row of a destination is ever in flight; no event
is alerted twice. SIGTERM and SIGINT end the process cleanly with status 0.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.storage.store import Store
from tests.support.botproc import BotProcess, db_query, rss, wait_until, write_rules
from tests.support.fake_telegram import FakeTelegram
from tests.support.feed_server import FeedServer

CHATS = [5101 + n for n in range(8)]
HEADLINES = [f"Tariff headline number {n:02d}" for n in range(5)]


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


async def _subscribe(db: Path, chats: list[int]) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{db}")
    try:
        for chat in chats:
            await store.subscribe(
                "telegram", str(chat), "severity", "warning", at=datetime.now(UTC)
            )
    finally:
        await store.close()


def _alert_texts(fake: FakeTelegram, chat: int) -> list[str]:
    """The headline of each alert message the chat received, in order."""
    return [h for t in fake.texts(chat) for h in HEADLINES if h in t]


def _delivered(fake: FakeTelegram) -> int:
    return sum(len(_alert_texts(fake, c)) for c in CHATS)


def _owed(db: Path) -> int:
    rows = db_query(db, "SELECT count(*) FROM outbox WHERE status = 'pending'")
    return int(str(rows[0][0])) if rows else -1


def test_sigkill_mid_burst_then_restart_delivers_everything_at_most_once_more(
    fake_telegram: FakeTelegram, feed_server: FeedServer, tmp_path: Path
) -> None:
    db = tmp_path / "crash.db"
    rules = write_rules(tmp_path / "rules", {"wire": feed_server.url("/wire.xml")})
    asyncio.run(_subscribe(db, CHATS))
    feed_server.route("/wire.xml", body=rss(HEADLINES), content_type="application/rss+xml")
    fake_telegram.set_delay("sendMessage", 0.3)
    total = len(CHATS) * len(HEADLINES)

    first = BotProcess(_env(fake_telegram, rules, db), tmp_path / "first")
    with first:
        wait_until(lambda: _delivered(fake_telegram) >= total // 3, 30, "a third delivered", first)
        first.signal(signal.SIGKILL)
        first.wait(10)
    at_kill = _delivered(fake_telegram)
    assert at_kill < total, "the burst finished before the kill; nothing was tested"
    # the requests the dead process left with the fake are answered before the next starts
    fake_telegram.wait_for_sync(lambda: fake_telegram.in_flight() == 0, 30)

    fake_telegram.set_delay("sendMessage", 0)
    second = BotProcess(_env(fake_telegram, rules, db), tmp_path / "second")
    with second:
        wait_until(lambda: _owed(db) == 0, 60, "outbox drained", second)
        second.signal(signal.SIGTERM)
        assert second.wait(15) == 0

    per_chat = {c: Counter(_alert_texts(fake_telegram, c)) for c in CHATS}
    for chat, counts in per_chat.items():
        assert set(counts) == set(HEADLINES), f"chat {chat} is missing alerts"
        assert max(counts.values()) <= 2, f"chat {chat}: {counts}"
        # at most the one row of this chat that was in flight is sent again
        assert sum(counts.values()) - len(HEADLINES) <= 1, f"chat {chat}: {counts}"
    duplicates = sum(sum(c.values()) - len(HEADLINES) for c in per_chat.values())
    assert duplicates <= len(CHATS)  # one in-flight row per destination at most
    # in order per chat: the first copy of each headline arrives in feed order
    for chat in CHATS:
        assert list(dict.fromkeys(_alert_texts(fake_telegram, chat))) == HEADLINES, chat
    # no event alerted twice, every delivery row sent exactly once in the books
    assert db_query(db, "SELECT count(*) FROM alerts") == [(len(HEADLINES),)]
    assert db_query(db, "SELECT count(*) FROM events_seen") == [(len(HEADLINES),)]
    assert db_query(
        db, "SELECT status, count(*) FROM outbox WHERE adapter = 'telegram' GROUP BY status"
    ) == [("sent", total)]
    print(f"\n{total} owed; {at_kill} received before the kill; {duplicates} sent twice")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_cleanly_and_quickly(
    sig: signal.Signals, fake_telegram: FakeTelegram, feed_server: FeedServer, tmp_path: Path
) -> None:
    db = tmp_path / "stop.db"
    rules = write_rules(tmp_path / "rules", {"wire": feed_server.url("/wire.xml")})
    asyncio.run(_subscribe(db, CHATS[:2]))
    feed_server.route("/wire.xml", body=rss(HEADLINES), content_type="application/rss+xml")
    fake_telegram.set_delay("sendMessage", 0.3)  # deliveries are in flight when the signal comes
    proc = BotProcess(_env(fake_telegram, rules, db), tmp_path / "bot")
    with proc:
        wait_until(lambda: _delivered(fake_telegram) >= 1, 30, "first delivery", proc)
        started = time.monotonic()
        proc.signal(sig)
        code = proc.wait(10)
        took = time.monotonic() - started
    assert code == 0, proc.stderr[-3000:]
    assert took < 5, f"took {took:.1f}s to stop"
    assert "stopping" in proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    # the database was closed cleanly: another process opens it and sees consistent books
    sent = db_query(db, "SELECT count(*) FROM outbox WHERE status = 'sent'")[0][0]
    assert isinstance(sent, int) and 1 <= sent <= _delivered(fake_telegram)
