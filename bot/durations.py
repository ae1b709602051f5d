"""One duration grammar for rule files and chat commands.

A number (decimals allowed) and an optional unit: `90` or `90s`, `30m` or
`10 min`, `1.5h`, `2d`, `1w`. So `cooldown: 1w` in a rule file and `/mute 1.5h`
in a chat mean what they say. Callers add their own bounds (rules: not
negative; mutes: more than zero, at most a year).
"""

from __future__ import annotations

import re

_DURATION = re.compile(r"(\d{1,9}(?:\.\d{1,6})?)\s*(s|sec|m|min|h|d|w)?", re.IGNORECASE)
UNIT_SECONDS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
FORMS = "90, '90s', '30m', '1.5h', '2d' or '1w'"


def parse_seconds(text: str) -> float:
    """Seconds from a duration string; ValueError (naming the accepted forms) otherwise."""
    m = _DURATION.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"expected a duration like {FORMS}")
    return float(m.group(1)) * UNIT_SECONDS[(m.group(2) or "s").lower()]
