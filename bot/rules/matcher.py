"""Compiled keyword, phrase and regex matching, plus a literal prefilter.

Rule terms come in two shapes: plain text ("tariff", "fight to the end",
"retaliat*") and user regexes. Plain text is matched case-insensitively on word
boundaries, with any run of whitespace between the words of a phrase and a
trailing `*` on a word meaning "any word ending". Every term also yields an
*anchor* (a literal that must occur for the term to match) so that a whole rule
set can be prefiltered with a single tokenisation of the headline instead of
one regex search per rule (see `KeywordIndex`).

User regexes are checked before use: they must compile, must not use
backreferences or global inline flags (they are spliced into alternations), and
must not have the shapes that backtrack catastrophically (nested unbounded
quantifiers, or an alternation with ambiguous branches under a repeat).
"""

from __future__ import annotations

import functools
import itertools
import re
import re._constants as sre
import re._parser as sre_parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from bot.rules.layout import layout

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

_UNBOUNDED = sre.MAXREPEAT
_ALPHABET: tuple[str, ...] = tuple(chr(i) for i in range(128)) + ("é", "ß", "中", "\u00a0", "'")
_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT)


def check_regex(pattern: str) -> str:
    """Validate a user regex for use in a rule; returns it. Raises ValueError.

    Refuses what would break splicing into alternations (backreferences,
    global inline flags) and the classic catastrophic-backtracking shapes.
    """
    if not pattern:
        raise ValueError("empty regex")
    try:
        re.compile(pattern, FLAGS)
        parsed = sre_parse.parse(pattern, FLAGS)
        re.compile(f"(?:{pattern})|(?:x)", FLAGS)
    except re.error as exc:
        raise ValueError(f"bad regex '{pattern}': {exc}") from None
    if _has_backref(parsed.data):
        raise ValueError(f"regex '{pattern}': backreferences are not supported")
    problem = _backtracking_problem(parsed.data, inside_repeat=False)
    if problem:
        raise ValueError(
            f"regex '{pattern}' risks catastrophic backtracking ({problem}); "
            "rewrite it without nested or ambiguous repeats (atomic groups (?>...) "
            "and possessive quantifiers like a++ are allowed)"
        )
    return pattern


def _children(op: Any, av: Any) -> Iterator[Sequence[tuple[Any, Any]]]:
    """The sub-sequences of one parsed regex node."""
    if op is sre.SUBPATTERN:
        yield av[3]
    elif op in _REPEATS or op is sre.POSSESSIVE_REPEAT:
        yield av[2]
    elif op is sre.ATOMIC_GROUP:
        yield av
    elif op is sre.BRANCH:
        yield from av[1]
    elif op in (sre.ASSERT, sre.ASSERT_NOT):
        yield av[1]
    elif op is sre.GROUPREF_EXISTS:
        yield av[1]
        if av[2] is not None:
            yield av[2]


def _has_backref(items: Sequence[tuple[Any, Any]]) -> bool:
    for op, av in items:
        if op in (sre.GROUPREF, sre.GROUPREF_EXISTS, sre.GROUPREF_IGNORE):
            return True
        if any(_has_backref(child) for child in _children(op, av)):
            return True
    return False


def _backtracking_problem(items: Sequence[tuple[Any, Any]], *, inside_repeat: bool) -> str | None:
    """Find a nested quantifier or an ambiguous alternation under a repeat."""
    for op, av in items:
        if op in _REPEATS:
            _lo, hi, body = av
            repeats = hi > 1
            if repeats and inside_repeat:
                return "nested quantifier"
            unbounded_outer = repeats and hi == _UNBOUNDED
            if unbounded_outer and _contains_repeat(body):
                return "nested quantifier"
            if repeats:
                ambiguous = _ambiguous_branch(body)
                if ambiguous:
                    return ambiguous
            found = _backtracking_problem(body, inside_repeat=inside_repeat or unbounded_outer)
            if found:
                return found
        elif op in (sre.POSSESSIVE_REPEAT, sre.ATOMIC_GROUP):
            continue  # no backtracking into these
        else:
            for child in _children(op, av):
                found = _backtracking_problem(child, inside_repeat=inside_repeat)
                if found:
                    return found
    return None


def _contains_repeat(items: Sequence[tuple[Any, Any]]) -> bool:
    for op, av in items:
        if op in _REPEATS and av[1] > 1:
            return True
        if op in (sre.POSSESSIVE_REPEAT, sre.ATOMIC_GROUP):
            continue
        if any(_contains_repeat(child) for child in _children(op, av)):
            return True
    return False


def _ambiguous_branch(items: Sequence[tuple[Any, Any]]) -> str | None:
    """An alternation directly under a repeat whose branches can start alike."""
    for op, av in items:
        if op is sre.SUBPATTERN:
            found = _ambiguous_branch(av[3])
            if found:
                return found
        elif op is sre.BRANCH:
            branches = av[1]
            firsts = [_first(b) for b in branches]
            for i in range(len(firsts)):
                for j in range(i + 1, len(firsts)):
                    (fi, ni), (fj, nj) = firsts[i], firsts[j]
                    if (ni and nj) or (fi & fj):
                        return "alternation with overlapping branches inside a repeat"
    return None


def _first(items: Sequence[tuple[Any, Any]]) -> tuple[frozenset[str], bool]:
    """Approximate first-character set of a sequence, and whether it can match empty."""
    acc: set[str] = set()
    for op, av in items:
        chars, nullable = _first_node(op, av)
        acc |= chars
        if not nullable:
            return frozenset(acc), False
    return frozenset(acc), True


def _first_node(op: Any, av: Any) -> tuple[frozenset[str], bool]:
    if op is sre.LITERAL:
        c = chr(av)
        return frozenset({c, c.lower(), c.upper()}), False
    if op is sre.NOT_LITERAL:
        c = chr(av)
        return frozenset(_ALPHABET) - {c, c.lower(), c.upper()}, False
    if op is sre.ANY:
        return frozenset(_ALPHABET), False
    if op is sre.IN:
        return frozenset(ch for ch in _ALPHABET if _in_class(ch, av)), False
    if op is sre.SUBPATTERN:
        return _first(av[3])
    if op is sre.ATOMIC_GROUP:
        return _first(av)
    if op in _REPEATS or op is sre.POSSESSIVE_REPEAT:
        chars, nullable = _first(av[2])
        return chars, nullable or av[0] == 0
    if op is sre.BRANCH:
        acc: set[str] = set()
        any_nullable = False
        for branch in av[1]:
            chars, nullable = _first(branch)
            acc |= chars
            any_nullable = any_nullable or nullable
        return frozenset(acc), any_nullable
    if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
        return frozenset(), True
    return frozenset(_ALPHABET), True


_CATEGORY_TESTS: dict[Any, Callable[[str], bool]] = {
    sre.CATEGORY_DIGIT: str.isdigit,
    sre.CATEGORY_NOT_DIGIT: lambda c: not c.isdigit(),
    sre.CATEGORY_SPACE: str.isspace,
    sre.CATEGORY_NOT_SPACE: lambda c: not c.isspace(),
    sre.CATEGORY_WORD: lambda c: c.isalnum() or c == "_",
    sre.CATEGORY_NOT_WORD: lambda c: not (c.isalnum() or c == "_"),
    sre.CATEGORY_LINEBREAK: lambda c: c == "\n",
    sre.CATEGORY_NOT_LINEBREAK: lambda c: c != "\n",
}


def _in_class(ch: str, items: Sequence[tuple[Any, Any]]) -> bool:
    negate = False
    hit = False
    for op, av in items:
        if op is sre.NEGATE:
            negate = True
        elif op is sre.LITERAL:
            hit = hit or ch.lower() == chr(av).lower()
        elif op is sre.RANGE:
            lo, hi = av
            hit = hit or any(lo <= ord(c) <= hi for c in {ch, ch.lower(), ch.upper()})
        elif op is sre.CATEGORY:
            test = _CATEGORY_TESTS.get(av)
            hit = hit or (test(ch) if test else True)
        else:
            hit = True
    return hit != negate


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
    regex: re.Pattern[str]
    anchor: Anchor | None

    @classmethod
    def text(cls, term: str) -> CompiledTerm:
        pattern = text_term_pattern(term)
        return cls(term, pattern, re.compile(pattern, FLAGS), text_term_anchor(term))

    @classmethod
    def from_regex(cls, pattern: str) -> CompiledTerm:
        return cls(f"/{pattern}/", pattern, re.compile(pattern, FLAGS), regex_anchor(pattern))


Needs = frozenset[Anchor] | None  # None: cannot be prefiltered (may match without any anchor)


def _alternation(terms: Sequence[CompiledTerm]) -> re.Pattern[str] | None:
    if not terms:
        return None
    # longest first so "serious concerns" wins over "concerns" at the same position
    ordered = sorted(terms, key=lambda t: -len(t.pattern))
    return re.compile("|".join(f"(?:{t.pattern})" for t in ordered), FLAGS)


_SINGLE_TOKEN = re.compile(r"\w+")


@functools.lru_cache(maxsize=64)
def tokens_of(text: str) -> frozenset[str]:
    """The lower-cased word tokens of a text (what single-word terms are looked up in).

    Cached: `explain` and nested `near` items ask again for the text just read.
    """
    return frozenset(TOKEN_RE.findall(text.lower()))


@dataclass(slots=True)
class _Gate:
    """Which of a list's searched terms can match, from their anchors (indices into the list)."""

    always: tuple[int, ...]
    by_token: dict[str, list[int]]
    by_substring: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, terms: Sequence[CompiledTerm]) -> _Gate:
        always: list[int] = []
        by_token: dict[str, list[int]] = {}
        by_substring: list[tuple[str, int]] = []
        for i, term in enumerate(terms):
            if term.anchor is None:
                always.append(i)
            elif term.anchor.kind == "tok":
                by_token.setdefault(term.anchor.text, []).append(i)
            else:
                by_substring.append((term.anchor.text, i))
        return cls(tuple(always), by_token, tuple(by_substring))

    def pick(
        self, terms: Sequence[CompiledTerm], lower: str, tokens: frozenset[str]
    ) -> list[CompiledTerm]:
        """The `terms` (those this gate was built from) whose anchor occurs, in list order."""
        picked = list(self.always)
        for tok in self.by_token.keys() & tokens:
            picked.extend(self.by_token[tok])
        for text, i in self.by_substring:
            if text in lower:
                picked.append(i)
        if not picked:
            return []
        picked.sort()
        return [terms[i] for i in picked]


@dataclass(slots=True)
class _Part:
    """The terms and nested conditions of one any/all/none list.

    Plain single-word terms ("tariff", "Nvidia") are checked against the text's
    token set - the same thing as their word-boundary regex, at a set look-up's
    cost; every other term is searched only when its anchor (a literal it cannot
    match without) is in the text. With `ignore` (scope kinds, see
    `bot.rules.layout`), matches inside such a scope do not count, so every term
    is searched for its position.
    """

    terms: list[CompiledTerm]
    groups: list[SubCondition]
    ignore: frozenset[str] = frozenset()
    words: list[tuple[str, str]] = field(init=False)  # (label, lower-case token)
    regex_terms: list[CompiledTerm] = field(init=False)
    _gate: _Gate | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.words = []
        self.regex_terms = []
        for term in self.terms:
            is_word = (
                not self.ignore
                and not term.label.startswith("/")
                and _SINGLE_TOKEN.fullmatch(term.label) is not None
            )
            if is_word:
                self.words.append((term.label, term.label.lower()))
            else:
                self.regex_terms.append(term)

    def gated(self, lower: str, tokens: frozenset[str]) -> list[CompiledTerm]:
        """The searched terms whose anchor occurs (the others cannot match), in list order.

        Token anchors are one set intersection; substring anchors one `in` each.
        """
        terms = self.regex_terms
        if not terms:
            return []
        gate = self._gate
        if gate is None:
            gate = self._gate = _Gate.of(terms)
        return gate.pick(terms, lower, tokens)

    def found(self, text: str, regex: re.Pattern[str]) -> list[str]:
        """Non-empty matches of `regex` outside the ignored scopes."""
        return _found(text, regex, self.ignore)

    def labels(self) -> list[str]:
        """Terms as written, then nested groups as short descriptions."""
        return [t.label for t in self.terms] + [g.label() for g in self.groups]

    def _word_labels(self) -> dict[str, str]:
        return {tok: label for label, tok in self.words}

    def item_hits(
        self,
        text: str,
        tokens: frozenset[str],
        *,
        allow_empty: bool = False,
        partial: list[str] | None = None,
        only_hits: bool = False,
        explain_none: bool = False,
        present: frozenset[Anchor] | None = None,
    ) -> list[tuple[str, list[str] | None, str | None]]:
        """Each item as (label, what it matched or None, why it failed); for explanations.

        A single word is a token look-up, as in `Condition.test`; other terms
        search their own compiled regex; groups explain themselves. What failing
        groups matched in part goes to `partial`. `present`: see `Condition.explain`.
        """
        out: list[tuple[str, list[str] | None, str | None]] = []
        lower = text.lower()
        gated_terms = self.gated(lower, tokens)
        if only_hits:  # the terms that match, found cheaply (token set, then anchors)
            by_token = self._word_labels()
            out.extend((by_token[t], [by_token[t]], None) for t in by_token.keys() & tokens)
            candidates: Iterable[CompiledTerm] = gated_terms
        else:
            candidates = self.terms
        words = dict(self.words)
        gated = {id(t) for t in gated_terms}
        for term in candidates:
            token = words.get(term.label)
            if token is not None:
                out.append((term.label, [term.label] if token in tokens else None, None))
                continue
            if id(term) not in gated:
                out.append((term.label, None, None))
                continue
            found = self.found(text, term.regex)
            why = None
            if not found and self.ignore and _found(text, term.regex):
                why = f"{term.label} only {_scope_note(text, term.regex, self.ignore)}"
            if not found and allow_empty and not self.ignore and term.regex.search(text):
                found = [""]
            if found or why or not only_hits:
                out.append((term.label, found or None, why))
        # groups: the fast `test` decides; only a group that fails where the reason will
        # be shown (the first failure of an `all`, or an `any` with no hit) is explained
        term_failed = not only_hits and any(hit is None for _, hit, _ in out)
        results = [(group, _group_test(group, text, tokens, present)) for group in self.groups]
        any_hit = any(sub is not None for _, sub in results) or any(h for _, h, _ in out)
        budget = 3 if only_hits and not any_hit else (0 if term_failed else 1)
        for group, sub in results:
            if sub is not None:
                out.append((group.label(), sub or [""], None))
                continue
            why = None
            if budget > 0 and not explain_none:
                budget -= 1
                trace = group.explain(text, tokens, nested=True, present=present)
                why = trace.failed
                if partial is not None:
                    partial.extend(trace.matched + trace.partial)
            out.append((group.label(), None, why))
        return out

    def needs(self) -> list[Needs]:
        return [frozenset({t.anchor}) if t.anchor else None for t in self.terms] + [
            g.needs() for g in self.groups
        ]


def _found(text: str, regex: re.Pattern[str], ignore: frozenset[str] = frozenset()) -> list[str]:
    return list(_found_cached(regex, text, ignore))


@functools.lru_cache(maxsize=8192)
def _found_cached(regex: re.Pattern[str], text: str, ignore: frozenset[str]) -> tuple[str, ...]:
    """Non-empty matches outside `ignore` scopes. Cached: rules share term lists (YAML
    aliases compile to the same pattern object) and explain re-reads what the engine read."""
    if not ignore:
        return tuple(m.group(0) for m in regex.finditer(text) if m.group(0))
    lay = layout(text)
    return tuple(
        m.group(0)
        for m in regex.finditer(text)
        if m.group(0) and lay.scope_of(m.start(), ignore) is None
    )


def _scope_note(text: str, regex: re.Pattern[str], ignore: frozenset[str]) -> str:
    """ "in a negated scope ('no plans …')": why a match did not count (for explanations)."""
    lay = layout(text)
    for m in regex.finditer(text):
        scope = lay.scope_of(m.start(), ignore)
        if scope is not None:
            return f"in a {scope.kind} scope ('{scope.cue} …')"
    return "in an ignored scope"


class Condition:
    """any (≥1 item) AND all (every item) AND none (no item), nestable.

    `test` returns the matched text snippets (for the explanation) or None.
    """

    __slots__ = ("_anchors", "_blank", "all", "any", "none")

    def __init__(
        self,
        any: _Part | None = None,
        all: _Part | None = None,
        none: _Part | None = None,
    ) -> None:
        self.any = any
        self.all = all
        self.none = none
        self._anchors: frozenset[Anchor] | _Unset | None = _UNSET
        self._blank: dict[bool, Trace] = {}

    @classmethod
    def build(
        cls,
        any: Iterable[CompiledTerm | SubCondition] | None = None,
        all: Iterable[CompiledTerm | SubCondition] | None = None,
        none: Iterable[CompiledTerm | SubCondition] | None = None,
        *,
        ignore: Iterable[str] = (),
    ) -> Condition:
        """`ignore`: scope kinds in which `any`/`all` matches do not count (never `none`)."""
        kinds = frozenset(ignore)

        def part(
            items: Iterable[CompiledTerm | SubCondition] | None, kinds: frozenset[str]
        ) -> _Part | None:
            if items is None:
                return None
            items = list(items)
            return _Part(
                [i for i in items if isinstance(i, CompiledTerm)],
                [i for i in items if not isinstance(i, CompiledTerm)],
                kinds,
            )

        return cls(part(any, kinds), part(all, kinds), part(none, frozenset()))

    def test(self, text: str, tokens: frozenset[str] | None = None) -> list[str] | None:
        """Matched snippets, or None. `tokens`: `tokens_of(text)` if already computed."""
        if tokens is None:
            tokens = tokens_of(text)
        lower = text.lower()
        if self.none is not None and _vetoed(self.none, text, lower, tokens):
            return None
        matched: list[str] = []
        if self.all is not None:
            found = _all_hits(self.all, text, lower, tokens)
            if found is None:
                return None
            matched.extend(found)
        if self.any is not None:
            found = _any_hits(self.any, text, lower, tokens)
            if found is None:
                return None
            matched.extend(h for h in found if h)
        return _dedupe(matched)

    def explain(
        self,
        text: str,
        tokens: frozenset[str] | None = None,
        *,
        nested: bool = False,
        present: frozenset[Anchor] | None = None,
    ) -> Trace:
        """The same verdict as `test`, with the reason: what matched, what failed, what vetoed.

        Uses the same compiled terms and token look-ups as `test` (item by item,
        without the batching), so the two cannot disagree; `tests/test_explain.py`
        checks that on real headlines. `present`: the anchors that occur in the
        text (see `AnchorProbe`); a condition, or nested group, none of whose
        anchors occur cannot match anything, so its trace is the one it has on an
        empty text, computed once (`tests/test_explain.py` checks the two agree).
        """
        if present is not None:
            blank = _blank_trace(self, present, nested)
            if blank is not None:
                return blank
        if tokens is None:
            tokens = tokens_of(text)
        trace = Trace(ok=True)
        if self.none is not None:
            self._explain_none(self.none, text, tokens, trace, present)
        if self.all is not None:
            for i, (label, hit, why) in enumerate(
                self.all.item_hits(
                    text, tokens, allow_empty=True, partial=trace.partial, present=present
                )
            ):
                if hit is None:
                    trace.fail(f"all[{i}]: " + (why or f"{label} not found"))
                else:
                    trace.matched.extend(hit)
        if self.any is not None:
            items = self.any.item_hits(
                text, tokens, partial=trace.partial, only_hits=True, present=present
            )
            found = [hit for _, hit, _ in items if hit is not None]
            for hit in found:
                trace.matched.extend(hit)
            if not found:
                notes = [why for label, _, why in items if why and not why.startswith("none of")]
                none_of = f"none of {_listing(self.any.labels())} found" + "".join(
                    f" ({note})" for note in notes[:2]
                )
                trace.fail(none_of if nested else f"any: {none_of}")
        trace.matched = _dedupe(trace.matched)
        trace.partial = _dedupe(trace.partial)
        return trace

    @staticmethod
    def _explain_none(
        part: _Part,
        text: str,
        tokens: frozenset[str],
        trace: Trace,
        present: frozenset[Anchor] | None,
    ) -> None:
        for label, hit, _why in part.item_hits(
            text, tokens, only_hits=True, explain_none=True, present=present
        ):
            if hit is not None:
                shown = ", ".join(h for h in hit if h)
                trace.vetoed_by.append(f"{label} ({shown})" if shown and shown != label else label)
        if trace.vetoed_by:
            trace.fail("none: vetoed by " + "; ".join(trace.vetoed_by))

    def label(self) -> str:
        """A short description of this condition, for near-miss messages."""
        return _cached_label(self)

    def anchors(self) -> frozenset[Anchor] | None:
        """Every anchor of every term in this condition, nested ones included.

        None when some term has no anchor (nothing then proves it cannot match).
        """
        if isinstance(self._anchors, _Unset):
            self._anchors = _anchor_union(self.terms_and_groups())
        return self._anchors

    def terms_and_groups(self) -> Iterator[CompiledTerm | SubCondition]:
        for part in (self.any, self.all, self.none):
            if part is not None:
                yield from part.terms
                yield from part.groups

    def absent(self, present: frozenset[Anchor] | None) -> bool:
        """True when none of this condition's anchors is `present`: nothing in it can match."""
        if present is None:
            return False
        anchors = self.anchors()
        return anchors is not None and anchors.isdisjoint(present)

    def _label(self) -> str:
        bits = []
        for name in ("any", "all", "none"):
            part = getattr(self, name)
            if part is not None:
                bits.append(f"{name}: [{_listing(part.labels(), limit=4)}]")
        return "{" + "; ".join(bits) + "}"

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


class Near:
    """One term from each list, close together in one clause: `{near: [[...], [...]], within: N}`.

    `within`: at most N words between consecutive matches; `ordered`: the lists'
    matches appear in list order ("China … slaps"), else in any order. Matches
    inside the enclosing condition's ignored scopes do not count.
    """

    __slots__ = ("_anchors", "_blank", "_gates", "_terms", "ignore", "lists", "ordered", "within")

    MAX_MATCHES = 12
    """Matches per list considered (bounds the search on very long texts)."""

    def __init__(
        self,
        lists: Sequence[Sequence[CompiledTerm]],
        *,
        within: int,
        ordered: bool,
        ignore: frozenset[str] = frozenset(),
    ) -> None:
        self.lists = [
            (tuple(t.label for t in terms), _alternation(terms), _list_needs(terms))
            for terms in lists
        ]
        self._terms = [tuple(terms) for terms in lists]
        self._gates = [_Gate.of(terms) for terms in self._terms]
        self.within = within
        self.ordered = ordered
        self.ignore = ignore
        self._anchors: frozenset[Anchor] | _Unset | None = _UNSET
        self._blank: dict[bool, Trace] = {}

    def _matches(
        self, text: str, tokens: frozenset[str] | None = None
    ) -> list[list[tuple[int, int, int, str]]]:
        """Per list: (first word, last word, clause, snippet) of each match outside ignored scopes."""
        return _near_matches(self, text)

    def _find(self, text: str) -> list[list[tuple[int, int, int, str]]]:
        lower = text.lower()
        tokens = tokens_of(text)
        out: list[list[tuple[int, int, int, str]]] = []
        for terms, gate in zip(self._terms, self._gates, strict=True):
            found: list[tuple[int, int, int, str]] = []
            for term in gate.pick(terms, lower, tokens):
                found.extend(_list_matches(term.regex, text, self.ignore))
            found.sort()
            out.append(found[: self.MAX_MATCHES])
        return out

    def _best(self, matches: list[list[tuple[int, int, int, str]]]) -> list[str] | None:
        for combo in itertools.product(*matches):
            seq = list(combo) if self.ordered else sorted(combo)
            if len({c[2] for c in seq}) != 1:
                continue
            if all(0 <= nxt[0] - cur[1] - 1 <= self.within for cur, nxt in itertools.pairwise(seq)):
                return [c[3] for c in combo]
        return None

    def test(self, text: str, tokens: frozenset[str] | None = None) -> list[str] | None:
        matches = self._matches(text, tokens)
        if not all(matches):
            return None
        return self._best(matches)

    def explain(
        self,
        text: str,
        tokens: frozenset[str] | None = None,
        *,
        nested: bool = False,
        present: frozenset[Anchor] | None = None,
    ) -> Trace:
        if present is not None:
            blank = _blank_trace(self, present, nested)
            if blank is not None:
                return blank
        matches = self._matches(text, tokens)
        for (labels, regex, _), found in zip(self.lists, matches, strict=True):
            if not found:
                assert regex is not None
                note = ""
                if self.ignore and _found(text, regex):
                    note = (
                        f" ({_found(text, regex)[0]} only {_scope_note(text, regex, self.ignore)})"
                    )
                partial = [f[3] for other in matches for f in other]
                return Trace(
                    ok=False,
                    failed=f"near: none of {_listing(list(labels))} found{note}",
                    partial=_dedupe(partial),
                )
        best = self._best(matches)
        if best is None:
            shown = " / ".join(found[0][3] for found in matches)
            order = "in this order " if self.ordered else ""
            return Trace(
                ok=False,
                partial=_dedupe([f[3] for found in matches for f in found]),
                failed=f"near: found {shown} but not {order}within {self.within} words in one clause",
            )
        return Trace(ok=True, matched=_dedupe(best))

    def label(self) -> str:
        return _cached_label(self)

    def _label(self) -> str:
        lists = " | ".join(_listing(list(labels), limit=3) for labels, _, _ in self.lists)
        return f"near({lists}; within {self.within}{', ordered' if self.ordered else ''})"

    def anchors(self) -> frozenset[Anchor] | None:
        """Every anchor of every term (None when some term has none)."""
        if isinstance(self._anchors, _Unset):
            self._anchors = _anchor_union(t for terms in self._terms for t in terms)
        return self._anchors

    def absent(self, present: frozenset[Anchor] | None) -> bool:
        """True when none of this item's anchors is `present`: it cannot match."""
        if present is None:
            return False
        anchors = self.anchors()
        return anchors is not None and anchors.isdisjoint(present)

    def needs(self) -> Needs:
        options = [needs for _, _, needs in self.lists if needs]
        return min(options, key=len) if options else None


@functools.lru_cache(maxsize=4096)
def _near_matches(near: Near, text: str) -> list[list[tuple[int, int, int, str]]]:
    """A near item's matches in a text; cached because explain re-reads what the engine read."""
    return near._find(text)


@functools.lru_cache(maxsize=4096)
def _list_matches(
    regex: re.Pattern[str], text: str, ignore: frozenset[str]
) -> list[tuple[int, int, int, str]]:
    """(first word, last word, clause, snippet) of each match outside `ignore` scopes.

    Cached: one term list (a YAML alias such as the tariff words) is shared by
    several rules, and explain reads the same text the engine just read.
    """
    lay = layout(text)
    found: list[tuple[int, int, int, str]] = []
    for m in regex.finditer(text):
        if not m.group(0) or (ignore and lay.scope_of(m.start(), ignore)):
            continue
        first, last = lay.word_at(m.start()), lay.word_at(m.end() - 1)
        found.append((first, last, lay.clauses[first] if lay.clauses else 0, m.group(0)))
    return found


_LABELS: dict[int, tuple[object, str]] = {}


def _cached_label(cond: Condition | Near) -> str:
    """Labels are built once per compiled condition (explain asks for them often)."""
    hit = _LABELS.get(id(cond))
    if hit is not None and hit[0] is cond:
        return hit[1]
    label = cond._label()
    if len(_LABELS) > 10_000:
        _LABELS.clear()
    _LABELS[id(cond)] = (cond, label)
    return label


def _list_needs(terms: Sequence[CompiledTerm]) -> frozenset[Anchor] | None:
    anchors: set[Anchor] = set()
    for term in terms:
        if term.anchor is None:
            return None
        anchors.add(term.anchor)
    return frozenset(anchors) if anchors else None


SubCondition = Condition | Near


class _Unset:
    """Marker for a not yet computed cache slot (None is a meaningful value)."""


_UNSET = _Unset()


def _anchor_union(items: Iterable[CompiledTerm | SubCondition]) -> frozenset[Anchor] | None:
    out: set[Anchor] = set()
    for item in items:
        if isinstance(item, CompiledTerm):
            if item.anchor is None:
                return None
            out.add(item.anchor)
        else:
            sub = item.anchors()
            if sub is None:
                return None
            out |= sub
    return frozenset(out)


def all_anchors(items: Iterable[CompiledTerm | SubCondition]) -> set[Anchor]:
    """Every anchor under `items` (terms without one are skipped): what `AnchorProbe` looks for."""
    out: set[Anchor] = set()
    for item in items:
        if isinstance(item, CompiledTerm):
            if item.anchor is not None:
                out.add(item.anchor)
        elif isinstance(item, Near):
            out |= all_anchors(t for terms in item._terms for t in terms)
        else:
            out |= all_anchors(item.terms_and_groups())
    return out


def _blank_trace(cond: SubCondition, present: frozenset[Anchor], nested: bool) -> Trace | None:
    """`cond`'s trace on a text where none of its anchors occurs, or None if that may not hold.

    Such a text cannot match any of its terms, so the trace (all failures, no
    matches) is the one on the empty text; it is computed once per condition.
    """
    if not cond.absent(present):
        return None
    blank = cond._blank.get(nested)
    if blank is None:
        blank = cond._blank[nested] = cond.explain("", frozenset(), nested=nested)
        if blank.matched or blank.partial or blank.vetoed_by:
            raise AssertionError(f"{cond.label()}: matches an empty text")  # pragma: no cover
    return Trace(ok=blank.ok, failed=blank.failed)


def _group_test(
    group: SubCondition, text: str, tokens: frozenset[str], present: frozenset[Anchor] | None
) -> list[str] | None:
    """`group.test`, answered from the blank trace when none of its anchors is present."""
    blank = _blank_trace(group, present, True) if present is not None else None
    if blank is not None:
        return [] if blank.ok else None
    return group.test(text, tokens)


class AnchorProbe:
    """Which of a fixed set of anchors occur in a text: one `KeywordIndex` pass per text.

    `Condition.explain(..., present=probe.present(text))` uses it to skip
    conditions none of whose terms can match.
    """

    def __init__(self, anchors: Iterable[Anchor]) -> None:
        self._index: KeywordIndex[Anchor] = KeywordIndex((a, frozenset({a})) for a in anchors)

    def present(self, text: str) -> frozenset[Anchor]:
        """The anchors occurring in `text` (already normalised)."""
        return frozenset(self._index.candidates(text))


def _vetoed(part: _Part, text: str, lower: str, tokens: frozenset[str]) -> bool:
    if any(tok in tokens for _, tok in part.words):
        return True
    if any(t.regex.search(text) for t in part.gated(lower, tokens)):
        return True
    return any(g.test(text, tokens) is not None for g in part.groups)


def _all_hits(part: _Part, text: str, lower: str, tokens: frozenset[str]) -> list[str] | None:
    matched: list[str] = []
    for label, tok in part.words:
        if tok not in tokens:
            return None
        matched.append(label)
    gated = set(map(id, part.gated(lower, tokens)))
    for term in part.regex_terms:
        if id(term) not in gated:
            return None
        if part.ignore:
            found = part.found(text, term.regex)
            if not found:
                return None
            matched.append(found[0])
            continue
        m = term.regex.search(text)
        if m is None:
            return None
        matched.append(m.group(0))
    for group in part.groups:
        sub = group.test(text, tokens)
        if sub is None:
            return None
        matched.extend(sub)
    return matched


def _any_hits(part: _Part, text: str, lower: str, tokens: frozenset[str]) -> list[str] | None:
    hits = [label for label, tok in part.words if tok in tokens]
    for term in part.gated(lower, tokens):
        hits.extend(part.found(text, term.regex))
    if hits:
        return hits
    for group in part.groups:
        sub = group.test(text, tokens)
        if sub is not None:
            return sub or [""]
    return None


@dataclass(slots=True)
class Trace:
    """Why a condition did or did not match (see `Condition.explain`)."""

    ok: bool
    matched: list[str] = field(default_factory=list)
    failed: str | None = None
    vetoed_by: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)
    """What failing nested conditions matched in part (shown for near misses)."""

    def fail(self, reason: str) -> None:
        """Record a failure; the first one is the reason shown."""
        if self.ok:
            self.failed = reason
        self.ok = False


def _listing(labels: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(labels[:limit])
    return shown + (", …" if len(labels) > limit else "")


def _dedupe(items: Iterable[str]) -> list[str]:
    if isinstance(items, list) and not items:
        return []
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
