"""The poll summary line: what a quiet bot has been doing."""

from __future__ import annotations

from bot.summary import PollSummary, plural, reason_of


def test_reason_drops_what_differs_per_source() -> None:
    assert reason_of("network: GET https://a.example/feed: ConnectError: [Errno -2] Name or service not known") == (
        "network: Name or service not known"
    )
    assert reason_of("http_status: 503") == "http_status: 503"
    assert reason_of("parse") == "parse"


def test_the_line_counts_sources_items_and_alerts_with_the_commonest_failure() -> None:
    s = PollSummary(expected=4)
    s.record("a", error="a: network: GET http://a/: ConnectError: [Errno -2] Name or service not known")
    s.record("b", error="b: network: GET http://b/: ConnectError: [Errno -2] Name or service not known")
    s.record("c", error="c: http_status: 503")
    assert not s.round_complete()
    s.record("d", error=None, items=12, alerts=1)
    assert s.round_complete() and not s.all_failed
    assert s.line(next_poll=59.6) == (
        "poll summary: 1 of 4 sources ok, 3 failed (commonest: network: Name or service not known, ×2); "
        "12 items seen; 1 alert; next poll in 60s"
    )
    s.reset()
    assert s.line() == "poll summary: 0 of 0 sources ok; 0 items seen; 0 alerts"


def test_the_newest_outcome_of_a_source_counts() -> None:
    s = PollSummary()
    s.record("a", error="a: timeout: GET http://a/")
    s.record("a", error=None, items=3)
    assert s.line() == "poll summary: 1 of 1 source ok; 3 items seen; 0 alerts"
    assert plural(1, "feed") == "1 feed" and plural(2, "feed") == "2 feeds"


def test_a_tone_term_in_title_and_summary_is_listed_once() -> None:
    from bot.models import Explanation

    ex = Explanation(
        matched_terms=("tariff", "Tariff", "counter-tariff"),
        tone_terms=(("constructive", 0.6), ("Constructive", 0.6), ("candid", -0.2)),
    )
    assert ex.matched_terms == ("tariff", "counter-tariff")
    assert ex.tone_terms == (("constructive", 0.6), ("candid", -0.2))
    assert ex.summary() == "matched 'tariff', 'counter-tariff'; tone terms 'constructive' (+0.60), 'candid' (-0.20)"
