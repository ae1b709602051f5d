"""Schema upgrade entry point for `python -m bot db upgrade`."""

from __future__ import annotations

from bot.storage.store import Store


async def upgrade(database_url: str) -> None:
    """Bring the database at `database_url` to the current schema."""
    store = await Store.open(database_url, create=True)
    await store.close()
