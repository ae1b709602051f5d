"""bot.sources.poll end to end: real httpx client, local server, fixture bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from bot.models import NewsEvent, PriceEvent
from bot.settings import Settings
from bot.sources.config import FeedSource, PriceSource
from bot.sources.http import Validators, make_client
from bot.sources.poll import PollOutcome, poll_source
from tests.support.feed_server import FeedServer

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2025, 4, 10, 12, 0, tzinfo=UTC)
MAX = 1_000_000


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(_env_file=None, http_timeout=0.5, http_max_redirects=3)  # type: ignore[call-arg]
    async with make_client(settings, trust_env=False) as c:
        yield c


def feed(server: FeedServer, path: str) -> FeedSource:
    return FeedSource.model_validate({"id": "wire", "url": server.url(path), "tags": ["media"]})


@pytest.mark.parametrize("fixture", ["feeds/rss20.xml", "feeds/rss10.rdf", "feeds/atom.xml"])
async def test_each_format_polls_into_news_events(
    client: httpx.AsyncClient, feed_server: FeedServer, fixture: str
) -> None:
    outcome = await poll_source(
        client, feed(feed_server, "/" + fixture), validators=None, max_bytes=MAX, now=NOW
    )
    assert outcome.error is None and not outcome.not_modified
    assert outcome.source_id == "wire"
    assert len(outcome.events) >= 2
    assert all(isinstance(e, NewsEvent) and e.tags == ("media",) for e in outcome.events)
    assert outcome.validators.etag and outcome.validators.last_modified  # served from the file


async def test_second_poll_is_a_304_with_no_events(
    client: httpx.AsyncClient, feed_server: FeedServer
) -> None:
    source = feed(feed_server, "/feeds/rss20.xml")
    first = await poll_source(client, source, validators=None, max_bytes=MAX, now=NOW)
    second = await poll_source(client, source, validators=first.validators, max_bytes=MAX, now=NOW)
    assert len(first.events) == 6
    assert second.not_modified and second.events == [] and second.error is None
    assert second.validators == first.validators
    requests = feed_server.requests_for("/feeds/rss20.xml")
    assert requests[1].header("if-none-match") == first.validators.etag
    assert requests[1].header("if-modified-since") == first.validators.last_modified


async def test_outcome_round_trips_through_json(
    client: httpx.AsyncClient, feed_server: FeedServer
) -> None:
    outcome = await poll_source(
        client, feed(feed_server, "/feeds/atom.xml"), validators=None, max_bytes=MAX, now=NOW
    )
    again = PollOutcome.model_validate_json(outcome.model_dump_json())
    assert again == outcome


BAD_FEEDS = [
    ("slow", {"body": b"<rss/>", "delay": 3.0}, "timeout"),
    ("500", {"status": 500}, "http_status: GET"),
    ("malformed", {"fixture": "feeds/malformed.xml"}, "malformed feed"),
    ("html", {"fixture": "feeds/html_page.html"}, "HTML page, not a feed"),
    ("huge", {"stream_bytes": 50_000_000}, "too_large"),
    ("bomb", {"bomb": True}, "too_large"),
    ("empty", {"body": b""}, "empty body"),
]


@pytest.mark.parametrize(("name", "setup", "message"), BAD_FEEDS, ids=[b[0] for b in BAD_FEEDS])
async def test_bad_feeds_report_errors_and_never_raise(
    client: httpx.AsyncClient,
    feed_server: FeedServer,
    name: str,
    setup: dict[str, object],
    message: str,
) -> None:
    path = f"/bad/{name}"
    if "fixture" in setup:
        feed_server.fixture(path, str(setup["fixture"]))
    elif setup.get("bomb"):
        feed_server.gzip_bomb(path, size=20_000_000)
    else:
        feed_server.route(path, **setup)
    old = Validators(etag='"old"')
    outcome = await poll_source(
        client, feed(feed_server, path), validators=old, max_bytes=MAX, now=NOW
    )
    assert outcome.events == []
    assert outcome.error is not None and message in outcome.error
    assert outcome.error.startswith("wire: ")
    assert "\n" not in outcome.error
    assert outcome.validators == old  # nothing was read, so nothing is skipped next time


async def test_redirect_loop_is_an_error(
    client: httpx.AsyncClient, feed_server: FeedServer
) -> None:
    feed_server.redirect("/loop/a", "/loop/b")
    feed_server.redirect("/loop/b", "/loop/a")
    outcome = await poll_source(
        client, feed(feed_server, "/loop/a"), validators=None, max_bytes=MAX, now=NOW
    )
    assert outcome.error is not None and "redirect_loop" in outcome.error


async def test_wrong_charset_header_still_parses(
    client: httpx.AsyncClient, feed_server: FeedServer
) -> None:
    feed_server.fixture(
        "/fr", "feeds/latin1_mislabeled.xml", content_type="application/rss+xml; charset=utf-8"
    )
    outcome = await poll_source(
        client, feed(feed_server, "/fr"), validators=None, max_bytes=MAX, now=NOW
    )
    assert outcome.error is None
    (event,) = outcome.events
    assert isinstance(event, NewsEvent)
    assert event.title.startswith("Pékin réplique")


async def test_parse_error_keeps_the_old_validators(
    client: httpx.AsyncClient, feed_server: FeedServer
) -> None:
    feed_server.fixture("/broken", "feeds/malformed.xml", etag='"new"')
    old = Validators(etag='"old"')
    outcome = await poll_source(
        client, feed(feed_server, "/broken"), validators=old, max_bytes=MAX, now=NOW
    )
    assert outcome.error is not None
    assert outcome.validators == old


def price(
    server: FeedServer, provider: str, symbol: str, path: str, **extra: object
) -> PriceSource:
    return PriceSource(symbol=symbol, provider=provider, url=server.url(path), **extra)  # type: ignore[arg-type]


async def test_poll_yahoo_fills_the_symbol_into_the_url(
    client: httpx.AsyncClient, feed_server: FeedServer
) -> None:
    feed_server.fixture("/v8/finance/chart/^VIX", "prices/yahoo_vix.json")
    source = price(feed_server, "yahoo", "^VIX", "/v8/finance/chart/{symbol}?range=1d&interval=5m")
    outcome = await poll_source(client, source, validators=None, max_bytes=MAX, now=NOW)
    assert outcome.error is None, outcome.error
    assert outcome.source_id == "yahoo:^VIX"
    last = outcome.events[-1]
    assert isinstance(last, PriceEvent)
    assert (last.last, last.previous_close) == (52.33, 46.98)
    assert feed_server.requests_for("/v8/finance/chart/^VIX")[0].query == "range=1d&interval=5m"


async def test_poll_cboe_and_csv(client: httpx.AsyncClient, feed_server: FeedServer) -> None:
    cboe = price(feed_server, "cboe", "^VIX", "/prices/{cboe_symbol}.json", id="cboe-vix")
    feed_server.fixture("/prices/_VIX.json", "prices/cboe_vix.json")
    outcome = await poll_source(client, cboe, validators=None, max_bytes=MAX, now=NOW)
    assert [e.last for e in outcome.events if isinstance(e, PriceEvent)] == [52.33]

    fred = price(feed_server, "csv", "VIXCLS", "/prices/fred_vixcls.csv")
    first = await poll_source(client, fred, validators=None, max_bytes=MAX, now=NOW)
    assert len(first.events) == 11
    second = await poll_source(client, fred, validators=first.validators, max_bytes=MAX, now=NOW)
    assert second.not_modified and second.events == []


@pytest.mark.parametrize(
    ("fixture", "setup", "message"),
    [
        ("prices/yahoo_not_found.json", {}, "Yahoo error"),
        ("prices/yahoo_html.html", {}, "not JSON"),
        (None, {"status": 429, "body": b"Too Many Requests"}, "HTTP 429"),
        (None, {"body": b"{}", "delay": 3.0}, "timeout"),
    ],
)
async def test_bad_price_sources_report_errors(
    client: httpx.AsyncClient,
    feed_server: FeedServer,
    fixture: str | None,
    setup: dict[str, object],
    message: str,
) -> None:
    if fixture:
        feed_server.fixture("/chart/CNH=X", fixture)
    else:
        feed_server.route("/chart/CNH=X", **setup)
    source = price(feed_server, "yahoo", "CNH=X", "/chart/{symbol}")
    outcome = await poll_source(client, source, validators=None, max_bytes=MAX, now=NOW)
    assert outcome.events == []
    assert outcome.error is not None and message in outcome.error
    assert outcome.error.startswith("yahoo:CNH=X: ")


async def test_csv_without_url_is_an_error_not_an_exception(client: httpx.AsyncClient) -> None:
    source = PriceSource(symbol="DEXCHUS", provider="csv")
    outcome = await poll_source(client, source, validators=None, max_bytes=MAX, now=NOW)
    assert outcome.error is not None and "needs an explicit url" in outcome.error
