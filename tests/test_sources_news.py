"""bot.sources.news: every feed dialect and every way a feed arrives broken."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.models import stable_id
from bot.sources import news
from bot.sources.config import FeedSource
from bot.sources.news import FeedError, clean_text, parse_feed

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
SEEN = datetime(2025, 4, 10, 12, 0, tzinfo=UTC)
SOURCE = FeedSource.model_validate(
    {"id": "wire", "url": "https://news.example.com/rss", "tags": ["media", "us"]}
)


def load(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


@pytest.fixture(params=["fastfeedparser", "feedparser"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test through each parser: 'feedparser' makes the fast one fail."""
    if request.param == "feedparser":
        monkeypatch.setattr(news, "_entries_fast", lambda xml: None)
    return str(request.param)


def test_rss20_items_become_clean_events(parser: str) -> None:
    events = parse_feed(load("rss20.xml"), source=SOURCE, seen_at=SEEN)
    titles = [e.title for e in events]
    assert titles[:4] == [
        "US to impose 25% tariffs on $200 billion of Chinese goods",
        "China firmly opposes US tariff move, will take countermeasures",
        "Readout: The two sides had candid, in-depth and constructive exchanges",
        "Hainan expands tariff-free shopping quota for island visitors",
    ]
    first = events[0]
    assert first.id == stable_id("news", "wire", "tdw-2018-09-17-0001")
    assert first.source == "wire" and first.tags == ("media", "us")
    assert first.url == "https://news.example.com/2018/09/17/tariffs-200-billion"
    assert first.published == datetime(2018, 9, 17, 22, 30, tzinfo=UTC)
    assert first.seen_at == SEEN
    assert first.summary == (
        "The administration said duties of 10% start on September 24 and rise to 25% on "
        "January 1. Beijing is expected to respond."
    )
    assert events[1].summary.startswith('The Ministry of Commerce said China "has to take')
    assert "rights & interests" in events[1].summary


def test_markup_in_titles_is_stripped_and_fake_links_dropped(parser: str) -> None:
    events = {e.id: e for e in parse_feed(load("rss20.xml"), source=SOURCE, seen_at=SEEN)}
    curbs = events[stable_id("news", "wire", "tdw-2023-07-03-0005")]
    assert curbs.title == "BREAKING: Chips & rare earths click here in new export curbs"
    assert "evil.example" not in curbs.title + curbs.summary
    assert curbs.summary == "China to restrict exports of gallium & germanium effective August 1."
    assert "alert" not in curbs.summary
    entity = events[stable_id("news", "wire", "tdw-2022-10-07-0006")]
    assert entity.url is None  # javascript: link never reaches a message


def test_rss10_rdf(parser: str) -> None:
    events = parse_feed(load("rss10.rdf"), source=SOURCE, seen_at=SEEN)
    assert [e.title for e in events] == [
        "China to raise tariffs on $60 billion of US goods from June 1",
        "Spokesperson: China will establish an unreliable entity list",
    ]
    assert events[0].published == datetime(2019, 5, 13, 11, 30, tzinfo=UTC)
    assert events[0].url == "https://ministry.example.cn/en/news/2019/0513.shtml"


def test_atom(parser: str) -> None:
    events = parse_feed(load("atom.xml"), source=SOURCE, seen_at=SEEN)
    assert events[0].title == (
        "Modifying Reciprocal Tariff Rates to Reflect Trading Partner Retaliation & Alignment"
    )
    assert events[0].summary.endswith("the PRC ad valorem rate is increased to 125 percent.")
    assert "…" in events[0].summary  # &hellip; unescaped
    assert events[0].published == datetime(2025, 4, 9, 17, 20, tzinfo=UTC)
    assert events[1].title == "Fact Sheet: President Pauses Reciprocal Tariffs for 90 Days"
    assert events[1].published == datetime(2025, 4, 9, 18, 0, tzinfo=UTC)  # only <updated>
    assert "90-day pause" in events[1].summary
    assert events[1].id == stable_id(
        "news", "wire", "https://whitehouse.example/fact-sheets/2025/04/pause/"
    )


def test_same_feed_twice_gives_the_same_ids() -> None:
    one = parse_feed(load("rss20.xml"), source=SOURCE, seen_at=SEEN)
    two = parse_feed(load("rss20.xml"), source=SOURCE, seen_at=datetime(2025, 4, 11, tzinfo=UTC))
    assert [e.id for e in one] == [e.id for e in two]


def test_id_falls_back_to_link_then_title() -> None:
    body = (
        b'<rss version="2.0"><channel><title>x</title>'
        b"<item><title>Only a link</title><link>https://x.example/a</link></item>"
        b"<item><title>Only a title</title></item>"
        b"</channel></rss>"
    )
    events = parse_feed(body, source=SOURCE, seen_at=SEEN)
    assert [e.id for e in events] == [
        stable_id("news", "wire", "https://x.example/a"),
        stable_id("news", "wire", "Only a title"),
    ]


def test_duplicate_guids_make_one_event(parser: str) -> None:
    events = parse_feed(load("duplicate_guids.xml"), source=SOURCE, seen_at=SEEN)
    assert [e.title for e in events] == [
        "US and China agree to 90-day tariff truce",
        "Huawei CFO arrested in Canada",
    ]


def test_missing_and_unparseable_dates_are_none(parser: str) -> None:
    events = parse_feed(load("missing_dates.xml"), source=SOURCE, seen_at=SEEN)
    assert len(events) == 2
    assert all(e.published is None for e in events)
    assert all(e.time == SEEN for e in events)


def test_future_dates_are_clamped_to_seen_at(parser: str) -> None:
    events = parse_feed(load("future_dates.xml"), source=SOURCE, seen_at=SEEN)
    assert events[0].published == SEEN
    assert events[1].published == datetime(2025, 4, 9, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("latin1_mislabeled.xml", None),  # declares utf-8, bytes are latin-1
        ("latin1_undeclared.xml", None),  # no declaration at all
        ("utf8_declared_latin1.xml", None),  # declares iso-8859-1, bytes are utf-8
        ("latin1_mislabeled.xml", "application/rss+xml; charset=utf-8"),  # header lies too
        ("utf8_declared_latin1.xml", "text/xml; charset=ISO-8859-1"),
    ],
)
def test_lying_charsets_still_give_the_right_text(name: str, content_type: str | None) -> None:
    (event,) = parse_feed(load(name), source=SOURCE, seen_at=SEEN, content_type=content_type)
    assert event.title == "Pékin réplique aux droits de douane américains - « riposte »"
    assert event.summary == "Café & crème: 25 % de taxes"


def test_utf16_with_bom() -> None:
    body = load("rss10.rdf").decode("utf-8").replace('encoding="utf-8"', 'encoding="utf-16"')
    events = parse_feed(body.encode("utf-16"), source=SOURCE, seen_at=SEEN)
    assert len(events) == 2


def test_truncated_feed_keeps_the_complete_items() -> None:
    events = parse_feed(load("truncated.xml"), source=SOURCE, seen_at=SEEN)
    assert [e.url for e in events] == [
        "https://news.example.com/truce",
        "https://news.example.com/soy",
    ]
    assert events[0].title == "Tariff truce extended by 90 days"


def test_empty_channel_is_an_empty_list() -> None:
    assert parse_feed(load("empty_channel.xml"), source=SOURCE, seen_at=SEEN) == []


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (
            load("html_page.html"),
            "text/html; charset=utf-8",
            "HTML page, not a feed (content-type text/html)",
        ),
        (b"<html><body><item>not really</item></body></html>", None, "HTML page"),
        (load("malformed.xml"), None, "malformed feed"),
        (b"", None, "empty body"),
        (b"   \n\t ", None, "empty body"),
        (b'{"items": []}', "application/json", "not XML"),
        (b"\x00\x01\x02\xff\xfe binary", None, "not XML"),
        (b"<?xml version='1.0'?><opml><body/></opml>", None, "root element <opml>"),
    ],
)
def test_unreadable_bodies_raise_feed_error(
    body: bytes, content_type: str | None, message: str
) -> None:
    with pytest.raises(FeedError) as info:
        parse_feed(body, source=SOURCE, seen_at=SEEN, content_type=content_type)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_naive_seen_at_is_taken_as_utc() -> None:
    events = parse_feed(load("future_dates.xml"), source=SOURCE, seen_at=datetime(2025, 4, 10, 12))
    assert events[0].published == SEEN


def test_long_summaries_are_capped() -> None:
    text = "tariff " * 2_000
    body = (
        '<rss version="2.0"><channel><item><title>t</title><guid>g</guid>'
        f"<description>{text}</description></item></channel></rss>"
    )
    (event,) = parse_feed(body.encode(), source=SOURCE, seen_at=SEEN)
    assert len(event.summary) == news.MAX_SUMMARY_CHARS
    assert event.summary.endswith("…")


def test_untitled_item_takes_its_title_from_the_summary() -> None:
    body = (
        b'<rss version="2.0"><channel><item><guid>g</guid>'
        b"<description>&lt;p&gt;Beijing suspends soybean purchases&lt;/p&gt;</description>"
        b"</item></channel></rss>"
    )
    (event,) = parse_feed(body, source=SOURCE, seen_at=SEEN)
    assert event.title == "Beijing suspends soybean purchases"
    assert event.summary == ""


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("<p>One</p><p>Two</p>", "One Two"),
        ("AT&amp;T &lt;tag&gt;", "AT&T <tag>"),
        ("  spaced \n\n out\t", "spaced out"),
        ("S&P 500 < 5000", "S&P 500 < 5000"),
        ("<style>p{}</style>kept<script>x()</script>", "kept"),
    ],
)
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw, 100) == clean


_XMLISH = st.lists(
    st.sampled_from(
        [
            b"<rss>",
            b"</rss>",
            b"<channel>",
            b"<item>",
            b"</item>",
            b"<title>",
            b"</title>",
            b"<feed>",
            b"<entry>",
            b"<rdf:RDF>",
            b"<?xml version='1.0' encoding='utf-16'?>",
            b"<?xml encoding='rot13'?>",
            b"<![CDATA[",
            b"]]>",
            b"&amp;",
            b"&#0;",
            b"&bogus;",
            b"\xff\xfe",
            b"\xef\xbb\xbf",
            b"<!--",
            b"<html>",
            b"<guid>",
            b"<link>javascript:x</link>",
            b"<pubDate>9999</pubDate>",
            b"\x00",
            b"tariff",
        ]
    )
    | st.binary(max_size=8),
    max_size=30,
).map(b"".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.binary(max_size=300) | _XMLISH,
    content_type=st.none()
    | st.sampled_from(
        [
            "text/xml; charset=utf-16",
            "text/html",
            "application/rss+xml; charset=bogus",
            "text/xml; charset=hex",
        ]
    ),
)
def test_garbage_raises_only_feed_error(body: bytes, content_type: str | None) -> None:
    try:
        events = parse_feed(body, source=SOURCE, seen_at=SEEN, content_type=content_type)
    except FeedError:
        return
    assert all(e.source == "wire" and e.title for e in events)
