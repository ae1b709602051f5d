"""Schema migrations (Alembic) for SQLite and PostgreSQL.

`upgrade(url)` brings a database to the newest revision; it backs
`python -m bot db upgrade`, and `Store.open` runs the same steps on every start.
It is idempotent (a database already at the head is left alone after one
query) and safe when several workers start at once on PostgreSQL: the whole
upgrade runs in one transaction that first takes a transaction-level advisory
lock, so the second worker waits, then finds the schema current. A database
created before migrations existed (by `metadata.create_all`, same schema as
the initial revision) is stamped at that revision instead of re-created.

The revisions live in `bot/storage/alembic/versions/` and ship with the
package. To write a new one, change `tables.py`, then against an up-to-date
database run::

    DATABASE_URL=sqlite+aiosqlite:///readout.db \\
        alembic -c bot/storage/alembic.ini revision --autogenerate -m "what changed"

and check the generated file by hand (SQLite changes go through batch mode).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from bot.storage import tables

SCRIPT_LOCATION = Path(__file__).resolve().parent / "alembic"
INITIAL_REVISION = "0001"


def advisory_key(name: str) -> int:
    """A stable signed 64-bit PostgreSQL advisory-lock key for `name` (namespaced to Readout)."""
    digest = hashlib.blake2b(f"readout:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


MIGRATION_LOCK_KEY = advisory_key("migrations")


def alembic_config(database_url: str | None = None) -> Config:
    """An Alembic config pointing at the packaged revisions (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    if database_url is not None:
        cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


@functools.cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migration revisions found"
    return head


def context_options(connection: Connection) -> dict[str, Any]:
    """How every migration context is configured (env.py and the schema test use it)."""
    return {
        "connection": connection,
        "target_metadata": tables.metadata,
        "render_as_batch": connection.dialect.name == "sqlite",
        "compare_type": True,
    }


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(database_url: str) -> None:
    """Bring the database at `database_url` to the newest schema revision."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        await upgrade_engine(engine)
    finally:
        await engine.dispose()


async def upgrade_engine(engine: AsyncEngine) -> None:
    """`upgrade` over an engine the caller owns (the Store's)."""
    async with engine.connect() as conn:
        await conn.run_sync(_upgrade_sync)
        await conn.commit()


def _upgrade_sync(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        # Released at commit: concurrent starters queue here, one migrates, the rest find it done.
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    current = current_revision(conn)
    if current == head_revision():
        return
    cfg = alembic_config()
    cfg.attributes["connection"] = conn  # env.py runs on it, inside this transaction
    if current is None and inspect(conn).has_table("events_seen"):
        command.stamp(cfg, INITIAL_REVISION)  # made by create_all before migrations existed
    command.upgrade(cfg, "head")
