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
from bot.sources.config import FeedSource, PriceSource
from bot.sources.http import FetchError, FetchResult, Validators, fetch
from bot.sources.news import FeedError, parse_feed
from bot.sources.prices import PriceError, parse_prices
from bot.sources.redirects import RedirectPolicy


class PollOutcome(BaseModel):
    """What one poll produced, and the validators to send next time."""

    source_id: str
    events: list[Event] = []
    validators: Validators = Validators()
    not_modified: bool = False
    error: str | None = None


async def poll_feed(
    client: httpx.AsyncClient,
    feed: FeedSource,
    *,
    validators: Validators | None,
    max_bytes: int,
    now: datetime,
    deadline: float | None = None,
) -> PollOutcome:
    """Fetch and parse one feed; problems land in `error`, never in an exception.

    `deadline`: seconds for the whole fetch (default: `fetch`'s)."""
    old = validators or Validators()
    result = await _fetch(client, str(feed.url), feed.id, old, max_bytes, feed.follow_redirects, deadline)
    if isinstance(result, PollOutcome):
        return result
    if result.not_modified:
        return PollOutcome(source_id=feed.id, validators=result.validators, not_modified=True)
    try:
        events = parse_feed(result.body, source=feed, seen_at=now, content_type=result.content_type)
    except FeedError as exc:
        return PollOutcome(source_id=feed.id, validators=old, error=f"{feed.id}: {exc}")
    return PollOutcome(source_id=feed.id, events=list(events), validators=result.validators)


async def poll_price(
    client: httpx.AsyncClient,
    price: PriceSource,
    *,
    validators: Validators | None,
    max_bytes: int,
    now: datetime,
    deadline: float | None = None,
) -> PollOutcome:
    """Fetch and parse one price source; problems land in `error`, never in an exception."""
    source_id = price.source_id
    old = validators or Validators()
    try:
        url = price.resolved_url()
    except ValueError as exc:
        return PollOutcome(source_id=source_id, validators=old, error=f"{source_id}: {exc}")
    result = await _fetch(client, url, source_id, old, max_bytes, price.follow_redirects, deadline)
    if isinstance(result, PollOutcome):
        return result
    if result.not_modified:
        return PollOutcome(source_id=source_id, validators=result.validators, not_modified=True)
    try:
        events = parse_prices(result.body, price, now)
    except PriceError as exc:
        return PollOutcome(source_id=source_id, validators=old, error=f"{source_id}: {exc}")
    return PollOutcome(source_id=source_id, events=list(events), validators=result.validators)


async def _fetch(
    client: httpx.AsyncClient,
    url: str,
    source_id: str,
    old: Validators,
    max_bytes: int,
    redirects: RedirectPolicy,
    deadline: float | None,
) -> FetchResult | PollOutcome:
    try:
        return await fetch(
            client, url, validators=old, max_bytes=max_bytes, redirects=redirects, total_timeout=deadline
        )
    except FetchError as exc:
        return PollOutcome(source_id=source_id, validators=old, error=f"{source_id}: {exc}")
