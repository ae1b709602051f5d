"""A real WebSub hub on 127.0.0.1 for tests and bench/push.py (aiohttp, in its own thread).

It does the hub's side of the W3C Recommendation for real: `POST /hub` takes a
subscription request (`hub.mode`, `hub.topic`, `hub.callback`, `hub.secret`,
`hub.lease_seconds`) and answers 202; then it verifies intent with a GET to the
callback carrying `hub.challenge` and keeps the subscription only if the callback
echoes the challenge with a 2xx. `publish(topic, body)` POSTs the body to every
verified subscriber, signed `X-Hub-Signature: <method>=<HMAC(secret, body)>`, with
`Link` headers naming the hub and the topic.

Misbehaviour on request: `verify=False` (never verifies), `fail_status=500` (answers
subscription requests with an error), `lease_cap` (grants shorter leases).
The HMAC is computed here with `hmac` directly, not with the bot's code.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from tests.support.server_thread import ServerThread


@dataclass
class HubSubscription:
    topic: str
    callback: str
    secret: str | None
    lease_seconds: int


@dataclass
class HubLog:
    requests: list[dict[str, str]] = field(default_factory=list)  # subscription requests as posted
    verifications: list[tuple[str, str, int, bool]] = field(default_factory=list)  # mode, callback, status, echoed
    deliveries: list[tuple[str, int]] = field(default_factory=list)  # callback, status


class WebSubHub(ServerThread):
    thread_name = "websub hub"

    def __init__(self, *, lease_cap: int = 3600, method: str = "sha256") -> None:
        super().__init__()
        self.lease_cap = lease_cap
        self.method = method
        self.verify = True
        self.fail_status: int | None = None
        self.subscriptions: dict[tuple[str, str], HubSubscription] = {}  # (topic, callback) → subscription
        self.log = HubLog()
        self._lock = threading.Lock()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.base_url = ""

    @property
    def url(self) -> str:
        return self.base_url + "/hub"

    async def _startup(self) -> None:
        app = web.Application()
        app.router.add_post("/hub", self._subscription_request)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def _shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def reset(self) -> None:
        with self._lock:
            self.verify, self.fail_status, self.lease_cap, self.method = True, None, 3600, "sha256"
            self.subscriptions.clear()
            self.log = HubLog()

    # -- the hub's side ---------------------------------------------------------------

    async def _subscription_request(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        with self._lock:
            self.log.requests.append(form)
            fail, verify = self.fail_status, self.verify
        if fail is not None:
            return web.Response(status=fail, text="hub is having a bad day")
        mode, topic, callback = form.get("hub.mode"), form.get("hub.topic"), form.get("hub.callback")
        if mode not in ("subscribe", "unsubscribe") or not topic or not callback:
            return web.Response(status=400, text="hub.mode, hub.topic and hub.callback are required")
        if verify:
            task = asyncio.get_running_loop().create_task(self._verify_intent(form))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return web.Response(status=202)

    async def _verify_intent(self, form: dict[str, str]) -> None:
        assert self._session is not None
        mode, topic, callback = form["hub.mode"], form["hub.topic"], form["hub.callback"]
        challenge = secrets.token_urlsafe(16)
        lease = min(int(form.get("hub.lease_seconds") or self.lease_cap), self.lease_cap)
        params = {"hub.mode": mode, "hub.topic": topic, "hub.challenge": challenge}
        if mode == "subscribe":
            params["hub.lease_seconds"] = str(lease)
        try:
            async with self._session.get(callback, params=params) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            text, status = "", 0  # the callback is unreachable: no subscription
        echoed = 200 <= status < 300 and text == challenge
        with self._lock:
            self.log.verifications.append((mode, callback, status, echoed))
            if not echoed:
                return
            if mode == "subscribe":
                self.subscriptions[(topic, callback)] = HubSubscription(topic, callback, form.get("hub.secret"), lease)
            else:
                self.subscriptions.pop((topic, callback), None)

    # -- content distribution ---------------------------------------------------------

    async def _distribute(self, topic: str, body: bytes, content_type: str) -> list[int]:
        assert self._session is not None
        with self._lock:
            targets = [s for (t, _), s in self.subscriptions.items() if t == topic]
        statuses: list[int] = []
        for sub in targets:
            headers = {"Content-Type": content_type, "Link": f'<{self.url}>; rel="hub", <{topic}>; rel="self"'}
            if sub.secret is not None:
                digest = hmac.new(sub.secret.encode(), body, getattr(hashlib, self.method)).hexdigest()
                headers["X-Hub-Signature"] = f"{self.method}={digest}"
            async with self._session.post(sub.callback, data=body, headers=headers) as response:
                await response.read()
                statuses.append(response.status)
            with self._lock:
                self.log.deliveries.append((sub.callback, response.status))
        return statuses

    async def publish(self, topic: str, body: bytes, content_type: str = "application/rss+xml") -> list[int]:
        """Distribute `body` to the topic's verified subscribers; their HTTP statuses.
        Awaitable from any event loop (the hub runs on its own)."""
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self._distribute(topic, body, content_type), self._loop)
        return await asyncio.wrap_future(future)

    def active(self, topic: str) -> list[HubSubscription]:
        with self._lock:
            return [s for (t, _), s in self.subscriptions.items() if t == topic]


@pytest.fixture(scope="session")
def _websub_hub_session() -> Iterator[WebSubHub]:
    with WebSubHub() as hub:
        yield hub


@pytest.fixture
def websub_hub(_websub_hub_session: WebSubHub) -> Iterator[WebSubHub]:
    """The shared local hub, with subscriptions and logs cleared for this test."""
    _websub_hub_session.reset()
    yield _websub_hub_session
    _websub_hub_session.reset()
