"""Database faults at the edges: at start, fail fast or wait with one line; in an outage, one line a minute.

* SQLite: the file is created 0600 (alerts, chat ids and subscriptions are
  nobody else's business), and a database that cannot be written (read-only
  file or mount, `mode=ro`) stops the start with one line instead of a bot
  whose every write fails.
* PostgreSQL refused or unreachable at start: retried with backoff (1 s
  doubling to 30 s), one log line per attempt, for `database_wait` seconds;
  then one line and exit status 1. SIGTERM ends the wait.
* While running (outage, disk full, read-only): `DatabaseFaultFilter` turns
  every log record caused by a database fault into one line without a
  traceback, at most once a minute per kind of fault, with the count of those
  held back — instead of a traceback per poll and per outbox pass.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import time
from urllib.parse import unquote

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from bot.storage.store import Store

log = logging.getLogger(__name__)

_OS_FAULTS = {errno.ENOSPC, errno.EROFS, errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH}


class DatabaseUnavailableError(Exception):
    """The database cannot be used; the message is one line for the operator."""


def is_database_fault(exc: BaseException) -> bool:
    """Whether `exc` comes from the database or the way to it (not from our own logic)."""
    if isinstance(exc, SQLAlchemyError):
        return True
    if isinstance(exc, OSError) and exc.errno in _OS_FAULTS:
        return True
    module = type(exc).__module__ or ""
    return module.startswith(("asyncpg", "psycopg", "sqlite3", "aiosqlite"))


def describe_fault(exc: BaseException) -> str:
    """One line: the driver's exception and its first message line (no SQL, no parameters)."""
    inner: BaseException = exc
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        inner = exc.orig
    message = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
    return f"{type(inner).__name__}: {message}"[:300] if message else type(inner).__name__


def _fault_in(record: logging.LogRecord) -> BaseException | None:
    if record.exc_info and record.exc_info[1] is not None and is_database_fault(record.exc_info[1]):
        return record.exc_info[1]
    args = record.args if isinstance(record.args, tuple) else ()
    for arg in args:
        if isinstance(arg, BaseException) and is_database_fault(arg):
            return arg
    return None


class DatabaseFaultFilter(logging.Filter):
    """At most one line per kind of database fault per `every` seconds, never a traceback."""

    def __init__(self, every: float = 60.0) -> None:
        super().__init__()
        self.every = every
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        fault = _fault_in(record)
        if fault is None:
            return True
        kind = describe_fault(fault)
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self.every:
            self._held[kind] = self._held.get(kind, 0) + 1
            return False
        held = self._held.pop(kind, 0)
        self._last[kind] = now
        try:
            what = record.getMessage().splitlines()[0]
        except Exception:  # a record whose arguments do not fit its message: keep the fault
            what = str(record.msg)
        note = f" ({held} more like it in the last {self.every:g} s)" if held else ""
        record.msg = f"database fault: {kind} — {what}{note}; one line per minute while it lasts"
        record.args = None
        record.exc_info = None
        record.exc_text = None
        return True


def sqlite_path(url: str) -> str | None:
    """The file of a SQLite URL (plain or `file:` URI form); None for other databases or memory."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    database = parsed.database or ""
    if not database or database == ":memory:" or "mode=memory" in str(parsed.query):
        return None
    if database.startswith("file:"):
        return unquote(database[len("file:") :].split("?", 1)[0])
    return database


def create_private_sqlite_file(url: str) -> None:
    """Create a new SQLite database file readable by its owner only (0600)."""
    path = sqlite_path(url)
    if path is None or os.path.exists(path):
        return
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise DatabaseUnavailableError(f"cannot create the database file {path}: {exc.strerror}") from None
    os.close(fd)


async def check_writable(store: Store) -> None:
    """A write that changes nothing: a read-only database fails here, once, not on every poll."""
    try:
        async with store.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = version_num"))
    except SQLAlchemyError as exc:
        raise DatabaseUnavailableError(f"the database cannot be written: {describe_fault(exc)}") from None


def _not_there(exc: BaseException) -> bool:
    """The server answered that the database does not exist: a configuration error to report
    at once (with a hint, bot/startup.py), not a server to wait for."""
    inner = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return 'database "' in str(inner) and "does not exist" in str(inner)


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


async def open_store(url: str, *, wait: float, stop: asyncio.Event | None = None) -> Store:
    """Open, migrate and write-check the database. SQLite faults fail at once; a server that
    cannot be reached is retried for `wait` seconds (one line per attempt).

    Raises `DatabaseUnavailableError` with a one-line message."""
    create_private_sqlite_file(url)
    deadline = time.monotonic() + wait
    delay = 1.0
    attempt = 0
    while True:
        attempt += 1
        try:
            store = await Store.open(url)
        except Exception as exc:
            if not is_database_fault(exc) or _not_there(exc):
                raise  # not the database's fault, or nothing waiting would fix (bot/startup.py says it)
            reason = describe_fault(exc)
            if sqlite_path(url) is not None or time.monotonic() + delay > deadline:
                raise DatabaseUnavailableError(f"cannot open the database {_shown(url)}: {reason}") from None
            log.warning("database not reachable (attempt %d): %s; retrying in %.0f s", attempt, reason, delay)
            if stop is not None:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                except TimeoutError:
                    pass
                else:
                    raise DatabaseUnavailableError("stopped while waiting for the database") from None
            else:
                await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
            continue
        try:
            await check_writable(store)
        except DatabaseUnavailableError:
            await store.close()
            raise
        if attempt > 1:
            log.info("database reachable after %d attempts", attempt)
        return store
