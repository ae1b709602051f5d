"""One careful HTTP GET for every source: conditional, size-capped, reason-coded errors.

Exceptions: everything that can go wrong on the wire surfaces as `FetchError` with a
`reason` a caller can branch on (and a one-line message a user can read):

    timeout        connect/read/pool/total deadline exceeded
    network        DNS, refused connection, TLS, broken stream
    http_status    the server answered 4xx/5xx (`status` is set)
    too_large      the decompressed body passed `max_bytes`
    redirect_loop  a redirect pointed back to a URL already visited
    redirect_refused  the source's redirect policy forbids the target (see `redirects`)
    too_many_redirects  more hops than the client allows
    decoding       the server's Content-Encoding could not be decoded
    bad_url        not an http(s) URL, or unparseable
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, ConfigDict

from bot.settings import Settings
from bot.sources.hints import ServerHints, header_hints
from bot.sources.redirects import RedirectPolicy, redirect_refusal

FetchReason = Literal[
    "timeout",
    "network",
    "http_status",
    "too_large",
    "redirect_loop",
    "redirect_refused",
    "too_many_redirects",
    "decoding",
    "bad_url",
]

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml, application/xml;q=0.9, "
    "text/xml;q=0.9, application/json;q=0.9, text/csv;q=0.9, */*;q=0.5"
)

# Query parameters whose values must never reach a log line or a chat message.
_SECRET_PARAMS = ("key", "token", "secret", "password", "passwd", "sig", "signature", "auth")


class Validators(BaseModel):
    """HTTP cache validators from the last good response, sent back as a conditional GET."""

    model_config = ConfigDict(frozen=True)

    etag: str | None = None
    last_modified: str | None = None

    def request_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


class FetchResult(BaseModel):
    """A completed exchange: a 2xx body, or a 304 with an empty body."""

    model_config = ConfigDict(frozen=True)

    status: int
    body: bytes
    validators: Validators
    not_modified: bool
    url: str  # final URL after redirects
    content_type: str | None
    hints: ServerHints = ServerHints()  # freshness headers, for the cadence


class FetchError(Exception):
    """A fetch that produced no usable body; `reason` says why in one word."""

    def __init__(
        self,
        reason: FetchReason,
        url: str,
        detail: str,
        *,
        status: int | None = None,
        hints: ServerHints | None = None,
    ) -> None:
        self.reason: FetchReason = reason
        self.url = redact_url(url)
        self.status = status
        self.hints = hints  # a 429/503's Retry-After, for the cadence
        self.detail = " ".join(detail.split())
        super().__init__(f"{self.reason}: GET {self.url}: {self.detail}")


def redact_url(url: str) -> str:
    """The URL without user:password and with secret-looking query values masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(any(s in k.lower() for s in _SECRET_PARAMS) for k, _ in pairs):
            query = urlencode(
                [
                    (k, "***" if any(s in k.lower() for s in _SECRET_PARAMS) else v)
                    for k, v in pairs
                ],
                safe="[]:/,",
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def make_client(settings: Settings, *, trust_env: bool = True) -> httpx.AsyncClient:
    """The shared client for all sources. httpx follows redirects (up to
    `http_max_redirects`); its response hook asks each fetch's `Redirects` first.

    `trust_env=False` ignores proxy variables (tests talking to 127.0.0.1). The pool
    holds as many connections as poll slots let fetches run at once (`poll_concurrency`
    plus the slow slots), `poll_concurrency` of them kept alive between polls.
    """
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.http_timeout),
        limits=httpx.Limits(
            max_connections=settings.poll_concurrency + settings.slow_slots(),
            max_keepalive_connections=settings.poll_concurrency,
        ),
        follow_redirects=True,
        max_redirects=settings.http_max_redirects,
        event_hooks={"response": [_before_following]},
        headers={
            "User-Agent": settings.http_user_agent,
            "Accept": ACCEPT,
            "Accept-Encoding": "gzip, deflate",
        },
        trust_env=trust_env,
    )


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    validators: Validators | None = None,
    max_bytes: int,
    total_timeout: float | None = None,
    redirects: RedirectPolicy = "same-host",
) -> FetchResult:
    """GET `url` conditionally, following redirects, reading at most `max_bytes` (decompressed).

    `total_timeout` (seconds) bounds the whole exchange so a server trickling bytes cannot
    hold a poll forever; by default it is twice the client's read timeout.
    Redirects are followed as the source's `redirects` policy allows (`redirect_refusal`).
    Raises `FetchError`; never returns a 4xx/5xx.
    """
    if total_timeout is None:
        read = client.timeout.read
        total_timeout = 2 * read if read else None
    try:
        async with asyncio.timeout(total_timeout):
            return await _fetch(client, url, validators or Validators(), max_bytes, redirects)
    except TimeoutError:
        raise FetchError("timeout", url, f"no complete answer within {total_timeout:g} s") from None


_REDIRECTS = "readout.redirects"  # request extension: the fetch's Redirects (httpx carries it along)


class Redirects:
    """Where one fetch has been, and the one place that decides whether to follow a redirect."""

    def __init__(self, url: str, max_bytes: int, policy: RedirectPolicy = "same-host") -> None:
        self.start = url
        self.visited = [url]
        self.max_bytes = max_bytes
        self.policy = policy

    async def follow(self, current: httpx.URL, target: httpx.URL) -> None:
        """Raise `FetchError` unless the redirect from `current` to `target` may be followed:
        http(s) only, as the source's policy allows (`redirect_refusal`), never in a loop."""
        if target.scheme not in ("http", "https"):
            raise FetchError("bad_url", str(current), f"redirect to non-http(s) URL {redact_url(str(target))}")
        refused = await redirect_refusal(self.start, str(target), policy=self.policy)
        if refused is not None:
            raise FetchError("redirect_refused", str(current), f"{refused}: {redact_url(str(target))}")
        if str(target) in self.visited:
            chain = " -> ".join(redact_url(u) for u in [*self.visited, str(target)])
            raise FetchError("redirect_loop", self.start, f"redirect loop: {chain}")
        self.visited.append(str(target))


async def _before_following(response: httpx.Response) -> None:
    """httpx response hook, for every response of a fetch (redirects included): cap the
    raw body (httpx reads redirect bodies itself) and ask `Redirects` before httpx follows."""
    redirects = response.request.extensions.get(_REDIRECTS)
    if not isinstance(redirects, Redirects):
        return  # not a `fetch`
    response.stream = _CappedStream(response.stream, str(response.url), redirects.max_bytes)
    if not response.has_redirect_location:
        return
    try:
        target = response.request.url.join(response.headers["location"])
    except (httpx.InvalidURL, ValueError):
        return  # httpx itself refuses the Location header (a network error below)
    await redirects.follow(response.request.url, target)


class _CappedStream(httpx.AsyncByteStream):
    """A response's raw bytes, refused past `max_bytes` (the decompressed cap is `_read_capped`)."""

    def __init__(self, stream: httpx.SyncByteStream | httpx.AsyncByteStream, url: str, max_bytes: int) -> None:
        assert isinstance(stream, httpx.AsyncByteStream)
        self._stream, self._url, self._max = stream, url, max_bytes

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        async for chunk in self._stream:
            size += len(chunk)
            if size > self._max:
                raise FetchError("too_large", self._url, f"body exceeds {self._max} bytes")
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()


async def _fetch(
    client: httpx.AsyncClient, url: str, validators: Validators, max_bytes: int, redirects: RedirectPolicy
) -> FetchResult:
    try:
        request = client.build_request(
            "GET",
            url,
            headers=validators.request_headers(),
            extensions={_REDIRECTS: Redirects(url, max_bytes, redirects)},
        )
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
        raise FetchError("bad_url", url, str(exc) or "invalid URL") from None
    if request.url.scheme not in ("http", "https"):
        raise FetchError("bad_url", url, f"scheme {request.url.scheme!r} is not http(s)")
    response = await _send(client, request, url)
    current = str(response.url)
    try:
        content_type = response.headers.get("content-type")
        if response.status_code == 304:
            return FetchResult(
                status=304,
                body=b"",
                validators=_merge_validators(response, validators),
                not_modified=True,
                url=current,
                content_type=content_type,
                hints=header_hints(304, response.headers),
            )
        if response.status_code >= 400 or response.status_code < 200:
            phrase = response.reason_phrase or ""
            raise FetchError(
                "http_status",
                current,
                f"HTTP {response.status_code} {phrase}".strip(),
                status=response.status_code,
                hints=header_hints(response.status_code, response.headers),
            )
        body = await _read_capped(response, current, max_bytes)
        return FetchResult(
            status=response.status_code,
            body=body,
            validators=Validators(
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
            ),
            not_modified=False,
            url=current,
            content_type=content_type,
            hints=header_hints(response.status_code, response.headers),
        )
    finally:
        await response.aclose()


async def _send(client: httpx.AsyncClient, request: httpx.Request, url: str) -> httpx.Response:
    """Send, following redirects (httpx), with every failure as a `FetchError`."""
    try:
        return await client.send(request, stream=True, follow_redirects=True)
    except httpx.TooManyRedirects:
        raise FetchError("too_many_redirects", url, f"more than {client.max_redirects} redirects") from None
    except httpx.TimeoutException as exc:
        raise FetchError(
            "timeout", str(exc.request.url), f"{type(exc).__name__} after {client.timeout.read} s"
        ) from None
    except httpx.UnsupportedProtocol as exc:
        raise FetchError("bad_url", str(exc.request.url), str(exc)) from None
    except httpx.TransportError as exc:
        raise FetchError(
            "network",
            str(exc.request.url),
            f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
        ) from None


async def _read_capped(response: httpx.Response, url: str, max_bytes: int) -> bytes:
    """Read the decompressed body, stopping as soon as it passes `max_bytes` (gzip bombs too)."""
    declared = response.headers.get("content-length")
    if (
        declared
        and declared.isdigit()
        and "content-encoding" not in response.headers
        and int(declared) > max_bytes
    ):
        raise FetchError("too_large", url, f"Content-Length {declared} exceeds {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise FetchError("too_large", url, f"body exceeds {max_bytes} bytes (decompressed)")
            chunks.append(chunk)
    except httpx.DecodingError as exc:
        raise FetchError("decoding", url, f"cannot decode body: {exc}") from None
    except httpx.TimeoutException as exc:
        raise FetchError("timeout", url, f"{type(exc).__name__} while reading body") from None
    except httpx.TransportError as exc:
        raise FetchError("network", url, f"{type(exc).__name__} while reading body") from None
    return b"".join(chunks)


def _merge_validators(response: httpx.Response, old: Validators) -> Validators:
    """On 304 keep what we sent unless the server volunteers fresher validators."""
    return Validators(
        etag=response.headers.get("etag") or old.etag,
        last_modified=response.headers.get("last-modified") or old.last_modified,
    )
