"""One poll of one source: fetch conditionally, parse, and report — never raise for bad data.

A failing source must not stop the others, so every fetch or parse problem becomes
`PollOutcome.error` (one line) with no events. Validators advance only when the body was
parsed: after a parse error the next poll fetches the body again instead of getting a 304
for content that was never read.
"""

from __future__ import annotations

from datetime import datetime

import httpx
from pydantic import BaseModel

from bot.models import Event
from bot.sources.config import FeedSource, Source
from bot.sources.hints import ServerHints, feed_period
from bot.sources.http import FetchError, FetchResult, Validators, fetch
from bot.sources.news import FeedError, parse_feed
from bot.sources.prices import PriceError, parse_prices


class PollOutcome(BaseModel):
    """What one poll produced, and the validators to send next time."""

    source_id: str
    events: list[Event] = []
    validators: Validators = Validators()
    not_modified: bool = False
    error: str | None = None
    hints: ServerHints | None = None  # what the server said about polling it (None: no answer)


async def poll_source(
    client: httpx.AsyncClient,
    source: Source,
    *,
    validators: Validators | None,
    max_bytes: int,
    now: datetime,
    deadline: float | None = None,
) -> PollOutcome:
    """Fetch and parse one source (feed or prices); problems land in `error`, never in an exception.

    `deadline`: seconds for the whole fetch (default: `fetch`'s). Redirects follow the
    source's `follow_redirects` policy."""
    source_id = source.source_id
    old = validators or Validators()
    try:
        url = source.fetch_url()
        result = await fetch(
            client,
            url,
            validators=old,
            max_bytes=max_bytes,
            redirects=source.follow_redirects,
            total_timeout=deadline,
        )
    except ValueError as exc:  # a price provider without a URL
        return PollOutcome(source_id=source_id, validators=old, error=f"{source_id}: {exc}")
    except FetchError as exc:
        return PollOutcome(source_id=source_id, validators=old, error=f"{source_id}: {exc}", hints=exc.hints)
    if result.not_modified:
        return PollOutcome(
            source_id=source_id, validators=result.validators, not_modified=True, hints=result.hints
        )
    hints = result.hints
    if isinstance(source, FeedSource):
        hints = hints.model_copy(update={"feed_period": feed_period(result.body), "body_read": True})
    try:
        events = _parse(source, result, now)
    except (FeedError, PriceError) as exc:
        return PollOutcome(source_id=source_id, validators=old, error=f"{source_id}: {exc}", hints=result.hints)
    return PollOutcome(source_id=source_id, events=events, validators=result.validators, hints=hints)


def _parse(source: Source, result: FetchResult, now: datetime) -> list[Event]:
    """The one place that knows which parser reads which kind of source."""
    if isinstance(source, FeedSource):
        return list(parse_feed(result.body, source=source, seen_at=now, content_type=result.content_type))
    return list(parse_prices(result.body, source, now))
