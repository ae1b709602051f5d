"""Where words and clauses are in a text, and which stretches are negated, denied or hypothetical.

Rules need more than "is the word there": "White House denies reports of new
China tariffs" and "US has no plans to raise tariffs" mention tariffs without
announcing any; "3.2% GDP was greatly helped by Tariffs" has a percentage that
is not a tariff rate. `layout(text)` computes, once per text (cached), the word
offsets, a clause number per word (clauses end at . ; ! ? newlines, dashes
between spaces, and " | "), and *scopes*: the stretch after a cue up to the end
of its clause (and at most `SCOPE_WORDS` words), of three kinds:

- `negated`: not, no, never, without, ...n't, "rule(s|d) out", neither/nor;
- `denied`: deny/denies/denied, dismiss(es), refute(s), rejects reports/claims,
  "pushes back on", "false report";
- `hypothetical`: if, would, could, might, may, considering, weighs, mulls.

A negation or hypothetical scope also ends at a comma or at a conjunction that
starts a new thought ("but", "while", "as", "after", "amid"); a denial runs to
the clause end ("denies reports that it will raise tariffs on China").

The cue lists are small, closed-class English; they were checked against the
real headlines and readout sentences in the evaluation set (docs/quality.md),
not tuned per sentence. Everything here is plain Python over `\\w+` tokens (no
regex lookaround), so it carries over unchanged when matching moves to RE2.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

ScopeKind = Literal["negated", "denied", "hypothetical"]
SCOPE_KINDS: tuple[ScopeKind, ...] = ("negated", "denied", "hypothetical")
SCOPE_WORDS = 8
"""A negation or hypothetical reaches at most this many words past its cue."""
DENIAL_WORDS = 14

_WORD = re.compile(r"(?:[A-Za-z]\.){2,}|\w+(?:'\w+)?")
"""A word: "U.S." and "U.K." are one word (and their dots end no sentence)."""
_ABBREVIATION = re.compile(r"(?:[A-Za-z]\.){2,}")
_CLAUSE_BREAK = re.compile(r"[.;!?](?:\s|$)|\n|\s[-|]\s|\.\.\.+")
_SOFT_BREAK = re.compile(r",|:")
_SOFT_WORDS = frozenset({"but", "while", "as", "after", "amid", "though", "although", "whereas"})

_NEG_WORDS = frozenset(
    {"not", "no", "never", "without", "neither", "nor", "cannot", "none", "nothing", "hardly"}
)
_NEG_PAIRS = frozenset({("rule", "out"), ("rules", "out"), ("ruled", "out"), ("ruling", "out")})
_RESTRAINT_WORDS = frozenset({"rule", "rules", "ruling", "hesitate", "hesitating", "exclude", "excluding"})
"""A negated verb of restraint is a threat, not a negation: "will not rule out using rare
earths as leverage", "won't hesitate to retaliate" (the tone lexicon reads them the same way)."""
_DENY_WORDS = frozenset(
    {
        "deny",
        "denies",
        "denied",
        "denying",
        "refute",
        "refutes",
        "refuted",
        "debunks",
        "dismiss",
        "dismisses",
        "dismissed",
    }
)
_DENY_PAIRS = frozenset(
    {
        ("dismisses", "reports"),
        ("dismissed", "reports"),
        ("rejects", "reports"),
        ("rejected", "reports"),
        ("rejects", "claims"),
        ("rejected", "claims"),
        ("back", "on"),  # "pushes back on reports of ..."
        ("false", "report"),
        ("false", "reports"),
        ("fake", "news"),
    }
)
_HYPO_WORDS = frozenset(
    {
        "if",
        "would",
        "could",
        "might",
        "may",
        "considering",
        "considers",
        "consider",
        "weighs",
        "weighing",
        "mulls",
        "mulling",
        "unless",
    }
)


@dataclass(frozen=True, slots=True)
class Scope:
    kind: ScopeKind
    cue: str
    start: int
    """Character offset where the scope starts (just after the cue)."""
    end: int


@dataclass(frozen=True, slots=True)
class Layout:
    """Word offsets, clause numbers and scopes of one text."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]
    clauses: tuple[int, ...]
    scopes: tuple[Scope, ...]

    def word_at(self, offset: int) -> int:
        """Index of the word containing or preceding `offset` (0 if none)."""
        return max(bisect.bisect_right(self.starts, offset) - 1, 0)

    def scope_of(self, start: int, kinds: frozenset[str]) -> Scope | None:
        """The scope of one of `kinds` that covers a match starting at `start`, if any."""
        for scope in self.scopes:
            if scope.kind in kinds and scope.start <= start < scope.end:
                return scope
        return None


def _is_negator(word: str) -> bool:
    return word in _NEG_WORDS or word.endswith("n't")


@lru_cache(maxsize=512)
def layout(text: str) -> Layout:
    """The layout of `text` (cached: the same text is read by many rules)."""
    words = [(m.start(), m.end(), m.group(0).lower()) for m in _WORD.finditer(text)]
    starts = tuple(w[0] for w in words)
    ends = tuple(w[1] for w in words)
    abbreviations = [(m.start(), m.end()) for m in _ABBREVIATION.finditer(text)]
    hard = [
        m.start()
        for m in _CLAUSE_BREAK.finditer(text)
        if not any(a <= m.start() < b for a, b in abbreviations)
    ]
    soft = sorted([m.start() for m in _SOFT_BREAK.finditer(text)] + hard)
    clauses = tuple(bisect.bisect_right(hard, s) for s in starts)
    scopes: list[Scope] = []
    lowered = [w[2] for w in words]
    for i, word in enumerate(lowered):
        pair = (lowered[i - 1], word) if i else None
        if word in _DENY_WORDS or (pair in _DENY_PAIRS and _denial_pair(lowered, i)):
            kind: ScopeKind = "denied"
        elif _is_negator(word) and _restraint_follows(lowered, i):
            kind = "hypothetical"
        elif pair in _NEG_PAIRS and i > 1 and _is_negated_restraint(lowered, i - 1):
            continue  # "rule out" in "will not rule out": the negator's scope already covers it
        elif _is_negator(word) or pair in _NEG_PAIRS:
            kind = "negated"
        elif word in _HYPO_WORDS and not _month_may(lowered, i):
            kind = "hypothetical"
        else:
            continue
        cue = (
            word
            if pair is None or (pair not in _DENY_PAIRS and pair not in _NEG_PAIRS)
            else " ".join(pair)
        )
        scopes.append(Scope(kind, cue, ends[i], _scope_end(i, kind, words, hard, soft, len(text))))
    return Layout(starts, ends, clauses, tuple(scopes))


_PUSH = frozenset({"push", "pushes", "pushed", "pushing"})


def _denial_pair(lowered: list[str], i: int) -> bool:
    """ "back on" denies only after a push ("pushes back on reports …"), not in "Back on track"."""
    return (lowered[i - 1], lowered[i]) != ("back", "on") or (i > 1 and lowered[i - 2] in _PUSH)


def _restraint_follows(lowered: list[str], i: int) -> bool:
    """A verb of restraint within two words after the negator at `i` ("not rule out",
    "does not want to rule out" is too far and stays a negation)."""
    return any(w in _RESTRAINT_WORDS for w in lowered[i + 1 : i + 3])


def _is_negated_restraint(lowered: list[str], i: int) -> bool:
    """The restraint verb at `i` has a negator at most two words before it."""
    return any(_is_negator(w) for w in lowered[max(0, i - 2) : i])


_MONTH_BEFORE = frozenset(
    {"in", "on", "since", "by", "until", "from", "early", "late", "mid", "of"}
)


def _month_may(lowered: list[str], i: int) -> bool:
    """ "May" the month ("in May", "May 10"), not the modal verb."""
    if lowered[i] != "may":
        return False
    after = lowered[i + 1] if i + 1 < len(lowered) else ""
    return after.isdigit() or (i > 0 and lowered[i - 1] in _MONTH_BEFORE)


def _scope_end(
    i: int,
    kind: ScopeKind,
    words: list[tuple[int, int, str]],
    hard: list[int],
    soft: list[int],
    length: int,
) -> int:
    """Where the scope of the cue at word `i` ends (a character offset)."""
    cue_end = words[i][1]
    breaks = hard if kind == "denied" else soft
    j = bisect.bisect_left(breaks, cue_end)
    end = breaks[j] if j < len(breaks) else length
    reach = DENIAL_WORDS if kind == "denied" else SCOPE_WORDS
    last = min(i + reach, len(words) - 1)
    end = min(end, words[last][1]) if last > i else min(end, cue_end)
    if kind != "denied":
        for k in range(i + 1, last + 1):
            if words[k][2] in _SOFT_WORDS:
                end = min(end, words[k][0])
                break
    return end
