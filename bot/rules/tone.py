"""Readout tone: hope vs friction, scored from a weighted phrase lexicon.

Official readouts speak in code: "candid", "constructive", "reached important
consensus" signal hope; "frank exchanges", "serious concerns", "firmly opposes",
"countermeasures", "fight to the end" signal friction. Each lexicon phrase has a
weight (positive = hope, negative = friction); the raw score is the sum of the
weights found, and `tone_score = tanh(raw)`, in [-1, 1] (one "constructive"
≈ 0.76, two strong hope terms ≈ 0.96).

Negation: if one of the few words before a phrase (same clause) is a negator
("not", "no", "never", "far from", "yet to", "failed to", "...n't"), a hope term
counts as mild friction (weight × -0.5) and a friction term counts for nothing
— diplomatic double negatives such as "does not rule out countermeasures" are
still threats, so they must not turn into hope.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.models import Tone
from bot.rules.matcher import (
    FLAGS,
    Anchor,
    Needs,
    check_text_term,
    text_term_anchor,
    text_term_pattern,
)

NEUTRAL_BAND = 0.1
"""|tone_score| below this is neutral."""
NEGATED_HOPE_FACTOR = -0.5
NEGATED_FRICTION_FACTOR = 0.0
NEGATION_WINDOW = 3
"""How many words before a phrase are searched for a negator."""
MAX_WEIGHT = 3.0

DEFAULT_LEXICON: dict[str, float] = {
    # hope
    "constructive": 1.0,
    "candid": 0.4,
    "productive": 1.0,
    "positive": 0.6,
    "consensus": 0.8,
    "important consensus": 1.0,
    "reached consensus": 1.0,
    "agreed": 0.8,
    "agreement": 0.5,
    "framework agreement": 0.9,
    "in-depth": 0.3,
    "pragmatic": 0.5,
    "mutually beneficial": 0.8,
    "win-win": 0.8,
    "mutual respect": 0.5,
    "progress": 0.6,
    "substantial progress": 1.0,
    "good progress": 0.9,
    "breakthrough": 0.9,
    "good talks": 0.7,
    "great talks": 0.7,
    "good call": 0.6,
    "great call": 0.7,
    "very good call": 0.8,
    "de-escalat*": 0.8,
    "truce": 0.6,
    "trade deal": 0.4,
    "cooperation": 0.4,
    "optimistic": 0.7,
    "goodwill": 0.6,
    "resolve differences": 0.6,
    "properly handle": 0.5,
    # friction
    "frank exchange*": -0.8,
    "frank discussion*": -0.6,
    "serious concern*": -0.9,
    "grave concern*": -0.9,
    "firmly oppose*": -1.0,
    "strongly oppose*": -1.0,
    "resolutely oppose*": -1.0,
    "countermeasure*": -1.0,
    "counter-measure*": -1.0,
    "fight to the end": -1.2,
    "bullying": -1.0,
    "bully": -0.8,
    "blackmail": -1.0,
    "coercion": -0.8,
    "economic coercion": -1.0,
    "unilateralism": -0.7,
    "protectionism": -0.6,
    "retaliat*": -0.9,
    "escalat*": -0.7,
    "strong dissatisfaction": -0.9,
    "dissatisfaction": -0.6,
    "unacceptable": -0.8,
    "red line*": -0.6,
    "stalled": -0.7,
    "broke down": -0.9,
    "collapsed": -0.8,
    "walked away": -0.8,
    "trade war": -0.4,
    "tit-for-tat": -0.7,
    "hit back": -0.8,
    "strike back": -0.8,
    "interference": -0.5,
    "hegemon*": -0.7,
    "provocation*": -0.7,
    "sanction*": -0.5,
    "disappointed": -0.6,
    "disappointing": -0.6,
    "will not back down": -0.8,
    "decoupling": -0.5,
    "unreliable entity list": -0.9,
}

_NEGATORS = frozenset(
    {
        "not",
        "no",
        "never",
        "without",
        "hardly",
        "neither",
        "nor",
        "nothing",
        "cannot",
        "none",
        "lack",
        "lacked",
        "lacking",
    }
)
_NEGATOR_PAIRS = frozenset(
    {
        ("far", "from"),
        ("failed", "to"),
        ("fail", "to"),
        ("fails", "to"),
        ("yet", "to"),
        ("less", "than"),
    }
)
_CLAUSE_END = re.compile(r"[.;:!?\n]")
_WORDS = re.compile(r"[\w']+")


def check_lexicon_weight(weight: float) -> float:
    if not -MAX_WEIGHT <= weight <= MAX_WEIGHT or math.isnan(weight):
        raise ValueError(f"lexicon weight must be between -{MAX_WEIGHT:g} and {MAX_WEIGHT:g}")
    return weight


def build_lexicon(
    extra: Mapping[str, float] | None = None, *, replace: bool = False
) -> dict[str, float]:
    """The defaults (unless `replace`) overridden/extended by a rule's own phrases."""
    lexicon: dict[str, float] = {} if replace else dict(DEFAULT_LEXICON)
    for phrase, weight in (extra or {}).items():
        lexicon[" ".join(check_text_term(phrase).lower().split())] = check_lexicon_weight(
            float(weight)
        )
    return lexicon


@dataclass(frozen=True, slots=True)
class ToneResult:
    tone: Tone
    score: float
    raw: float
    terms: tuple[tuple[str, float], ...]


class ToneScorer:
    """Scores text against one lexicon (compiled into a single alternation)."""

    def __init__(self, lexicon: Mapping[str, float]) -> None:
        self.lexicon = {k: v for k, v in lexicon.items() if v != 0}
        phrases = sorted(self.lexicon, key=lambda p: -len(text_term_pattern(p)))
        self._phrases = phrases
        self._regex = (
            re.compile(
                "|".join(f"(?P<t{i}>{text_term_pattern(p)})" for i, p in enumerate(phrases)), FLAGS
            )
            if phrases
            else None
        )

    def needs(self) -> Needs:
        """Anchors of which one must occur for any phrase to score."""
        anchors: set[Anchor] = set()
        for phrase in self._phrases:
            anchor = text_term_anchor(phrase)
            if anchor is None:
                return None
            anchors.add(anchor)
        return frozenset(anchors)

    def score(self, text: str) -> ToneResult:
        raw = 0.0
        terms: list[tuple[str, float]] = []
        if self._regex is not None:
            for m in self._regex.finditer(text):
                phrase = self._phrases[int(m.lastgroup[1:])]  # type: ignore[index]
                weight = self.lexicon[phrase]
                found = " ".join(m.group(0).lower().split())
                negator = _negator_before(text, m.start())
                if negator:
                    weight *= NEGATED_HOPE_FACTOR if weight > 0 else NEGATED_FRICTION_FACTOR
                    at = text.lower().rfind(negator.split()[0], max(0, m.start() - 80), m.start())
                    found = (
                        " ".join(text[at : m.end()].lower().split())
                        if at >= 0
                        else f"{negator} {found}"
                    )
                weight = round(weight + 0.0, 4)
                raw += weight
                terms.append((found, weight))
        score = round(math.tanh(raw), 4)
        if score >= NEUTRAL_BAND:
            tone = Tone.hope
        elif score <= -NEUTRAL_BAND:
            tone = Tone.friction
        else:
            tone = Tone.neutral
        return ToneResult(tone=tone, score=score, raw=round(raw, 4), terms=tuple(terms))


def _negator_before(text: str, start: int) -> str | None:
    """The negator among the last few words of the clause before `start`, if any."""
    before = text[max(0, start - 80) : start]
    cut = None
    for cut in _CLAUSE_END.finditer(before):
        pass
    if cut is not None:
        before = before[cut.end() :]
    words: list[str] = [w.lower() for w in _WORDS.findall(before)][-NEGATION_WINDOW:]
    for i in range(len(words) - 1, -1, -1):  # nearest first
        word = words[i]
        if i > 0 and (words[i - 1], word) in _NEGATOR_PAIRS:
            return f"{words[i - 1]} {word}"
        if word in _NEGATORS or word.endswith("n't"):
            return word
    return None
