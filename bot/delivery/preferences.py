"""Applying what chats have set: quiet hours, word filters, subscriptions (routing uses these).

The parsing of what users type lives in `bot.commands.parse`.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.models import Alert, Severity
from bot.storage.store import Destination


def quiet_until(dest: Destination, now: datetime) -> datetime | None:
    """If `now` falls in the destination's quiet hours, when they end (UTC); else None."""
    if not (dest.quiet_start and dest.quiet_end):
        return None
    zone = ZoneInfo(dest.quiet_tz or "UTC")
    local = now.astimezone(zone)
    start = time.fromisoformat(dest.quiet_start)
    end = time.fromisoformat(dest.quiet_end)
    t = local.time()
    if start < end:
        inside = start <= t < end
    else:  # spans midnight
        inside = t >= start or t < end
    if not inside:
        return None
    end_dt = datetime.combine(local.date(), end, tzinfo=zone)
    if end_dt <= local:
        end_dt += timedelta(days=1)
    return end_dt.astimezone(now.tzinfo)


def passes_filters(dest: Destination, alert: Alert) -> bool:
    """Include words: at least one must appear; exclude words: none may."""
    text = f"{alert.title} {alert.rule_description} {alert.message or ''}".lower()
    words = set(re.findall(r"[\w'\-.]+", text))
    if any(w in words for w in dest.exclude_words):
        return False
    if dest.include_words and not any(w in words for w in dest.include_words):
        return False
    return True


def subscription_matches(selector: str, value: str, alert: Alert) -> bool:
    if selector == "severity":
        return alert.severity.at_least(Severity(value))
    if selector == "rule":
        return alert.rule_id == value
    if selector == "tag":
        return value in alert.tags
    return False
