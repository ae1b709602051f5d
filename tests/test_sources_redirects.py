"""Redirect policy: a feed must not steer Readout to other hosts or internal addresses.

End to end: a feed on the local server redirects to a second local server
(another port: "another host") standing in for an internal service; the
second server must see no request unless the source says `follow_redirects: any`
— allowed then only because the source itself is configured on 127.0.0.1. The
public-origin cases use a stub resolver (no DNS here), through the same
`redirect_refusal` the fetch loop calls.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from bot.adapters.console import ConsoleAdapter
from bot.app import Readout
from bot.rules.loader import load_rules_dir
from bot.settings import Settings
from bot.sources.http import FetchError, fetch, make_client
from bot.sources.redirects import redirect_refusal
from tests.support.botproc import rss, write_rules
from tests.support.feed_server import FeedServer


@pytest.fixture
def internal() -> Iterator[FeedServer]:
    """A second server: the "internal service" a hostile feed points at."""
    with FeedServer() as server:
        server.route("/secret", body=rss(["Tariff secret from the internal service"]), content_type="application/rss+xml")
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(_env_file=None, http_timeout=2)  # type: ignore[call-arg]
    async with make_client(settings, trust_env=False) as c:
        yield c


async def test_redirect_to_another_port_is_refused_by_default(
    client: httpx.AsyncClient, feed_server: FeedServer, internal: FeedServer
) -> None:
    feed_server.redirect("/feed", internal.url("/secret"))
    with pytest.raises(FetchError) as info:
        await fetch(client, feed_server.url("/feed"), max_bytes=100_000)
    assert info.value.reason == "redirect_refused"
    assert "follow_redirects: any" in str(info.value)
    assert internal.requests_for("/secret") == []


async def test_same_host_redirects_are_still_followed(client: httpx.AsyncClient, feed_server: FeedServer) -> None:
    feed_server.route("/new", body=b"<rss/>", content_type="application/rss+xml")
    feed_server.redirect("/old", "/new", status=301)
    result = await fetch(client, feed_server.url("/old"), max_bytes=100_000)
    assert result.url == feed_server.url("/new") and result.body == b"<rss/>"


async def test_any_allows_other_hosts_within_the_sources_own_internal_network(
    client: httpx.AsyncClient, feed_server: FeedServer, internal: FeedServer
) -> None:
    feed_server.redirect("/feed", internal.url("/secret"))
    result = await fetch(client, feed_server.url("/feed"), max_bytes=100_000, redirects="any")
    assert b"internal service" in result.body


def _resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def resolve(host: str) -> list[str]:
        return table.get(host, [])

    return resolve


@pytest.mark.parametrize(
    ("target", "policy", "refused"),
    [
        ("https://feeds.example.com/rss", "same-host", None),  # http -> https upgrade, same host
        ("http://feeds.example.com:8080/rss", "same-host", "another host"),
        ("https://cdn.example.net/rss", "same-host", "another host"),
        ("https://cdn.example.net/rss", "any", None),
        ("http://169.254.169.254/latest/meta-data/", "any", "internal address 169.254.169.254"),
        ("http://127.0.0.1:6379/", "any", "internal address 127.0.0.1"),
        ("http://[::1]/", "any", "internal address ::1"),
        ("http://[::ffff:10.0.0.5]/", "any", "internal address"),
        ("http://intranet.example.com/", "any", "internal address 10.1.2.3"),
        ("http://mixed.example.com/", "any", "internal address 192.168.1.9"),
    ],
)
async def test_redirect_policy_for_a_public_source(target: str, policy: str, refused: str | None) -> None:
    resolve = _resolver(
        {
            "feeds.example.com": ["93.184.216.34"],
            "cdn.example.net": ["151.101.1.1"],
            "intranet.example.com": ["10.1.2.3"],
            "mixed.example.com": ["151.101.1.2", "192.168.1.9"],
        }
    )
    found = await redirect_refusal("http://feeds.example.com/rss", target, policy=policy, resolve=resolve)  # type: ignore[arg-type]
    if refused is None:
        assert found is None
    else:
        assert found is not None and refused in found


async def test_sources_yaml_opts_in_per_source(feed_server: FeedServer, internal: FeedServer, tmp_path: Path) -> None:
    """Through sources.yaml and a real poll: the default source is refused, the opted-in one follows."""
    feed_server.redirect("/strict.xml", internal.url("/secret"))
    feed_server.redirect("/open.xml", internal.url("/secret"))
    rules = write_rules(
        tmp_path / "rules", {"strict": feed_server.url("/strict.xml"), "open": feed_server.url("/open.xml")}
    )
    sources = (rules / "sources.yaml").read_text()
    (rules / "sources.yaml").write_text(sources + "    follow_redirects: any\n")  # the last feed: "open"
    assert [f.follow_redirects for f in load_rules_dir(rules).sources.feeds] == ["same-host", "any"]
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, rules_dir=rules, database_url=f"sqlite+aiosqlite:///{tmp_path / 'r.db'}", poll_jitter=0
    )
    bot = await Readout.open(settings, adapters=[ConsoleAdapter(io.StringIO())])
    await bot.start(scheduler=False)
    try:
        alerts = await bot.poll_once()
        states = {s.source_id: s for s in await bot.store.all_source_states()}
    finally:
        await bot.stop()
    assert [(a.source, a.title) for a in alerts] == [("open", "Tariff secret from the internal service")]
    assert "redirect_refused" in (states["strict"].last_error or "")
    assert len(internal.requests_for("/secret")) == 1
