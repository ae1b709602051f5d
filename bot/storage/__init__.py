"""Database access only: tables and the Store that reads and writes them."""

from bot.storage.store import Store

__all__ = ["Store"]
