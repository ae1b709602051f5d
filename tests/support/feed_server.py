"""A local HTTP server for every Readout test that needs the network: 127.0.0.1 only.

The server runs in its own thread with its own event loop, so async tests, sync tests and a
`subprocess` running `python -m bot ...` can all talk to it. It serves fixture files by path
(`/feeds/rss20.xml` → `tests/fixtures/feeds/rss20.xml`) and any scripted response set with
`FeedServer.route(...)`: status, body, headers, delay, gzip, ETag/Last-Modified with 304,
redirects, huge streamed bodies and gzip bombs. Every request is recorded.

    def test_x(feed_server):
        feed_server.route("/feed", body=b"<rss .../>", etag='"v1"')
        url = feed_server.url("/feed")

Also runnable by hand: `python -m tests.support.feed_server [port]` serves the fixtures.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import mimetypes
import os
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import pytest
from aiohttp import web

from tests.support.server_thread import ServerThread

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

_CONTENT_TYPES = {
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".rdf": "application/rdf+xml",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".csv": "text/csv",
}


@dataclass
class Route:
    """A scripted response for one path."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    delay: float = 0.0  # seconds before answering (a timeout, when beyond the client's)
    gzip: bool = False  # compress `body` and send Content-Encoding: gzip
    etag: str | None = None
    last_modified: datetime | None = None
    redirect_to: str | None = None  # path or absolute URL; `status` defaults to 302
    stream_bytes: int | None = None  # stream this many bytes of filler instead of `body`
    chunk_delay: float = 0.0  # seconds between streamed chunks (a trickling server)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-cased names
    at: float = 0.0  # time.monotonic() when it arrived

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class FeedServer(ServerThread):
    """aiohttp on 127.0.0.1, random port, in a daemon thread; thread-safe to script."""

    thread_name = "feed server"

    def __init__(self, fixtures: Path = FIXTURES, *, port: int = 0) -> None:
        super().__init__()
        self.fixtures = fixtures
        self._port = port
        self._routes: dict[str, Route] = {}
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # -- lifecycle --------------------------------------------------------------------

    async def _startup(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        port = self._runner.addresses[0][1]  # the random port the OS picked
        self.base_url = f"http://127.0.0.1:{port}"

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        # Handlers still sleeping for a scripted delay: cancel them so none is left pending.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    # -- scripting --------------------------------------------------------------------

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def route(self, path: str, **options: object) -> Route:
        """Script the response for `path` (see `Route` for the options)."""
        route = Route(**options)  # type: ignore[arg-type]
        with self._lock:
            self._routes[path] = route
        return route

    def fixture(self, path: str, fixture: str, **options: object) -> Route:
        """Serve a fixture file at `path` with a content-hash ETag unless told otherwise."""
        body = (self.fixtures / fixture).read_bytes()
        options.setdefault("content_type", _content_type(Path(fixture)))
        options.setdefault("etag", _etag(body))
        return self.route(path, body=body, **options)

    def redirect(self, path: str, to: str, status: int = 302) -> Route:
        return self.route(path, status=status, redirect_to=to)

    def gzip_bomb(self, path: str, size: int = 50_000_000) -> Route:
        """A small gzip body that inflates to `size` bytes of zeros."""
        return self.route(
            path,
            body=_gzip_zeros(size),
            headers={"Content-Encoding": "gzip"},
            content_type="application/rss+xml",
        )

    def reset(self) -> None:
        with self._lock:
            self._routes.clear()
            self._requests.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    # -- serving ----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self._requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.path,
                    query=request.query_string,
                    headers={k.lower(): v for k, v in request.headers.items()},
                    at=time.monotonic(),
                )
            )
            route = self._routes.get(request.path)
        if route is None:
            route = self._file_route(request.path)
        if route is None:
            return web.Response(status=404, text=f"no route or fixture for {request.path}\n")
        if route.delay:
            await asyncio.sleep(route.delay)
        if route.redirect_to is not None:
            status = route.status if 300 <= route.status < 400 else 302
            return web.Response(status=status, headers={"Location": route.redirect_to}, body=route.body)

        headers = dict(route.headers)
        if route.etag:
            headers["ETag"] = route.etag
        if route.last_modified:
            headers["Last-Modified"] = format_datetime(route.last_modified, usegmt=True)
        if _not_modified(request, route):
            return web.Response(status=304, headers=headers)

        if route.stream_bytes is not None:
            return await self._stream(request, route, headers)
        body = route.body
        if route.gzip:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        if route.content_type:
            headers["Content-Type"] = route.content_type
        return web.Response(status=route.status, body=body, headers=headers)

    async def _stream(
        self, request: web.Request, route: Route, headers: dict[str, str]
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=route.status, headers=headers)
        response.content_type = (route.content_type or "application/xml").split(";")[0]
        await response.prepare(request)
        chunk = b"<!-- " + b"x" * 65_000 + b" -->\n"
        sent = 0
        assert route.stream_bytes is not None
        try:
            while sent < route.stream_bytes:
                piece = chunk[: route.stream_bytes - sent]
                await response.write(piece)
                sent += len(piece)
                if route.chunk_delay:
                    await asyncio.sleep(route.chunk_delay)
            await response.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass  # the client hung up once it had enough: that is the point
        return response

    def _file_route(self, path: str) -> Route | None:
        target = (self.fixtures / path.lstrip("/")).resolve()
        if not target.is_file() or self.fixtures.resolve() not in target.parents:
            return None
        body = target.read_bytes()
        return Route(
            body=body,
            content_type=_content_type(target),
            etag=_etag(body),
            last_modified=datetime.fromtimestamp(int(target.stat().st_mtime), tz=UTC),
        )


def _not_modified(request: web.Request, route: Route) -> bool:
    """RFC 9110: If-None-Match wins over If-Modified-Since when both are sent."""
    inm = request.headers.get("If-None-Match")
    if inm is not None:
        if route.etag is None:
            return False
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or route.etag.removeprefix("W/") in tags
    ims = request.headers.get("If-Modified-Since")
    if ims and route.last_modified:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
        return route.last_modified.replace(microsecond=0) <= since
    return False


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha1(body).hexdigest()[:16] + '"'  # noqa: S324 — not security


def _content_type(path: Path) -> str:
    return (
        _CONTENT_TYPES.get(path.suffix)
        or mimetypes.guess_type(path.name)[0]
        or "application/octet-stream"
    )


def _gzip_zeros(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip container
    block = b"\0" * 1_000_000
    parts = []
    remaining = size
    while remaining > 0:
        parts.append(compressor.compress(block[: min(remaining, len(block))]))
        remaining -= len(block)
    parts.append(compressor.flush())
    return b"".join(parts)


# -- pytest plugin --------------------------------------------------------------------


@pytest.fixture(scope="session")
def _feed_server_session() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


@pytest.fixture
def feed_server(
    _feed_server_session: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FeedServer]:
    """The shared local server with routes and recorded requests cleared for this test.

    Also sets NO_PROXY so clients that honour proxy variables still reach 127.0.0.1.
    """
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    _feed_server_session.reset()
    yield _feed_server_session
    _feed_server_session.reset()


if __name__ == "__main__":
    with FeedServer(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0) as srv:
        print(
            f"serving {srv.fixtures} at {srv.base_url} (pid {os.getpid()}); Ctrl-C stops",
            flush=True,
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
