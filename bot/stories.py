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

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from bot.models import stable_id

DEFAULT_WINDOW = timedelta(hours=72)  # measured: docs/stories.md
DEFAULT_THRESHOLD = 0.15
# Reports of one story compared against a new headline: the most recent few are enough
# (a story's wording drifts slowly) and they bound the cost of a long-running story.
MEMBERS_COMPARED = 8
MAX_TITLE_CHARS = 1_000  # a "title" longer than this is a body pasted into a title

_PCT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:%|％|-?\s*pct\b|\s*per\s*cent\b|\s*percent\b)")
_MONEY = re.compile(
    r"(?:\$|usd\s*|us\$)\s*(\d+(?:\.\d+)?)\s*(billion|bn|b|million|mn|m|trillion|tn|t)\b"
    r"|(\d+(?:\.\d+)?)\s*(billion|bn|trillion)\s*(?:dollars?|usd)"
)
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

    @property
    def lead_percent(self) -> str | None:
        """The largest percentage named: for "raises to 84% from 34%" the news is 84 %."""
        return max(self.percents, key=float) if self.percents else None



def signature(title: str) -> Signature:
    """The signature of a headline; any text is accepted (empty, huge, any script)."""
    text = unicodedata.normalize("NFKC", title[:MAX_TITLE_CHARS]).casefold()
    percents = frozenset(_number(m.group(1)) for m in _PCT.finditer(text))
    money: set[str] = set()
    for m in _MONEY.finditer(text):
        amount, unit = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        money.add(f"${_number(amount)}{unit[0]}")
    words: set[str] = set()
    actor: str | None = None
    for token in _WORD.findall(text):
        if _CJK.search(token):  # no spaces between Chinese words: character pairs stand in
            for run in _CJK.findall(token):
                words.update(run[i : i + 2] for i in range(max(1, len(run) - 1)))
                actor = actor or next((_ACTORS[k] for k in ("中国", "美国") if k in run), None)
            continue
        if actor is None and token in _ACTORS:
            actor = _ACTORS[token]
        if token in _STOP or token.isdigit():
            continue
        stem = _stem(token)
        words.add(_SYNONYMS.get(stem, stem))
    words.update(f"{p}%" for p in percents)
    words.update(money)
    return Signature(frozenset(words), percents, frozenset(money), actor)


def similarity(a: Signature, b: Signature) -> float:
    """Jaccard of the signature words, 0 when vetoed (measured best; docs/stories.md)."""
    if vetoed(a, b):
        return 0.0
    common = len(a.words & b.words)
    return common / (len(a.words) + len(b.words) - common) if common else 0.0


def vetoed(a: Signature, b: Signature) -> bool:
    """Different headline numbers or amounts: a different event, however alike the words."""
    if a.percents and b.percents and a.lead_percent != b.lead_percent:
        return True
    return bool(a.money and b.money and not (a.money & b.money))


# ---- the online grouping ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Report:
    """One headline that joined a story."""

    event_id: str
    source: str
    title: str
    url: str | None
    time: datetime


@dataclass
class Story:
    id: str
    opened_at: datetime
    last_at: datetime
    title: str
    reports: list[Report] = field(default_factory=list)
    _sigs: list[Signature] = field(default_factory=list, repr=False)

    @property
    def sources(self) -> list[str]:
        return list(dict.fromkeys(r.source for r in self.reports))

    def signatures(self) -> list[Signature]:
        while len(self._sigs) < len(self.reports):
            self._sigs.append(signature(self.reports[len(self._sigs)].title))
        return self._sigs[-MEMBERS_COMPARED:]


@dataclass(frozen=True, slots=True)
class Assignment:
    story: Story
    opened: bool  # this report opened the story


class StoryIndex:
    """Open stories with an inverted index on their words: a headline is compared only with
    stories it shares a word with (measured: indexing only rare words lost a sixth of recall)."""

    def __init__(self, *, window: timedelta = DEFAULT_WINDOW, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.window = window
        self.threshold = threshold
        self.stories: dict[str, Story] = {}
        self._by_word: dict[str, set[str]] = {}

    def put(self, story: Story) -> None:
        """Add or replace a story (e.g. as loaded from storage)."""
        self.stories[story.id] = story
        for sig in story.signatures():
            self._index(story.id, sig)

    def _index(self, story_id: str, sig: Signature) -> None:
        for word in sig.words:
            self._by_word.setdefault(word, set()).add(story_id)

    def expire(self, now: datetime) -> None:
        """Forget stories whose last report is older than the window."""
        horizon = now - self.window
        old = [sid for sid, s in self.stories.items() if s.last_at < horizon]
        if not old:
            return
        gone = set(old)
        for sid in old:
            del self.stories[sid]
        for word in list(self._by_word):
            ids = self._by_word[word] - gone
            if ids:
                self._by_word[word] = ids
            else:
                del self._by_word[word]

    def best(self, sig: Signature, at: datetime) -> Story | None:
        horizon = at - self.window
        candidates: set[str] = set()
        for word in sig.words:
            candidates.update(self._by_word.get(word, ()))
        best: Story | None = None
        best_score = self.threshold
        for sid in candidates:
            story = self.stories.get(sid)
            if story is None or story.last_at < horizon or story.opened_at > at + self.window:
                continue
            score = max((similarity(sig, other) for other in story.signatures()), default=0.0)
            if score >= best_score and (best is None or score > best_score or story.last_at > best.last_at):
                best, best_score = story, score
        return best

    def assign(self, report: Report) -> Assignment:
        """Join the best open story, or open one; the story's id is stable for the report."""
        sig = signature(report.title)
        story = self.best(sig, report.time) if sig.words else None
        opened = story is None
        if story is None:
            story = Story(
                id=stable_id("story", report.event_id),
                opened_at=report.time,
                last_at=report.time,
                title=report.title[:300],
            )
            self.stories[story.id] = story
        story.reports.append(report)
        story.last_at = max(story.last_at, report.time)
        self._index(story.id, sig)
        return Assignment(story, opened)


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

    async def assign(self, conn: object, reports: Iterable[Report], *, now: datetime) -> dict[str, Story]:
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
        out: dict[str, Story] = {}
        touched: dict[str, Story] = {}
        joined: list[tuple[str, Report]] = []
        for report in sorted(todo, key=lambda r: r.time):
            if report.event_id in out:
                continue
            story = self.index.assign(report).story
            out[report.event_id] = touched[story.id] = story
            joined.append((story.id, report))
        self.version = newest + 1
        await self.storage.save(conn, list(touched.values()), joined, version=self.version)
        return out
