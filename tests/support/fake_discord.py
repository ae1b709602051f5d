"""A fake Discord REST API on 127.0.0.1 for discord.py's real HTTP client.

It runs aiohttp in its own thread and event loop, so async tests (any loop)
and subprocesses (point DISCORD_API_BASE at `fake.api_base`) can both use it.
It answers what Readout needs: login (`GET /users/@me`,
`GET /oauth2/applications/@me`), command sync (`PUT/GET …/commands`), channel
messages (sent, and edited with `PATCH /channels/{id}/messages/{id}`), `GET /channels/{id}`, interaction callbacks and webhook follow-ups,
and records every request. It also speaks just enough of the gateway
(`GET /gateway/bot` → `ws://…/gateway`: HELLO, IDENTIFY → READY, heartbeat
ACKs) for a client to connect, and `dispatch()` pushes events such as
INTERACTION_CREATE to connected clients. Failures are scripted per path: 429 (with the `Via`
header discord.py wants, `retry_after` JSON and `X-RateLimit-*`/`Retry-After`
headers), 403, 404 and 5xx. Responses carry `Content-Type: application/json`
exactly, as discord.py checks for that string.

Fixture: `fake_discord` (a fresh state per test, `Route.BASE` pointed at it).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

BOT_ID = 900_000_000_000_000_001
APP_ID = 900_000_000_000_000_002
OWNER_ID = 900_000_000_000_000_003
API_PREFIX = "/api/v10"
TIMESTAMP = "2025-01-01T00:00:00.000000+00:00"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any


@dataclass
class _Failure:
    method: str | None
    pattern: re.Pattern[str]
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    times: int


@dataclass
class FakeDiscordState:
    requests: list[Recorded] = field(default_factory=list)
    messages: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    interaction_responses: list[dict[str, Any]] = field(default_factory=list)
    followups: list[dict[str, Any]] = field(default_factory=list)
    commands: dict[int | None, list[dict[str, Any]]] = field(default_factory=dict)
    channels: dict[int, dict[str, Any]] = field(default_factory=dict)
    failures: list[_Failure] = field(default_factory=list)
    gateway_ops: list[dict[str, Any]] = field(
        default_factory=list
    )  # what clients sent on the gateway


class FakeDiscord:
    """The server; test code reads what was recorded and scripts failures."""

    def __init__(self) -> None:
        self.state = FakeDiscordState()
        self._lock = threading.Lock()
        self._ids = itertools.count(1_100_000_000_000_000_000)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.bot_token: str | None = None  # when set, other tokens get 401
        self._sockets: list[web.WebSocketResponse] = []
        self._seq = itertools.count(1)

    # ---- lifecycle ----------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        """What `discord.http.Route.BASE` / DISCORD_API_BASE should be."""
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def start(self) -> None:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._serve())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-discord", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake Discord server did not start")

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._close_sockets(), self._loop).result(10)
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop.close()
        self._loop = None

    def reset(self) -> None:
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._close_sockets(), self._loop).result(10)
        with self._lock:
            self.state = FakeDiscordState()
            self.bot_token = None

    # ---- what tests use -----------------------------------------------------

    def add_channel(
        self, channel_id: int, *, guild_id: int, name: str = "general", type: int = 0
    ) -> None:
        with self._lock:
            self.state.channels[channel_id] = {
                "id": str(channel_id),
                "type": type,
                "guild_id": str(guild_id),
                "name": name,
                "position": 0,
                "permission_overwrites": [],
                "nsfw": False,
                "parent_id": None,
                "topic": None,
                "last_message_id": None,
                "rate_limit_per_user": 0,
            }

    def fail(
        self,
        path: str,
        status: int,
        *,
        method: str | None = None,
        times: int = 1,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next `times` requests whose path matches the regex `path` with `status`."""
        default = {
            403: {"message": "Missing Access", "code": 50001},
            404: {"message": "Unknown Channel", "code": 10003},
        }.get(status, {"message": f"fake error {status}", "code": 0})
        with self._lock:
            self.state.failures.append(
                _Failure(method, re.compile(path), status, body or default, headers or {}, times)
            )

    def rate_limit(
        self, path: str, retry_after: float, *, times: int = 1, is_global: bool = False
    ) -> None:
        """Answer 429 like Discord does: `Via`, `Retry-After`, `X-RateLimit-*` and a JSON body."""
        self.fail(
            path,
            429,
            times=times,
            body={
                "message": "You are being rate limited.",
                "retry_after": retry_after,
                "global": is_global,
            },
            headers={
                "Via": "1.1 google",
                "Retry-After": str(max(1, round(retry_after))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                "X-RateLimit-Bucket": "fake-bucket",
                "X-RateLimit-Scope": "global" if is_global else "user",
            },
        )

    def messages(self, channel_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.state.messages.get(channel_id, []))

    def requests(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        with self._lock:
            found = list(self.state.requests)
        return [
            r
            for r in found
            if (method is None or r.method == method) and (path is None or re.search(path, r.path))
        ]

    def replies(self, interaction_id: int) -> list[dict[str, Any]]:
        """Everything answered to one interaction: its callback and any follow-ups, in order."""
        with self._lock:
            out = [
                r for r in self.state.interaction_responses if r["interaction_id"] == interaction_id
            ]
            token = out[0]["token"] if out else None
            out += [f for f in self.state.followups if token is not None and f["token"] == token]
        return out

    @property
    def gateway_clients(self) -> int:
        """How many clients are connected to the gateway and identified."""
        return sum(1 for ws in self._sockets if not ws.closed)

    async def wait_for_gateway(self, clients: int = 1, *, timeout: float = 10.0) -> None:
        """Wait (from any loop) until `clients` clients have identified on the gateway."""
        for _ in range(int(timeout / 0.01)):
            if self.gateway_clients >= clients:
                return
            await asyncio.sleep(0.01)
        raise TimeoutError(f"no client identified on the fake gateway within {timeout}s")

    def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Push a gateway event (e.g. INTERACTION_CREATE) to every connected client."""
        assert self._loop is not None
        message = {"op": 0, "t": event, "s": next(self._seq), "d": data}
        asyncio.run_coroutine_threadsafe(self._broadcast(message), self._loop).result(10)

    # ---- the gateway --------------------------------------------------------

    async def _broadcast(self, message: dict[str, Any]) -> None:
        for ws in list(self._sockets):
            if not ws.closed:
                await ws.send_str(json.dumps(message))

    async def _close_sockets(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        self._sockets.clear()

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(
            json.dumps({"op": 10, "d": {"heartbeat_interval": 41_250}, "s": None, "t": None})
        )
        async for msg in ws:
            if msg.type != web.WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            with self._lock:
                self.state.gateway_ops.append(frame)
            op = frame.get("op")
            if op == 1:  # heartbeat
                await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
            elif op == 2:  # identify
                token = (frame.get("d") or {}).get("token")
                if self.bot_token is not None and token != self.bot_token:
                    await ws.close(code=4004, message=b"Authentication failed.")
                    break
                self._sockets.append(ws)
                ready = {
                    "v": 10,
                    "user": _user(BOT_ID, "readout", bot=True),
                    "guilds": [],
                    "session_id": "fake-session",
                    "resume_gateway_url": self.gateway_url,
                    "application": {"id": str(APP_ID), "flags": 0},
                    "private_channels": [],
                }
                await ws.send_str(
                    json.dumps({"op": 0, "t": "READY", "s": next(self._seq), "d": ready})
                )
            elif op == 6:  # resume
                self._sockets.append(ws)
                await ws.send_str(
                    json.dumps({"op": 0, "t": "RESUMED", "s": next(self._seq), "d": {}})
                )
        if ws in self._sockets:
            self._sockets.remove(ws)
        return ws

    # ---- the handler --------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            payload = await request.json() if request.can_read_body else None
        except (json.JSONDecodeError, ValueError):
            payload = None
        path = request.path
        if path.startswith(API_PREFIX):
            path = path[len(API_PREFIX) :]
        rec = Recorded(request.method, path, dict(request.query), dict(request.headers), payload)
        with self._lock:
            self.state.requests.append(rec)
            failure = self._take_failure(request.method, path)
        if failure is not None:
            return _json(failure.body, status=failure.status, headers=failure.headers)
        if self.bot_token is not None and path.startswith(
            ("/users", "/oauth2", "/channels", "/applications")
        ):
            if request.headers.get("Authorization") != f"Bot {self.bot_token}":
                return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        return self._route(request.method, path, payload, dict(request.query))

    def _take_failure(self, method: str, path: str) -> _Failure | None:
        for f in self.state.failures:
            if f.times > 0 and (f.method is None or f.method == method) and f.pattern.search(path):
                f.times -= 1
                return f
        return None

    def _route(self, method: str, path: str, payload: Any, query: dict[str, str]) -> web.Response:
        if method == "GET" and path == "/users/@me":
            return _json(_user(BOT_ID, "readout", bot=True))
        if method == "GET" and path == "/oauth2/applications/@me":
            return _json(_application())
        if method == "GET" and path in ("/gateway", "/gateway/bot"):
            limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
            return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})
        m = re.fullmatch(r"/applications/(\d+)(?:/guilds/(\d+))?/commands", path)
        if m:
            guild = int(m.group(2)) if m.group(2) else None
            if method == "PUT":
                commands = [self._command(c, guild) for c in payload or []]
                with self._lock:
                    self.state.commands[guild] = commands
                return _json(commands)
            with self._lock:
                return _json(self.state.commands.get(guild, []))
        m = re.fullmatch(r"/channels/(\d+)/messages", path)
        if m and method == "POST":
            channel_id = int(m.group(1))
            message = self._message(channel_id, payload or {})
            with self._lock:
                self.state.messages.setdefault(channel_id, []).append(
                    {**message, "request": payload}
                )
            return _json(message)
        m = re.fullmatch(r"/channels/(\d+)/messages/(\d+)", path)
        if m and method == "PATCH":
            return self._edit_message(int(m.group(1)), m.group(2), payload or {})
        m = re.fullmatch(r"/channels/(\d+)", path)
        if m and method == "GET":
            with self._lock:
                channel = self.state.channels.get(int(m.group(1)))
            if channel is None:
                return _json({"message": "Unknown Channel", "code": 10003}, status=404)
            return _json(channel)
        m = re.fullmatch(r"/interactions/(\d+)/([^/]+)/callback", path)
        if m and method == "POST":
            interaction_id, token = int(m.group(1)), m.group(2)
            body = payload or {}
            data = body.get("data") or {}
            flags = int(data.get("flags") or 0)
            message_id = next(self._ids)
            with self._lock:
                self.state.interaction_responses.append(
                    {
                        "interaction_id": interaction_id,
                        "token": token,
                        "type": body.get("type"),
                        "data": data,
                        "ephemeral": bool(flags & 64),
                        "content": data.get("content"),
                        "embeds": data.get("embeds") or [],
                    }
                )
            answer: dict[str, Any] = {
                "interaction": {
                    "id": str(interaction_id),
                    "type": 2,
                    "response_message_id": str(message_id),
                    "response_message_loading": body.get("type") == 5,
                    "response_message_ephemeral": bool(flags & 64),
                }
            }
            if body.get("type") == 4:
                answer["resource"] = {
                    "type": 4,
                    "message": self._message(0, data, message_id=message_id),
                }
            return _json(answer)
        m = re.fullmatch(r"/webhooks/(\d+)/([^/]+)(/messages/@original)?", path)
        if m and method in ("POST", "PATCH"):
            body = payload or {}
            flags = int(body.get("flags") or 0)
            with self._lock:
                self.state.followups.append(
                    {
                        "token": m.group(2),
                        "kind": "edit" if m.group(3) else "followup",
                        "data": body,
                        "ephemeral": bool(flags & 64),
                        "content": body.get("content"),
                        "embeds": body.get("embeds") or [],
                    }
                )
            return _json(self._message(0, body))
        return _json({"message": f"fake Discord has no {method} {path}", "code": 0}, status=404)

    def _edit_message(self, channel_id: int, message_id: str, body: dict[str, Any]) -> web.Response:
        """PATCH a message in place; a deleted one answers 404 Unknown Message (10008), as Discord does."""
        with self._lock:
            for stored in self.state.messages.get(channel_id, []):
                if stored["id"] == message_id:
                    for key in ("content", "embeds", "flags"):
                        if key in body:
                            stored[key] = body[key]
                    stored["edited_timestamp"] = TIMESTAMP
                    stored["edits"] = stored.get("edits", 0) + 1
                    stored["request"] = body
                    answer = {k: v for k, v in stored.items() if k not in ("request", "edits")}
                    return _json(answer)
        return _json({"message": "Unknown Message", "code": 10008}, status=404)

    def delete_message(self, channel_id: int, message_id: str) -> None:
        """A user deleted the message: it is gone from the channel, and edits get 404."""
        with self._lock:
            kept = [m for m in self.state.messages.get(channel_id, []) if m["id"] != message_id]
            self.state.messages[channel_id] = kept

    def _command(self, data: dict[str, Any], guild: int | None) -> dict[str, Any]:
        out = {
            "id": str(next(self._ids)),
            "application_id": str(APP_ID),
            "version": "1",
            "type": data.get("type", 1),
            "name": data["name"],
            "description": data.get("description", ""),
            "options": data.get("options", []),
            "default_member_permissions": data.get("default_member_permissions"),
            "dm_permission": data.get("dm_permission", True),
            "nsfw": data.get("nsfw", False),
        }
        if guild is not None:
            out["guild_id"] = str(guild)
        return out

    def _message(
        self, channel_id: int, body: dict[str, Any], *, message_id: int | None = None
    ) -> dict[str, Any]:
        return {
            "id": str(message_id or next(self._ids)),
            "channel_id": str(channel_id),
            "type": 0,
            "content": body.get("content") or "",
            "author": _user(BOT_ID, "readout", bot=True),
            "attachments": [],
            "embeds": body.get("embeds") or [],
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": False,
            "timestamp": TIMESTAMP,
            "edited_timestamp": None,
            "flags": int(body.get("flags") or 0),
            "components": [],
        }


def _user(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": name,
        "global_name": name,
        "discriminator": "0",
        "avatar": None,
        "bot": bot,
        "flags": 0,
        "public_flags": 0,
    }


def _application() -> dict[str, Any]:
    return {
        "id": str(APP_ID),
        "name": "Readout",
        "description": "",
        "icon": None,
        "bot_public": False,
        "bot_require_code_grant": False,
        "owner": _user(OWNER_ID, "owner"),
        "verify_key": "0" * 64,
        "flags": 0,
        "rpc_origins": [],
        "team": None,
        "summary": "",
    }


def _json(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


@pytest.fixture(scope="session")
def _fake_discord_server() -> Iterator[FakeDiscord]:
    server = FakeDiscord()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_discord(_fake_discord_server: FakeDiscord, monkeypatch: pytest.MonkeyPatch) -> FakeDiscord:
    """A fake Discord REST API with a fresh state; discord.py's `Route.BASE` points at it."""
    from discord.http import Route

    _fake_discord_server.reset()
    monkeypatch.setattr(Route, "BASE", _fake_discord_server.api_base)
    return _fake_discord_server
