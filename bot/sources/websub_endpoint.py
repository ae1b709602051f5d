"""The WebSub callback endpoint: `GET/POST /websub/<callback id>`, one path per subscription.

    GET   the hub verifies our intent: echo `hub.challenge` only when topic and mode match
          a request we made (else 404); `hub.mode=denied` marks the subscription failed.
    POST  content: accepted only with a valid `X-Hub-Signature` under the subscription's
          secret. Per the spec a bad or missing signature still gets a 2xx (the body is
          ignored), so a forger learns nothing. A body over `max_bytes` gets 413.
          A valid body goes through the same parser and pipeline as a poll of the source
          (`on_push`); if that fails for a reason other than the body (database down) we
          answer 500 so the hub delivers again — and the safety-net poll is still there.

Every worker may run it (state comes from the database); several workers on one host
share the port (SO_REUSEPORT).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from bot.sources.config import FeedSource
from bot.sources.news import FeedError
from bot.sources.websub import signature_ok
from bot.sources.websub_subscriber import CALLBACK_PATH, WebSubSubscriber

log = logging.getLogger(__name__)

PushHandler = Callable[[FeedSource, bytes, str | None], Awaitable[object]]


class WebSubEndpoint:
    """A small aiohttp server for hub callbacks; `start` binds, `stop` closes."""

    def __init__(
        self,
        subscriber: WebSubSubscriber,
        *,
        sources: Callable[[], Mapping[str, FeedSource]],
        on_push: PushHandler,
        host: str,
        port: int,
        max_bytes: int,
    ) -> None:
        self.subscriber = subscriber
        self._sources = sources
        self._on_push = on_push
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None
        self._app = web.Application(client_max_size=max_bytes)
        self._app.router.add_get(CALLBACK_PATH + "{cid}", self._verify)
        self._app.router.add_post(CALLBACK_PATH + "{cid}", self._push)
        self._logged: set[tuple[str, str]] = set()  # (callback/source, problem) logged once

    async def start(self) -> None:
        runner = web.AppRunner(self._app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_port=True)
        await site.start()
        self._runner = runner
        for address in runner.addresses:  # the real port when 0 was asked
            if isinstance(address, tuple):
                self.port = int(address[1])
                break
        log.info("websub: callback endpoint on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _once(self, key: str, problem: str, message: str, *args: object) -> None:
        level = logging.DEBUG if (key, problem) in self._logged else logging.WARNING
        self._logged.add((key, problem))
        log.log(level, message, *args)

    async def _verify(self, request: web.Request) -> web.StreamResponse:
        cid = request.match_info["cid"]
        query = request.query
        mode, topic = query.get("hub.mode", ""), query.get("hub.topic", "")
        row = await self.subscriber.store.by_callback(cid)
        if row is None or topic != row.topic:
            self._once(cid[:8], "verify", "websub: verification for an unknown callback or topic; 404")
            return web.Response(status=404)
        if mode == "denied":
            await self.subscriber.denied(row, query.get("hub.reason", ""))
            return web.Response(status=200)
        challenge = query.get("hub.challenge")
        if not challenge or mode not in ("subscribe", "unsubscribe") or not self.subscriber.accepts(row, mode):
            self._once(row.source_id, "verify", "websub: %s: verification of %r we did not ask for; 404", row.source_id, mode[:20])
            return web.Response(status=404)
        lease = query.get("hub.lease_seconds", "")
        seconds = int(lease) if lease.isascii() and lease.isdecimal() and 0 < int(lease) < 10**9 else None
        await self.subscriber.verified(row, "subscribe" if mode == "subscribe" else "unsubscribe", seconds)
        return web.Response(status=200, text=challenge, content_type="text/plain")

    async def _push(self, request: web.Request) -> web.StreamResponse:
        cid = request.match_info["cid"]
        row = await self.subscriber.store.by_callback(cid)
        if row is None:
            self._once(cid[:8], "unknown", "websub: push to an unknown callback; 404")
            return web.Response(status=404)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self._once(row.source_id, "size", "websub: %s: push body over the size limit; refused", row.source_id)
            return web.Response(status=413)
        if not signature_ok(request.headers.get("X-Hub-Signature"), body, row.secret.get_secret_value()):
            self._once(row.source_id, "signature", "websub: %s: push with a missing or bad signature; ignored", row.source_id)
            return web.Response(status=202)  # 2xx per the spec; the body is dropped
        source = self._sources().get(row.source_id)
        if source is None or row.state == "unsubscribing":
            return web.Response(status=202)  # the source was removed
        try:
            await self._on_push(source, body, request.headers.get("Content-Type"))
        except FeedError as exc:
            self._once(row.source_id, "feed", "websub: %s: pushed body is not a feed (%s); ignored", row.source_id, exc)
            return web.Response(status=202)
        except Exception:
            log.exception("websub: %s: processing a push failed; asking the hub to retry", row.source_id)
            return web.Response(status=500)
        return web.Response(status=200)
