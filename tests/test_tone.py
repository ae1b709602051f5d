"""Readout tone scoring: lexicon weights, tanh scale, negation."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.models import Tone
from bot.rules.tone import DEFAULT_LEXICON, ToneScorer, build_lexicon

SCORER = ToneScorer(DEFAULT_LEXICON)


@pytest.mark.parametrize(
    "text",
    [
        "Both sides held candid, in-depth and constructive talks and reached important consensus",
        "Bessent says talks with He Lifeng were productive",
        "The two sides agreed to extend the truce",
    ],
)
def test_hope(text: str) -> None:
    result = SCORER.score(text)
    assert result.tone is Tone.hope
    assert result.score > 0.5


@pytest.mark.parametrize(
    "text",
    [
        "China firmly opposes the US move and will take countermeasures",
        "MOFCOM: China will fight to the end against US bullying",
        "The two sides had frank exchanges; China raised serious concerns",
    ],
)
def test_friction(text: str) -> None:
    result = SCORER.score(text)
    assert result.tone is Tone.friction
    assert result.score < -0.5


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("The talks were not constructive", "not constructive"),
        ("There was no consensus on fentanyl", "no consensus"),
        ("Officials said the meeting was far from productive", "far from productive"),
        ("The two sides never agreed on a date", "never agreed"),
        ("The talks weren't constructive", "weren't constructive"),
        ("Negotiators have yet to reach consensus", "yet to reach consensus"),
    ],
)
def test_negated_hope_is_not_hope(text: str, term: str) -> None:
    result = SCORER.score(text)
    assert result.tone is not Tone.hope
    assert result.score < 0
    assert result.terms[0][0] == term
    assert result.terms[0][1] < 0


def test_negated_hope_weight_is_flipped_and_halved() -> None:
    result = SCORER.score("not constructive")
    assert result.terms == (("not constructive", -0.5),)
    assert result.score == round(math.tanh(-0.5), 4)


def test_double_negative_stays_a_threat() -> None:
    # a diplomatic double negative is still a threat: the friction term keeps its weight
    result = SCORER.score("Beijing does not rule out countermeasures")
    assert result.terms == (("countermeasures", -1.0),)
    assert result.tone is Tone.friction


def test_negation_stops_at_clause_end() -> None:
    result = SCORER.score("No surprises. The talks were constructive")
    assert result.terms == (("constructive", 1.0),)
    assert result.tone is Tone.hope


def test_longest_phrase_wins_and_is_counted_once() -> None:
    result = SCORER.score("China expressed strong dissatisfaction")
    assert result.terms == (("strong dissatisfaction", -0.9),)


def test_score_is_tanh_of_the_sum() -> None:
    result = SCORER.score("constructive and productive, positive")
    assert result.raw == pytest.approx(2.6)
    assert result.score == round(math.tanh(2.6), 4)


def test_neutral_without_terms() -> None:
    result = SCORER.score("Markets were closed for the holiday")
    assert (result.tone, result.score, result.terms) == (Tone.neutral, 0.0, ())


def test_lexicon_override_and_replace() -> None:
    lexicon = build_lexicon({"Candid": -0.5, "phase one": 0.9})
    assert lexicon["candid"] == -0.5
    assert lexicon["phase one"] == 0.9
    assert lexicon["constructive"] == DEFAULT_LEXICON["constructive"]
    only = build_lexicon({"phase one": 0.9}, replace=True)
    assert only == {"phase one": 0.9}
    with pytest.raises(ValueError, match="between"):
        build_lexicon({"x": 5})
    assert ToneScorer(lexicon).score("candid talks").tone is Tone.friction


def test_needs_cover_every_phrase() -> None:
    needs = SCORER.needs()
    assert needs is not None
    assert {a.text for a in needs} >= {"constructive", "countermeasure", "fight"}


@given(
    st.lists(
        st.sampled_from([*DEFAULT_LEXICON, "not", "no", "never", "far from", ".", "talks"]),
        max_size=30,
    )
)
def test_score_is_bounded(words: list[str]) -> None:
    result = SCORER.score(" ".join(w.rstrip("*") for w in words))
    assert -1.0 <= result.score <= 1.0
    if result.tone is Tone.hope:
        assert result.score >= 0.1


# ---------------------------------------------------------------------------
# The diplomatic register on real statements (source beside each)


@pytest.mark.parametrize(
    ("text", "tone"),
    [
        # MOFCOM via Shine (Xinhua), 2025-02-02, https://www.shine.cn/news/nation/2502026607/
        (
            "China is strongly dissatisfied with and firmly opposes the US decision to impose an "
            "additional 10-percent tariff on goods imported from China",
            Tone.friction,
        ),
        # Foreign Ministry (Lin Jian) via Korea JoongAng Daily, 2025-04-07
        ("Threats and pressure are not the right way to deal with China", Tone.friction),
        # Korea JoongAng Daily headline, 2025-04-07
        ("China calls U.S. tariffs 'protectionist bullying'", Tone.friction),
        # The Business Times (Singapore), 2019-08-06: a designation, no adjective, still friction
        ("US designates China as a 'currency manipulator'", Tone.friction),
        # Sassy Qarla, 2018-12-03 (headline set): every form of a praise verb counts
        ("China, US hail trade truce but key obstacles still remain", Tone.hope),
        # CGTN via myglobalnews.net, 2025-07-30 (Stockholm talks)
        (
            "Over two days of candid, in-depth discussions, both sides reviewed progress since the "
            "Geneva and London rounds of talks and affirmed their commitment to key agreements.",
            Tone.hope,
        ),
        # Xinhua via vikingshost.com, 2019-02-01
        (
            "The delegation, headed by Chinese Vice Premier Liu He, held candid, specific and "
            "constructive discussions on topics of common concern with the U.S. team",
            Tone.hope,
        ),
    ],
)
def test_register_of_real_readouts(text: str, tone: Tone) -> None:
    assert SCORER.score(text).tone is tone


def test_frank_alone_leans_to_friction_but_not_against_constructive() -> None:
    # SupChina 2018-05-08 summarising Xinhua: Xi called the talks "frank, efficient and constructive"
    assert (
        SCORER.score("Xi called last week's trade talks frank, efficient and constructive").tone
        is Tone.hope
    )
    result = SCORER.score("The two sides held frank talks")
    assert result.tone is Tone.friction
    assert result.terms == (("frank", -0.5),)


def test_negated_friction_reads_as_mild_hope() -> None:
    # Monday Newspaper, 2023-08-30 (headline set, ../shared/data)
    result = SCORER.score("U.S. Does Not Want to ‘Decouple’ From China, Commerce Chief Says")
    assert result.terms == (("not want to decouple", 0.2),)
    assert result.tone is Tone.hope


def test_never_accept_keeps_the_threat() -> None:
    # MOFCOM via SteelOrbis, 2025-04-08
    text = "exposes the blackmail nature of the US, which China will never accept"
    result = SCORER.score(text)
    assert result.tone is Tone.friction
    assert ("blackmail", -1.0) in result.terms


def test_a_refused_hope_phrase_is_negated() -> None:
    # MOFCOM spokesperson Gao Feng via Xinhua, 2019-05-30 (bench/data/readout_blind20.json): refusing an agreement is
    # no agreement, though "never accept" keeps a friction phrase's weight (test above)
    text = (
        "The Chinese side will never accept any agreement that undermines national sovereignty"
        " and dignity."
    )
    result = SCORER.score(text)
    assert result.tone is Tone.friction
    assert ("never accept any agreement", -0.2) in result.terms


def test_a_negated_verb_of_change_leaves_the_phrase_asserted() -> None:
    # newsflash.one (Reuters), 2018-11-20 (bench/data/news_blind47.json): "failed to alter" negates the
    # altering; the practices are still called unfair
    result = SCORER.score("USTR says China has failed to alter 'unfair, unreasonable' trade practices")
    assert result.tone is Tone.friction
    assert ("unfair", -0.5) in result.terms
    # ... while a negator right before the phrase still turns it ("not unfair")
    assert SCORER.score("The measures are not unfair").tone is Tone.hope


def test_sitting_idly_by_refused_is_a_threat() -> None:
    # Ambassador Xie Feng, Aspen Security Forum, 2023-07-19 (bench/data/readout_blind47.json):
    # "cannot … sit idly by" promises a reply
    result = SCORER.score("The Chinese government cannot simply sit idly by,")
    assert result.tone is Tone.friction
    assert ("idly by", -0.8) in result.terms


def test_reneging_is_a_reproach_renegotiating_is_not() -> None:
    # 2018-2019 archive (../shared/data/trump_tweets_2018_2019.csv): "renegotiated" must not read
    # as "reneged"
    assert SCORER.score("They have reneged on the commitments they made").tone is Tone.friction
    assert SCORER.score("the deal will be renegotiated").tone is Tone.neutral


def test_a_relationship_getting_more_difficult_is_friction_a_deals_difficult_points_are_not() -> None:
    # CNA (Reuters), 2022-02-25 (bench/data/news_blind54.json), against a post of the 2018-2019
    # archive (2019-01-31, trump_tweets_2018_2019.csv)
    assert SCORER.score('US trade relationship with China "getting more difficult" - USTR').tone is Tone.friction
    text = "agree on some of the long standing and more difficult points. Very comprehensive transaction"
    assert SCORER.score(text).tone is not Tone.friction


def test_quotes_around_words_do_not_hide_phrases() -> None:
    # The China Academy, 2025-06-06 (headline set, ../shared/data)
    result = SCORER.score("A Telling Detail in Trump's 'Very Good' Call with Xi")
    assert result.terms == (("very good call", 0.9),)
