"""The database every storage module shares: engine, transactions, insert-if-new.

SQLAlchemy Core over an async engine, so the same code runs on embedded SQLite
(the default) and PostgreSQL. The schema is Alembic's
(`bot.storage.migrations`), applied by `Database.open`. A storage module is a
class over one `Database` (see `bot.storage.store` for the ones that exist);
methods that must share a transaction with others take an explicit connection.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Column, Table, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bot.storage.migrations import upgrade_engine

_T = TypeVar("_T")

CHUNK_ROWS = 500  # rows per multi-row statement: well inside SQLite's 32,766 bound parameters


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_worker_id() -> str:
    """A worker id unique across hosts and restarts: `host:pid:random` (at most 64 characters)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def create_engine(url: str) -> AsyncEngine:
    kwargs: dict[str, Any] = {}
    if is_sqlite(url):
        # sqlite3 keeps 128 prepared statements per connection; a multi-row INSERT of
        # hundreds of rows prepares into a large program, and each batch size is another
        # statement: 128 of them held ~120 MB in bench/memory.py. 16 is plenty for the rest.
        kwargs["connect_args"] = {"timeout": 30, "cached_statements": 16}
    # No pool_pre_ping (a round trip per checkout): after a server restart the first
    # failing statement invalidates the pool, and every caller loop retries.
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


class Database:
    """One engine and the ways to use it: transactions, single statements, reads.

    `single_worker`: SQLite, where one worker owns the database (claims by other
    worker ids are stale; see the sources and outbox modules). Tests turn it off
    to run the multi-worker SQL on SQLite. `on_rollback` registers what to forget
    when a transaction rolls back (memories that may hold rolled-back writes).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.single_worker = engine.dialect.name == "sqlite"
        self._on_rollback: list[Callable[[], None]] = []

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def create_schema(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent; safe for concurrent starters)."""
        await upgrade_engine(self.engine)

    async def close(self) -> None:
        await self.engine.dispose()

    def on_rollback(self, forget: Callable[[], None]) -> None:
        self._on_rollback.append(forget)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.begin() as conn:
                yield conn
        except BaseException:
            for forget in self._on_rollback:
                forget()
            raise

    @asynccontextmanager
    async def one_statement(self) -> AsyncIterator[AsyncConnection]:
        """A connection in autocommit mode, for a write that is one statement: no BEGIN and
        COMMIT round trips around it (on the hot path of every poll)."""
        async with self.engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def reading(self, conn: AsyncConnection | None) -> AsyncIterator[AsyncConnection]:
        """Read on the caller's connection when given one. Inside a write transaction on
        SQLite this is required: a second connection would wait on a pool that writers
        blocked behind our own write lock may have drained."""
        if conn is not None:
            yield conn
        else:
            async with self.engine.connect() as own:
                yield own


def chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def insert_new(conn: AsyncConnection, table: Table, **values: Any) -> bool:
    """INSERT … ON CONFLICT DO NOTHING: True if the row is new, False if a unique key already had it.

    No exception, no savepoint and no server-side error log for the common
    duplicate (every poll re-reads items already seen); under concurrency on
    PostgreSQL it waits for the other inserter and then skips if that one committed.
    """
    key = next(iter(table.primary_key.columns))
    return bool(await insert_new_many(conn, table, [values], key))


async def insert_new_many(
    conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]], returning: Column[Any]
) -> list[Any]:
    """`insert_new` for many rows; `returning` of the new ones.

    RETURNING, not rowcount: with a generated key psycopg reports -1 for a skipped row.
    Several rows go as an executemany that SQLAlchemy turns into multi-row INSERTs
    ("insertmanyvalues", batches of 1,000): one compiled statement, cached, whatever
    the number of rows.
    """
    if not rows:
        return []
    stmt = dialect_insert(conn, table).on_conflict_do_nothing().returning(returning)
    return list((await conn.execute(stmt, list(rows))).scalars())


def dialect_insert(conn: AsyncConnection, table: Table) -> Any:
    """An INSERT with ON CONFLICT support: PostgreSQL's or SQLite's (the two backends Readout runs on)."""
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class StorePart:
    """Base of a storage module: a class over the shared `Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db
