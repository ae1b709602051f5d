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
  timeouts, network errors, 5xx and unrecognised 403s (the worker backs off)
- `Rejected` on a 400 about the message itself, after one reshaped try
  (plain text, shortened)
- `Gone` on Telegram's "chat is gone" descriptions only (blocked, kicked,
  deactivated, chat not found …; `bot.delivery.errors`)

A timeout is an unknown outcome — Telegram may have delivered. The one resend
that follows waits `patient_timeout` for the answer, and after that the
adapter asks the worker to wait a whole patient window between tries, so a
slow API that delivers late gets a message at most twice.

Bot API calls go through aiohttp (`bot.adapters.telegram_http`, a PTB `BaseRequest`: httpx's
pool held sending near 100 msg/s); the getUpdates long poll keeps PTB's httpx client.

Opt-in paid broadcast (`bot.adapters.telegram_paid`): new messages of alerts at or above
`TELEGRAM_PAID_BROADCAST` go with `allow_paid_broadcast` (AIORateLimiter paces those at
1,000/s apart from the 30/s limiter; we pace them at `TELEGRAM_PAID_MAX_RATE`, 950/s, first,
so that requests bunched up in flight stay under Telegram's cap), each reserved against the daily Stars cap first; when
the cap or the balance runs out they go the normal way, and a paid message refused for lack
of Stars is sent again at once the normal way.

The token never reaches the logs: `bot.logs.setup_logging` redacts every
secret from every record once, for the whole program (this adapter attaches
nothing to library loggers).
"""

from __future__ import annotations

import asyncio
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
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder
from telegram.request import HTTPXRequest

from bot.adapters import telegram_chat as tgchat
from bot.adapters import telegram_commands as commands
from bot.adapters import telegram_updates as updates
from bot.adapters.base import (
    EditResult,
    Gone,
    MessageView,
    Rejected,
    RetryLater,
    SendResult,
    Sent,
    Uneditable,
)
from bot.adapters.telegram_concurrency import PerChatUpdates
from bot.adapters.telegram_http import AiohttpRequest
from bot.adapters.telegram_paid import PaidBroadcast, is_out_of_stars
from bot.adapters.telegram_render import plain, render_alert, render_digest, render_view, utf16_len
from bot.delivery.errors import Fault, FaultKind, classify_telegram
from bot.delivery.render import plain_text
from bot.models import Alert, Severity
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

ADAPTER = tgchat.ADAPTER
RESHAPED_LIMIT = 4000  # UTF-16 units of a reshaped (plain) message: under Telegram's 4096
# Seconds: first and longest wait between connection attempts when the Bot API cannot be
# reached at start (the same policy as Discord's login: README, "Commands and settings").
CONNECT_RETRY = (5.0, 300.0)


class _UnreachableError(Exception):
    """getMe failed for a reason other than the token: retried in the background."""
# editMessageText refusals that mean "this message can no longer be edited": send a new one.
UNEDITABLE_BAD_REQUESTS = (
    "message to edit not found",
    "message can't be edited",
    "message_id_invalid",
)


class TelegramAdapter:
    """Long polling + sending for one bot token."""

    name = ADAPTER
    takes_commands = True

    def __init__(
        self,
        settings: Settings,
        *,
        poll_timeout: float = 10.0,
        per_chat_interval: float = 1.0,
        per_chat_burst: int = 3,
        request_timeout: float = 10.0,
        patient_timeout: float = 60.0,
        command_backlog: int = 5,
    ) -> None:
        """`poll_timeout`: getUpdates long-poll seconds; `per_chat_interval`: seconds per message
        to one private chat on average, after a burst of `per_chat_burst`; `request_timeout`:
        read timeout of other API calls, seconds; `patient_timeout`: read timeout of the one
        resend after a timeout, seconds (long enough for a slow API to answer);
        `command_backlog`: commands of one chat queued before more are shed."""
        if settings.telegram_bot_token is None:
            raise ValueError("TELEGRAM_BOT_TOKEN is not set")
        self._token = settings.telegram_bot_token
        self._base_url = settings.telegram_base_url.rstrip("/")
        self._max_rate = settings.telegram_max_rate
        self._paid_pace = AsyncLimiter(settings.telegram_paid_max_rate, 1)
        self._poll_timeout = poll_timeout
        self._per_chat_interval = per_chat_interval
        self._per_chat_burst = max(1, per_chat_burst)
        self._request_timeout = request_timeout
        self._patient_timeout = max(patient_timeout, request_timeout)
        self._uncertain: dict[tuple[str, str], int] = {}  # (address, alert) → timeouts so far
        self._app: Application[Any, Any, Any, Any, Any, Any] | None = None
        self._services: Services | None = None
        self._chat_limits: dict[int, AsyncLimiter] = {}
        self._retry: asyncio.Task[None] | None = None
        self._updates = PerChatUpdates(backlog=command_backlog)
        self._settings = settings
        self.paid: PaidBroadcast | None = None  # built at start, when paid broadcast is on
        self.listen_on_start = True
        self.retry_delays = CONNECT_RETRY

    # ---- lifecycle ------------------------------------------------------------

    @property
    def application(self) -> Application[Any, Any, Any, Any, Any, Any]:
        if self._app is None:
            raise RuntimeError("TelegramAdapter is not started")
        return self._app

    async def start(self, services: Services) -> None:
        """Connect to the Bot API. A rejected token raises (a configuration error); an
        unreachable API is logged once and retried in the background, and sends answer
        RetryLater until it answers — as the Discord adapter does."""
        self._services = services
        if self._settings.paid_broadcast_from() is not None and self.paid is None:
            self.paid = PaidBroadcast(
                services.store,
                services.clock,
                from_severity=self._settings.paid_broadcast_from(),
                daily_stars=self._settings.telegram_paid_broadcast_daily_stars,
            )
            log.info(
                "telegram: paid broadcast on for %s alerts and above, at most %d Stars a UTC day",
                self._settings.telegram_paid_broadcast, self._settings.telegram_paid_broadcast_daily_stars,
            )
        try:
            await self._connect()
        except _UnreachableError as exc:
            log.warning("telegram: %s; retrying in the background", exc)
            self._retry = asyncio.get_running_loop().create_task(self._reconnect(), name="telegram-connect")

    async def _reconnect(self) -> None:
        delay, longest = self.retry_delays
        while self._app is None:
            await asyncio.sleep(delay)
            try:
                await self._connect()
            except _UnreachableError as exc:
                delay = min(delay * 2, longest)
                log.warning("telegram: %s; next try in %.0fs", exc, delay)
            except RuntimeError as exc:  # the token was rejected after all
                log.error("%s; the Telegram adapter stops", exc)
                return
        log.info("telegram: connected")

    async def _connect(self) -> None:
        services = self._services
        assert services is not None
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
            .request(AiohttpRequest(read_timeout=self._request_timeout))
            # getUpdates keeps PTB's own httpx client: one long poll at a time.
            .get_updates_request(HTTPXRequest(connection_pool_size=1, read_timeout=self._poll_timeout + 5.0))
            .job_queue(None)
            .concurrent_updates(self._updates)
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
            raise _UnreachableError(f"Telegram API not reachable at {self._base_url}: {reason}") from None
        self._app = app
        if self.paid is not None:
            self.paid.bot = app.bot
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
        if self._app is None:  # not connected yet: listen (or not) once connected
            self.listen_on_start = on
            return
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
        if self._retry is not None:
            self._retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry
            self._retry = None
        if self.paid is not None:
            await self.paid.close()
        app, self._app = self._app, None
        if app is not None:
            self._updates.close()  # nothing a chat waits for (pacing, a slow API) delays the stop
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
            await app.shutdown()

    async def _abandon(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """After a failed initialize(): close its HTTP clients."""
        for request in getattr(app.bot, "_request", ()):
            with contextlib.suppress(Exception):
                await request.shutdown()

    # ---- sending --------------------------------------------------------------

    async def send_alert(self, address: str, alert: Alert) -> SendResult:
        markup = tgchat.alert_buttons(alert.rule_id, alert.id)
        return await self._send(
            address,
            render_alert(alert),
            markup=markup,
            fallback=plain_text(alert),
            key=(address, alert.id),
            severity=alert.severity,
        )

    async def send_view(self, address: str, view: MessageView) -> SendResult:
        markup = tgchat.alert_buttons(view.lead.rule_id, view.lead.id)
        return await self._send(
            address,
            [render_view(view)],
            markup=markup,
            fallback=plain_text(view.lead),
            key=(address, "view:" + view.lead.id),
            severity=view.lead.severity,
        )

    async def edit_view(self, address: str, message_id: str, view: MessageView) -> EditResult:
        """editMessageText in place. "Not modified" means the message already shows this view
        (nothing is lost); "not found" / "can't be edited" (deleted, too old) are `Uneditable`."""
        try:
            chat_id, _ = tgchat.chat_of_address(address)
        except ValueError:
            return Gone(reason=f"not a Telegram address: {address[:40]!r}")
        if self._app is None:
            return RetryLater(reason="telegram: not connected yet")
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
            return _edit_outcome(telegram_fault(exc))
        except TelegramError as exc:  # one classification for sends and edits (bot.delivery.errors)
            return _edit_outcome(telegram_fault(exc))
        return Sent(message_id=message_id)

    async def send_digest(self, address: str, alerts: Sequence[Alert]) -> SendResult:
        if not alerts:
            return Sent()
        fallback = "\n\n".join(plain_text(a) for a in alerts)
        return await self._send(
            address,
            render_digest(alerts),
            markup=None,
            fallback=fallback,
            key=(address, "digest:" + alerts[0].id),
        )

    async def _send(
        self,
        address: str,
        chunks: list[str],
        *,
        markup: InlineKeyboardMarkup | None,
        fallback: str,
        key: tuple[str, str],
        severity: Severity | None = None,
    ) -> SendResult:
        """`severity`: the alert's, for paid broadcast (None: never paid, e.g. a digest)."""
        try:
            chat_id, thread_id = tgchat.chat_of_address(address)
        except ValueError:
            return Gone(reason=f"not a Telegram address: {address[:40]!r}")
        if self._app is None:
            return RetryLater(reason="telegram: not connected yet")
        # After a timeout the message may have arrived: the one resend waits patiently.
        timeout = self._patient_timeout if key in self._uncertain else None
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
                    timeout=timeout,
                    severity=severity,
                )
                first_id = first_id or str(msg.message_id)
        except ChatMigrated as exc:
            self._uncertain.pop(key, None)
            return await self._migrated(address, exc.new_chat_id, chunks, markup, fallback, key, severity)
        except TimedOut as exc:
            return self._timed_out(key, exc)
        except TelegramError as exc:
            result = outcome_of(telegram_fault(exc))
            if not isinstance(result, RetryLater):
                self._uncertain.pop(key, None)
            return result
        self._uncertain.pop(key, None)
        return Sent(message_id=first_id)

    def _timed_out(self, key: tuple[str, str], exc: TimedOut) -> RetryLater:
        """A timeout is an unknown outcome (Telegram may have delivered): resend once, patiently,
        then wait a whole patient window between tries — never a resend per short timeout."""
        tries = self._uncertain.pop(key, 0) + 1
        self._uncertain[key] = tries
        while len(self._uncertain) > 10_000:  # forget the oldest
            del self._uncertain[next(iter(self._uncertain))]
        reason = f"telegram TimedOut: {exc.message} (the message may have arrived)"
        if tries == 1:
            return RetryLater(reason=reason)
        return RetryLater(reason=reason, min_wait=self._patient_timeout)

    async def _send_one(
        self,
        chat_id: int,
        thread_id: int | None,
        text: str,
        markup: InlineKeyboardMarkup | None,
        fallback: str | None,
        *,
        timeout: float | None = None,
        severity: Severity | None = None,
    ) -> Message:
        await self._pace(chat_id)
        paid = severity is not None and self.paid is not None and await self.paid.take(severity)
        if not paid:
            return await self._post(chat_id, thread_id, text, markup, fallback, timeout=timeout, paid=False)
        assert self.paid is not None
        try:
            await self._paid_pace.acquire()  # a leaky bucket: nothing is held while sending
            return await self._post(chat_id, thread_id, text, markup, fallback, timeout=timeout, paid=True)
        except TimedOut:
            raise  # an unknown outcome: Telegram may have delivered (and charged); it stays spent
        except TelegramError as exc:
            if is_out_of_stars(_status_of(exc), exc.message):
                # Not delivered, not charged: the same message goes at once the normal way.
                await self.paid.out_of_stars(exc.message)
                return await self._post(chat_id, thread_id, text, markup, fallback, timeout=timeout, paid=False)
            await self.paid.refund()
            raise

    async def _post(
        self,
        chat_id: int,
        thread_id: int | None,
        text: str,
        markup: InlineKeyboardMarkup | None,
        fallback: str | None,
        *,
        timeout: float | None,
        paid: bool,
    ) -> Message:
        """sendMessage (paid broadcast or not), reshaped once if Telegram refuses the message."""
        bot = self.application.bot
        apb = True if paid else None
        try:
            sent: Message = await bot.send_message(
                chat_id,
                text,
                parse_mode=ParseMode.HTML,
                message_thread_id=thread_id,
                reply_markup=markup,
                link_preview_options=tgchat.NO_PREVIEW,
                read_timeout=timeout,
                allow_paid_broadcast=apb,
            )
        except BadRequest as exc:
            if telegram_fault(exc).kind is not FaultKind.MESSAGE or (paid and is_out_of_stars(400, exc.message)):
                raise
            # This message as it is will never go (bad HTML, too long, a bad button): reshape
            # it once — plain text, shortened — and let a second refusal give it up.
            log.error("telegram: message refused (%s); sending it once more as plain text", exc.message)
            about_markup = any(w in exc.message.lower() for w in ("button", "markup", "keyboard"))
            sent = await bot.send_message(
                chat_id,
                fit_utf16(fallback or plain(text), RESHAPED_LIMIT),
                message_thread_id=thread_id,
                reply_markup=None if about_markup else markup,
                read_timeout=timeout,
                allow_paid_broadcast=apb,
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
        key: tuple[str, str],
        severity: Severity | None = None,
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
        return await self._send(new_address, chunks, markup=markup, fallback=fallback, key=key, severity=severity)


def file_base_url(base_url: str) -> str:
    """`https://api.telegram.org/bot` → `https://api.telegram.org/file/bot` (and likewise for a local server)."""
    base = base_url.rstrip("/")
    if base.endswith("/bot"):
        return base[: -len("/bot")] + "/file/bot"
    return base + "/file/bot"


def telegram_fault(exc: TelegramError) -> Fault:
    """PTB's exception → the shared classification (`bot.delivery.errors`)."""
    if isinstance(exc, RetryAfter):
        after = retry_after_seconds(exc)
        return Fault(FaultKind.RATE_LIMIT, f"telegram flood limit: retry after {after:.0f}s", after)
    if isinstance(exc, Forbidden):
        return classify_telegram(403, exc.message)
    if isinstance(exc, BadRequest):
        return classify_telegram(400, exc.message)
    return Fault(FaultKind.TRANSIENT, f"telegram {type(exc).__name__}: {exc.message}")


def _status_of(exc: TelegramError) -> int | None:
    """The HTTP status PTB's exception stands for, where its class says it (402 does not)."""
    if isinstance(exc, BadRequest):
        return 400
    if isinstance(exc, Forbidden):
        return 403
    return None


def outcome_of(fault: Fault) -> SendResult:
    """What the outbox is told for a fault."""
    if fault.kind is FaultKind.RATE_LIMIT:
        return RetryLater(reason=fault.reason, after=fault.retry_after)
    if fault.kind is FaultKind.CHAT:
        return Gone(reason=fault.reason)
    if fault.kind is FaultKind.MESSAGE:
        return Rejected(reason=fault.reason)
    return RetryLater(reason=fault.reason)


def _edit_outcome(fault: Fault) -> EditResult:
    """What the message editor is told for a fault on an edit: an edit Telegram will never
    take (a 400 about the message) is `Uneditable`, so the view goes out as a new message."""
    result = outcome_of(fault)
    return Uneditable(reason=fault.reason) if isinstance(result, Rejected) else result


def fit_utf16(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-16 code units (Telegram's count), with an ellipsis."""
    if utf16_len(text) <= limit:
        return text
    out: list[str] = []
    used = 1  # the ellipsis
    for ch in text:
        used += utf16_len(ch)
        if used > limit:
            break
        out.append(ch)
    return "".join(out).rstrip() + "…"


def retry_after_seconds(exc: RetryAfter) -> float:
    value = getattr(exc, "_retry_after", None)  # a timedelta in PTB 22 (the public one warns)
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(
        exc.retry_after
        if not isinstance(exc.retry_after, timedelta)
        else exc.retry_after.total_seconds()
    )
