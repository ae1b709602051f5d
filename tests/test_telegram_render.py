"""Telegram HTML: feed text always escaped, links only to http(s), splits never cut a tag.

Well-formedness is checked with the fake Bot API's parser, which accepts what
Telegram's HTML mode accepts and nothing else.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.adapters.telegram_render import (
    MESSAGE_LIMIT,
    alert_lines,
    esc,
    explain_lines,
    render_alert,
    render_digest,
    safe_url,
    split_lines,
    utf16_len,
)
from bot.models import Alert, Explanation, Severity, Tone, WatchItem, alert_id
from tests.support.fake_telegram import HtmlError, parse_telegram_html

T0 = datetime(2025, 4, 2, 20, 0, tzinfo=UTC)
CHIPS = WatchItem(
    name="chips",
    title="Semiconductors",
    why="Export controls & retaliation <hit> sales",
    tickers=("NVDA", "AMD"),
)
SOY = WatchItem(
    name="agriculture", title="Agriculture", why="China buys US soybeans", tickers=("ADM", "BG")
)


def make_alert(**kw: object) -> Alert:
    values: dict[str, object] = {
        "id": alert_id("tariff-announcement", "ev"),
        "rule_id": "tariff-announcement",
        "rule_description": "New or higher tariffs announced",
        "severity": Severity.warning,
        "kind": "news",
        "event_id": "ev",
        "key": "k",
        "title": "US raises tariffs on China",
        "url": "https://example.com/a?x=1&y=2",
        "source": "wire",
        "event_time": T0,
        "created_at": T0,
    }
    values.update(kw)
    return Alert.model_validate(values)


def visible(html_text: str) -> str:
    return parse_telegram_html(html_text)[0]


def test_headline_markup_shows_as_text() -> None:
    title = 'Tariffs <b>doubled</b> & <a href="http://evil.example">click</a> AT&T'
    [message] = render_alert(make_alert(title=title))
    text, links = parse_telegram_html(message)
    assert title in text
    # the real URL, attribute-escaped, and no other
    assert links == ["https://example.com/a?x=1&y=2"]
    assert "&amp;" in message and "<b>doubled" not in message


def test_link_only_for_http_urls_and_attribute_escaped() -> None:
    for bad in (
        "javascript:alert(1)",
        "data:text/html,hi",
        "ftp://x.example/f",
        "http://",
        "https://a b.example",
    ):
        [message] = render_alert(make_alert(url=bad))
        assert parse_telegram_html(message)[1] == []
    [message] = render_alert(make_alert(url='https://example.com/"><b>x</b>'))
    _, links = parse_telegram_html(message)
    assert links == ['https://example.com/"><b>x</b>']
    assert safe_url(" https://ok.example/p ") == "https://ok.example/p"


def test_alert_message_has_all_parts() -> None:
    alert = make_alert(
        severity=Severity.critical,
        tone=Tone.friction,
        tone_score=-0.625,
        watchlist=(CHIPS, SOY),
        message="Tariff rate now 145% <per> the notice",
    )
    [message] = render_alert(alert)
    text = visible(message)
    lines = text.splitlines()
    assert lines[0] == "🔴 CRITICAL · New or higher tariffs announced"
    assert lines[1] == "US raises tariffs on China"
    assert "Tariff rate now 145% <per> the notice" in lines
    assert "Tone: friction (-0.62)" in lines or "Tone: friction (-0.63)" in lines
    assert "Source: wire · 2025-04-02 20:00 UTC" in lines
    assert "• Semiconductors: NVDA, AMD" in lines
    assert "  Export controls & retaliation <hit> sales" in lines
    assert "• Agriculture: ADM, BG" in lines
    assert lines[-1] == f"#{alert.id[:8]} · rule tariff-announcement"


def test_no_tone_line_when_unset() -> None:
    text = visible(render_alert(make_alert())[0])
    assert "Tone:" not in text and "Watch:" not in text


def test_explanation_lists_words_and_weights() -> None:
    alert = make_alert(
        tone=Tone.hope,
        tone_score=0.5,
        explanation=Explanation(
            matched_terms=("tariff*", "<x>"),
            tone_terms=(("constructive", 0.6), ("deal", 0.3)),
            parts=("a", "b"),
        ),
    )
    text = visible("\n".join(explain_lines(alert)))
    assert "Matched: tariff*, <x>" in text
    assert "Tone: hope (+0.50) from constructive (+0.60), deal (+0.30)" in text
    assert "Confirmed by: a + b" in text


def test_long_messages_split_on_lines_each_chunk_well_formed() -> None:
    lines = [f"<b>line {i}</b> {esc('a & b < c')} <i>{'x' * 90}</i>" for i in range(200)]
    chunks = split_lines(lines)
    assert len(chunks) > 1
    for chunk in chunks:
        assert utf16_len(chunk) <= MESSAGE_LIMIT
        parse_telegram_html(chunk)
    assert "\n".join(chunks) == "\n".join(lines)


def test_monster_line_cut_outside_entities() -> None:
    line = "<b>" + esc("&" * 3000) + "</b>"  # 15000 characters of &amp;
    chunks = split_lines([line], limit=1000)
    assert all(utf16_len(c) <= 1000 for c in chunks)
    assert "".join(visible(c) for c in chunks) == "&" * 3000


def test_emoji_counted_as_two_units() -> None:
    chunks = split_lines(["😀" * 3000], limit=MESSAGE_LIMIT)
    assert [utf16_len(c) for c in chunks] == [4096, 1904]


def test_digest_summarises_each_alert() -> None:
    alerts = [
        make_alert(id=f"{i:024x}", title=f"Headline {i} <b>&</b>", watchlist=(CHIPS,))
        for i in range(60)
    ]
    chunks = render_digest(alerts)
    text = "\n".join(visible(c) for c in chunks)
    assert text.startswith("🌙 Quiet hours are over: 60 alerts held")
    assert text.count("Headline") == 60 and "Headline 7 <b>&</b>" in text
    assert all(utf16_len(c) <= MESSAGE_LIMIT for c in chunks)


@settings(max_examples=200, deadline=None)
@given(
    title=st.text(min_size=1, max_size=300),
    source=st.text(min_size=1, max_size=40),
    message=st.none() | st.text(max_size=200),
    url=st.none()
    | st.text(max_size=60)
    | st.from_regex(r"https?://[a-z]{1,10}\.example/[\x21-\x7e]{0,30}", fullmatch=True),
)
def test_any_feed_text_renders_to_valid_html(
    title: str, source: str, message: str | None, url: str | None
) -> None:
    alert = make_alert(title=title, source=source, message=message, url=url, watchlist=(CHIPS,))
    for chunk in render_alert(alert):
        try:
            parse_telegram_html(chunk)
        except HtmlError as exc:  # pragma: no cover - the failure message is the point
            raise AssertionError(f"invalid HTML {exc}: {chunk!r}") from None
    lines = alert_lines(alert)
    assert len(lines) >= 4


def test_title_whitespace_collapsed_and_clipped() -> None:
    text = visible(render_alert(make_alert(title="a\n\n  b" + "c" * 5000))[0])
    line = text.splitlines()[1]
    assert line.startswith("a b") and line.endswith("…") and len(line) == 1000
