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

import functools
import itertools
import re
import re._constants as sre
import re._parser as sre_parse
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from bot.rules.layout import layout
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
        return _text_term(term)

    @classmethod
    def from_regex(cls, pattern: str) -> CompiledTerm:
        return _regex_term(pattern)


# Terms are interned: the same term (a YAML alias repeats dozens) is one object, so the lists
# it appears in share one gate and one set of cached matches per text (see `_Gate.of`).
@functools.lru_cache(maxsize=16384)
def _text_term(term: str) -> CompiledTerm:
    pattern = text_term_pattern(term)
    return CompiledTerm(term, pattern, re.compile(pattern, FLAGS), text_term_anchor(term))


@functools.lru_cache(maxsize=16384)
def _regex_term(pattern: str) -> CompiledTerm:
    return CompiledTerm(f"/{pattern}/", pattern, compile_user_regex(pattern), regex_anchor(pattern))


Needs = frozenset[Anchor] | None  # None: cannot be prefiltered (may match without any anchor)


def _alternation(terms: Sequence[CompiledTerm]) -> Searcher | None:
    if not terms:
        return None
    # longest first so "serious concerns" wins over "concerns" at the same position
    ordered = sorted(terms, key=lambda t: -len(t.pattern))
    user = [t.pattern for t in ordered if t.label.startswith("/")]
    return combine([t.pattern for t in ordered if not t.label.startswith("/")], user)


_SINGLE_TOKEN = re.compile(r"\w+")


class _Scan:
    """What the gates read of one text, computed once per text: lower case and word tokens."""

    __slots__ = ("lower", "tokens")

    def __init__(self, text: str) -> None:
        self.lower = text.lower()
        self.tokens = frozenset(TOKEN_RE.findall(self.lower))


@functools.lru_cache(maxsize=256)
def scan_of(text: str) -> _Scan:
    """The text's `_Scan` (cached: every rule and nested condition reads the same text)."""
    return _Scan(text)


def tokens_of(text: str) -> frozenset[str]:
    """The lower-cased word tokens of a text (what single-word terms are looked up in).

    Cached: `explain` and nested `near` items ask again for the text just read.
    """
    return scan_of(text).tokens


class _Gate:
    """Which of a list's searched terms can match, from their anchors.

    One gate per distinct term list (`_Gate.of`): a YAML alias such as the tariff
    words is used by a dozen `near` items and lists, and compiles to the same
    (interned) terms, so its gate is asked once per text and remembers the answer
    for the text last asked about.
    """

    __slots__ = ("_always", "_any_substring", "_last", "always", "by_substring", "by_token", "terms")

    def __init__(self, terms: tuple[CompiledTerm, ...]) -> None:
        always: list[int] = []
        by_token: dict[str, list[int]] = {}
        by_substring: list[tuple[str, int]] = []
        for i, term in enumerate(terms):
            anchor = term.anchor
            if anchor is None:
                always.append(i)
            elif anchor.kind == "tok":
                by_token.setdefault(anchor.text, []).append(i)
            else:
                by_substring.append((anchor.text, i))
        self.terms = terms
        self.always = tuple(always)
        self.by_token = by_token
        self.by_substring = tuple(by_substring)
        self._last: tuple[_Scan, list[CompiledTerm]] | None = None
        self._always = [terms[i] for i in always]
        # one search says whether any substring anchor occurs (usually none does)
        self._any_substring = (
            re.compile("|".join(re.escape(text) for text, _ in by_substring)) if by_substring else None
        )

    @staticmethod
    def of(terms: Sequence[CompiledTerm]) -> _Gate:
        """The shared gate of this term list (terms are interned, so equal lists are the same)."""
        key = tuple(terms)
        gate = _GATES.get(key)
        if gate is None:
            if len(_GATES) > 8192:
                _GATES.clear()
            gate = _GATES[key] = _Gate(key)
        return gate

    def pick(self, scan: _Scan) -> list[CompiledTerm]:
        """This list's terms whose anchor occurs in the scanned text, in list order.

        Token anchors are one set intersection; substring anchors one `in` each. The
        list is shared: callers read it, never change it.
        """
        last = self._last  # one read: another thread may store its own text's answer
        if last is not None and last[0] is scan:
            return last[1]
        by_token = self.by_token
        tokens = by_token.keys() & scan.tokens
        lower = scan.lower
        if not tokens and (self._any_substring is None or not self._any_substring.search(lower)):
            self._last = (scan, self._always)
            return self._always
        picked = list(self.always)
        for tok in tokens:
            picked.extend(by_token[tok])
        for text, i in self.by_substring:
            if text in lower:
                picked.append(i)
        terms = self.terms
        if len(picked) > 1:
            picked.sort()
        found = [terms[i] for i in picked]
        self._last = (scan, found)
        return found


_GATES: dict[tuple[CompiledTerm, ...], _Gate] = {}


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
    word_set: frozenset[str] = field(init=False)  # the words' tokens: one set operation per text
    word_token: dict[str, str] = field(init=False)  # label → token
    word_label: dict[str, str] = field(init=False)  # token → label
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
        self.word_set = frozenset(tok for _, tok in self.words)
        self.word_token = dict(self.words)
        self.word_label = {tok: label for label, tok in self.words}

    def gated(self, scan: _Scan) -> list[CompiledTerm]:
        """The searched terms whose anchor occurs (the others cannot match), in list order."""
        terms = self.regex_terms
        if not terms:
            return []
        gate = self._gate
        if gate is None:
            gate = self._gate = _Gate.of(terms)
        return gate.pick(scan)

    def found(self, text: str, regex: Searcher) -> list[str]:
        """Non-empty matches of `regex` outside the ignored scopes."""
        return _found(text, regex, self.ignore)

    def labels(self) -> list[str]:
        """Terms as written, then nested groups as short descriptions."""
        return [t.label for t in self.terms] + [g.label() for g in self.groups]

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
        gated_terms = self.gated(scan_of(text))
        if only_hits:  # the terms that match, found cheaply (token set, then anchors)
            if not self.word_set.isdisjoint(tokens):  # in list order: the output is stable
                out.extend((label, [label], None) for label, tok in self.words if tok in tokens)
            candidates: Iterable[CompiledTerm] = gated_terms
            gated: set[int] | None = None  # every candidate is a gated, searched term
        else:
            candidates = self.terms
            gated = {id(t) for t in gated_terms}
        words = self.word_token
        for term in candidates:
            if gated is not None:
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


def _found(text: str, regex: Searcher, ignore: frozenset[str] = frozenset()) -> list[str]:
    return [found for _, found in _found_cached(regex, text, ignore)]


@functools.lru_cache(maxsize=8192)
def _found_cached(regex: Searcher, text: str, ignore: frozenset[str]) -> tuple[tuple[int, str], ...]:
    """(position, text) of non-empty matches outside `ignore` scopes. Cached: rules share term
    lists (YAML aliases compile to the same pattern object) and explain re-reads what the engine read."""
    if not ignore:
        return tuple((m.start(), m.group(0)) for m in regex.finditer(text) if m.group(0))
    lay = layout(text)
    return tuple(
        (m.start(), m.group(0))
        for m in regex.finditer(text)
        if m.group(0) and lay.scope_of(m.start(), ignore) is None
    )


def _scope_note(text: str, regex: Searcher, ignore: frozenset[str]) -> str:
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

    __slots__ = ("_anchors", "_blank", "_label_text", "all", "any", "none")

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
        self._label_text: str | None = None

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
        return self._test(text, tokens)

    def _test(self, text: str, tokens: frozenset[str] | None) -> list[str] | None:
        scan = scan_of(text)  # `tokens` is `scan.tokens`: one scan per text serves every rule
        # `none` last: it is often the longest list (exclusions), and most texts already
        # fail `all` or `any`; the verdict does not depend on the order
        matched: list[str] = []
        if self.all is not None:
            found = _all_hits(self.all, text, scan)
            if found is None:
                return None
            matched.extend(found)
        if self.any is not None:
            found = _any_hits(self.any, text, scan)
            if found is None:
                return None
            matched.extend(h for h in found if h)
        if self.none is not None and _vetoed(self.none, text, scan):
            return None
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
        """A short description of this condition, for near-miss messages (built once)."""
        label = self._label_text
        if label is None:
            label = self._label_text = self._label()
        return label

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

    __slots__ = (
        "_anchors", "_blank", "_gates", "_label_text", "_terms", "ignore", "lists", "ordered", "within"
    )

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
        self._label_text: str | None = None

    def _matches(
        self, text: str, tokens: frozenset[str] | None = None
    ) -> list[list[tuple[int, int, int, str]]]:
        """Per list: (first word, last word, clause, snippet) of each match outside ignored scopes."""
        return _near_matches(self, text)

    def _find(self, text: str) -> list[list[tuple[int, int, int, str]]]:
        scan = scan_of(text)
        out: list[list[tuple[int, int, int, str]]] = []
        for gate in self._gates:
            found: list[tuple[int, int, int, str]] = []
            for term in gate.pick(scan):
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
        return self._test(text, tokens)

    def _test(self, text: str, tokens: frozenset[str] | None) -> list[str] | None:
        scan = scan_of(text)
        for gate in self._gates:  # a list none of whose anchors occurs: no match, nothing searched
            if not gate.pick(scan):
                return None
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
        label = self._label_text
        if label is None:
            label = self._label_text = self._label()
        return label

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
    regex: Searcher, text: str, ignore: frozenset[str]
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
    if present is not None and group.absent(present):
        blank = group._blank.get(True)
        if blank is None:
            blank = _blank_trace(group, present, True)
            assert blank is not None
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


def _vetoed(part: _Part, text: str, scan: _Scan) -> bool:
    tokens = scan.tokens
    if not part.word_set.isdisjoint(tokens):
        return True
    if any(t.regex.search(text) for t in part.gated(scan)):
        return True
    return any(g.test(text, tokens) is not None for g in part.groups)


def _all_hits(part: _Part, text: str, scan: _Scan) -> list[str] | None:
    tokens = scan.tokens
    if not part.word_set <= tokens:
        return None
    matched = [label for label, _ in part.words]
    gated = set(map(id, part.gated(scan)))
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


def _any_hits(part: _Part, text: str, scan: _Scan) -> list[str] | None:
    tokens = scan.tokens
    hits = [label for label, tok in part.words if tok in tokens] if not part.word_set.isdisjoint(tokens) else []
    # searched terms' matches in the order they occur in the text, as one alternation would
    found = [hit for term in part.gated(scan) for hit in _found_cached(term.regex, text, part.ignore)]
    hits.extend(snippet for _, snippet in sorted(found, key=lambda hit: hit[0]))
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
        key, shown = _normalised(item)
        if key and key not in seen:
            seen[key] = shown
    return list(seen.values())


@functools.lru_cache(maxsize=4096)
def _normalised(item: str) -> tuple[str, str]:
    """(comparison key, shown form) of a matched snippet; cached: labels repeat on every text."""
    return " ".join(item.casefold().split()), " ".join(item.split())


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
        """Items whose anchors occur in `text` (already normalised), plus unfilterable ones.

        The text's tokens come from `scan_of`, which the rules then read too."""
        scan = scan_of(text)
        lower = scan.lower
        out: set[K] = set(self._always)
        tok_table, pre_table = self._tok, self._pre
        lengths = self._pre_lengths
        for token in scan.tokens:
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
