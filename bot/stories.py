"""Stories: reports of the same real-world event, from any source, grouped into one.

Why: every outlet that reports an event used to send its own alert, and every
rule that fired sent one more (about six messages per multi-outlet story on
real news). A story lets delivery send one message and edit it as reports come in.

How a headline joins a story (chosen by measurement, see `docs/stories.md` and
`bench/stories.py`): its *signature* — content words (lightly stemmed, with
common trade-war words weighted down), the percentages and dollar amounts it
names, and the first actor it names (US or China) — is compared (Jaccard of
the words) with the reports of the stories still open (last report within
`window`) that share a word with it. The best story whose similarity reaches `threshold` wins, unless a veto applies: a
different headline number (34 % vs 125 %: a new escalation is a new story) or
a different dollar amount. Otherwise the headline opens a story.

The logic here is pure and in memory (`StoryIndex`); `StoryAssigner` keeps that
index in step with durable storage (`bot.storage.stories`, or the backtest's
memory store) so the same decisions are made live, after a restart, by several
workers and in a backtest.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from bot.models import stable_id

DEFAULT_WINDOW = timedelta(hours=72)  # measured: docs/stories.md
DEFAULT_THRESHOLD = 0.15
# Reports of one story compared against a new headline: the most recent few are enough
# (a story's wording drifts slowly) and they bound the cost of a long-running story.
MEMBERS_COMPARED = 3
# Added to the similarity when the headline fired a rule the story's reports fired: the same
# kind of action (retaliation, truce, export controls) is evidence of the same event.
TOPIC_BONUS = 0.05  # measured: docs/stories.md
MAX_TITLE_CHARS = 1_000  # a "title" longer than this is a body pasted into a title

_PCT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:%|％|-?\s*pct\b|\s*per\s*cent\b|\s*percent\b)")
_MONEY = re.compile(
    r"(?:\$|usd\s*|us\$)\s*(\d+(?:\.\d+)?)\s*(billion|bn|bln|b|million|mn|m|trillion|tn|t)\b"
    r"|(\d+(?:\.\d+)?)\s*-?\s*(billion|bn|bln|trillion)\s*-?\s*(?:dollars?|usd)"
)
# "Aug. 23", "January 15": when, not which event (a date's day is not a bare number).
_DATE = re.compile(r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d{1,2}\b")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")

# Who acts: the first actor a headline names is (mostly) its subject.
_ACTORS = {
    "us": "us", "u.s": "us", "u.s.": "us", "usa": "us", "america": "us", "american": "us",
    "washington": "us", "trump": "us", "biden": "us", "ustr": "us", "treasury": "us",
    "commerce": "us", "white": "us", "bessent": "us", "lutnick": "us", "greer": "us",
    "china": "cn", "chinese": "cn", "beijing": "cn", "xi": "cn", "mofcom": "cn", "xinhua": "cn",
    "prc": "cn", "中国": "cn", "美国": "us",
}
_STOP = frozenset(
    ["a", "an", "the", "of", "to", "in", "on", "at", "for", "and", "or", "but", "by", "with", "from", "as", "is", "are", "was", "were", "be", "been", "it", "its", "this", "that", "these", "those", "after", "before", "over", "into", "amid", "says", "said", "say", "will", "would", "could", "may", "new", "more", "than", "up", "down", "out", "about", "against", "its", "their", "his", "her", "has", "have", "had", "not", "no", "who", "what", "why", "how", "when", "where", "which", "s"]
)
# How reporters say the same thing differently (after stemming).
_SYNONYMS = {
    "duty": "tariff", "levy": "tariff", "tax": "tariff", "taxe": "tariff", "taxed": "tariff",
    "hike": "raise", "increase": "raise", "boost": "raise", "lift": "raise", "rais": "raise",
    "slap": "impose", "hit": "impose", "levie": "impose", "product": "good", "import": "good",
    "curb": "restrict", "restriction": "restrict", "control": "restrict", "ban": "restrict",
    "halt": "suspend", "pause": "suspend", "delay": "suspend", "truce": "suspend",
    "talk": "talk", "negotiation": "talk", "meeting": "talk", "beijing": "china", "chinese": "china",
    "washington": "us", "u.s": "us", "american": "us", "america": "us", "usa": "us",
}


def _stem(word: str) -> str:
    """Plural and past-tense endings off, so "tariffs"/"tariff" and "imposed"/"imposes" meet."""
    if word.endswith(("'s", "’s")):
        word = word[:-2]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    if len(word) > 5 and word.endswith("ed"):
        word = word[:-1]  # imposed → impose, raised → raise
    return word


# A number that is not a percentage, an amount or part of a decimal.
_DIGIT = re.compile(r"\d")  # no decimal digit: `_BARE` cannot find a number, skip the passes
_BARE = re.compile(r"(?<![\d.$%])\b(\d+)\b(?!\s*(?:%|％|pct|percent|per\s*cent|\.\d))")
_YEAR = re.compile(r"(?:19|20)\d\d")  # "2025 tariffs", "since 2018": context, not the event
_MAY_PCT = re.compile(r"%|％|pct|per\s*cent")
_MAY_MONEY = re.compile(r"\$|usd|billion|bn|bln|trillion")


@functools.lru_cache(maxsize=65_536)
def _canonical(token: str) -> str:
    """The word a token counts as ("" for stop words and bare numbers); cached, as the
    vocabulary of news is small and every headline is read once."""
    if token in _STOP or token.isdigit():
        return ""
    stem = _stem(token)
    return _SYNONYMS.get(stem, stem)


def _number(text: str) -> str:
    value = float(text)
    return f"{value:g}"


@dataclass(frozen=True, slots=True)
class Signature:
    """What a headline is about, reduced to what story matching compares."""

    words: frozenset[str]
    percents: frozenset[str]
    money: frozenset[str]
    actor: str | None
    numbers: frozenset[str] = frozenset()  # other numbers named ("Phase 2", "April 10", "No. 7")
    lead_percent: str | None = field(init=False, compare=False)
    """The largest percentage named: for "raises to 84% from 34%" the news is 84 %
    (computed once: `vetoed` compares it for every candidate story)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "lead_percent", max(self.percents, key=float) if self.percents else None)



def signature(title: str) -> Signature:
    """The signature of a headline; any text is accepted (empty, huge, any script)."""
    text = unicodedata.normalize("NFKC", title[:MAX_TITLE_CHARS]).casefold()
    percents = frozenset(_number(m.group(1)) for m in _PCT.finditer(text)) if _MAY_PCT.search(text) else frozenset()
    money: set[str] = set()
    for m in _MONEY.finditer(text) if _MAY_MONEY.search(text) else ():
        amount, unit = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        money.add(f"${_number(amount)}{unit[0]}")
    words: set[str] = set()
    actor: str | None = None
    cjk = _CJK.search(text) is not None
    for token in _WORD.findall(text):
        if cjk and _CJK.search(token):  # no spaces between Chinese words: character pairs stand in
            for run in _CJK.findall(token):
                words.update(run[i : i + 2] for i in range(max(1, len(run) - 1)))
                actor = actor or next((_ACTORS[k] for k in ("中国", "美国") if k in run), None)
            continue
        if actor is None and token in _ACTORS:
            actor = _ACTORS[token]
        word = _canonical(token)
        if word:
            words.add(word)
    words.update(f"{p}%" for p in percents)
    words.update(money)
    numbers = frozenset(
        n for n in (m.group(1) for m in _BARE.finditer(_MONEY.sub(" ", _DATE.sub(" ", text)))) if not _YEAR.fullmatch(n)
    ) if _DIGIT.search(text) else frozenset()
    return Signature(frozenset(words), percents, frozenset(money), actor, numbers)


def similarity(a: Signature, b: Signature) -> float:
    """Jaccard of the signature words, 0 when vetoed (measured best; docs/stories.md)."""
    if vetoed(a, b):
        return 0.0
    common = len(a.words & b.words)
    return common / (len(a.words) + len(b.words) - common) if common else 0.0


def vetoed(a: Signature, b: Signature) -> bool:
    """Different headline numbers or amounts: a different event, however alike the words
    (other numbers veto only when the two share none: "Phase 1" vs "Phase 2")."""
    if a.percents and b.percents and a.lead_percent != b.lead_percent:
        return True
    if a.money and b.money and not (a.money & b.money):
        return True
    return bool(a.numbers and b.numbers and not (a.numbers & b.numbers))


# ---- the online grouping ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Report:
    """One headline that joined a story."""

    event_id: str
    source: str
    title: str
    url: str | None
    time: datetime
    topics: tuple[str, ...] = ()  # what it was found to be about: the ids of the rules it fired


@dataclass
class Story:
    id: str
    opened_at: datetime
    last_at: datetime
    title: str
    reports: list[Report] = field(default_factory=list)
    # Caches over `reports` (which callers append to): signatures, words, topics.
    _sigs: list[Signature] = field(default_factory=list, repr=False)
    _words: set[str] = field(default_factory=set, repr=False)
    _topics: set[str] = field(default_factory=set, repr=False)
    _sources: dict[str, None] = field(default_factory=dict, repr=False)

    @property
    def sources(self) -> list[str]:
        self._fold()
        return list(self._sources)

    def _fold(self) -> None:
        while len(self._sigs) < len(self.reports):
            report = self.reports[len(self._sigs)]
            sig = signature(report.title)
            self._sigs.append(sig)
            self._words.update(sig.words)
            self._topics.update(report.topics)
            self._sources.setdefault(report.source)

    def add(self, report: Report, sig: Signature) -> None:
        """Append a report whose signature is already known."""
        self._fold()
        self.reports.append(report)
        self._sigs.append(sig)
        self._words.update(sig.words)
        self._topics.update(report.topics)
        self._sources.setdefault(report.source)
        self.last_at = max(self.last_at, report.time)

    def signatures(self) -> list[Signature]:
        """The reports a new headline is compared with: the first (what opened the story) and
        the latest few (its wording drifts)."""
        self._fold()
        if len(self._sigs) <= MEMBERS_COMPARED:
            return self._sigs
        return [self._sigs[0], *self._sigs[1 - MEMBERS_COMPARED :]]

    @property
    def words(self) -> set[str]:
        self._fold()
        return self._words

    @property
    def topics(self) -> set[str]:
        self._fold()
        return self._topics


@dataclass(frozen=True, slots=True)
class Assignment:
    story: Story
    opened: bool  # this report opened the story
    sources: tuple[str, ...] = ()  # the story's sources once this report joined


# A word shared by more open stories than this says nothing about which one a headline
# belongs to (in a flood, "tariff" is in all of them): it is not used to find candidates.
MAX_POSTING = 64
MAX_CANDIDATES = 6  # stories compared in full: those sharing the most words with the headline


class StoryIndex:
    """Open stories with an inverted index on their words: a headline is compared only with
    the few stories it shares the most words with, so the cost per headline stays flat however
    many stories are open (bench/stories.py). On the labelled set no posting list comes near
    `MAX_POSTING`, so this is exactly the exhaustive comparison there."""

    def __init__(self, *, window: timedelta = DEFAULT_WINDOW, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.window = window
        self.threshold = threshold
        self.stories: dict[str, Story] = {}
        self._by_word: dict[str, set[str]] = {}
        self._expired_at: datetime | None = None

    def put(self, story: Story) -> None:
        """Add or replace a story (e.g. as loaded from storage)."""
        old = self.stories.get(story.id)
        if old is not None:
            self._unindex(old)
        self.stories[story.id] = story
        for word in story.words:
            self._by_word.setdefault(word, set()).add(story.id)

    def _unindex(self, story: Story) -> None:
        for word in story.words:
            ids = self._by_word.get(word)
            if ids is not None:
                ids.discard(story.id)
                if not ids:
                    del self._by_word[word]

    def expire(self, now: datetime) -> None:
        """Forget stories whose last report is older than the window (a scan at most every
        window/12 of event time; a closed story still indexed is skipped by `best`)."""
        if self._expired_at is not None and now - self._expired_at < self.window / 12:
            return
        self._expired_at = now
        horizon = now - self.window
        for sid in [sid for sid, s in self.stories.items() if s.last_at < horizon]:
            self._unindex(self.stories.pop(sid))

    def best(self, sig: Signature, at: datetime, topics: tuple[str, ...] = ()) -> Story | None:
        horizon = at - self.window
        shared: Counter[str] = Counter()  # open story → words it shares with the headline
        for word in sig.words:
            ids = self._by_word.get(word)
            if ids and len(ids) <= MAX_POSTING:
                shared.update(ids)
        best: Story | None = None
        best_score = self.threshold
        size = len(sig.words)
        for sid, count in shared.most_common(MAX_CANDIDATES):
            if count / size + TOPIC_BONUS < best_score:
                break  # Jaccard ≤ shared / |words|: neither this story nor any after it can win
            story = self.stories.get(sid)
            if story is None or story.last_at < horizon or story.opened_at > at + self.window:
                continue
            score = max((similarity(sig, other) for other in story.signatures()), default=0.0)
            if score and topics and not story.topics.isdisjoint(topics):
                score += TOPIC_BONUS  # the same rules fired: the same kind of action
            if score >= best_score and (best is None or score > best_score or story.last_at > best.last_at):
                best, best_score = story, score
        return best

    def assign(self, report: Report) -> Assignment:
        """Join the best open story, or open one; the story's id is stable for the report."""
        sig = signature(report.title)
        story = self.best(sig, report.time, report.topics) if sig.words else None
        opened = story is None
        if story is None:
            story = Story(
                id=stable_id("story", report.event_id),
                opened_at=report.time,
                last_at=report.time,
                title=report.title[:300],
            )
            self.stories[story.id] = story
        story.add(report, sig)
        for word in sig.words:
            self._by_word.setdefault(word, set()).add(story.id)
        return Assignment(story, opened, tuple(story._sources))


# ---- keeping the index in step with storage -------------------------------------


class StoryStorage(Protocol):
    """Durable stories: SQL (`bot.storage.stories.SqlStories`) or the backtest's dicts.

    `lock` serialises assignment across workers for the rest of the transaction;
    `changed_since` returns stories written after `version` whose last report is at
    or after `horizon`, and the newest version; `save` writes stories at a new version."""

    async def lock(self, conn: object) -> None: ...

    async def changed_since(
        self, conn: object, version: int, *, horizon: datetime
    ) -> tuple[list[Story], int]: ...

    async def save(self, conn: object, stories: Sequence[Story], new_reports: Sequence[tuple[str, Report]],
                   *, version: int) -> None: ...


class StoryAssigner:
    """Assigns reports to stories inside the caller's transaction (see module docstring).

    Call `reset()` when that transaction rolls back: the in-memory index may hold its writes."""

    def __init__(
        self,
        storage: StoryStorage,
        *,
        window: timedelta = DEFAULT_WINDOW,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        self.storage = storage
        self.window = window
        self.threshold = threshold
        self.reset()

    def reset(self) -> None:
        self.index = StoryIndex(window=self.window, threshold=self.threshold)
        self.version = 0

    async def assign(self, conn: object, reports: Iterable[Report], *, now: datetime) -> dict[str, Assignment]:
        """Story of each report (by event id); stories and memberships are written on `conn`."""
        todo = list(reports)
        if not todo:
            return {}
        await self.storage.lock(conn)
        earliest = min([r.time for r in todo] + [now])
        changed, newest = await self.storage.changed_since(conn, self.version, horizon=earliest - self.window)
        for story in changed:
            self.index.put(story)
        self.index.expire(earliest)
        out: dict[str, Assignment] = {}
        touched: dict[str, Story] = {}
        joined: list[tuple[str, Report]] = []
        for report in sorted(todo, key=lambda r: r.time):
            if report.event_id in out:
                continue
            assignment = out[report.event_id] = self.index.assign(report)
            touched[assignment.story.id] = assignment.story
            joined.append((assignment.story.id, report))
        self.version = newest + 1
        await self.storage.save(conn, list(touched.values()), joined, version=self.version)
        return out
