"""Database faults at the edges, against the real process: read-only SQLite, PostgreSQL refused
at start, a PostgreSQL outage mid-run; and the SQLite file's permissions.

The outage is real: the bot's scratch database is closed to new connections
(`ALLOW_CONNECTIONS false`) and its sessions are terminated, while the shared
server keeps serving everyone else; then it is opened again and the bot must
carry on, having logged a handful of lines instead of a traceback per poll.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import stat
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from bot.storage.faults import DatabaseFaultFilter, open_store
from tests.support.botproc import BotProcess, rss, wait_until, write_rules
from tests.support.feed_server import FeedServer


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(rules: Path, url: str, **extra: str) -> dict[str, str]:
    return {"RULES_DIR": str(rules), "DATABASE_URL": url, "POLL_JITTER": "0", "CONSOLE": "true", **extra}


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


async def test_a_new_sqlite_database_is_private(tmp_path: Path) -> None:
    db = tmp_path / "private.db"
    store = await open_store(f"sqlite+aiosqlite:///{db}", wait=0)
    try:
        await store.subscribe("console", "local", "severity", "info", at=datetime.now(UTC))
    finally:
        await store.close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    for side in tmp_path.glob("private.db-*"):  # WAL and shared-memory files follow the database's mode
        assert stat.S_IMODE(side.stat().st_mode) == 0o600, side


def test_read_only_sqlite_fails_fast_with_one_line(feed_server: FeedServer, tmp_path: Path) -> None:
    db = tmp_path / "ro.db"
    asyncio.run(_create(f"sqlite+aiosqlite:///{db}"))
    rules = write_rules(tmp_path / "rules", {"wire": feed_server.url("/wire.xml")})
    feed_server.route("/wire.xml", body=rss(["Tariff headline"]), content_type="application/rss+xml")
    # Tests run as root, for whom chmod 0444 changes nothing: open the file read-only instead.
    proc = BotProcess(_env(rules, f"sqlite+aiosqlite:///file:{db}?mode=ro&uri=true"), tmp_path / "ro")
    with proc:
        code = proc.wait(60)
    lines = [line for line in _lines(proc.stderr) if " INFO " not in line]  # alembic's start-up chatter
    assert code == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, lines
    assert "cannot start: the database cannot be written" in lines[0] and "readonly" in lines[0], lines


async def _create(url: str) -> None:
    store = await open_store(url, wait=0)
    await store.close()


def test_postgres_refused_at_start_is_retried_one_line_per_attempt(feed_server: FeedServer, tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "rules", {"wire": feed_server.url("/wire.xml")})
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/readout"
    proc = BotProcess(_env(rules, url, DATABASE_WAIT="4"), tmp_path / "refused")
    with proc:
        code = proc.wait(60)
    lines = [line for line in _lines(proc.stderr) if " INFO " not in line]
    assert code == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    attempts = [line for line in lines if "database not reachable (attempt" in line]
    assert len(attempts) >= 2 and len(lines) == len(attempts) + 1, lines
    assert "cannot start: cannot open the database" in lines[-1], lines
    assert "retrying in" in attempts[0]

    # SIGTERM ends the wait at once
    proc = BotProcess(_env(rules, url, DATABASE_WAIT="300"), tmp_path / "refused-term")
    with proc:
        wait_until(lambda: "attempt 1" in proc.stderr, 30, "the first attempt", proc)
        proc.signal(signal.SIGTERM)
        assert proc.wait(10) == 1
    assert "stopped while waiting for the database" in proc.stderr


async def _allow_connections(url: str, allow: bool) -> None:
    u = make_url(url)
    conn = await asyncpg.connect(host=u.host, port=u.port or 5432, user=u.username, database="postgres")
    try:
        await conn.execute(f'ALTER DATABASE "{u.database}" ALLOW_CONNECTIONS {str(allow).lower()}')
        if not allow:
            await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", u.database)
    finally:
        await conn.close()


DURING = "Soybean growers in Iowa brace for steep losses as new tariffs bite farm exports this autumn"


async def test_postgres_outage_logs_a_few_lines_not_a_traceback_per_poll(
    pg_url: str, feed_server: FeedServer, tmp_path: Path
) -> None:
    titles = ["Tariff headline before the outage"]
    feed_server.route("/wire.xml", body=rss(titles), content_type="application/rss+xml")
    rules = write_rules(tmp_path / "rules", {"wire": feed_server.url("/wire.xml")})
    sources = (rules / "sources.yaml").read_text().replace("interval: 60", "interval: 5")
    (rules / "sources.yaml").write_text(sources)
    proc = BotProcess(_env(rules, pg_url, DELIVERY_INTERVAL="0.1", BACKLOG_HOURS="48"), tmp_path / "outage")
    with proc:
        wait_until(lambda: "Tariff headline before the outage" in proc.stdout, 60, "the first alert", proc)
        before = len(proc.stderr.splitlines())
        await _allow_connections(pg_url, False)
        try:
            wait_until(lambda: "database fault" in proc.stderr, 60, "the outage noticed", proc)
            # another event (a headline like the first would join its story: an edit, not a new line)
            titles.append(DURING)
            feed_server.route("/wire.xml", body=rss(titles), content_type="application/rss+xml")
            # the outage lasts: several polls (every 5 s) and ~50 outbox passes (every 0.1 s)
            await asyncio.sleep(6)
            during = proc.stderr.splitlines()[before:]
        finally:
            await _allow_connections(pg_url, True)
        wait_until(lambda: DURING in proc.stdout, 60, "the alert held up by the outage", proc)
        proc.signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    assert "Traceback" not in "\n".join(during), "\n".join(during)[-3000:]
    faults = [line for line in during if "database fault" in line]
    assert 1 <= len(faults) <= 8, during  # one per kind of fault per minute
    assert len(during) <= 12, during
    assert proc.stdout.count(DURING) == 1  # nothing doubled


def test_fault_filter_keeps_one_line_per_kind_per_minute() -> None:
    import logging

    from sqlalchemy.exc import OperationalError

    records = []
    f = DatabaseFaultFilter(every=60)
    full = OperationalError("INSERT ...", {}, Exception("database or disk is full"))
    for n in range(100):
        try:
            raise full
        except OperationalError:
            import sys

            record = logging.LogRecord("bot.x", logging.ERROR, __file__, n, "outbox drain failed; will retry", None, sys.exc_info())
        if f.filter(record):
            records.append(record)
    plain = logging.LogRecord("bot.x", logging.INFO, __file__, 1, "alert %s", ("x",), None)
    assert f.filter(plain) and plain.getMessage() == "alert x"
    (kept,) = records
    assert kept.exc_info is None
    assert kept.getMessage().startswith("database fault: Exception: database or disk is full — outbox drain failed")
    assert "INSERT" not in kept.getMessage()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
