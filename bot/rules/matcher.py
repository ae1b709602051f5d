"""Compiled keyword, phrase and regex matching, plus a literal prefilter.

Rule terms come in two shapes: plain text ("tariff", "fight to the end",
"retaliat*") and user regexes. Plain text is matched case-insensitively on word
boundaries, with any run of whitespace between the words of a phrase and a
trailing `*` on a word meaning "any word ending". Every term also yields an
*anchor* (a literal that must occur for the term to match) so that a whole rule
set can be prefiltered with a single tokenisation of the headline instead of
one regex search per rule (see `KeywordIndex`).

User regexes are checked before use: they must compile, must not use global
inline flags (they are spliced into alternations), and run on RE2, linear-time
by construction (see `regex_engine`), so a regex bomb cannot stall the bot.
"""

from __future__ import annotations

import re
import re._constants as sre
import re._parser as sre_parse
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from bot.rules.regex_engine import Searcher, combine, compile_user_regex, user_regex_problem

FLAGS = re.IGNORECASE
K = TypeVar("K")
TOKEN_RE = re.compile(r"\w+")
_WORD_CHAR = re.compile(r"\w")

_TRANSLATE = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u00a0": " ",
        "\u2009": " ",
        "\u202f": " ",
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\uff05": "%",
    }
)


def normalize_text(text: str) -> str:
    """Fold typographic quotes, dashes and odd spaces so "China’s" matches "China's"."""
    return text.translate(_TRANSLATE)


# ---------------------------------------------------------------------------
# Plain-text terms


def check_text_term(term: str) -> str:
    """Validate a plain word/phrase term; returns it stripped. Raises ValueError."""
    stripped = term.strip()
    if not stripped:
        raise ValueError("empty term")
    for word in stripped.split():
        body = word.removesuffix("*")
        if "*" in body:
            raise ValueError(
                f"{term!r}: '*' is only allowed at the end of a word (use a regex: entry for more)"
            )
        if not body:
            raise ValueError(f"{term!r}: a lone '*' matches nothing useful")
    return stripped


def text_term_pattern(term: str) -> str:
    """The regex for a plain term: escaped words joined by `\\s+`, on word boundaries."""
    words = term.split()
    parts: list[str] = []
    for word in words:
        if word.endswith("*"):
            parts.append(re.escape(word[:-1]) + r"\w*")
        else:
            parts.append(re.escape(word))
    pattern = r"\s+".join(parts)
    first, last = words[0], words[-1]
    if _WORD_CHAR.match(first[0]):
        pattern = r"(?<!\w)" + pattern
    if last.endswith("*") or _WORD_CHAR.match(last[-1]):
        pattern += r"(?!\w)"
    return pattern


AnchorKind = Literal["tok", "pre", "sub"]


@dataclass(frozen=True, slots=True)
class Anchor:
    """A literal that must be present for a term to match.

    `tok`: a whole word token; `pre`: a word token starting with `text`;
    `sub`: a substring of the lower-cased text (from regexes).
    """

    kind: AnchorKind
    text: str


def text_term_anchor(term: str) -> Anchor | None:
    """The most selective literal of a plain term (its longest word token)."""
    best: Anchor | None = None
    best_score = 0.0
    for word in term.lower().split():
        wild = word.endswith("*")
        tokens = TOKEN_RE.findall(word[:-1] if wild else word)
        for i, tok in enumerate(tokens):
            is_prefix = wild and i == len(tokens) - 1
            score = len(tok) - (0.5 if is_prefix else 0.0)
            if score > best_score:
                best, best_score = Anchor("pre" if is_prefix else "tok", tok), score
    return best


# ---------------------------------------------------------------------------
# User regexes

_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT)


def check_regex(pattern: str) -> str:
    """Validate a user regex for use in a rule; returns it. Raises ValueError.

    Refuses what would break splicing into alternations (global inline flags)
    and what RE2 cannot run in linear time (lookaround, backreferences, ...).
    """
    if not pattern:
        raise ValueError("empty regex")
    try:
        re.compile(pattern, FLAGS)
        re.compile(f"(?:{pattern})|(?:x)", FLAGS)
    except re.error as exc:
        raise ValueError(f"bad regex '{pattern}': {exc}") from None
    problem = user_regex_problem(pattern)
    if problem:
        raise ValueError(problem)
    return pattern


def regex_anchor(pattern: str) -> Anchor | None:
    """A literal (≥3 characters) every match of the regex must contain, if one is obvious."""
    parsed = sre_parse.parse(pattern, FLAGS)
    best = max(_literal_runs(parsed.data), key=len, default="")
    return Anchor("sub", best.lower()) if len(best) >= 3 else None


def _literal_runs(items: Sequence[tuple[Any, Any]]) -> Iterator[str]:
    """Runs of consecutive literals in the mandatory parts of a parsed regex."""
    run: list[str] = []
    for op, av in items:
        if op is sre.LITERAL:
            run.append(chr(av))
            continue
        if run:
            yield "".join(run)
            run = []
        if op is sre.SUBPATTERN:
            yield from _literal_runs(av[3])
        elif op is sre.ATOMIC_GROUP:
            yield from _literal_runs(av)
        elif (op in _REPEATS or op is sre.POSSESSIVE_REPEAT) and av[0] >= 1:
            yield from _literal_runs(av[2])
    if run:
        yield "".join(run)


# ---------------------------------------------------------------------------
# Compiled terms and conditions


@dataclass(frozen=True, slots=True)
class CompiledTerm:
    """One term: its label (as written in the rule), regex source, compiled regex and anchor."""

    label: str
    pattern: str
    regex: Searcher
    anchor: Anchor | None

    @classmethod
    def text(cls, term: str) -> CompiledTerm:
        pattern = text_term_pattern(term)
        return cls(term, pattern, re.compile(pattern, FLAGS), text_term_anchor(term))

    @classmethod
    def from_regex(cls, pattern: str) -> CompiledTerm:
        return cls(f"/{pattern}/", pattern, compile_user_regex(pattern), regex_anchor(pattern))


Needs = frozenset[Anchor] | None  # None: cannot be prefiltered (may match without any anchor)


def _alternation(terms: Sequence[CompiledTerm]) -> Searcher | None:
    if not terms:
        return None
    # longest first so "serious concerns" wins over "concerns" at the same position
    ordered = sorted(terms, key=lambda t: -len(t.pattern))
    user = [t.pattern for t in ordered if t.label.startswith("/")]
    return combine([t.pattern for t in ordered if not t.label.startswith("/")], user)


_SINGLE_TOKEN = re.compile(r"\w+")


def tokens_of(text: str) -> frozenset[str]:
    """The lower-cased word tokens of a text (what single-word terms are looked up in)."""
    return frozenset(TOKEN_RE.findall(text.lower()))


@dataclass(slots=True)
class _Part:
    """The terms and nested conditions of one any/all/none list.

    Plain single-word terms ("tariff", "Nvidia") are checked against the text's
    token set - the same thing as their word-boundary regex, at a set look-up's
    cost; everything else goes through one alternation per list.
    """

    terms: list[CompiledTerm]
    groups: list[Condition]
    words: list[tuple[str, str]] = field(init=False)  # (label, lower-case token)
    regex_terms: list[CompiledTerm] = field(init=False)
    combined: Searcher | None = field(init=False)

    def __post_init__(self) -> None:
        self.words = []
        self.regex_terms = []
        for term in self.terms:
            is_word = (
                not term.label.startswith("/") and _SINGLE_TOKEN.fullmatch(term.label) is not None
            )
            if is_word:
                self.words.append((term.label, term.label.lower()))
            else:
                self.regex_terms.append(term)
        self.combined = _alternation(self.regex_terms)

    def needs(self) -> list[Needs]:
        return [frozenset({t.anchor}) if t.anchor else None for t in self.terms] + [
            g.needs() for g in self.groups
        ]


def _found(text: str, regex: Searcher) -> list[str]:
    return [m.group(0) for m in regex.finditer(text) if m.group(0)]


class Condition:
    """any (≥1 item) AND all (every item) AND none (no item), nestable.

    `test` returns the matched text snippets (for the explanation) or None.
    """

    __slots__ = ("all", "any", "none")

    def __init__(
        self,
        any: _Part | None = None,
        all: _Part | None = None,
        none: _Part | None = None,
    ) -> None:
        self.any = any
        self.all = all
        self.none = none

    @classmethod
    def build(
        cls,
        any: Iterable[CompiledTerm | Condition] | None = None,
        all: Iterable[CompiledTerm | Condition] | None = None,
        none: Iterable[CompiledTerm | Condition] | None = None,
    ) -> Condition:
        def part(items: Iterable[CompiledTerm | Condition] | None) -> _Part | None:
            if items is None:
                return None
            items = list(items)
            return _Part(
                [i for i in items if isinstance(i, CompiledTerm)],
                [i for i in items if isinstance(i, Condition)],
            )

        return cls(part(any), part(all), part(none))

    def test(self, text: str, tokens: frozenset[str] | None = None) -> list[str] | None:
        """Matched snippets, or None. `tokens`: `tokens_of(text)` if already computed."""
        if tokens is None:
            tokens = tokens_of(text)
        if self.none is not None:
            none = self.none
            if any(tok in tokens for _, tok in none.words):
                return None
            if none.combined is not None and none.combined.search(text):
                return None
            if any(g.test(text, tokens) is not None for g in none.groups):
                return None
        matched: list[str] = []
        if self.all is not None:
            for label, tok in self.all.words:
                if tok not in tokens:
                    return None
                matched.append(label)
            for term in self.all.regex_terms:
                m = term.regex.search(text)
                if m is None:
                    return None
                matched.append(m.group(0))
            for group in self.all.groups:
                sub = group.test(text, tokens)
                if sub is None:
                    return None
                matched.extend(sub)
        if self.any is not None:
            part = self.any
            hits = [label for label, tok in part.words if tok in tokens]
            if part.combined is not None:
                hits.extend(_found(text, part.combined))
            if not hits:
                for group in part.groups:
                    sub = group.test(text, tokens)
                    if sub is not None:
                        hits = sub or [""]
                        break
                else:
                    return None
            matched.extend(h for h in hits if h)
        return _dedupe(matched)

    def needs(self) -> Needs:
        """Anchors of which at least one must be present for `test` to succeed."""
        options: list[frozenset[Anchor]] = []
        if self.any is not None:
            union: set[Anchor] = set()
            for need in self.any.needs():
                if need is None:
                    union = set()
                    break
                union |= need
            else:
                if union:
                    options.append(frozenset(union))
        if self.all is not None:
            options.extend(n for n in self.all.needs() if n)
        return min(options, key=len) if options else None


def _dedupe(items: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for item in items:
        key = " ".join(item.casefold().split())
        if key and key not in seen:
            seen[key] = " ".join(item.split())
    return list(seen.values())


# ---------------------------------------------------------------------------
# Prefilter


class KeywordIndex(Generic[K]):
    """Which items (rules) could match a text, from their anchor sets.

    One lower-casing and one `\\w+` tokenisation per text, then dict look-ups per
    token: cost grows with the headline, not with the number of rules.
    """

    def __init__(self, entries: Iterable[tuple[K, Needs]]) -> None:
        self._always: list[K] = []
        self._tok: dict[str, list[K]] = {}
        self._pre: dict[str, list[K]] = {}
        self._sub: dict[str, list[K]] = {}
        for key, needs in entries:
            if needs is None:
                self._always.append(key)
                continue
            for anchor in needs:
                table = {"tok": self._tok, "pre": self._pre, "sub": self._sub}[anchor.kind]
                table.setdefault(anchor.text, []).append(key)
        self._pre_lengths = sorted({len(p) for p in self._pre})

    def candidates(self, text: str) -> set[K]:
        """Items whose anchors occur in `text` (already normalised), plus unfilterable ones."""
        lower = text.lower()
        out: set[K] = set(self._always)
        tok_table, pre_table = self._tok, self._pre
        lengths = self._pre_lengths
        for token in set(TOKEN_RE.findall(lower)):
            hit = tok_table.get(token)
            if hit:
                out.update(hit)
            if lengths:
                n = len(token)
                for length in lengths:
                    if length > n:
                        break
                    hit = pre_table.get(token[:length])
                    if hit:
                        out.update(hit)
        for sub, keys in self._sub.items():
            if sub in lower:
                out.update(keys)
        return out
