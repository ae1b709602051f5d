"""A fake Telegram Bot API server for tests: aiohttp on 127.0.0.1, a random port, its own thread.

It speaks enough of the Bot API for python-telegram-bot 22 to start, long-poll
and send: getMe, deleteWebhook, getWebhookInfo, getUpdates (long poll honouring
`offset` and `timeout`, capped at `max_poll` seconds), sendMessage,
set/get/deleteMyCommands, answerCallbackQuery, editMessageReplyMarkup,
editMessageText, getChatMember, getChatAdministrators, getChat, getMyStarBalance, close,
logOut.
Requests may be form-encoded (PTB: nested values as JSON strings), multipart
or JSON. Every call is recorded with its parameters.

sendMessage checks `parse_mode=HTML` text the way Telegram does (known tags
only, balanced, only &lt; &gt; &amp; &quot; and numeric entities, at most
4096 characters of visible text) and answers 400 "can't parse entities"
otherwise; the recorded message carries its visible `plain` text and `links`.

Paid broadcast (Bot API 7.11): a sendMessage with `allow_paid_broadcast` is not counted
against the normal limit (`set_rate_limit`) but against its own, 1,000/s by default, and
costs 0.1 Star from the bot's balance (`set_star_balance`, 0 at first, as for a new bot;
read by getMyStarBalance). With too little left Telegram's answer is not documented; the
fake answers 400 "Bad Request: BALANCE_TOO_LOW" (MTProto's error for it), or whatever
`set_out_of_stars_answer` says, and delivers nothing.

Running in its own thread with its own loop, it serves async tests (the bot
in the test's loop) and a bot started as a subprocess alike.

    async def test_x(fake_telegram):
        settings = Settings(telegram_bot_token=fake_telegram.token, telegram_base_url=fake_telegram.base_url)
        fake_telegram.push_message(42, "/start")
        await fake_telegram.wait_for(lambda: fake_telegram.sent_messages(42))
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, ClassVar, TypeVar

import pytest
from aiohttp import web

from tests.support.server_thread import ServerThread

T = TypeVar("T")

BOT_ID = 7_000_000_001
BOT_USERNAME = "readout_test_bot"
DEFAULT_TOKEN = "7000000001:AAFakeTokenForTestsOnly-abcdefghijkl"
TEXT_LIMIT = 4096

_STRING_PARAMS = {
    "text",
    "caption",
    "parse_mode",
    "callback_query_id",
    "url",
    "description",
    "short_description",
    "language_code",
    "inline_message_id",
    "message_effect_id",
    "business_connection_id",
    "secret_token",
}


@dataclass(frozen=True)
class Call:
    """One request the bot made: method, decoded parameters, token used, the HTTP status answered."""

    method: str
    params: dict[str, Any]
    token: str
    status: int
    started: float = 0.0  # time.monotonic() when the request arrived
    ended: float = 0.0  # … and when it was answered (a long poll spans the two)


@dataclass
class _Failure:
    status: int
    description: str
    retry_after: float | None
    migrate_to: int | None


@dataclass
class _Chat:
    id: int
    type: str
    title: str | None = None
    is_forum: bool = False
    admins: set[int] = field(default_factory=set)
    owner: int | None = None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.type == "private":
            d["first_name"] = f"User{self.id}"
        else:
            d["title"] = self.title or f"Group {self.id}"
        if self.is_forum:
            d["is_forum"] = True
        return d


def user_dict(user_id: int, *, is_bot: bool = False) -> dict[str, Any]:
    if user_id == BOT_ID:
        return {"id": BOT_ID, "is_bot": True, "first_name": "Readout", "username": BOT_USERNAME}
    return {
        "id": user_id,
        "is_bot": is_bot,
        "first_name": f"User{user_id}",
        "username": f"user{user_id}",
    }


class HtmlError(ValueError):
    pass


class _TelegramHtml(HTMLParser):
    """Telegram's HTML parse mode, strictly: what it accepts and the text it shows."""

    ALLOWED: ClassVar[set[str]] = {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "a",
        "code",
        "pre",
        "span",
        "tg-spoiler",
        "blockquote",
        "tg-emoji",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.parts: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.ALLOWED:
            raise HtmlError(f'Unsupported start tag "{tag}"')
        if tag == "a":
            href = dict(attrs).get("href")
            if not href:
                raise HtmlError("a tag without href")
            self.links.append(href)
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            raise HtmlError(f'Can\'t find end tag corresponding to start tag "{tag}"')
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in ("lt", "gt", "amp", "quot"):
            raise HtmlError(f'Unsupported HTML entity "&{name};"')
        self.parts.append(html.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self.parts.append(html.unescape(f"&#{name};"))


_BARE_AMP = re.compile(r"&(?!(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);)")
_BARE_LT = re.compile(r"<(?![a-zA-Z/])")


def parse_telegram_html(text: str) -> tuple[str, list[str]]:
    """(visible text, link targets) of an HTML-mode message; HtmlError where Telegram says 400."""
    m = _BARE_AMP.search(text) or _BARE_LT.search(text)
    if m:
        raise HtmlError(
            f"Unsupported character {m.group(0)!r} at byte offset {len(text[: m.start()].encode())}"
        )
    parser = _TelegramHtml()
    parser.feed(text)
    parser.close()
    if parser.stack:
        raise HtmlError(f'Can\'t find end tag corresponding to start tag "{parser.stack[-1]}"')
    return "".join(parser.parts), parser.links


class FakeTelegram(ServerThread):
    """The fake Bot API. Thread-safe to script from tests; see the module docstring."""

    thread_name = "fake Telegram"

    def __init__(self, *, token: str = DEFAULT_TOKEN, port: int = 0, max_poll: float = 1.0) -> None:
        super().__init__()
        self.token = token
        self.max_poll = max_poll  # seconds: getUpdates never waits longer, whatever the bot asks
        self._port = port
        self._lock = threading.Lock()
        self._in_flight: Counter[str] = Counter()  # per method: received, not answered yet
        self._calls: list[Call] = []
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._deleted: set[tuple[int, int]] = set()
        self._uneditable: set[tuple[int, int]] = set()
        self._chats: dict[int, _Chat] = {}
        self._failures: dict[str, deque[_Failure]] = {}
        self._delays: dict[str, float] = {}
        self._outages: dict[str, _Failure] = {}
        self._limits: dict[str, list[float]] = {}  # method → [rate per s, tokens, last refill]
        self._star_tenths = 0  # the bot's Stars balance, in tenths (one paid message each)
        self._broke_answer = (400, "Bad Request: BALANCE_TOO_LOW")
        self.paid_accepted = 0  # paid messages delivered (and charged)
        self._commands: list[dict[str, Any]] = []
        self._query_ids = itertools.count(1)
        self._wake: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self.root_url = ""
        self._closing = False

    # -- lifecycle --------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What to put in TELEGRAM_BASE_URL (PTB appends the token and the method)."""
        return f"{self.root_url}/bot"

    async def _startup(self) -> None:
        self._wake = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        self.root_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def _shutdown(self) -> None:
        self._closing = True
        if self._wake is not None:
            self._wake.set()  # long polls answer now
        if self._runner is not None:
            await self._runner.cleanup()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    # -- scripting: chats and users ---------------------------------------------------

    def chat(
        self,
        chat_id: int,
        *,
        chat_type: str | None = None,
        is_forum: bool = False,
        title: str | None = None,
    ) -> _Chat:
        """The chat (created on first use: positive ids are private, negative supergroups)."""
        with self._lock:
            return self._chat_locked(chat_id, chat_type, is_forum, title)

    def _chat_locked(
        self, chat_id: int, chat_type: str | None, is_forum: bool = False, title: str | None = None
    ) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = _Chat(chat_id, chat_type or ("private" if chat_id > 0 else "supergroup"), title)
            self._chats[chat_id] = chat
        elif chat_type:
            chat.type = chat_type
        chat.is_forum = chat.is_forum or is_forum
        if title:
            chat.title = title
        return chat

    def set_admins(self, chat_id: int, user_ids: list[int], *, owner: int | None = None) -> None:
        """Who getChatMember calls an administrator (and the owner) in a group."""
        with self._lock:
            chat = self._chat_locked(chat_id, None)
            chat.admins = set(user_ids)
            chat.owner = owner

    # -- scripting: updates -----------------------------------------------------------

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue a raw update (an update_id is added); returns the update_id."""
        with self._lock:
            update_id = next(self._update_ids)
            self._updates.append({"update_id": update_id, **update})
        self._notify()
        return update_id

    def push_message(
        self,
        chat_id: int,
        text: str,
        *,
        chat_type: str | None = None,
        from_id: int | None = None,
        thread_id: int | None = None,
        sender_chat_id: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> int:
        """A user sends `text` (commands get their bot_command entity); returns the update_id."""
        with self._lock:
            chat = self._chat_locked(chat_id, chat_type, is_forum=thread_id is not None)
            message_id = next(self._counter(chat_id))
        user = from_id if from_id is not None else (chat_id if chat.type == "private" else 1001)
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": chat.as_dict(),
            "from": user_dict(user),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        if sender_chat_id is not None:
            message["sender_chat"] = self.chat(sender_chat_id).as_dict()
        elif chat.type == "channel" and from_id is None:  # as Telegram: the channel posts, no user
            del message["from"]
            message["sender_chat"] = chat.as_dict()
        message.update(extra or {})
        key = "channel_post" if chat.type == "channel" else "message"
        return self.push_update({key: message})

    def push_callback(
        self,
        chat_id: int,
        data: str,
        *,
        from_id: int | None = None,
        message_id: int | None = None,
        chat_type: str | None = None,
        thread_id: int | None = None,
    ) -> str:
        """A user taps an inline button with `data` under message `message_id` (default: the bot's last
        message in the chat); returns the callback query id."""
        with self._lock:
            chat = self._chat_locked(chat_id, chat_type)
            if message_id is None:
                mine = [m for (c, _), m in self._messages.items() if c == chat_id]
                message = dict(mine[-1]) if mine else None
            else:
                message = self._messages.get((chat_id, message_id))
            query_id = str(next(self._query_ids))
        if message is None:
            message = {
                "message_id": message_id or 1,
                "date": int(time.time()),
                "chat": chat.as_dict(),
                "from": user_dict(BOT_ID),
                "text": "…",
            }
            if thread_id is not None:
                message.update(message_thread_id=thread_id, is_topic_message=True)
        message = {k: v for k, v in message.items() if k not in ("plain", "links", "paid")}
        user = from_id if from_id is not None else (chat_id if chat.type == "private" else 1001)
        self.push_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user_dict(user),
                    "chat_instance": f"ci{chat_id}",
                    "data": data,
                    "message": message,
                }
            }
        )
        return query_id

    def push_member_update(self, chat_id: int, status: str, *, from_id: int | None = None) -> int:
        """The bot's own membership changed (status "kicked" = blocked in a private chat)."""
        chat = self.chat(chat_id)
        user = from_id if from_id is not None else (chat_id if chat.type == "private" else 1001)
        member = {"user": user_dict(BOT_ID), "status": status}
        if status == "kicked":
            member["until_date"] = 0
        return self.push_update(
            {
                "my_chat_member": {
                    "chat": chat.as_dict(),
                    "from": user_dict(user),
                    "date": int(time.time()),
                    "old_chat_member": {"user": user_dict(BOT_ID), "status": "member"},
                    "new_chat_member": member,
                }
            }
        )

    def fail_next(
        self,
        method: str,
        status: int,
        *,
        retry_after: float | None = None,
        description: str | None = None,
        count: int = 1,
        migrate_to: int | None = None,
    ) -> None:
        """Answer the next `count` calls of `method` with an error (429 carries retry_after)."""
        default = {
            400: "Bad Request: chat not found",
            403: "Forbidden: bot was blocked by the user",
            429: f"Too Many Requests: retry after {retry_after or 1}",
        }.get(status, "Internal Server Error")
        failure = _Failure(status, description or default, retry_after, migrate_to)
        with self._lock:
            self._failures.setdefault(method, deque()).extend(failure for _ in range(count))

    def set_delay(self, method: str, seconds: float) -> None:
        """Answer every call of `method` only after `seconds` (0 = at once): a slow API.

        The message is stored when the delay has passed, just before the answer is
        written, as Telegram accepts it before the client reads the reply."""
        with self._lock:
            if seconds > 0:
                self._delays[method] = seconds
            else:
                self._delays.pop(method, None)

    def set_outage(
        self, method: str, status: int | None, *, description: str = "Internal Server Error"
    ) -> None:
        """Answer every call of `method` with `status` until `set_outage(method, None)`."""
        with self._lock:
            if status is None:
                self._outages.pop(method, None)
            else:
                self._outages[method] = _Failure(status, description, None, None)

    def set_rate_limit(
        self, method: str = "sendMessage", per_second: float | None = 30.0, *, paid_per_second: float = 1000.0
    ) -> None:
        """Enforce Telegram's overall limit on `method` (None lifts it): a token bucket of
        `per_second` tokens refilled at `per_second`/s; a call finding it empty gets a 429
        with retry_after 1, as Telegram answers a bot that sends too fast. Calls with
        `allow_paid_broadcast` draw on a bucket of their own, `paid_per_second`."""
        with self._lock:
            if per_second is None:
                self._limits.pop(method, None)
                self._limits.pop(method + "+paid", None)
            else:
                now = time.monotonic()
                self._limits[method] = [per_second, per_second, now]
                self._limits[method + "+paid"] = [paid_per_second, paid_per_second, now]

    def set_star_balance(self, stars: float) -> None:
        """The bot's Stars balance (paid messages draw 0.1 each)."""
        with self._lock:
            self._star_tenths = round(stars * 10)

    @property
    def star_balance(self) -> float:
        with self._lock:
            return self._star_tenths / 10

    def set_out_of_stars_answer(self, status: int, description: str) -> None:
        """How a paid message is refused when the balance cannot pay for it."""
        with self._lock:
            self._broke_answer = (status, description)

    def _over_limit_locked(self, method: str) -> bool:
        limit = self._limits.get(method)
        if limit is None:
            return False
        rate, tokens, last = limit
        now = time.monotonic()
        tokens = min(rate, tokens + (now - last) * rate)
        limit[2] = now
        if tokens < 1:
            limit[1] = tokens
            return True
        limit[1] = tokens - 1
        return False

    def reset(self) -> None:
        with self._lock:
            self._limits.clear()
            self._delays.clear()
            self._outages.clear()
            self._calls.clear()
            self._updates.clear()
            self._messages.clear()
            self._deleted.clear()
            self._uneditable.clear()
            self._chats.clear()
            self._failures.clear()
            self._commands.clear()

    # -- reading what happened --------------------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def sent_messages(
        self, chat_id: int | None = None, *, thread_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Messages the bot sent (accepted ones), oldest first: the Message plus `plain` and `links`."""
        with self._lock:
            return [
                dict(m)
                for (c, i), m in self._messages.items()
                if m.get("from", {}).get("id") == BOT_ID
                and (c, i) not in self._deleted
                and (chat_id is None or c == chat_id)
                and (thread_id is None or m.get("message_thread_id") == thread_id)
            ]

    def texts(self, chat_id: int | None = None) -> list[str]:
        """The visible text of each message the bot sent to `chat_id` (or anywhere)."""
        return [m["plain"] for m in self.sent_messages(chat_id)]

    def callback_answers(self) -> list[dict[str, Any]]:
        return [c.params for c in self.calls("answerCallbackQuery")]

    @property
    def commands(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._commands)

    def pending_updates(self) -> int:
        with self._lock:
            return len(self._updates)

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        """Poll `predicate` until it returns something truthy (returned) or fail after `timeout` s."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"condition not met within {timeout}s; calls: {[c.method for c in self.calls()][-20:]}"
                )
            await asyncio.sleep(0.01)

    def wait_for_sync(self, predicate: Callable[[], T], timeout: float = 10.0) -> T:
        """`wait_for` for sync tests (a bot in a subprocess)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s")
            time.sleep(0.02)

    async def wait_for_reply(
        self, chat_id: int, *, after: int = 0, contains: str | None = None, timeout: float = 5.0
    ) -> dict[str, Any]:
        """The first message the bot sent to `chat_id` beyond the first `after` ones (containing `contains`)."""

        def found() -> dict[str, Any] | None:
            for m in self.sent_messages(chat_id)[after:]:
                if contains is None or contains in m["plain"]:
                    return m
            return None

        return await self.wait_for(found, timeout)

    # -- the server -------------------------------------------------------------------

    def _counter(self, chat_id: int) -> itertools.count[int]:
        return self._message_ids.setdefault(chat_id, itertools.count(1))

    def _notify(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            loop.call_soon_threadsafe(wake.set)

    async def _not_found(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
        )

    def in_flight(self, method: str | None = "sendMessage") -> int:
        """Calls of `method` received and not yet answered (also those the client gave up on);
        `None`: every method's, long polls too."""
        with self._lock:
            return self._in_flight[method] if method else sum(self._in_flight.values())

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        with self._lock:
            self._in_flight[method] += 1
        try:
            return await self._answer(request)
        finally:
            with self._lock:
                self._in_flight[method] -= 1

    async def _answer(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        token = request.match_info["token"]
        started = time.monotonic()
        params = await _read_params(request)
        with self._lock:
            delay = self._delays.get(method, 0.0)
        if delay:
            await asyncio.sleep(delay)
        with self._lock:
            queue = self._failures.get(method)
            failure = queue.popleft() if queue else self._outages.get(method)
            bucket = method + "+paid" if _truthy(params.get("allow_paid_broadcast")) else method
            if failure is None and self._over_limit_locked(bucket):
                failure = _Failure(429, "Too Many Requests: retry after 1", 1, None)
            if token != self.token:
                failure = _Failure(401, "Unauthorized", None, None)
        if failure is not None:
            self._record(method, params, token, failure.status, started)
            return _error(
                failure.status, failure.description, failure.retry_after, failure.migrate_to
            )
        try:
            result = await self._dispatch(method, params)
        except _ApiError as exc:
            self._record(method, params, token, exc.status, started)
            return _error(exc.status, exc.description)
        self._record(method, params, token, 200, started)
        return web.json_response({"ok": True, "result": result})

    def _record(
        self, method: str, params: dict[str, Any], token: str, status: int, started: float = 0.0
    ) -> None:
        with self._lock:
            self._calls.append(Call(method, params, token, status, started, time.monotonic()))

    async def _dispatch(self, method: str, p: dict[str, Any]) -> Any:
        if method == "getUpdates":
            return await self._get_updates(p)
        if method == "getMe":
            return {
                **user_dict(BOT_ID),
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        if method in ("deleteWebhook", "setWebhook", "close", "logOut", "deleteMyCommands"):
            return True
        if method == "getWebhookInfo":
            return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
        if method == "setMyCommands":
            with self._lock:
                self._commands = list(p.get("commands") or [])
            return True
        if method == "getMyCommands":
            return self.commands
        if method == "sendMessage":
            return self._send_message(p)
        if method == "getMyStarBalance":
            with self._lock:
                tenths = self._star_tenths
            return {"amount": tenths // 10, "nanostar_amount": (tenths % 10) * 100_000_000}
        if method == "answerCallbackQuery":
            return True
        if method in ("editMessageReplyMarkup", "editMessageText"):
            return self._edit(method, p)
        if method == "getChatMember":
            return self._member(_int(p.get("chat_id")), _int(p.get("user_id")))
        if method == "getChatAdministrators":
            chat = self.chat(_int(p.get("chat_id")))
            ids = sorted(chat.admins | ({chat.owner} if chat.owner else set()))
            return [self._member(chat.id, uid) for uid in ids]
        if method == "getChat":
            chat = self.chat(_int(p.get("chat_id")))
            return {
                **chat.as_dict(),
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": False,
                    "limited_gifts": False,
                    "unique_gifts": False,
                    "premium_subscription": False,
                },
            }
        raise _ApiError(404, f"Not Found: method {method} is not in the fake")

    async def _get_updates(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        assert self._wake is not None
        offset = _int(p.get("offset") or 0)
        limit = _int(p.get("limit") or 100)
        timeout = min(float(p.get("timeout") or 0), self.max_poll)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._wake.clear()
            with self._lock:
                if offset:
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
                ready = [u for u in self._updates if u["update_id"] >= offset][:limit]
            remaining = deadline - loop.time()
            if ready or remaining <= 0 or self._closing:
                return ready
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                pass

    def _send_message(self, p: dict[str, Any]) -> dict[str, Any]:
        chat_id = _int(p.get("chat_id"))
        text = str(p.get("text") or "")
        if not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        plain, links = text, []
        if str(p.get("parse_mode") or "").upper() == "HTML":
            try:
                plain, links = parse_telegram_html(text)
            except HtmlError as exc:
                raise _ApiError(400, f"Bad Request: can't parse entities: {exc}") from None
        if len(plain.encode("utf-16-le")) // 2 > TEXT_LIMIT:
            raise _ApiError(400, "Bad Request: message is too long")
        with self._lock:
            if _truthy(p.get("allow_paid_broadcast")):
                if self._star_tenths < 1:
                    raise _ApiError(*self._broke_answer)
                self._star_tenths -= 1
                self.paid_accepted += 1
            chat = self._chat_locked(chat_id, None)
            message: dict[str, Any] = {
                "message_id": next(self._counter(chat_id)),
                "date": int(time.time()),
                "chat": chat.as_dict(),
                "from": user_dict(BOT_ID),
                "text": text,
            }
            thread = p.get("message_thread_id")
            if thread is not None:
                message["message_thread_id"] = _int(thread)
                message["is_topic_message"] = True
            if p.get("reply_markup"):
                message["reply_markup"] = p["reply_markup"]
            self._messages[(chat_id, message["message_id"])] = {
                **message,
                "plain": plain,
                "links": links,
                "paid": _truthy(p.get("allow_paid_broadcast")),
            }
        return message

    def _edit(self, method: str, p: dict[str, Any]) -> dict[str, Any] | bool:
        """editMessageText / editMessageReplyMarkup with Telegram's own refusals: a message the
        user deleted (or that never was) is "not found", one marked too old "can't be edited",
        and the same text and markup again is "not modified"."""
        key = (_int(p.get("chat_id")), _int(p.get("message_id")))
        text = str(p.get("text") or "")
        plain, links = text, []
        if method == "editMessageText" and str(p.get("parse_mode") or "").upper() == "HTML":
            try:
                plain, links = parse_telegram_html(text)
            except HtmlError as exc:
                raise _ApiError(400, f"Bad Request: can't parse entities: {exc}") from None
        with self._lock:
            message = self._messages.get(key)
            if message is None or key in self._deleted:
                raise _ApiError(400, "Bad Request: message to edit not found")
            if key in self._uneditable:
                raise _ApiError(400, "Bad Request: message can't be edited")
            markup = p.get("reply_markup", message.get("reply_markup"))
            if (method == "editMessageText" and text == message["text"]
                    and _markup(markup) == _markup(message.get("reply_markup"))):
                raise _ApiError(400, NOT_MODIFIED)
            if "reply_markup" in p:
                message["reply_markup"] = p["reply_markup"]
            if method == "editMessageText":
                if len(plain.encode("utf-16-le")) // 2 > TEXT_LIMIT:
                    raise _ApiError(400, "Bad Request: message is too long")
                message["text"], message["plain"], message["links"] = text, plain, links
                message["edit_date"] = int(time.time())
                message["edits"] = message.get("edits", 0) + 1
            return {k: v for k, v in message.items() if k not in ("plain", "links", "edits", "paid")}

    def delete_message(self, chat_id: int, message_id: int) -> None:
        """The user deleted the message: it is no longer listed and edits find nothing."""
        with self._lock:
            self._deleted.add((chat_id, message_id))

    def make_uneditable(self, chat_id: int, message_id: int) -> None:
        """Telegram no longer lets the bot edit this message (e.g. too old)."""
        with self._lock:
            self._uneditable.add((chat_id, message_id))

    def _member(self, chat_id: int, user_id: int) -> dict[str, Any]:
        chat = self.chat(chat_id)
        user = user_dict(user_id)
        if chat.owner == user_id:
            return {"status": "creator", "user": user, "is_anonymous": False}
        if user_id in chat.admins:
            return {
                "status": "administrator",
                "user": user,
                "can_be_edited": False,
                "is_anonymous": False,
                "can_manage_chat": True,
                "can_delete_messages": True,
                "can_manage_video_chats": True,
                "can_restrict_members": True,
                "can_promote_members": False,
                "can_change_info": True,
                "can_invite_users": True,
                "can_post_stories": False,
                "can_edit_stories": False,
                "can_delete_stories": False,
            }
        return {"status": "member", "user": user}


class _ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _error(
    status: int, description: str, retry_after: float | None = None, migrate_to: int | None = None
) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    parameters: dict[str, Any] = {}
    if retry_after is not None:
        parameters["retry_after"] = retry_after
    if migrate_to is not None:
        parameters["migrate_to_chat_id"] = migrate_to
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)


def _markup(value: Any) -> Any:
    """Reply markup as sent (a JSON string in form posts) or stored, compared by content."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _truthy(value: Any) -> bool:
    """A boolean parameter as sent (JSON true, or "true" in a form)."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _ApiError(400, f"Bad Request: not an integer: {str(value)[:40]!r}") from None


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Query string, then a JSON, form-encoded or multipart body; nested values decoded from JSON."""
    params: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
            return params
        form = await request.post()
        for key, value in form.items():
            params[key] = value if isinstance(value, str) else getattr(value, "filename", "file")
    for key, value in list(params.items()):
        if key not in _STRING_PARAMS and isinstance(value, str):
            try:
                params[key] = json.loads(value)
            except ValueError:
                pass
    return params


# -- pytest plugin --------------------------------------------------------------------


@pytest.fixture
def fake_telegram(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTelegram]:
    """A fresh fake Bot API for this test (NO_PROXY set so PTB's httpx reaches 127.0.0.1)."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    with FakeTelegram() as server:
        yield server
