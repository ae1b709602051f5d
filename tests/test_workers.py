"""Three real `python -m bot run` workers on one PostgreSQL database, one of them killed.

The workers share the local feed server (several feeds, 5 s interval) and the
fake Bot API; three chats are subscribed before they start. Headlines are
published, the worker holding the most source leases is SIGKILLed once
everything owed so far is delivered, more headlines are published, and then:

- every alert reaches every subscribed chat, each exactly once: the kill
  happens with the outbox empty, so the killed worker has no row in flight
  (a row it had claimed would come back only after the 120 s claim lease,
  and one whose sendMessage was accepted before `mark_sent` committed would
  be sent twice — the at-least-once window tests/test_crash_safety.py covers);
- each source is polled once per interval across all workers: no two polls
  of a feed closer than half the interval, and the killed worker's feeds are
  picked up by the others once its lease (interval × 1.5 + jitter) lapses;
- exactly one worker long-polls getUpdates at a time (the leader), allowing
  only the killed worker's last poll, which the fake answers after its death.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from bot.storage.store import Store
from tests.support.botproc import RULE_FILE, BotProcess, rss
from tests.support.databases import _asyncpg_dsn
from tests.support.fake_telegram import FakeTelegram
from tests.support.feed_server import FeedServer

INTERVAL = 5  # seconds between polls of each feed (the smallest sources.yaml allows)
JITTER = 0.5
LEASE = INTERVAL * 1.5 + JITTER  # what Readout.poll_source asks for
FEEDS = [f"wire{n}" for n in range(4)]
CHATS = [7001, 7002, 7003]
# Every headline a different event (its own number), so each is its own story and message
# (bot/stories.py: headlines that differ only in the feed name would be one story).
FIRST = {f: [f"{f}: tariff round {10 * k + n} on steel" for n in range(2)] for k, f in enumerate(FEEDS)}
SECOND = {f: [f"{f}: tariff retaliation {10 * k + n + 5} announced" for n in range(2)] for k, f in enumerate(FEEDS)}


def _write_rules(folder: Path, feeds: FeedServer) -> Path:
    folder.mkdir()
    lines = ["feeds:"]
    for fid in FEEDS:
        lines += [f"  - id: {fid}", f'    url: "{feeds.url(f"/{fid}.xml")}"', f"    interval: {INTERVAL}"]
    (folder / "sources.yaml").write_text("\n".join(lines) + "\n")
    (folder / "watchlists.yaml").write_text("watchlists: {}\n")
    (folder / "rules.yaml").write_text(RULE_FILE)
    return folder


def _publish(feeds: FeedServer, headlines: dict[str, list[str]]) -> None:
    for fid, titles in headlines.items():
        feeds.route(f"/{fid}.xml", body=rss(titles), content_type="application/rss+xml")


def _received(fake: FakeTelegram) -> dict[int, Counter[str]]:
    """Per chat: how many times each headline arrived."""
    out: dict[int, Counter[str]] = {c: Counter() for c in CHATS}
    every = [t for titles in FIRST.values() for t in titles] + [t for titles in SECOND.values() for t in titles]
    for chat in CHATS:
        for text in fake.texts(chat):
            for title in every:
                if title in text:
                    out[chat][title] += 1
    return out


def _all_delivered(fake: FakeTelegram, headlines: list[str]) -> bool:
    got = _received(fake)
    return all(got[c][h] >= 1 for c in CHATS for h in headlines)


async def _wait(predicate, timeout: float, what: str, workers: list[BotProcess]) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- worker {i}\n{w.stderr[-2000:]}" for i, w in enumerate(workers))
            raise AssertionError(f"{what} not met within {timeout}s\n{tails}")
        await asyncio.sleep(0.1)


async def _prepare(
    pg_url: str, feeds: FeedServer, fake: FakeTelegram, tmp_path: Path, **settings: str
) -> dict[str, str]:
    """Rules for FEEDS, CHATS subscribed to everything, and the workers' environment."""
    rules = _write_rules(tmp_path / "rules", feeds)
    store = await Store.open(pg_url)
    try:
        for chat in CHATS:
            await store.ensure_destination("telegram", str(chat), at=datetime.now(UTC), chat_kind="private")
            await store.subscribe("telegram", str(chat), "severity", "info", at=datetime.now(UTC))
    finally:
        await store.close()
    return {
        "DATABASE_URL": pg_url,
        "RULES_DIR": str(rules),
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_BASE_URL": fake.base_url,
        "POLL_JITTER": str(JITTER),
        "DELIVERY_INTERVAL": "0.3",
        "CONSOLE": "false",
        "LOG_LEVEL": "INFO",
        **settings,
    }


def _stop_all(workers: list[BotProcess]) -> None:
    """SIGTERM the live ones; a worker that does not exit in 15 s is killed (the asserts report it)."""
    for w in workers:
        if w.alive():
            w.signal(signal.SIGTERM)
    for w in workers:
        try:
            w.wait(15)
        except Exception:  # noqa: BLE001 — any failure to stop: kill, and let the asserts speak
            w.kill()


async def test_three_workers_share_sources_and_survive_a_kill(
    pg_url: str, feed_server: FeedServer, fake_telegram: FakeTelegram, tmp_path: Path
) -> None:
    env = await _prepare(pg_url, feed_server, fake_telegram, tmp_path)
    _publish(feed_server, FIRST)
    workers = [BotProcess(env, tmp_path / f"worker{i}") for i in range(3)]
    try:
        for w in workers:
            w.start()
        first = [t for titles in FIRST.values() for t in titles]
        await _wait(lambda: _all_delivered(fake_telegram, first), 90, "first headlines delivered", workers)

        # Kill the worker that holds the most source leases: its feeds must move.
        conn = await asyncpg.connect(_asyncpg_dsn(pg_url))
        try:
            owners = Counter(
                r["lease_owner"] for r in await conn.fetch("SELECT lease_owner FROM source_state")
            )
        finally:
            await conn.close()
        pids = {w.proc.pid: w for w in workers if w.proc is not None}
        owner, held = owners.most_common(1)[0]
        victim = pids[int(owner.split(":")[-2])]
        was_leader = "took the chat leadership" in victim.stderr
        victim.signal(signal.SIGKILL)
        victim.wait(10)
        killed_at = time.monotonic()
        survivors = [w for w in workers if w is not victim]

        _publish(feed_server, {f: FIRST[f] + SECOND[f] for f in FEEDS})
        second = [t for titles in SECOND.values() for t in titles]
        # A leased feed moves once the lease lapses (≤ LEASE) and the next tick fires (≤ INTERVAL).
        await _wait(
            lambda: _all_delivered(fake_telegram, second), LEASE + INTERVAL + 8, "second headlines delivered", workers
        )
        # One more interval: the feeds taken over are polled on cadence by their new holders.
        await asyncio.sleep(INTERVAL + 2 * JITTER + 1)
        for w in survivors:
            assert w.alive(), w.stderr[-3000:]
    finally:
        stopping_at = time.monotonic()
        _stop_all(workers)

    # Every alert to every chat; none twice (the kill came with nothing in flight).
    got = _received(fake_telegram)
    for chat in CHATS:
        assert set(got[chat]) == set(first + second), f"chat {chat}: {got[chat]}"
        assert max(got[chat].values()) == 1, f"chat {chat} got duplicates: {got[chat]}"

    # Each feed polled about once per interval across all workers.
    for fid in FEEDS:
        times = sorted(r.at for r in feed_server.requests_for(f"/{fid}.xml"))
        assert len(times) >= 3, f"{fid}: polled at {[round(x - killed_at, 2) for x in times]} s from the kill"
        for a, b in itertools.pairwise(times):
            gap = b - a
            assert gap >= INTERVAL / 2, f"{fid} polled twice within {gap:.2f}s"
            crosses_kill = a < killed_at < b
            limit = (LEASE + INTERVAL + 2) if crosses_kill else (INTERVAL + 2 * JITTER + 2)
            assert gap <= limit, f"{fid}: no poll for {gap:.1f}s (limit {limit:.1f}s)"
    assert held >= 1

    # One long-poller at a time: getUpdates calls never overlap, except the killed
    # worker's last one, which the fake answers (up to max_poll later) after its death.
    # Calls from the shutdown are left out: PTB cancels its long poll (the fake still
    # holds the request) and sends a final `timeout=0` getUpdates to commit the offset.
    polls = sorted(
        (c for c in fake_telegram.calls("getUpdates") if c.started < stopping_at), key=lambda c: c.started
    )
    assert polls, "no worker long-polled Telegram"
    assert any(c.started > killed_at for c in polls), "nobody long-polled after the kill"
    for a, b in itertools.pairwise(polls):
        if b.started < a.ended - 0.05:
            assert was_leader and a.started < killed_at, (
                f"two getUpdates overlapped: {a.started:.2f}–{a.ended:.2f} and {b.started:.2f}–{b.ended:.2f}"
            )
    leaders = [w for w in workers if re.search(r"took the chat leadership", w.stderr)]
    assert 1 <= len(leaders) <= 2, [w.stderr[-1000:] for w in workers]
    assert all("Traceback" not in w.stderr for w in survivors), [w.stderr[-3000:] for w in survivors]


async def test_a_worker_killed_mid_delivery_hands_its_rows_over_after_the_claim_lease(
    pg_url: str, feed_server: FeedServer, fake_telegram: FakeTelegram, tmp_path: Path
) -> None:
    """Two workers; one is SIGKILLed while its sendMessage calls hang in the (slow) Bot API.

    Its claimed rows are nobody's once DELIVERY_CLAIM_SECONDS pass: the survivor sends
    them. A message the API accepted just as the worker died arrives twice — at most
    one per row the dead worker still held (the at-least-once window), never more.
    """
    env = await _prepare(pg_url, feed_server, fake_telegram, tmp_path, DELIVERY_CLAIM_SECONDS="5")
    fake_telegram.set_delay("sendMessage", 2.0)
    _publish(feed_server, FIRST)
    workers = [BotProcess(env, tmp_path / f"worker{i}") for i in range(2)]
    conn = await asyncpg.connect(_asyncpg_dsn(pg_url))
    try:
        for w in workers:
            w.start()
        claimed: list[asyncpg.Record] = []

        async def someone_sending() -> bool:
            claimed[:] = await conn.fetch(
                "SELECT claimed_by, count(*) AS n FROM outbox WHERE status = 'pending'"
                " AND claimed_by IS NOT NULL GROUP BY claimed_by ORDER BY n DESC"
            )
            return bool(claimed)

        deadline = time.monotonic() + 30
        while not await someone_sending():
            assert time.monotonic() < deadline, [w.stderr[-2000:] for w in workers]
            await asyncio.sleep(0.05)
        owner = claimed[0]["claimed_by"]
        pids = {w.proc.pid: w for w in workers if w.proc is not None}
        victim = pids[int(owner.split(":")[-2])]
        victim.signal(signal.SIGKILL)
        victim.wait(10)
        stuck = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE status = 'pending' AND claimed_by = $1", owner
        )
        fake_telegram.set_delay("sendMessage", 0)
        survivor = next(w for w in workers if w is not victim)
        first = [t for titles in FIRST.values() for t in titles]
        await _wait(lambda: _all_delivered(fake_telegram, first), 40, "all delivered after the kill", workers)
        # The dead worker's rows are sent again once their claim lapses (5 s), not before.
        deadline = time.monotonic() + 30
        while owed := await conn.fetch("SELECT * FROM outbox WHERE status <> 'sent'"):
            assert time.monotonic() < deadline, (owed, survivor.stderr[-3000:])
            await asyncio.sleep(0.2)
        assert survivor.alive(), survivor.stderr[-3000:]
    finally:
        await conn.close()
        _stop_all(workers)

    got = _received(fake_telegram)
    duplicates = sum(n - 1 for chat in CHATS for n in got[chat].values())
    assert 1 <= stuck <= len(CHATS)  # one row per chat in flight at most: order per chat holds
    assert duplicates <= stuck, (duplicates, stuck, got)
    for chat in CHATS:
        assert set(got[chat]) == set(first), f"chat {chat}: {got[chat]}"
