"""The feed parser on a corpus no one here wrote: feedparser's own test feeds.

They ship in feedparser's source distribution (`tests/illformed`,
`tests/wellformed`, `tests/encoding`, …). `.ci/run` downloads the sdist of the
installed version into `.cache/corpus/` and unpacks its `tests/` folder; set
FEED_CORPUS_DIR to point elsewhere. Without the corpus the test skips.

On every file `parse_feed` either returns a list of events or raises
`FeedError` — never anything else.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest

from bot.models import NewsEvent
from bot.sources.config import FeedSource
from bot.sources.news import FeedError, parse_feed

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2025, 4, 2, 20, 0, tzinfo=UTC)
SOURCE = FeedSource.model_validate({"id": "corpus", "url": "https://example.com/feed.xml"})


def corpus_dir() -> Path | None:
    """FEED_CORPUS_DIR, else the installed feedparser's tests in .cache/corpus, else any version there."""
    configured = os.environ.get("FEED_CORPUS_DIR")
    if configured:
        return Path(configured) if Path(configured).is_dir() else None
    cache = REPO / ".cache" / "corpus"
    exact = cache / f"feedparser-{feedparser.__version__}" / "tests"
    if exact.is_dir():
        return exact
    found = sorted(cache.glob("feedparser-*/tests"))
    return found[-1] if found else None


def corpus_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc"))


def test_parse_feed_never_raises_anything_but_feed_error() -> None:
    root = corpus_dir()
    if root is None:
        pytest.skip(
            "feedparser test corpus not found: set FEED_CORPUS_DIR or run .ci/run "
            "(it downloads the feedparser sdist into .cache/corpus)"
        )
    files = corpus_files(root)
    assert len(files) > 100, f"{root} holds only {len(files)} files"
    outcomes: Counter[str] = Counter()
    events = 0
    unexpected: list[str] = []
    for path in files:
        try:
            parsed = parse_feed(path.read_bytes(), source=SOURCE, seen_at=NOW)
        except FeedError:
            outcomes[f"{path.relative_to(root).parts[0]}: FeedError"] += 1
            continue
        except Exception as exc:  # noqa: BLE001 — that is what the test looks for
            unexpected.append(f"{path.relative_to(root)}: {type(exc).__name__}: {exc}"[:300])
            continue
        assert isinstance(parsed, list), path
        assert all(isinstance(e, NewsEvent) and e.seen_at == NOW for e in parsed), path
        assert all(e.published is None or e.published <= NOW for e in parsed), path
        outcomes[f"{path.relative_to(root).parts[0]}: parsed"] += 1
        events += len(parsed)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
    print(f"\nfeed corpus {root}: {len(files)} files, {events} events; {summary}")
    assert not unexpected, "\n".join(unexpected[:20])
    assert sum(v for k, v in outcomes.items() if k.endswith("parsed")) > len(files) // 4
