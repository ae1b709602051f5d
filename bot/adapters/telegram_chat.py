"""What every Telegram handler shares: addresses, the admin check, replies, keyboards, chat lifecycle.

A chat (or a forum topic: address `<chat id>/<thread id>`) is a destination of
adapter "telegram". Handlers work on the address of the chat the update came
from — never on an id a user typed — so nothing typed in one chat can reach
another chat's settings. In groups only chat administrators may change
subscriptions, mutes, quiet hours and filters (checked with getChatMember).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from telegram import (
    Chat,
    ChatMember,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    Update,
    User,
)
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.adapters.telegram_render import split_lines
from bot.commands.reply import Refusal

if TYPE_CHECKING:
    from bot.services import Services
    from bot.storage.store import Store

log = logging.getLogger(__name__)

ADAPTER = "telegram"
BUTTON_MUTE = "24h"  # what "Mute this rule 24h" runs: /mute 24h <rule>
CALLBACK_LIMIT = 64  # bytes of callback_data Telegram allows
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)

Context = ContextTypes.DEFAULT_TYPE
Handler = Callable[[Update, Context], Coroutine[Any, Any, None]]


# ---- shared steps ------------------------------------------------------------------


def services_of(context: Context) -> Services:
    services: Services = context.application.bot_data["services"]
    return services


def address_of(message: Message) -> str:
    """`<chat id>`, or `<chat id>/<thread id>` inside a forum topic."""
    if message.is_topic_message and message.message_thread_id:
        return f"{message.chat.id}/{message.message_thread_id}"
    return str(message.chat.id)


def chat_of_address(address: str) -> tuple[int, int | None]:
    """`"-100123/7"` → (-100123, 7); raises ValueError on anything else."""
    chat, _, thread = address.partition("/")
    return int(chat), (int(thread) if thread else None)


async def may_change(
    context: Context, chat: Chat, user: User | None, sender_chat: Chat | None
) -> bool:
    """Private chats: yes. Groups: only the chat's administrators. Channels: a post in the
    channel (only its admins can post), or a button pressed by one of its admins — any
    reader can press the buttons under a channel's alerts, and must not mute it for all."""
    if chat.type == Chat.PRIVATE:
        return True
    if sender_chat is not None and sender_chat.id == chat.id:
        return True  # a post in the channel, or an anonymous administrator posting as the group
    if user is None:
        return chat.type == Chat.CHANNEL  # a channel post without a sender: an admin's
    try:
        member = await context.bot.get_chat_member(chat.id, user.id)
    except TelegramError as exc:
        log.warning("telegram: could not check admin status in chat %s: %s", chat.id, exc)
        raise Refusal(
            "I could not check whether you are an admin here; please try again."
        ) from None
    return member.status in (ChatMember.OWNER, ChatMember.ADMINISTRATOR)




async def reply(
    message: Message, lines: Sequence[str] | str, *, markup: InlineKeyboardMarkup | None = None
) -> None:
    """Answer in the chat (and topic) the message came from, split under the size limit."""
    chunks = split_lines([lines] if isinstance(lines, str) else lines)
    for i, chunk in enumerate(chunks):
        await message.reply_text(
            chunk,
            parse_mode=ParseMode.HTML,
            link_preview_options=NO_PREVIEW,
            reply_markup=markup if i == len(chunks) - 1 else None,
        )




# ---- keyboards ---------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def alert_buttons(rule_id: str, alert_id: str) -> InlineKeyboardMarkup:
    """The buttons under each alert. Cached: a fan-out sends one alert's buttons to thousands
    of chats (PTB's objects are immutable, so one is shared)."""
    row = [
        InlineKeyboardButton("Mute this rule 24h", callback_data=_fit(f"mute:{rule_id}")),
        InlineKeyboardButton("More like this", callback_data=_fit(f"more:{rule_id}")),
        InlineKeyboardButton("Why?", callback_data=f"why:{alert_id[:16]}"),
    ]
    return InlineKeyboardMarkup([[b for b in row if b.callback_data]])




def _fit(data: str) -> str | None:
    return data if len(data.encode("utf-8")) <= CALLBACK_LIMIT else None


# ---- chat lifecycle ----------------------------------------------------------------


async def disable_chat(store: Store, chat_id: int, *, reason: str, at: datetime) -> int:
    """Stop every destination of a chat (the chat itself and its topics)."""
    n = 0
    for dest in await store.destinations(ADAPTER):
        in_chat = dest.address == str(chat_id) or dest.address.startswith(f"{chat_id}/")
        if in_chat and dest.disabled_at is None:
            await store.disable_destination(ADAPTER, dest.address, reason=reason, at=at)
            n += 1
    return n


async def resume_chat(store: Store, chat_id: int, *, at: datetime) -> int:
    """Turn delivery back on for a chat Readout had stopped (its subscriptions were kept)."""
    n = 0
    for dest in await store.destinations(ADAPTER):
        in_chat = dest.address == str(chat_id) or dest.address.startswith(f"{chat_id}/")
        if in_chat and dest.disabled_at is not None and "migrated" not in (dest.disabled_reason or ""):
            await store.ensure_destination(ADAPTER, dest.address, at=at)
            n += 1
    if n:
        log.info("telegram: chat %s is back; %d destination(s) resumed", chat_id, n)
    return n


async def migrate_chat(store: Store, old: int, new: int, *, at: datetime) -> None:
    """Copy a chat's subscriptions and settings to its new id, then stop the old one."""
    if old == new:
        return
    dests = {d.address: d for d in await store.destinations(ADAPTER)}
    addresses = {*dests, *(s.address for s in await store.subscriptions(ADAPTER))}
    for address in sorted(addresses):
        chat, sep, thread = address.partition("/")
        if chat != str(old):
            continue
        target = f"{new}{sep}{thread}"
        dest = dests.get(address)
        await store.ensure_destination(
            ADAPTER, target, at=at, chat_kind="supergroup", title=dest.title if dest else None
        )
        if dest is not None:
            await store.update_destination(
                ADAPTER,
                target,
                include_words=dest.include_words,
                exclude_words=dest.exclude_words,
                quiet_start=dest.quiet_start,
                quiet_end=dest.quiet_end,
                quiet_tz=dest.quiet_tz,
            )
        for sub in await store.subscriptions(ADAPTER, address):
            await store.subscribe(ADAPTER, target, sub.selector, sub.value, at=at)
        await store.ensure_destination(ADAPTER, address, at=at)
        await store.unsubscribe(ADAPTER, address)  # moved, not copied: the old id never returns
        await store.disable_destination(ADAPTER, address, reason=f"group migrated to {new}", at=at)
    log.info("telegram: chat %s migrated to %s; subscriptions moved", old, new)
