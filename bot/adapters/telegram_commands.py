"""Telegram's side of the chat commands: one PTB handler per command of `bot.commands`.

A handler turns the update into a `ChatDestination` (the chat or forum topic it
came from; group admins checked with getChatMember only when a command is about
to change something) and the message's arguments, runs the platform-neutral
command, and sends the reply as HTML. The commands, their parsing and their
wording live in `bot.commands`.
"""

from __future__ import annotations

from collections.abc import Sequence

from telegram import BotCommand, Chat, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update

from bot.adapters.telegram_chat import (
    ADAPTER,
    Context,
    Handler,
    address_of,
    may_change,
    reply,
    services_of,
)
from bot.adapters.telegram_render import reply_lines
from bot.commands import COMMANDS, ChatDestination, Reply, run
from bot.commands.reply import Button


def destination_of(update: Update, context: Context, message: Message) -> ChatDestination:
    chat = message.chat

    async def allowed() -> bool:
        return await may_change(context, chat, update.effective_user, message.sender_chat)

    return ChatDestination(
        adapter=ADAPTER,
        address=address_of(message),
        chat_kind=chat.type,
        title=chat.title if chat.type != Chat.PRIVATE else None,
        may_change=allowed,
    )


def keyboard(buttons: Sequence[Sequence[Button]]) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.action) for b in row] for row in buttons]
    )


async def send_reply(message: Message, answer: Reply) -> None:
    await reply(message, reply_lines(answer), markup=keyboard(answer.buttons))


def handler(name: str) -> Handler:
    async def handle(update: Update, context: Context) -> None:
        message = update.effective_message
        if message is None:
            return
        destination = destination_of(update, context, message)
        answer = await run(name, services_of(context), destination, context.args or [])
        await send_reply(message, answer)

    handle.__name__ = f"command_{name}"
    return handle


def handlers() -> list[tuple[str, Handler]]:
    """(command name, PTB handler) for every command."""
    return [(name, handler(name)) for name in COMMANDS]


def bot_commands() -> list[BotCommand]:
    """The command menu (setMyCommands)."""
    return [BotCommand(c.name, c.help[:256]) for c in COMMANDS.values()]
