"""Start-up failures a user can fix, each said in one line with a hint.

`explain` maps an exception raised while a command starts (opening the database,
logging in to a chat API) to `NAME: what happened — what to do`; anything it does not
recognise is left to propagate as the bug it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from bot.settings import Settings

_DB_MISSING = re.compile(r'database "([^"]+)" does not exist')


class StartupError(Exception):
    """A configuration problem found at start; its message is the one line to print."""


def check_database(settings: Settings) -> None:
    """Before opening: a SQLite file whose folder is missing cannot be created. Said here, since
    aiosqlite's worker thread can outlive a failed connect and print a traceback at exit."""
    from bot.storage.faults import sqlite_path  # `file:…?mode=ro&uri=true` URLs too

    path = sqlite_path(settings.database_url)
    if path is None:
        return
    folder = Path(path).expanduser().resolve().parent
    if not folder.is_dir():
        raise StartupError(
            f"DATABASE_URL: cannot open the SQLite file of {_safe_url(settings.database_url)} — "
            f"its folder {folder} does not exist; create it or choose another path"
        )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what it wraps (SQLAlchemy's `orig`), its causes and contexts."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        todo.extend([current.__cause__, current.__context__, orig if isinstance(orig, BaseException) else None])


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparsable URL)"


def explain(exc: BaseException, settings: Settings) -> str | None:
    """One line for a failure the user can fix, or None."""
    chain = list(_chain(exc))
    for item in chain:
        if isinstance(item, StartupError):
            return str(item)
    text = " | ".join(str(e) for e in chain)
    url = _safe_url(settings.database_url)
    if (m := _DB_MISSING.search(text)) is not None:
        name = m.group(1)
        return (
            f'DATABASE_URL: database "{name}" does not exist on the server ({url}) — '
            f"create it (createdb {name}, or CREATE DATABASE {name};) or point DATABASE_URL at one that exists"
        )
    if "unable to open database file" in text:
        return (
            f"DATABASE_URL: cannot open the SQLite file of {url} — does its folder exist, "
            "and may this user write there?"
        )
    if any(isinstance(e, NoSuchModuleError) for e in chain):
        return f"DATABASE_URL: no driver for {url} — use sqlite+aiosqlite://, postgresql+asyncpg:// or postgresql+psycopg://"
    for item in chain:
        if isinstance(item, RuntimeError) and str(item).startswith(("Telegram", "Discord")):
            return f"{item} (see README: Telegram / Discord)"
    for item in chain:
        if isinstance(item, DBAPIError | OSError) and "connect" in type(item).__name__.lower() + str(item).lower():
            reason = " ".join(str(item).split())[:200]
            return f"DATABASE_URL: cannot reach the database ({url}): {reason} — is the server running?"
    return None
