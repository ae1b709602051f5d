"""Time fastfeedparser, feedparser and our parse_feed on one 500-item RSS 2.0 feed.

Run by hand: `.venv/bin/python bench/feed_parsers.py [items] [repeats]`. Prints the median
milliseconds per parse for each, and the feedparser / fastfeedparser ratio.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fastfeedparser  # noqa: E402
import feedparser  # noqa: E402

from bot.sources.config import FeedSource  # noqa: E402
from bot.sources.news import parse_feed  # noqa: E402


def make_feed(items: int) -> bytes:
    start = datetime(2025, 4, 9, 12, tzinfo=UTC)
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        "<title>Bench wire</title><link>https://news.example.com/</link>"
    ]
    for i in range(items):
        when = format_datetime(start - timedelta(minutes=i), usegmt=True)
        parts.append(
            f"<item><title>US raises tariffs on Chinese goods, item {i} &amp; more</title>"
            f'<link>https://news.example.com/{i}</link><guid isPermaLink="false">bench-{i}</guid>'
            f"<pubDate>{when}</pubDate><description>&lt;p&gt;Beijing vows &lt;b&gt;countermeasures"
            f"&lt;/b&gt; after duties on ${i} billion of goods.&lt;/p&gt;</description></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode()


def timed(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm up
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def main() -> None:
    items = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    body = make_feed(items)
    source = FeedSource.model_validate({"id": "bench", "url": "https://news.example.com/rss"})
    now = datetime(2025, 4, 10, tzinfo=UTC)
    assert len(fastfeedparser.parse(body).entries) == items
    assert len(feedparser.parse(body).entries) == items
    fast = timed(lambda: fastfeedparser.parse(body), repeats)
    slow = timed(lambda: feedparser.parse(body), repeats)
    ours = timed(lambda: parse_feed(body, source=source, seen_at=now), repeats)
    print(f"{items} items, {len(body) / 1024:.0f} KiB, median of {repeats}")
    print(f"fastfeedparser {fast:8.2f} ms/parse")
    print(f"feedparser     {slow:8.2f} ms/parse")
    print(
        f"parse_feed     {ours:8.2f} ms/parse (fastfeedparser + charset + HTML cleaning + events)"
    )
    print(f"ratio feedparser/fastfeedparser: {slow / fast:.1f}x")


if __name__ == "__main__":
    main()
