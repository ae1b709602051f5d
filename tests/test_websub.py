"""WebSub push: discovery, signatures, and the whole subscribe → verify → push → alert path
through a real Readout against a real local hub (tests/support/websub_hub.py).

Time that matters to the protocol (leases, verification timeouts, retries) runs on a
ManualClock the tests advance; the subscriber's check loop runs on real time (50 ms ticks),
so the tests wait for conditions, never for durations.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import httpx
import pytest
from pydantic import ValidationError

from bot.adapters.base import MessageView, SendResult
from bot.adapters.console import ConsoleAdapter
from bot.app import Readout
from bot.clock import ManualClock
from bot.models import Alert
from bot.rules.loader import load_rules_dir
from bot.settings import Settings
from bot.sources.websub import discover_hub, links_from_header, signature_ok
from bot.storage.websub import WebSubStore
from tests.support.feed_server import FeedServer
from tests.support.websub_hub import WebSubHub

T0 = datetime.now(UTC).replace(microsecond=0)  # the scheduler runs on real time: start the manual clock there
RULE = """\
rules:
  - id: tariff
    type: match
    description: tariff headlines
    severity: warning
    key: title
    any: [tariff*]
"""
OLD = ("Weather is calm over the harbour", T0 - timedelta(days=2))
NEWS = ("US raises tariffs on Chinese steel to 50%", T0 - timedelta(minutes=1))
MORE = ("China answers new tariffs with export curbs", T0 - timedelta(seconds=30))


def rss(items: list[tuple[str, datetime]], *, hub: str | None = None, topic: str | None = None) -> bytes:
    """An RSS 2.0 feed; `hub`/`topic` as atom:link elements in the channel (WebSub discovery)."""
    links = ""
    if hub:
        links += f'<atom:link rel="hub" href="{escape(hub)}"/>'
    if topic:
        links += f'<atom:link rel="self" href="{escape(topic)}" type="application/rss+xml"/>'
    body = "".join(
        f"<item><title>{escape(t)}</title><link>https://news.example.com/{abs(hash(t))}</link>"
        f'<guid isPermaLink="false">g-{abs(hash(t))}</guid><pubDate>{format_datetime(at, usegmt=True)}</pubDate>'
        f"<atom:link rel=\"hub\" href=\"http://item-level.example/hub\"/></item>"
        for t, at in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>Wire</title>'
        f"<link>https://news.example.com/</link><description>d</description>{links}{body}</channel></rss>"
    ).encode()


# ---- discovery ------------------------------------------------------------------------


def test_discovery_from_atom_link_in_rss_uses_self_as_topic_and_ignores_item_links() -> None:
    body = rss([NEWS], hub="https://hub.example/", topic="https://feeds.example/wire.xml")
    found = discover_hub(body, link_header=None, url="https://feeds.example/wire.xml?ref=1")
    assert found is not None
    assert (found.hub, found.topic) == ("https://hub.example/", "https://feeds.example/wire.xml")
    # no channel-level hub: the link inside an item is the item's, not the feed's
    assert discover_hub(rss([NEWS]), link_header=None, url="https://feeds.example/wire.xml") is None


def test_discovery_from_atom_feed_resolves_relative_links_and_defaults_topic_to_the_url() -> None:
    body = (
        b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
        b'<link rel="alternate" href="https://site.example/"/><link rel="hub" href="/hub"/>'
        b"<entry><title>x</title></entry></feed>"
    )
    found = discover_hub(body, link_header=None, url="https://feeds.example/a.atom")
    assert found is not None and (found.hub, found.topic) == ("https://feeds.example/hub", "https://feeds.example/a.atom")


def test_discovery_from_the_http_link_header_wins_over_the_body() -> None:
    header = '<https://pubsubhubbub.example/>; rel="hub", <https://feeds.example/self.xml>; rel=self'
    body = rss([NEWS], hub="https://body-hub.example/", topic="https://feeds.example/body.xml")
    found = discover_hub(body, link_header=header, url="https://feeds.example/wire.xml")
    assert found is not None
    assert (found.hub, found.topic) == ("https://pubsubhubbub.example/", "https://feeds.example/self.xml")
    # several rels in one value; other params around rel
    assert links_from_header('<https://h.example/>; title="x"; rel="hub self"') == {
        "hub": "https://h.example/",
        "self": "https://h.example/",
    }


def test_discovery_ignores_non_http_hubs_and_survives_garbage() -> None:
    assert discover_hub(rss([NEWS], hub="javascript:alert(1)"), link_header=None, url="https://f.example/") is None
    assert discover_hub(b"\x00\xffnot xml <<<", link_header="garbage;;<", url="https://f.example/") is None
    truncated = rss([NEWS], hub="https://hub.example/")[:-40]  # broken tail: the head is still read
    assert discover_hub(truncated, link_header=None, url="https://f.example/") is not None


# ---- signatures -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["sha1", "sha256", "sha384", "sha512"])
def test_each_spec_signature_method_is_checked(method: str) -> None:
    body, secret = b"<rss/>", "s3cret"
    digest = hmac.new(secret.encode(), body, getattr(hashlib, method)).hexdigest()
    assert signature_ok(f"{method}={digest}", body, secret)
    assert signature_ok(f"{method.upper()}={digest.upper()}", body, secret)
    assert not signature_ok(f"{method}={digest}", body + b" ", secret)  # body changed
    assert not signature_ok(f"{method}={digest}", body, "other")  # wrong secret


@pytest.mark.parametrize("header", [None, "", "sha256", "md5=abc", "sha256=", "sha256=zz", "sha256=é"])
def test_missing_or_malformed_signatures_fail(header: str | None) -> None:
    assert not signature_ok(header, b"<rss/>", "s3cret")


# ---- a running bot against the local hub -------------------------------------------------


class Recorder(ConsoleAdapter):
    """The console adapter, noting every new message handed to it (an alert, or a story's lead)."""

    def __init__(self) -> None:
        super().__init__(io.StringIO())
        self.handed: list[Alert] = []

    async def send_alert(self, address: str, alert: Alert) -> SendResult:
        self.handed.append(alert)
        return await super().send_alert(address, alert)

    async def send_view(self, address: str, view: MessageView) -> SendResult:
        self.handed.append(view.lead)
        return await super().send_view(address, view)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.02)


def write_rules(folder: Path, feeds: dict[str, str]) -> Path:
    folder.mkdir(exist_ok=True)
    lines = ["feeds:"] + [f'  - id: {fid}\n    url: "{url}"\n    interval: 300' for fid, url in feeds.items()]
    (folder / "sources.yaml").write_text("\n".join(lines) + "\n" if feeds else "feeds: []\n")
    (folder / "watchlists.yaml").write_text("watchlists: {}\n")
    (folder / "rules.yaml").write_text(RULE)
    return folder


class Rig:
    def __init__(self, bot: Readout, recorder: Recorder, clock: ManualClock, feeds: FeedServer, hub: WebSubHub) -> None:
        self.bot, self.recorder, self.clock, self.feeds, self.hub = bot, recorder, clock, feeds, hub
        self.topic = feeds.url("/wire.xml")
        self.rows = WebSubStore(bot.store.engine)

    @property
    def websub(self) -> object:
        assert self.bot.websub is not None
        return self.bot.websub

    def live(self) -> bool:
        assert self.bot.websub is not None
        return self.bot.websub.is_live("wire")

    def state(self) -> str | None:
        assert self.bot.websub is not None
        return self.bot.websub.states().get("wire")

    def callback(self) -> str:
        return self.hub.log.requests[0]["hub.callback"]

    async def poll(self) -> list[Alert]:
        source = self.bot.pipeline.ruleset.sources.feeds[0]
        alerts = await self.bot.poll_source(source)
        await self.bot.drain_once()
        return alerts


@asynccontextmanager
async def running(
    tmp_path: Path, feeds: FeedServer, hub: WebSubHub, *, link_header: bool = False, **extra: object
) -> AsyncIterator[Rig]:
    """A started bot (scheduler on: every source is polled once at start) whose only feed,
    /wire.xml, advertises the local hub."""
    topic = feeds.url("/wire.xml")
    if link_header:
        feeds.route("/wire.xml", body=rss([OLD]), content_type="application/rss+xml",
                    headers={"Link": f'<{hub.url}>; rel="hub", <{topic}>; rel="self"'})
    else:
        feeds.route("/wire.xml", body=rss([OLD], hub=hub.url, topic=topic), content_type="application/rss+xml")
    port = free_port()
    values: dict[str, object] = {
        "rules_dir": write_rules(tmp_path / "rules", {"wire": topic}),
        "rules_defaults": False,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        "poll_jitter": 0,
        "http_timeout": 2.0,
        "websub_public_url": f"http://127.0.0.1:{port}",
        "websub_listen_host": "127.0.0.1",
        "websub_listen_port": port,
        "websub_check_seconds": 0.05,
        "websub_lease_seconds": 86_400,
        "websub_verify_timeout": 60,
        "websub_retry_seconds": 120,
    }
    values.update(extra)
    settings = Settings(_env_file=None, **values)  # type: ignore[arg-type]
    clock = ManualClock(T0)
    recorder = Recorder()
    bot = await Readout.open(settings, adapters=[recorder], clock=clock)
    await bot.start()
    try:
        await wait_for(lambda: bool(feeds.requests_for("/wire.xml")), "the first poll")
        yield Rig(bot, recorder, clock, feeds, hub)
    finally:
        await bot.stop()


async def test_subscribe_verify_push_alert_then_the_poll_of_the_same_item_alerts_nothing(
    tmp_path: Path, feed_server: FeedServer, websub_hub: WebSubHub
) -> None:
    async with running(tmp_path, feed_server, websub_hub) as rig:
        await wait_for(rig.live, "the subscription is verified")
        request = websub_hub.log.requests[0]
        assert request["hub.mode"] == "subscribe" and request["hub.topic"] == rig.topic
        assert request["hub.lease_seconds"] == "86400" and len(request["hub.secret"]) >= 32
        callback = request["hub.callback"]
        assert callback.startswith(rig.bot.settings.websub_public_url + "/websub/")
        assert len(callback.rsplit("/", 1)[1]) >= 32  # unguessable, one per subscription
        assert websub_hub.log.verifications == [("subscribe", callback, 200, True)]
        report = await rig.bot.services.status()
        assert "push live" in report.sources[0].line()

        # live on push: a scheduled poll is skipped until the ceiling has passed (safety net)
        polls = len(feed_server.requests_for("/wire.xml"))
        assert await rig.poll() == [] and len(feed_server.requests_for("/wire.xml")) == polls

        pushed = rss([NEWS, OLD], hub=websub_hub.url, topic=rig.topic)
        assert await websub_hub.publish(rig.topic, pushed) == [200]
        await wait_for(lambda: len(rig.recorder.handed) == 1, "the pushed item's alert")
        assert rig.recorder.handed[0].title == NEWS[0] and rig.recorder.handed[0].rule_id == "tariff"

        # The safety-net poll later serves the same item: polled, and nothing alerted again.
        feed_server.route("/wire.xml", body=pushed, content_type="application/rss+xml")
        rig.clock.advance(1201)  # past the ceiling (4 × the 300 s interval)
        assert await rig.poll() == []
        assert len(feed_server.requests_for("/wire.xml")) == polls + 1
        # ... and the other way round: a poll sees an item first, its push later alerts nothing.
        both = rss([MORE, NEWS, OLD], hub=websub_hub.url, topic=rig.topic)
        feed_server.route("/wire.xml", body=both, content_type="application/rss+xml")
        rig.clock.advance(1201)  # past the ceiling (4 × the 300 s interval)
        assert [a.title for a in await rig.poll()] == [MORE[0]]
        assert await websub_hub.publish(rig.topic, both) == [200]
        await rig.bot.drain_once()
        assert sorted(a.title for a in await rig.bot.store.recent_alerts(limit=10)) == sorted([NEWS[0], MORE[0]])
        assert rig.recorder.handed[0].title == NEWS[0]


async def test_forged_unsigned_and_misdirected_pushes_are_ignored_and_lose_nothing(
    tmp_path: Path, feed_server: FeedServer, websub_hub: WebSubHub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.sources.websub_endpoint")
    async with running(tmp_path, feed_server, websub_hub) as rig:
        await wait_for(rig.live, "the subscription is verified")
        callback, body = rig.callback(), rss([NEWS, OLD])
        forged = "sha256=" + hmac.new(b"guessed", body, hashlib.sha256).hexdigest()
        async with httpx.AsyncClient() as client:
            for headers in ({"X-Hub-Signature": forged}, {}, {"X-Hub-Signature": "md5=00"}):
                response = await client.post(callback, content=body, headers=headers)
                assert response.status_code == 202  # 2xx per the spec, body dropped
            unknown = callback.rsplit("/", 1)[0] + "/not-a-subscription"
            assert (await client.post(unknown, content=body, headers={"X-Hub-Signature": forged})).status_code == 404
            assert (await client.get(unknown, params={"hub.mode": "subscribe", "hub.topic": rig.topic,
                                                      "hub.challenge": "c"})).status_code == 404
            # a verification for a topic or a mode we never asked for is refused
            wrong_topic = {"hub.mode": "subscribe", "hub.topic": "http://evil.example/", "hub.challenge": "c"}
            assert (await client.get(callback, params=wrong_topic)).status_code == 404
            unasked = {"hub.mode": "unsubscribe", "hub.topic": rig.topic, "hub.challenge": "c"}
            assert (await client.get(callback, params=unasked)).status_code == 404
            assert rig.live()
        await rig.bot.drain_once()
        assert rig.recorder.handed == []
        assert sum("bad signature" in r.getMessage() for r in caplog.records) == 1  # logged once
        # signed, but not a feed: accepted (2xx, nothing to retry) and dropped
        assert await websub_hub.publish(rig.topic, b"<html><body>maintenance</body></html>", "text/html") == [202]
        # the genuine push of the same body still alerts: the ignored ones marked nothing seen
        websub_hub.method = "sha512"
        assert await websub_hub.publish(rig.topic, body) == [200]
        await wait_for(lambda: len(rig.recorder.handed) == 1, "the genuine push's alert")


async def test_an_oversized_push_is_refused(tmp_path: Path, feed_server: FeedServer, websub_hub: WebSubHub) -> None:
    async with running(tmp_path, feed_server, websub_hub, http_max_bytes=20_000) as rig:
        await wait_for(rig.live, "the subscription is verified")
        huge = rss([NEWS, *((f"filler {i} " * 20, T0) for i in range(100))])
        assert len(huge) > 20_000
        assert await websub_hub.publish(rig.topic, huge) == [413]
        await rig.bot.drain_once()
        assert rig.recorder.handed == []
        assert rig.live()  # the subscription stands; the next poll fetches the feed as usual


async def test_a_hub_that_never_verifies_leaves_it_pending_then_retries_with_backoff(
    tmp_path: Path, feed_server: FeedServer, websub_hub: WebSubHub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.sources.websub_subscriber")
    websub_hub.verify = False
    async with running(tmp_path, feed_server, websub_hub) as rig:
        await wait_for(lambda: rig.state() == "pending" and len(websub_hub.log.requests) == 1, "the request")
        rig.clock.advance(61)  # past WEBSUB_VERIFY_TIMEOUT
        await wait_for(lambda: rig.state() == "failed", "the missing verification noticed")
        row = await rig.rows.get("wire")
        assert row is not None and row.attempts == 1 and "never verified" in (row.last_error or "")
        assert row.next_attempt_at == rig.clock.now() + timedelta(seconds=120)
        # polling goes on as if push did not exist
        polls = len(feed_server.requests_for("/wire.xml"))
        feed_server.route("/wire.xml", body=rss([NEWS, OLD], hub=websub_hub.url, topic=rig.topic))
        assert [a.title for a in await rig.poll()] == [NEWS[0]]
        assert len(feed_server.requests_for("/wire.xml")) == polls + 1
        await asyncio.sleep(0.2)
        assert len(websub_hub.log.requests) == 1  # not before the retry time
        rig.clock.advance(120)
        await wait_for(lambda: len(websub_hub.log.requests) == 2 and rig.state() == "pending", "the retry")
        rig.clock.advance(61)
        await wait_for(lambda: rig.state() == "failed", "the second failure")
        row = await rig.rows.get("wire")
        assert row is not None and row.attempts == 2
        assert row.next_attempt_at == rig.clock.now() + timedelta(seconds=240)  # doubled
        assert sum("never verified" in r.getMessage() for r in caplog.records) == 1  # logged once


async def test_a_hub_answering_errors_is_retried_and_recovers(
    tmp_path: Path, feed_server: FeedServer, websub_hub: WebSubHub
) -> None:
    websub_hub.fail_status = 503
    async with running(tmp_path, feed_server, websub_hub) as rig:
        await wait_for(lambda: rig.state() == "failed", "the hub's error")
        row = await rig.rows.get("wire")
        assert row is not None and "HTTP 503" in (row.last_error or "") and "bad day" in (row.last_error or "")
        websub_hub.fail_status = None
        rig.clock.advance(121)
        await wait_for(rig.live, "the retried subscription")
        row = await rig.rows.get("wire")
        assert row is not None and row.attempts == 0 and row.last_error is None


async def test_a_hub_denying_the_subscription_marks_it_failed_for_a_later_retry(
    tmp_path: Path, feed_server: FeedServer, websub_hub: WebSubHub
) -> None:
    async with running(tmp_path, feed_server, websub_hub) as rig:
        await wait_for(rig.live, "the subscription is verified")
        denied = {"hub.mode": "denied", "hub.topic": rig.topic, "hub.reason": "topic not allowed"}
        async with httpx.AsyncClient() as client:
            assert (await client.get(rig.callback(), params=denied)).status_code == 200
        await wait_for(lambda: rig.state() == "failed", "the denial recorded")
        row = await rig.rows.get("wire")
        assert row is not None and "denied" in (row.last_error or "") and "topic not allowed" in (row.last_error or "")
        rig.clock.advance(121)
        await wait_for(rig.live, "subscribed again after the backoff")


async def test_the_lease_is_renewed_before_it_lapses(
    tmp_path: Path, feed_server: FeedServer, websub_hub: WebSubHub
) -> None:
    websub_hub.lease_cap = 100  # the hub grants less than asked
    async with running(tmp_path, feed_server, websub_hub) as rig:
        await wait_for(rig.live, "the subscription is verified")
        row = await rig.rows.get("wire")
        assert row is not None and row.lease_seconds == 100 and row.lease_until == T0 + timedelta(seconds=100)
        rig.clock.advance(50)
        await asyncio.sleep(0.2)
        assert len(websub_hub.log.requests) == 1  # not yet: a quarter of the lease remains
        rig.clock.advance(30)  # 80 s in: inside the last quarter
        await wait_for(lambda: len(websub_hub.log.verifications) == 2, "the renewal")
        renewal = websub_hub.log.requests[1]
        assert renewal["hub.mode"] == "subscribe" and renewal["hub.callback"] == rig.callback()
        assert renewal["hub.secret"] == websub_hub.log.requests[0]["hub.secret"]  # in-flight pushes stay valid
        await wait_for(lambda: rig.bot.websub is not None and rig.bot.websub.is_live("wire"), "still live")
        row = await rig.rows.get("wire")
        assert row is not None and row.lease_until == T0 + timedelta(seconds=180)
        rig.clock.advance(50)  # past the first lease, inside the renewed one
        assert rig.live()


async def test_discovered_by_link_header_and_unsubscribed_when_the_source_is_removed(
    tmp_path: Path, feed_server: FeedServer, websub_hub: WebSubHub
) -> None:
    async with running(tmp_path, feed_server, websub_hub, link_header=True) as rig:
        await wait_for(rig.live, "the subscription is verified")
        assert websub_hub.log.requests[0]["hub.topic"] == rig.topic
        write_rules(tmp_path / "rules", {})
        rig.bot.reload_rules(load_rules_dir(tmp_path / "rules"))
        await wait_for(lambda: len(websub_hub.log.verifications) == 2, "the unsubscription")
        assert websub_hub.log.requests[1]["hub.mode"] == "unsubscribe"
        assert websub_hub.log.verifications[1][0] == "unsubscribe" and websub_hub.log.verifications[1][3]
        await wait_for(lambda: rig.state() is None, "the row removed")
        assert await rig.rows.all() == [] and websub_hub.active(rig.topic) == []


async def test_a_feed_that_stops_advertising_its_hub_is_unsubscribed_and_resubscribed_when_it_returns(
    tmp_path: Path, feed_server: FeedServer, websub_hub: WebSubHub
) -> None:
    async with running(tmp_path, feed_server, websub_hub) as rig:
        await wait_for(rig.live, "the subscription is verified")
        first = rig.callback()
        feed_server.route("/wire.xml", body=rss([OLD]), content_type="application/rss+xml")  # no hub now
        rig.clock.advance(1201)
        await rig.poll()
        await wait_for(lambda: len(websub_hub.log.verifications) == 2, "the unsubscription")
        assert websub_hub.log.requests[1]["hub.mode"] == "unsubscribe"
        await wait_for(lambda: rig.state() is None, "the row removed")
        assert await rig.poll() == [] and len(websub_hub.log.requests) == 2  # nothing to withdraw twice
        feed_server.route("/wire.xml", body=rss([OLD], hub=websub_hub.url, topic=rig.topic))
        await rig.poll()
        await wait_for(rig.live, "subscribed again")
        again = websub_hub.log.requests[2]
        assert again["hub.mode"] == "subscribe" and again["hub.callback"] != first  # a fresh callback and secret


async def test_two_workers_on_postgresql_one_subscribes_and_either_takes_the_push(
    pg_url: str, tmp_path: Path, feed_server: FeedServer, websub_hub: WebSubHub
) -> None:
    """The leader ("websub" lock) alone talks to the hub; the callback URL may point at the
    other worker, which answers the verification and the push from the shared database."""
    topic = feed_server.url("/wire.xml")
    feed_server.route("/wire.xml", body=rss([OLD], hub=websub_hub.url, topic=topic), content_type="application/rss+xml")
    rules = write_rules(tmp_path / "rules", {"wire": topic})
    port_a, port_b = free_port(), free_port()
    common: dict[str, object] = {
        "rules_dir": rules, "rules_defaults": False, "database_url": pg_url, "poll_jitter": 0, "http_timeout": 2.0,
        "websub_public_url": f"http://127.0.0.1:{port_b}",  # the hub reaches worker B only
        "websub_listen_host": "127.0.0.1", "websub_check_seconds": 0.05,
    }
    bots: list[Readout] = []
    recorders, clock = [Recorder(), Recorder()], ManualClock(T0)  # one clock: outbox claims compare times
    try:
        for port, recorder in zip((port_a, port_b), recorders, strict=True):
            settings = Settings(_env_file=None, websub_listen_port=port, **common)  # type: ignore[arg-type]
            bot = await Readout.open(settings, adapters=[recorder], clock=clock)
            await bot.start()
            bots.append(bot)
            if len(bots) == 1:  # A leads, and subscribes while B is not up yet: the hub cannot verify
                await wait_for(lambda: len(websub_hub.log.verifications) == 1, "a verification that fails")
        a, b = bots
        assert a.websub is not None and b.websub is not None and a.websub._leader.is_leader
        assert websub_hub.log.verifications[0][2:] == (0, False)
        clock.advance(300)  # past the verification timeout, then past the first retry
        await wait_for(lambda: a.websub is not None and a.websub.states().get("wire") == "failed", "A gives up")
        clock.advance(300)
        await wait_for(lambda: b.websub is not None and b.websub.is_live("wire"), "live, as B sees it")
        await asyncio.sleep(0.3)  # several ticks of both workers
        assert len(websub_hub.log.requests) == 2 and not b.websub._leader.is_leader
        assert websub_hub.log.verifications[1][1].startswith(f"http://127.0.0.1:{port_b}/")
        assert await websub_hub.publish(topic, rss([NEWS, OLD])) == [200]
        await wait_for(lambda: sum(len(r.handed) for r in recorders) == 1, "one alert, from either worker")
        await asyncio.sleep(0.3)
        await asyncio.gather(a.drain_once(), b.drain_once())
        assert sum(len(r.handed) for r in recorders) == 1, [(i, x.id, x.title) for i, r in enumerate(recorders) for x in r.handed]
    finally:
        for bot in bots:
            await bot.stop()


def test_probe_names_the_hub_a_feed_advertises(feed_server: FeedServer, websub_hub: WebSubHub, tmp_path: Path) -> None:
    from tests.test_cli import bot

    topic = feed_server.url("/wire.xml")
    feed_server.route("/wire.xml", body=rss([OLD], hub=websub_hub.url, topic=topic), content_type="application/rss+xml")
    rules = write_rules(tmp_path / "rules", {"wire": topic})
    res = bot("probe", "--rules", str(rules), cwd=tmp_path, env={"RULES_DEFAULTS": "false"})
    assert res.returncode == 0, res.stderr
    line = next(x for x in res.stdout.splitlines() if x.startswith("OK    wire:"))
    assert f"push via {websub_hub.url}" in line and "off: set WEBSUB_PUBLIC_URL" in line


def test_the_public_url_must_be_http_and_loses_its_trailing_slash() -> None:
    assert Settings(_env_file=None, websub_public_url="https://bot.example.com/").websub_public_url == (  # type: ignore[call-arg]
        "https://bot.example.com"
    )
    assert Settings(_env_file=None, websub_public_url=" ").websub_public_url is None  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="http:// or https://"):
        Settings(_env_file=None, websub_public_url="bot.example.com")  # type: ignore[call-arg]


async def test_a_callback_port_in_use_leaves_the_bot_polling(
    tmp_path: Path, feed_server: FeedServer, websub_hub: WebSubHub, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with running(tmp_path, feed_server, websub_hub, websub_listen_port=port) as rig:
            assert rig.bot.websub is None
            assert any("push (WebSub) off" in r.getMessage() for r in caplog.records)
            feed_server.route("/wire.xml", body=rss([NEWS, OLD], hub=websub_hub.url, topic=rig.topic))
            assert [a.title for a in await rig.poll()] == [NEWS[0]]
            assert websub_hub.log.requests == []
