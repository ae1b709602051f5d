"""Everything else a Telegram user can send: buttons, unknown commands, membership changes.

`register` wires the commands (`bot.commands` via `bot.adapters.telegram_commands`), these
handlers and the one error handler, which logs with the traceback and answers
with a short apology, so nothing a user sends can crash the bot.
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import CallbackQuery, Chat, ChatMember, Message, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.adapters.telegram_chat import (
    ADAPTER,
    BUTTON_MUTE,
    Context,
    address_of,
    disable_chat,
    ensure_destination,
    may_change,
    migrate_chat,
    reply,
    services_of,
)
from bot.adapters.telegram_commands import handlers, keyboard
from bot.adapters.telegram_render import esc, explain_lines
from bot.commands import PreferenceError, Refusal
from bot.commands.limit import REFUSAL, Verdict
from bot.commands.parse import parse_selector
from bot.commands.routing import choose_buttons

log = logging.getLogger(__name__)


def _is_command_for_us(message: Message, context: Context) -> bool:
    if not message.text or not message.text.startswith("/"):
        return False
    _, _, target = message.text.split()[0].partition("@")
    return not target or target.lower() == (context.bot.username or "").lower()


async def rate_limit(update: Update, context: Context) -> None:
    """Per-user command limit (commands and buttons): over it, one polite line, then silence."""
    user = update.effective_user
    message = update.effective_message
    counted = update.callback_query is not None or (
        update.message is not None and message is not None and _is_command_for_us(message, context)
    )
    if user is None or not counted:
        return
    verdict = services_of(context).command_limit.check(ADAPTER, user.id)
    if verdict is Verdict.ALLOW:
        return
    if verdict is Verdict.REFUSE:
        log.info("telegram: user %s is over the command limit; refused", user.id)
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(REFUSAL)
            elif message is not None:
                await message.reply_text(REFUSAL)
        except TelegramError:
            log.warning("telegram: could not send the rate-limit refusal", exc_info=True)
    raise ApplicationHandlerStop


async def unknown(update: Update, context: Context) -> None:
    """A command we do not have: one line pointing at /help (in groups only when addressed to us)."""
    message = update.effective_message
    if message is None or not message.text:
        return
    word = message.text.split()[0]
    name, _, target = word[1:].partition("@")
    if message.chat.type != Chat.PRIVATE and target.lower() != (context.bot.username or "").lower():
        return  # a command for another bot, or a typo in a busy group: stay quiet
    await message.reply_text(
        f"Unknown command /{esc(name[:32])}. See /help.", parse_mode=ParseMode.HTML
    )


async def on_button(update: Update, context: Context) -> None:
    """Buttons: mute 24h, more like this, why, and the subscribe keyboard."""
    query = update.callback_query
    if query is None:
        return
    try:
        await _button(query, update, context)
    except (Refusal, PreferenceError) as exc:
        await query.answer(str(exc)[:200], show_alert=True)


async def _button(query: CallbackQuery, update: Update, context: Context) -> None:
    message = query.message
    if not isinstance(message, Message):
        await query.answer("This message is too old for buttons; use the commands instead.")
        return
    services = services_of(context)
    ruleset = services.rules.current
    kind, _, rest = (query.data or "").partition(":")
    address = address_of(message)
    now = services.clock.now()

    async def check() -> None:
        if not await may_change(context, message.chat, query.from_user, None):
            raise Refusal("Sorry, only this group's admins can change what Readout sends here.")

    if kind == "why":
        alert = await services.store.find_alert(rest)
        if alert is None:
            await query.answer("That alert is no longer in the database.")
            return
        await query.answer()
        await reply(message, explain_lines(alert))
    elif kind == "choose":
        await query.answer()
        await reply(message, "Tap what this chat should get:", markup=keyboard(choose_buttons(ruleset)))
    elif kind in ("mute", "more"):
        if ruleset.get(rest) is None:
            await query.answer("That rule is not loaded any more.")
            return
        await check()
        await ensure_destination(services, message)
        if kind == "mute":
            await services.store.add_mute(
                ADAPTER, address, rule_id=rest, until=now + BUTTON_MUTE, at=now
            )
            await query.answer(f"Muted {rest} for 24h. /unmute ends it.")
        else:
            await services.store.subscribe(ADAPTER, address, "rule", rest, at=now)
            await query.answer(f"Subscribed to {rest}.")
    elif kind == "sub":
        selector_name, _, value = rest.partition(":")
        selector, value = parse_selector(value, ruleset)
        if selector != selector_name:
            await query.answer("That button is out of date.")
            return
        await check()
        await ensure_destination(services, message)
        new = await services.store.subscribe(ADAPTER, address, selector, value, at=now)
        await query.answer(
            f"{'Subscribed to' if new else 'Already subscribed to'} {selector} {value}."
        )
    else:
        await query.answer("That button is out of date.")


async def on_membership(update: Update, context: Context) -> None:
    """The bot was blocked, removed or banned: stop sending there (logged, unsubscribed)."""
    change = update.my_chat_member
    if change is None:
        return
    status_ = change.new_chat_member.status
    if status_ not in (ChatMember.LEFT, ChatMember.BANNED):
        return
    services = services_of(context)
    reason = (
        "bot blocked by the user"
        if change.chat.type == Chat.PRIVATE
        else f"bot {status_} from the chat"
    )
    n = await disable_chat(services.store, change.chat.id, reason=reason, at=services.clock.now())
    log.warning("telegram: chat %s: %s; %d destination(s) stopped", change.chat.id, reason, n)


async def on_migrate(update: Update, context: Context) -> None:
    """A group became a supergroup: its subscriptions and settings move to the new id."""
    message = update.effective_message
    if message is None or not message.migrate_to_chat_id:
        return
    services = services_of(context)
    await migrate_chat(
        services.store, message.chat.id, message.migrate_to_chat_id, at=services.clock.now()
    )


async def on_error(update: object, context: Context) -> None:
    """The one error handler: log with traceback, apologise in one line."""
    log.error("telegram: handler failed for update %s", _update_id(update), exc_info=context.error)
    if isinstance(update, Update):
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(
                    "Something went wrong on Readout's side; it has been logged."
                )
            elif update.effective_message is not None:
                await update.effective_message.reply_text(
                    "Something went wrong on Readout's side; it has been logged."
                )
        except TelegramError:
            log.warning("telegram: could not tell the user a command failed", exc_info=True)


def _update_id(update: object) -> Any:
    return update.update_id if isinstance(update, Update) else None


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """The rate limit (group -1, before all), every handler, the catch-all, the error handler."""
    messages = filters.UpdateType.MESSAGE | filters.UpdateType.CHANNEL_POST
    app.add_handler(TypeHandler(Update, rate_limit), group=-1)
    for name, handle in handlers():
        app.add_handler(CommandHandler(name, handle, filters=messages))
    app.add_handler(CallbackQueryHandler(on_button))
    app.add_handler(ChatMemberHandler(on_membership, ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, on_migrate))
    app.add_handler(MessageHandler(filters.COMMAND & messages, unknown))
    app.add_error_handler(on_error)
