"""PTB's HTTP requests over aiohttp: the Bot API calls the adapter makes (all but getUpdates).

python-telegram-bot sends through httpx by default. At the rates paid broadcast allows
(1,000 messages/s) httpx's connection pool was the bottleneck: on a 2-core machine PTB
managed about 100 sendMessage/s at 64 in flight, and fewer the more were in flight
(its pool re-scans every waiting request on every change), while aiohttp over the same
fake Bot API answered 1,500–3,000/s (bench/paid_fanout.py, docs/benchmarks.md). This is a
PTB `BaseRequest`, so everything else — the rate limiter, errors, retries — is PTB's own.

Errors map as PTB's HTTPXRequest maps them: a timeout (connect, pool or read) is
`TimedOut`, any other client error `NetworkError`; neither message carries the URL (it
holds the token). Proxies come from the environment (HTTPS_PROXY, NO_PROXY), as with httpx:
looked up once per Bot API origin, not per request — aiohttp's `trust_env` does it on every
request in a worker thread (and reads ~/.netrc in another), two thread hops a message that
cost a fan-out a fifth of its time (bench/paid_fanout.py).
"""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp.helpers import BasicAuth, get_env_proxy_for_url
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData
from yarl import URL


class AiohttpRequest(BaseRequest):
    """One aiohttp session with a bounded connection pool, opened by `initialize`."""

    def __init__(
        self,
        *,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
    ) -> None:
        """Seconds: `read_timeout` between bytes of the answer, `connect_timeout` to connect,
        `pool_timeout` to wait for a free connection (added to the connect budget)."""
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[str, tuple[URL | None, BasicAuth | None]] = {}  # origin → env proxy

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size)
            )

    async def shutdown(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        read = self._read_timeout if isinstance(read_timeout, DefaultValue) else read_timeout
        connect = self._connect_timeout if isinstance(connect_timeout, DefaultValue) else connect_timeout
        pool = self._pool_timeout if isinstance(pool_timeout, DefaultValue) else pool_timeout
        budget = None if connect is None or pool is None else connect + pool
        timeout = aiohttp.ClientTimeout(total=None, connect=budget, sock_read=read)
        proxy, proxy_auth = self._proxy_for(url)
        try:
            async with session.request(
                method,
                url,
                data=_body(request_data),
                headers={"User-Agent": self.USER_AGENT},
                timeout=timeout,
                proxy=proxy,
                proxy_auth=proxy_auth,
            ) as response:
                return response.status, await response.read()
        except TimeoutError as err:  # aiohttp's timeouts are TimeoutErrors too
            raise TimedOut from err
        except aiohttp.ClientError as err:
            reason = f"{err}".replace(url, "<Bot API URL>")
            raise NetworkError(f"aiohttp.{type(err).__name__}: {reason}") from err

    def _proxy_for(self, url: str) -> tuple[URL | None, BasicAuth | None]:
        """The environment's proxy for this URL's origin (HTTPS_PROXY, NO_PROXY …), read once."""
        parsed = URL(url)
        origin = f"{parsed.scheme}://{parsed.host}:{parsed.port}"
        found = self._proxies.get(origin)
        if found is None:
            try:
                proxy, auth = get_env_proxy_for_url(parsed)
                found = (proxy, auth)
            except LookupError:
                found = (None, None)
            self._proxies[origin] = found
        return found


def _body(request_data: RequestData | None) -> Any:
    """Form fields as PTB encodes them (nested values as JSON text); files as multipart."""
    if request_data is None:
        return None
    fields = request_data.json_parameters
    files = request_data.multipart_data
    if not files:
        return fields
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    for name, part in files.items():
        filename, content, mimetype = part
        form.add_field(name, content, filename=filename, content_type=mimetype)
    return form
