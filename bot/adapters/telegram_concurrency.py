"""Telegram updates handled concurrently, in order per chat, with a busy group shed.

PTB hands each update to an update processor. This one runs updates of
different chats side by side (a private chat's /help never waits behind a busy
group, whose replies Telegram paces at 20 a minute) and those of one chat one
after another, in arrival order. A chat with `backlog` commands already
queued or running gets no more answered until it drains: the excess commands
are dropped, and the chat gets one "busy" note per busy spell. Membership
changes, migrations and buttons are never dropped.

`close()` cancels everything in progress and drops what is still queued, so
the application stops in bounded time (SIGTERM) whatever a chat is waiting for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import BaseUpdateProcessor

log = logging.getLogger(__name__)

BUSY_NOTE = "Busy: too many commands here at once, so I skipped some. Try again in a minute."


class PerChatUpdates(BaseUpdateProcessor):
    """Concurrent across chats, ordered within one, bounded per chat (see the module doc)."""

    def __init__(self, *, max_concurrent: int = 256, backlog: int = 5) -> None:
        """`max_concurrent`: updates handled at once overall; `backlog`: commands of one chat
        queued or running before further ones are shed."""
        super().__init__(max_concurrent)
        self.backlog = max(1, backlog)
        self._locks: dict[int, asyncio.Lock] = {}
        self._queued: dict[int, int] = {}  # chat → its updates queued or running
        self._noted: set[int] = set()  # chats told "busy" in this busy spell
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.shed = 0  # commands dropped so far

    async def initialize(self) -> None:
        self._closed = False

    async def shutdown(self) -> None:
        self.close()

    def close(self) -> None:
        """Cancel every update in progress and drop the rest (shutdown)."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = _chat_id(update)
        if self._closed:
            _discard(coroutine)
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if chat is None:
                await coroutine
                return
            if self._queued.get(chat, 0) >= self.backlog and _is_command(update):
                _discard(coroutine)
                self.shed += 1
                await self._note_busy(chat, update)
                return
            await self._in_order(chat, coroutine)
        except asyncio.CancelledError:
            _discard(coroutine)
            if not self._closed:
                raise
        finally:
            self._tasks.discard(task)

    async def _in_order(self, chat: int, coroutine: Awaitable[Any]) -> None:
        self._queued[chat] = self._queued.get(chat, 0) + 1
        lock = self._locks.setdefault(chat, asyncio.Lock())
        try:
            async with lock:
                await coroutine
        finally:
            left = self._queued[chat] - 1
            if left:
                self._queued[chat] = left
            else:  # drained: forget the chat, its next busy spell gets a note again
                del self._queued[chat]
                self._locks.pop(chat, None)
                self._noted.discard(chat)

    async def _note_busy(self, chat: int, update: object) -> None:
        if chat in self._noted:
            return
        self._noted.add(chat)
        log.warning("telegram: chat %s is flooding commands; skipping some (one busy note)", chat)
        message = update.effective_message if isinstance(update, Update) else None
        if message is None:
            return
        try:
            await message.reply_text(BUSY_NOTE)
        except TelegramError as exc:
            log.warning("telegram: could not send the busy note to %s: %s", chat, exc)


def _chat_id(update: object) -> int | None:
    if isinstance(update, Update) and update.effective_chat is not None:
        return update.effective_chat.id
    return None


def _is_command(update: object) -> bool:
    """Only plain command messages are shed; buttons and membership changes always run."""
    if not isinstance(update, Update):
        return False
    message = update.message or update.channel_post
    return message is not None and bool(message.text) and str(message.text).startswith("/")


def _discard(coroutine: Awaitable[Any]) -> None:
    """Close a coroutine that will never run (no "never awaited" warning)."""
    close = getattr(coroutine, "close", None)
    if close is not None:
        with contextlib.suppress(RuntimeError):
            close()
