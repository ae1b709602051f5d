"""bot.sources.http against the local feed server: real httpx, real sockets, 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from bot.settings import Settings
from bot.sources.http import FetchError, Validators, fetch, make_client, redact_url
from tests.support.feed_server import FeedServer

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(_env_file=None, http_timeout=0.5, http_max_redirects=3)  # type: ignore[call-arg]
    async with make_client(settings, trust_env=False) as c:
        yield c


async def test_plain_get_returns_body_type_and_validators(
    client: httpx.AsyncClient, feed_server: FeedServer
) -> None:
    feed_server.route("/feed", body=RSS, content_type="application/rss+xml", etag='"v1"')
    result = await fetch(client, feed_server.url("/feed"), max_bytes=10_000)
    assert result.status == 200
    assert result.body == RSS
    assert result.content_type == "application/rss+xml"
    assert result.validators == Validators(etag='"v1"')
    assert not result.not_modified
    assert result.url == feed_server.url("/feed")
    seen = feed_server.requests_for("/feed")[0]
    assert seen.header("user-agent") == Settings(_env_file=None).http_user_agent  # type: ignore[call-arg]
    assert "gzip" in (seen.header("accept-encoding") or "")


async def test_etag_round_trip_gives_304_and_keeps_validators(
    client: httpx.AsyncClient, feed_server: FeedServer
) -> None:
    feed_server.fixture("/feeds/rss20.xml", "feeds/rss20.xml")
    first = await fetch(client, feed_server.url("/feeds/rss20.xml"), max_bytes=100_000)
    assert first.validators.etag
    second = await fetch(
        client, feed_server.url("/feeds/rss20.xml"), validators=first.validators, max_bytes=100_000
    )
    assert second.status == 304 and second.not_modified and second.body == b""
    assert second.validators == first.validators
    sent = feed_server.requests_for("/feeds/rss20.xml")
    assert sent[0].header("if-none-match") is None
    assert sent[1].header("if-none-match") == first.validators.etag


async def test_last_modified_round_trip_gives_304(
    client: httpx.AsyncClient, feed_server: FeedServer
) -> None:
    stamp = datetime(2025, 4, 9, 17, 30, tzinfo=UTC)
    feed_server.route("/lm", body=RSS, last_modified=stamp)
    first = await fetch(client, feed_server.url("/lm"), max_bytes=10_000)
    assert first.validators.last_modified == "Wed, 09 Apr 2025 17:30:00 GMT"
    assert first.validators.etag is None
    second = await fetch(
        client, feed_server.url("/lm"), validators=first.validators, max_bytes=10_000
    )
    assert second.not_modified
    assert (
        feed_server.requests_for("/lm")[1].header("if-modified-since")
        == first.validators.last_modified
    )


async def test_changed_content_is_fetched_again(
    client: httpx.AsyncClient, feed_server: FeedServer
) -> None:
    feed_server.route("/feed", body=b"<rss>v2</rss>", etag='"v2"')
    result = await fetch(
        client, feed_server.url("/feed"), validators=Validators(etag='"v1"'), max_bytes=1_000
    )
    assert result.status == 200 and result.body == b"<rss>v2</rss>"
    assert result.validators.etag == '"v2"'


async def test_redirects_are_followed_to_the_final_url(
    client: httpx.AsyncClient, feed_server: FeedServer
) -> None:
    feed_server.redirect("/old", "/newer", status=301)
    feed_server.redirect("/newer", feed_server.url("/feed"))
    feed_server.route("/feed", body=RSS)
    result = await fetch(client, feed_server.url("/old"), max_bytes=10_000)
    assert result.body == RSS
    assert result.url == feed_server.url("/feed")


async def test_redirect_loop_is_named(client: httpx.AsyncClient, feed_server: FeedServer) -> None:
    feed_server.redirect("/a", "/b")
    feed_server.redirect("/b", "/a")
    with pytest.raises(FetchError) as info:
        await fetch(client, feed_server.url("/a"), max_bytes=10_000)
    assert info.value.reason == "redirect_loop"
    assert "/a -> " in str(info.value) and "\n" not in str(info.value)
    assert len(feed_server.requests) == 2


async def test_too_many_redirects(client: httpx.AsyncClient, feed_server: FeedServer) -> None:
    for i in range(6):
        feed_server.redirect(f"/hop{i}", f"/hop{i + 1}")
    with pytest.raises(FetchError) as info:
        await fetch(client, feed_server.url("/hop0"), max_bytes=10_000)
    assert info.value.reason == "too_many_redirects"
    assert "more than 3 redirects" in str(info.value)


@pytest.mark.parametrize("status", [403, 404, 429, 500, 503])
async def test_error_statuses_raise_with_the_status(
    client: httpx.AsyncClient, feed_server: FeedServer, status: int
) -> None:
    feed_server.route("/feed", status=status, body=b"nope")
    with pytest.raises(FetchError) as info:
        await fetch(client, feed_server.url("/feed"), max_bytes=10_000)
    assert info.value.reason == "http_status"
    assert info.value.status == status
    assert f"HTTP {status}" in str(info.value)


async def test_slow_server_times_out(client: httpx.AsyncClient, feed_server: FeedServer) -> None:
    feed_server.route("/slow", body=RSS, delay=3.0)
    with pytest.raises(FetchError) as info:
        await fetch(client, feed_server.url("/slow"), max_bytes=10_000)
    assert info.value.reason == "timeout"


async def test_trickling_server_hits_the_total_deadline(
    client: httpx.AsyncClient, feed_server: FeedServer
) -> None:
    feed_server.route("/trickle", stream_bytes=10_000_000, chunk_delay=0.2)
    with pytest.raises(FetchError) as info:
        await fetch(client, feed_server.url("/trickle"), max_bytes=100_000_000, total_timeout=0.6)
    assert info.value.reason == "timeout"
    assert "0.6 s" in str(info.value)


async def test_huge_streamed_body_is_cut_off(
    client: httpx.AsyncClient, feed_server: FeedServer
) -> None:
    feed_server.route("/huge", stream_bytes=200_000_000)
    with pytest.raises(FetchError) as info:
        await fetch(client, feed_server.url("/huge"), max_bytes=1_000_000)
    assert info.value.reason == "too_large"
    assert "1000000 bytes" in str(info.value)


async def test_declared_oversize_is_refused_before_reading(
    client: httpx.AsyncClient, feed_server: FeedServer
) -> None:
    feed_server.route("/big", body=b"x" * 50_000)
    with pytest.raises(FetchError) as info:
        await fetch(client, feed_server.url("/big"), max_bytes=1_000)
    assert info.value.reason == "too_large"
    assert "Content-Length 50000" in str(info.value)


async def test_gzip_bomb_is_stopped_by_decompressed_size(
    client: httpx.AsyncClient, feed_server: FeedServer
) -> None:
    route = feed_server.gzip_bomb("/bomb", size=100_000_000)
    assert len(route.body) < 200_000  # small on the wire
    with pytest.raises(FetchError) as info:
        await fetch(client, feed_server.url("/bomb"), max_bytes=1_000_000)
    assert info.value.reason == "too_large"
    assert "decompressed" in str(info.value)


async def test_gzip_body_is_decompressed(
    client: httpx.AsyncClient, feed_server: FeedServer
) -> None:
    feed_server.route("/gz", body=RSS * 100, gzip=True)
    result = await fetch(client, feed_server.url("/gz"), max_bytes=100_000)
    assert result.body == RSS * 100


async def test_corrupt_gzip_is_a_decoding_error(
    client: httpx.AsyncClient, feed_server: FeedServer
) -> None:
    feed_server.route(
        "/corrupt",
        body=b"\x1f\x8b\x08\x00garbage-not-deflate",
        headers={"Content-Encoding": "gzip"},
    )
    with pytest.raises(FetchError) as info:
        await fetch(client, feed_server.url("/corrupt"), max_bytes=100_000)
    assert info.value.reason == "decoding"


async def test_refused_connection_is_a_network_error(client: httpx.AsyncClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FetchError) as info:
        await fetch(client, f"http://127.0.0.1:{port}/feed", max_bytes=1_000)
    assert info.value.reason == "network"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/feed", "not a url", "file:///etc/passwd"])
async def test_non_http_urls_are_refused(client: httpx.AsyncClient, url: str) -> None:
    with pytest.raises(FetchError) as info:
        await fetch(client, url, max_bytes=1_000)
    assert info.value.reason == "bad_url"


async def test_error_messages_carry_no_secrets(
    client: httpx.AsyncClient, feed_server: FeedServer
) -> None:
    feed_server.route("/private", status=401)
    url = (
        feed_server.url("/private").replace("http://", "http://user:hunter2@")
        + "?api_key=s3cr3t&q=tariff"
    )
    with pytest.raises(FetchError) as info:
        await fetch(client, url, max_bytes=1_000)
    message = str(info.value)
    assert "hunter2" not in message and "s3cr3t" not in message
    assert "api_key=%2A%2A%2A" in message or "api_key=***" in message
    assert "q=tariff" in message


def test_redact_url_leaves_plain_urls_alone() -> None:
    url = "https://news.google.com/rss/search?q=tariff+China&hl=en-US"
    assert redact_url(url) == url


def test_server_is_reachable_from_a_subprocess(feed_server: FeedServer) -> None:
    """The server has its own thread, so a child process (`python -m bot once`) can use it."""
    feed_server.route("/child", body=b"hello child", etag='"c1"')
    code = (
        "import sys, urllib.request;"
        "r = urllib.request.urlopen(sys.argv[1], timeout=5);"
        "print(r.status, r.headers['ETag'], r.read().decode())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, feed_server.url("/child")],
        capture_output=True,
        text=True,
        timeout=20,
        env={"NO_PROXY": "127.0.0.1", "PATH": ""},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '200 "c1" hello child'
    assert (feed_server.requests_for("/child")[0].header("user-agent") or "").startswith(
        "Python-urllib"
    )


async def test_redirect_bodies_are_capped_too(
    client: httpx.AsyncClient, feed_server: FeedServer
) -> None:
    """httpx reads a redirect's body before following it: the size cap holds there as well."""
    feed_server.route("/feed", body=b"<rss/>", content_type="application/rss+xml")
    feed_server.route(
        "/fat-redirect", status=302, redirect_to=feed_server.url("/feed"), body=b"x" * 200_000
    )
    with pytest.raises(FetchError) as info:
        await fetch(client, feed_server.url("/fat-redirect"), max_bytes=100_000)
    assert info.value.reason == "too_large"
    assert (await fetch(client, feed_server.url("/feed"), max_bytes=100_000)).body == b"<rss/>"
