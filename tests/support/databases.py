"""Database fixtures: every storage-dependent test runs on SQLite and on PostgreSQL.

`db_url` is parametrized `sqlite` (a fresh file under tmp_path), `postgresql`
(a freshly created database `readout_test_<random>` on the server at
`TEST_DATABASE_URL`, default the local one, dropped after the test, through
asyncpg) and `psycopg` (the same, through psycopg 3). Where no
PostgreSQL answers, the `postgresql` cases are skipped with the reason shown
(or fail, with `READOUT_REQUIRE_POSTGRES=1`, for CI). `pg_url` is the
PostgreSQL case alone. `store` is an opened, migrated Store on `db_url`,
closed after the test.

    async def test_something(store: Store) -> None: ...
    async def test_raw(db_url: str) -> None: ...      # open your own Store(s)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bot.storage.store import Store

DEFAULT_TEST_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"

_reachable: dict[str, str | None] = {}  # server URL → None if reachable, else why not


def server_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    """A plain libpq-style DSN for asyncpg from a SQLAlchemy URL (any driver suffix)."""
    u = make_url(url).set(drivername="postgresql", query={})
    if database is not None:
        u = u.set(database=database)
    return u.render_as_string(hide_password=False)


async def _unreachable_reason(url: str) -> str | None:
    import asyncpg

    if url not in _reachable:
        try:
            conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=3)
            await conn.close()
            _reachable[url] = None
        except Exception as exc:  # noqa: BLE001 - refused, unknown host, auth: no server for us
            shown = make_url(url).render_as_string(hide_password=True)
            _reachable[url] = f"PostgreSQL not reachable at {shown}: {type(exc).__name__}: {exc}"
    return _reachable[url]


class PostgresDatabase:
    """A scratch database on the test server: `async with PostgresDatabase(url) as db_url:`."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.name = f"readout_test_{uuid.uuid4().hex[:12]}"
        u = make_url(server_url).set(database=self.name)
        self.url = u.render_as_string(hide_password=False)

    async def __aenter__(self) -> str:
        import asyncpg

        conn = await asyncpg.connect(_asyncpg_dsn(self.server_url), timeout=10)
        try:
            await conn.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            await conn.close()
        return self.url

    async def __aexit__(self, *exc: object) -> None:
        import asyncpg

        conn = await asyncpg.connect(_asyncpg_dsn(self.server_url), timeout=10)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await conn.close()


async def _scratch_postgres() -> PostgresDatabase:
    server = server_url()
    reason = await _unreachable_reason(server)
    if reason is not None:
        if os.environ.get("READOUT_REQUIRE_POSTGRES") == "1":  # CI: a missing server is a failure
            pytest.fail(reason)
        pytest.skip(reason)
    return PostgresDatabase(server)


def with_driver(url: str, driver: str) -> str:
    """The same PostgreSQL database through another driver (`asyncpg` or `psycopg`)."""
    return make_url(url).set(drivername=f"postgresql+{driver}").render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql", "psycopg"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: on SQLite, on PostgreSQL through asyncpg, and through psycopg."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'readout.db'}"
        return
    async with await _scratch_postgres() as url:
        yield with_driver(url, "psycopg" if request.param == "psycopg" else "asyncpg")


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """An empty PostgreSQL database only (several workers sharing one database)."""
    async with await _scratch_postgres() as url:
        yield url


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    """An opened, migrated Store on `db_url`; closed after the test."""
    s = await Store.open(db_url)
    try:
        yield s
    finally:
        await s.close()
