"""User regexes run on RE2: matching time grows linearly with the text, whatever the pattern.

Python's `re` backtracks: `^(a|aa)+$` or `(.*a){12}x` against a 480-character
title never finishes, and no shape check catches every such pattern. RE2
(the `google-re2` package) is an automaton: no pattern can take more than
linear time. It has no lookaround, backreferences, atomic groups, possessive
quantifiers or conditionals, and caps counted repeats at 1,000; a rule that
uses one of those is refused when the rules load (`check-rules` reports it
with `file:line`), never run on a backtracking engine.

Readout's own plain-text terms ("tariff*", "fight to the end") stay on `re`:
they are escaped words joined by `\\s+`, linear by construction, and need
lookbehind for Unicode word boundaries. Differences users may notice: RE2's
`\\w`, `\\d`, `\\b` are ASCII-only (case-insensitivity is still Unicode).
"""

from __future__ import annotations

import re
import re._constants as sre
import re._parser as sre_parse
from collections.abc import Iterator, Sequence
from typing import Any, Literal, Protocol

import re2  # no type information shipped; the calls used here are wrapped in typed functions

FLAGS = re.IGNORECASE

_UNSUPPORTED: dict[Any, str] = {
    sre.ASSERT: "lookaround ((?=...), (?<=...))",
    sre.ASSERT_NOT: "negative lookaround ((?!...), (?<!...))",
    sre.GROUPREF: "backreferences (\\1)",
    sre.GROUPREF_IGNORE: "backreferences (\\1)",
    sre.GROUPREF_EXISTS: "conditional groups ((?(1)...))",
    sre.ATOMIC_GROUP: "atomic groups ((?>...))",
    sre.POSSESSIVE_REPEAT: "possessive quantifiers (a++)",
}


class Found(Protocol):
    """A match: its text (for the alert's explanation) and where it is (scopes, `near`)."""

    def group(self, index: Literal[0] = ..., /) -> str: ...

    def start(self, index: Literal[0] = ..., /) -> int: ...

    def end(self, index: Literal[0] = ..., /) -> int: ...


class Searcher(Protocol):
    """What the matcher needs of a compiled pattern, from `re` or RE2."""

    def search(self, text: str, /) -> Found | None: ...

    def finditer(self, text: str, /) -> Iterator[Found]: ...

    def __hash__(self) -> int: ...  # matches are cached per compiled pattern


def _options() -> Any:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # RE2 would print every refused pattern to stderr
    return options


_OPTIONS = _options()


def compile_user_regex(pattern: str) -> Searcher:
    """A user regex (already checked by `check_user_regex`), case-insensitive, on RE2."""
    compiled: Searcher = re2.compile(pattern, _OPTIONS)
    return compiled


def user_regex_problem(pattern: str) -> str | None:
    """Why RE2 cannot run `pattern` (which Python's `re` parsed), or None if it can."""
    feature = _unsupported_feature(sre_parse.parse(pattern, FLAGS).data)
    if feature is not None:
        return f"regex '{pattern}' uses {feature}, which linear-time matching (RE2) does not support"
    try:
        re2.compile(f"(?:{pattern})|(?:x)", _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        return f"regex '{pattern}' is not supported by linear-time matching (RE2): {reason}"
    return None


def _unsupported_feature(items: Sequence[tuple[Any, Any]]) -> str | None:
    for op, av in items:
        if op in _UNSUPPORTED:
            return _UNSUPPORTED[op]
        for child in _children(op, av):
            found = _unsupported_feature(child)
            if found:
                return found
    return None


def _children(op: Any, av: Any) -> Iterator[Sequence[tuple[Any, Any]]]:
    if op is sre.SUBPATTERN:
        yield av[3]
    elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
        yield av[2]
    elif op is sre.BRANCH:
        yield from av[1]
    elif op is sre.IN:
        return


def combine(text_patterns: Sequence[str], user_patterns: Sequence[str]) -> Searcher:
    """One searcher for a list of terms: a plain compiled pattern when one engine suffices
    (no wrapper call on the hot path), else an `Alternation` of both."""
    if not user_patterns:
        return re.compile("|".join(f"(?:{p})" for p in text_patterns), FLAGS)
    if not text_patterns:
        return compile_user_regex("|".join(f"(?:{p})" for p in user_patterns))
    return Alternation(text_patterns, user_patterns)


class Alternation:
    """Several terms searched as one: Readout's text terms on `re`, user regexes on RE2."""

    __slots__ = ("_parts",)

    def __init__(self, text_patterns: Sequence[str], user_patterns: Sequence[str]) -> None:
        parts: list[Searcher] = []
        if text_patterns:
            parts.append(re.compile("|".join(f"(?:{p})" for p in text_patterns), FLAGS))
        if user_patterns:
            parts.append(compile_user_regex("|".join(f"(?:{p})" for p in user_patterns)))
        self._parts = tuple(parts)

    def search(self, text: str) -> Found | None:
        for part in self._parts:
            found = part.search(text)
            if found is not None:
                return found
        return None

    def finditer(self, text: str) -> Iterator[Found]:
        for part in self._parts:
            yield from part.finditer(text)
