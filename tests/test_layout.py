"""Word, clause and scope layout: what "negated", "denied" and "hypothetical" cover.

Sentences are real headlines and statements; the source is given beside each.
"""

from __future__ import annotations

import pytest

from bot.rules.layout import layout


def scope_at(text: str, word: str) -> str | None:
    """The kind of scope covering the first occurrence of `word` (None: asserted)."""
    start = text.index(word)
    scope = layout(text).scope_of(start, frozenset({"negated", "denied", "hypothetical"}))
    return scope.kind if scope else None


@pytest.mark.parametrize(
    ("text", "word", "kind"),
    [
        # Trump, 2019-05-13 (trump_tweets_2018_2019.csv, id 1127886309316599808)
        ("Therefore, China should not retaliate-will only get worse!", "retaliate", "negated"),
        # Apple tweet, 2019-07-26 (id in trump_tweets_2018_2019.csv)
        (
            "Apple will not be given Tariff waiver, or relief, for Mac Pro parts that are made in China.",
            "waiver",
            "negated",
        ),
        # Reuters, 2018-09-18: "no choice but to" ends the negation at "but"
        (
            "China says has no choice but to retaliate against latest U.S. tariffs",
            "retaliate",
            None,
        ),
        # SupChina 2018-05-08 "Trump phones his 'friend' Xi Jinping": no cue at all
        ("Trump phones his ‘friend’ Xi Jinping", "Xi", None),
    ],
)
def test_negation_scope(text: str, word: str, kind: str | None) -> None:
    assert scope_at(text, word) == kind


def test_a_negated_verb_of_restraint_is_a_threat_not_a_negation() -> None:
    # South China Morning Post, 2019-05-29 (bench/data/news_blind16.json): "will not rule out"
    # makes what follows possible, so rules still read it (a hypothetical, not a negation)
    text = "China will not rule out using rare earth exports as leverage in trade war with US"
    assert scope_at(text, "rare earth") == "hypothetical"
    # the same words without the negator: "rule out" alone negates (constructed contrast)
    assert scope_at("China rules out using rare earth exports as leverage", "rare earth") == "negated"
    # The Guardian, 2018-06-29 (news_headlines_labelled.json): "not back down" is no restraint
    # verb of this kind, and a plain negator still negates
    assert scope_at("Canada hits US with retaliatory tariffs: 'We will not back down'", "back") == "negated"


def test_denial_runs_to_the_clause_end() -> None:
    # The Hill, 2019-09-13 quoting Xinhua: a denial form seen in wire copy
    text = (
        "Beijing denies it will impose new tariffs on U.S. farm goods. China exempts US soybeans."
    )
    assert scope_at(text, "tariffs") == "denied"
    assert scope_at(text, "soybeans") is None  # next sentence


def test_back_on_denies_only_after_a_push() -> None:
    # ACTV7 News, 2019-06-30 (bench/data/news_blind21.json): "Back on track" is no denial
    text = "'Back on track': Trump, Xi seal trade war truce"
    assert scope_at(text, "truce") is None
    # ... while "pushes back on" is (the form the cue was added for; constructed contrast)
    assert scope_at("China pushes back on reports of new tariffs", "tariffs") == "denied"


def test_hypothetical_and_month_may() -> None:
    # Moldova1, 2025-08-04 and a date line: "may" the verb vs "May" the month
    assert scope_at("India may face higher tariffs if talks fail", "tariffs") == "hypothetical"
    assert scope_at("Tariffs in May rose to 145%", "rose") is None


def test_abbreviations_are_one_word_and_end_no_clause() -> None:
    # issue 14's example: "China's exports to U.S. plunge 35% amid tariff truce"
    text = "China's exports to U.S. plunge 35% amid tariff truce"
    lay = layout(text)
    exports, plunge = lay.word_at(text.index("exports")), lay.word_at(text.index("plunge"))
    assert plunge - exports == 3  # to, U.S., plunge
    assert lay.clauses[exports] == lay.clauses[plunge]
