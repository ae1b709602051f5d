"""Parsing of what chats may type: durations, quiet hours, time zones, filter words, selectors.

Shared by every chat adapter (through the commands) so `/mute 2h` means the
same in Telegram and Discord. Errors are `PreferenceError` with a one-line
explanation of the right form, ready to show to the user.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.models import Severity
from bot.storage.store import Selector

if TYPE_CHECKING:
    from bot.rules.loader import RuleSet

MAX_ARG_LENGTH = 64
MAX_FILTER_WORDS = 20
MAX_MUTE = timedelta(days=365)

_DURATION = re.compile(r"^(\d{1,6})\s*(s|m|min|h|d|w)?$")
_UNIT_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_WORD = re.compile(r"^[\w][\w'\-.]{0,39}$", re.UNICODE)


class PreferenceError(ValueError):
    """A user typed something we cannot use; the message says the right form."""


def parse_duration(text: str) -> timedelta:
    """`30m`, `2h`, `1d`, `1w`, or plain seconds; at most a year."""
    raw = text.strip().lower()
    m = _DURATION.match(raw) if len(raw) <= 16 else None
    if not m:
        raise PreferenceError("duration must look like 30m, 2h, 1d or 1w")
    value = int(m.group(1)) * _UNIT_SECONDS[m.group(2) or "s"]
    if value <= 0:
        raise PreferenceError("duration must be more than zero")
    delta = timedelta(seconds=value)
    if delta > MAX_MUTE:
        raise PreferenceError("duration can be at most 365d")
    return delta


def parse_quiet(window: str, tz: str | None = None) -> tuple[str, str, str]:
    """`22:00-07:00` and an optional IANA time zone → (start, end, tz)."""
    parts = window.strip().split("-")
    if len(parts) != 2 or not all(_CLOCK.match(p.strip()) for p in parts):
        raise PreferenceError("quiet hours must look like 22:00-07:00 [Europe/London]")
    start, end = (f"{int(p.split(':')[0]):02d}:{p.split(':')[1]}" for p in (x.strip() for x in parts))
    if start == end:
        raise PreferenceError("quiet hours need a start and an end that differ, e.g. 22:00-07:00")
    zone = parse_timezone(tz or "UTC")
    return start, end, zone


def parse_timezone(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_ARG_LENGTH or ".." in name or name.startswith("/"):
        raise PreferenceError("time zone must be an IANA name such as UTC, America/New_York or Asia/Shanghai")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PreferenceError(
            f"unknown time zone {name[:40]!r}: use an IANA name such as America/New_York"
        ) from None
    return name


def parse_filter_words(args: list[str]) -> tuple[list[str], list[str]]:
    """`+word -word` → (include, exclude). Plain words only, never a regex from chat."""
    include: list[str] = []
    exclude: list[str] = []
    if not args:
        raise PreferenceError("use /filter +word -word (plain words) or /filter clear")
    if len(args) > MAX_FILTER_WORDS:
        raise PreferenceError(f"at most {MAX_FILTER_WORDS} filter words at a time")
    for arg in args:
        sign, word = arg[:1], arg[1:].strip().lower()
        if sign not in "+-" or not sign or not _WORD.match(word):
            raise PreferenceError("each filter word must be +word or -word, letters and digits only")
        (include if sign == "+" else exclude).append(word)
    return include, exclude


def parse_selector(arg: str | None, ruleset: RuleSet) -> tuple[Selector, str]:
    """`/subscribe [rule-id | tag | severity]` argument → (selector, value); none → warning+."""
    if arg is None or not arg.strip():
        return "severity", Severity.warning.value
    value = arg.strip()
    if len(value) > MAX_ARG_LENGTH:
        raise PreferenceError(f"argument too long (at most {MAX_ARG_LENGTH} characters)")
    low = value.lower()
    if low in Severity.__members__:
        return "severity", low
    if ruleset.get(value) is not None:
        return "rule", value
    if value in ruleset.tags():
        return "tag", value
    raise PreferenceError(
        f"unknown rule, tag or severity {value[:40]!r}: see /rules; severities are info, warning, critical"
    )
