"""What a server says about how often to ask it: HTTP freshness and throttling headers, feed hints.

Read here, weighed in `cadence`: `Cache-Control: max-age` (else `Expires` − `Date`,
so a server whose clock is off does not matter), `Retry-After` (seconds or an HTTP
date, also measured against `Date`) and the status (429/503 mean "slow down" even
without `Retry-After`); from a feed body, RSS `<ttl>` (minutes) and
`<sy:updatePeriod>`/`<sy:updateFrequency>`. Values are raw here (a year is a year):
clamping belongs to the cadence, which knows the source's ceiling.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

THROTTLE_STATUSES = frozenset({429, 503})

_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|[,\s])(?:no-cache|no-store)(?:$|[,\s=])", re.IGNORECASE)
_TTL = re.compile(rb"<ttl>\s*(\d{1,9})\s*</ttl>", re.IGNORECASE)
_SY_PERIOD = re.compile(rb"<(?:[A-Za-z0-9_]+:)?updatePeriod>\s*([A-Za-z]+)\s*</", re.IGNORECASE)
_SY_FREQUENCY = re.compile(rb"<(?:[A-Za-z0-9_]+:)?updateFrequency>\s*(\d{1,9})\s*</", re.IGNORECASE)
_PERIODS = {"hourly": 3600.0, "daily": 86_400.0, "weekly": 604_800.0, "monthly": 2_592_000.0, "yearly": 31_536_000.0}
_FEED_HEAD = 65_536  # channel-level elements come before the items


class ServerHints(BaseModel):
    """One response's hints, in seconds from the response; None: the server said nothing."""

    model_config = ConfigDict(frozen=True)

    status: int | None = None
    max_age: float | None = None  # Cache-Control max-age, else Expires − Date; 0: "always revalidate"
    retry_after: float | None = None
    feed_period: float | None = None  # RSS <ttl> or sy:updatePeriod/updateFrequency
    body_read: bool = False  # feed_period is only known when the body was read (not on a 304)

    @property
    def throttled(self) -> bool:
        return self.status in THROTTLE_STATUSES


def header_hints(status: int, headers: Mapping[str, str], *, now: datetime | None = None) -> ServerHints:
    """The hints in one response's headers (`headers` looked up case-insensitively by httpx)."""
    served = _http_date(headers.get("date"))
    reference = served or now or datetime.now(UTC)
    return ServerHints(
        status=status,
        max_age=_freshness(headers, reference),
        retry_after=_retry_after(headers.get("retry-after"), reference) if status in THROTTLE_STATUSES else None,
    )


def feed_period(body: bytes) -> float | None:
    """Seconds between updates the feed itself announces (the longer of `<ttl>` and `sy:`), or None."""
    head = body[:_FEED_HEAD]
    found: list[float] = []
    ttl = _TTL.search(head)
    if ttl:
        found.append(int(ttl.group(1)) * 60.0)
    period = _SY_PERIOD.search(head)
    if period:
        base = _PERIODS.get(period.group(1).decode("ascii").lower())
        frequency = _SY_FREQUENCY.search(head)
        times = int(frequency.group(1)) if frequency else 1
        if base is not None and times > 0:
            found.append(base / times)
    found = [f for f in found if f > 0]
    return max(found) if found else None


def _freshness(headers: Mapping[str, str], reference: datetime) -> float | None:
    cache_control = headers.get("cache-control") or ""
    if _NO_CACHE.search(cache_control):
        return 0.0
    match = _MAX_AGE.search(cache_control)
    if match:
        return float(int(match.group(1)))
    expires = headers.get("expires")
    if expires is None:
        return None
    when = _http_date(expires)
    if when is None:  # "0", "-1": already expired (RFC 9111 5.3)
        return 0.0
    return max(0.0, (when - reference).total_seconds())


def _retry_after(value: str | None, reference: datetime) -> float | None:
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    when = _http_date(value)
    if when is None:
        return None
    return max(0.0, (when - reference).total_seconds())


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
