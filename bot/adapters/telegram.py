"""Telegram adapter: python-telegram-bot 22 long polling inside Readout's own asyncio loop.

`start` builds the PTB Application (token, `TELEGRAM_BASE_URL`, AIORateLimiter
for Telegram's 30 msg/s overall — `TELEGRAM_MAX_RATE`, 29 by default — and
20 msg/min per group), registers the
commands (`bot.adapters.telegram_commands`) and the command menu, then polls
for updates in the background of the running loop. Sending paces each private
chat (the rate limiter does not) to one message per second on average, with a
burst of three — Telegram's guidance is about one a second per chat, and
alerts often come in twos and threes (one poll, several rules) — and maps
Telegram's answers onto the outbox's three outcomes:

- `Sent(message_id)`
- `RetryLater(after=retry_after)` on 429 (RetryAfter); `RetryLater` on
  timeouts, network errors and 5xx (the worker backs off)
- `Gone` on 403 (blocked, kicked) and "chat not found" / "thread not found"

The token never reaches the logs: httpx and PTB loggers get a redacting filter
while the adapter runs, and httpx request lines are kept at WARNING.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aiolimiter import AsyncLimiter
from telegram import InlineKeyboardMarkup, Message
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder

from bot.adapters import telegram_chat as tgchat
from bot.adapters import telegram_commands as commands
from bot.adapters import telegram_updates as updates
from bot.adapters.base import (
    EditResult,
    Gone,
    MessageView,
    RetryLater,
    SendResult,
    Sent,
    Uneditable,
)
from bot.adapters.telegram_render import plain, render_alert, render_digest, render_view
from bot.delivery.render import plain_text
from bot.logs import RedactSecrets
from bot.models import Alert
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

ADAPTER = tgchat.ADAPTER
# editMessageText refusals that mean "this message can no longer be edited": send a new one.
UNEDITABLE_BAD_REQUESTS = (
    "message to edit not found",
    "message can't be edited",
    "message_id_invalid",
)
GONE_BAD_REQUESTS = (
    "chat not found",
    "thread not found",
    "group chat was upgraded",
    "chat_write_forbidden",
)
_LOGGER_PREFIXES = ("telegram", "httpx", "httpcore")


class TelegramAdapter:
    """Long polling + sending for one bot token."""

    name = ADAPTER

    def __init__(
        self,
        settings: Settings,
        *,
        poll_timeout: float = 10.0,
        per_chat_interval: float = 1.0,
        per_chat_burst: int = 3,
        request_timeout: float = 10.0,
    ) -> None:
        """`poll_timeout`: getUpdates long-poll seconds; `per_chat_interval`: seconds per message
        to one private chat on average, after a burst of `per_chat_burst`; `request_timeout`:
        read timeout of other API calls, seconds."""
        if settings.telegram_bot_token is None:
            raise ValueError("TELEGRAM_BOT_TOKEN is not set")
        self._token = settings.telegram_bot_token
        self._base_url = settings.telegram_base_url.rstrip("/")
        self._max_rate = settings.telegram_max_rate
        self._poll_timeout = poll_timeout
        self._per_chat_interval = per_chat_interval
        self._per_chat_burst = max(1, per_chat_burst)
        self._request_timeout = request_timeout
        self._app: Application[Any, Any, Any, Any, Any, Any] | None = None
        self._services: Services | None = None
        self._redactor = RedactSecrets([self._token.get_secret_value()])
        self._filtered: list[logging.Logger] = []
        self._chat_limits: dict[int, AsyncLimiter] = {}
        self.listen_on_start = True

    # ---- lifecycle ------------------------------------------------------------

    @property
    def application(self) -> Application[Any, Any, Any, Any, Any, Any]:
        if self._app is None:
            raise RuntimeError("TelegramAdapter is not started")
        return self._app

    async def start(self, services: Services) -> None:
        self._install_redaction()
        self._services = services
        app = (
            ApplicationBuilder()
            .token(self._token.get_secret_value())
            .base_url(self._base_url)
            .base_file_url(file_base_url(self._base_url))
            .rate_limiter(
                AIORateLimiter(
                    overall_max_rate=self._max_rate,
                    overall_time_period=1,
                    group_max_rate=20,
                    group_time_period=60,
                    max_retries=0,
                )
            )
            .read_timeout(self._request_timeout)
            .get_updates_read_timeout(self._poll_timeout + 5.0)
            .job_queue(None)
            .build()
        )
        app.bot_data["services"] = services
        updates.register(app)
        # PTB's own messages quote the token: never let one reach a traceback.
        try:
            await app.initialize()  # getMe: a wrong token fails here
        except InvalidToken:
            await self._abandon(app)
            raise RuntimeError(
                "Telegram rejected TELEGRAM_BOT_TOKEN (getMe failed): check the token from @BotFather"
            ) from None
        except TelegramError as exc:
            await self._abandon(app)
            reason = f"{type(exc).__name__}: {exc.message}".replace(
                self._token.get_secret_value(), "***"
            )
            raise RuntimeError(
                f"Telegram API not reachable at {self._base_url}: {reason}"
            ) from None
        self._app = app
        try:
            await app.bot.set_my_commands(commands.bot_commands())
        except TelegramError as exc:
            log.warning("telegram: could not set the command menu: %s", exc)
        await app.start()
        if self.listen_on_start:
            await self.set_listening(True)

    async def set_listening(self, on: bool) -> None:
        """Long-poll for updates (commands) or not; sending works either way.

        With several workers only the leader listens: Telegram allows one
        getUpdates consumer per token.
        """
        app = self.application
        assert app.updater is not None
        if on and not app.updater.running:
            await app.updater.start_polling(
                timeout=timedelta(seconds=self._poll_timeout),
                allowed_updates=["message", "channel_post", "callback_query", "my_chat_member"],
            )
            log.info("telegram: polling as @%s", app.bot.username)
        elif not on and app.updater.running:
            await app.updater.stop()
            log.info("telegram: stopped polling (another worker leads)")

    async def stop(self) -> None:
        app, self._app = self._app, None
        try:
            if app is not None:
                if app.updater is not None and app.updater.running:
                    await app.updater.stop()
                if app.running:
                    await app.stop()
                await app.shutdown()
        finally:
            self._remove_redaction()

    async def _abandon(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """After a failed initialize(): close its HTTP clients and the log filters."""
        for request in getattr(app.bot, "_request", ()):
            with contextlib.suppress(Exception):
                await request.shutdown()
        self._remove_redaction()

    # ---- sending --------------------------------------------------------------

    async def send_alert(self, address: str, alert: Alert) -> SendResult:
        markup = tgchat.alert_buttons(alert.rule_id, alert.id)
        return await self._send(
            address, render_alert(alert), markup=markup, fallback=plain_text(alert)
        )

    async def send_view(self, address: str, view: MessageView) -> SendResult:
        markup = tgchat.alert_buttons(view.lead.rule_id, view.lead.id)
        return await self._send(address, [render_view(view)], markup=markup, fallback=plain_text(view.lead))

    async def edit_view(self, address: str, message_id: str, view: MessageView) -> EditResult:
        """editMessageText in place. "Not modified" means the message already shows this view
        (nothing is lost); "not found" / "can't be edited" (deleted, too old) are `Uneditable`."""
        try:
            chat_id, _ = tgchat.chat_of_address(address)
        except ValueError:
            return Gone(reason=f"not a Telegram address: {address[:40]!r}")
        await self._pace(chat_id)
        try:
            await self.application.bot.edit_message_text(
                render_view(view),
                chat_id=chat_id,
                message_id=int(message_id),
                parse_mode=ParseMode.HTML,
                reply_markup=tgchat.alert_buttons(view.lead.rule_id, view.lead.id),
                link_preview_options=tgchat.NO_PREVIEW,
            )
        except BadRequest as exc:
            text = exc.message.lower()
            if "message is not modified" in text:
                return Sent(message_id=message_id)
            if any(m in text for m in UNEDITABLE_BAD_REQUESTS):
                return Uneditable(reason=f"telegram: {exc.message}")
            if any(m in text for m in GONE_BAD_REQUESTS):
                return Gone(reason=f"telegram: {exc.message}")
            return RetryLater(reason=f"telegram bad request: {exc.message}")
        except RetryAfter as exc:
            after = retry_after_seconds(exc)
            return RetryLater(reason=f"telegram flood limit: retry after {after:.0f}s", after=after)
        except Forbidden as exc:
            return Gone(reason=f"telegram: {exc.message}")
        except TelegramError as exc:
            return RetryLater(reason=f"telegram {type(exc).__name__}: {exc.message}")
        return Sent(message_id=message_id)

    async def send_digest(self, address: str, alerts: Sequence[Alert]) -> SendResult:
        if not alerts:
            return Sent()
        fallback = "\n\n".join(plain_text(a) for a in alerts)
        return await self._send(address, render_digest(alerts), markup=None, fallback=fallback)

    async def _send(
        self, address: str, chunks: list[str], *, markup: InlineKeyboardMarkup | None, fallback: str
    ) -> SendResult:
        try:
            chat_id, thread_id = tgchat.chat_of_address(address)
        except ValueError:
            return Gone(reason=f"not a Telegram address: {address[:40]!r}")
        first_id: str | None = None
        try:
            for i, chunk in enumerate(chunks):
                last = i == len(chunks) - 1
                msg = await self._send_one(
                    chat_id,
                    thread_id,
                    chunk,
                    markup if last else None,
                    fallback if i == 0 else None,
                )
                first_id = first_id or str(msg.message_id)
        except ChatMigrated as exc:
            return await self._migrated(address, exc.new_chat_id, chunks, markup, fallback)
        except RetryAfter as exc:
            after = retry_after_seconds(exc)
            return RetryLater(reason=f"telegram flood limit: retry after {after:.0f}s", after=after)
        except Forbidden as exc:
            return Gone(reason=f"telegram: {exc.message}")
        except BadRequest as exc:
            if any(m in exc.message.lower() for m in GONE_BAD_REQUESTS):
                return Gone(reason=f"telegram: {exc.message}")
            return RetryLater(reason=f"telegram bad request: {exc.message}")
        except (TimedOut, NetworkError) as exc:
            return RetryLater(reason=f"telegram {type(exc).__name__}: {exc.message}")
        except TelegramError as exc:
            return RetryLater(reason=f"telegram {type(exc).__name__}: {exc.message}")
        return Sent(message_id=first_id)

    async def _send_one(
        self,
        chat_id: int,
        thread_id: int | None,
        text: str,
        markup: InlineKeyboardMarkup | None,
        fallback: str | None,
    ) -> Message:
        await self._pace(chat_id)
        bot = self.application.bot
        try:
            sent: Message = await bot.send_message(
                chat_id,
                text,
                parse_mode=ParseMode.HTML,
                message_thread_id=thread_id,
                reply_markup=markup,
                link_preview_options=tgchat.NO_PREVIEW,
            )
        except BadRequest as exc:
            if "can't parse entities" not in exc.message.lower():
                raise
            # Our HTML was refused (a bug): the alert still goes out, as plain text.
            log.error("telegram: HTML refused (%s); sending plain text", exc.message)
            sent = await bot.send_message(
                chat_id,
                (fallback or plain(text))[:4000],
                message_thread_id=thread_id,
                reply_markup=markup,
            )
        return sent

    async def _pace(self, chat_id: int) -> None:
        """Wait for room to send to one private chat (a leaky bucket per chat, aiolimiter's)."""
        if chat_id < 0 or self._per_chat_interval <= 0:
            return  # groups and channels: the AIORateLimiter's per-group limit applies
        limiter = self._chat_limits.get(chat_id)
        if limiter is None:
            if len(self._chat_limits) >= 10_000:  # forget chats whose bucket has drained
                for key in [k for k, v in self._chat_limits.items() if v.has_capacity(v.max_rate)]:
                    del self._chat_limits[key]
            burst = self._per_chat_burst
            limiter = self._chat_limits[chat_id] = AsyncLimiter(burst, burst * self._per_chat_interval)
        await limiter.acquire()

    async def _migrated(
        self,
        address: str,
        new_chat_id: int,
        chunks: list[str],
        markup: InlineKeyboardMarkup | None,
        fallback: str,
    ) -> SendResult:
        """The group became a supergroup: move its settings, then send to the new id."""
        old_chat, thread = tgchat.chat_of_address(address)
        if self._services is not None:
            await tgchat.migrate_chat(
                self._services.store, old_chat, new_chat_id, at=self._services.clock.now()
            )
        new_address = f"{new_chat_id}/{thread}" if thread else str(new_chat_id)
        if new_address == address:
            return Gone(reason="telegram: chat migrated to itself")
        return await self._send(new_address, chunks, markup=markup, fallback=fallback)

    # ---- log hygiene ----------------------------------------------------------

    def _install_redaction(self) -> None:
        """Redact the token in every httpx/PTB logger; drop PTB's traceback for 429s we handle."""
        logging.getLogger("httpx").setLevel(max(logging.getLogger("httpx").level, logging.WARNING))
        names = [
            n for n in logging.Logger.manager.loggerDict if n.split(".")[0] in _LOGGER_PREFIXES
        ]
        for name in {*names, *_LOGGER_PREFIXES}:
            logger = logging.getLogger(name)
            if self._redactor not in logger.filters:
                logger.addFilter(self._redactor)
                self._filtered.append(logger)
        limiter = logging.getLogger("telegram.ext.AIORateLimiter")
        if _handled_429 not in limiter.filters:
            limiter.addFilter(_handled_429)

    def _remove_redaction(self) -> None:
        for logger in self._filtered:
            logger.removeFilter(self._redactor)
        self._filtered.clear()
        logging.getLogger("telegram.ext.AIORateLimiter").removeFilter(_handled_429)


def _handled_429(record: logging.LogRecord) -> bool:
    """AIORateLimiter logs every 429 as an error with a traceback; the outbox handles them."""
    return not str(record.msg).startswith("Rate limit hit after maximum of")


def file_base_url(base_url: str) -> str:
    """`https://api.telegram.org/bot` → `https://api.telegram.org/file/bot` (and likewise for a local server)."""
    base = base_url.rstrip("/")
    if base.endswith("/bot"):
        return base[: -len("/bot")] + "/file/bot"
    return base + "/file/bot"


def retry_after_seconds(exc: RetryAfter) -> float:
    value = getattr(exc, "_retry_after", None)  # a timedelta in PTB 22 (the public one warns)
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(
        exc.retry_after
        if not isinstance(exc.retry_after, timedelta)
        else exc.retry_after.total_seconds()
    )
