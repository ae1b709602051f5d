"""One summary line about polling, so a quiet bot can be told from a broken one.

`run` logs it after the first poll round and then every `SUMMARY_MINUTES`; `once` and
`demo` always print it. It says how many sources answered, the commonest reason the
others did not, how many items were seen and how many alerts were raised.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

# "network: GET https://…: ConnectError: [Errno -2] Name or service not known"
#  → "network: Name or service not known" (the URL differs per source; the cause does not).
_ERRNO = re.compile(r"\[Errno -?\d+\]\s*")

NO_SOURCE_ANSWERED = (
    "no source answered — offline or behind a proxy? try `python -m bot probe` "
    "(it checks each source once and says why)"
)


def reason_of(error: str) -> str:
    """The part of a poll error that is the same across sources."""
    kind, _, rest = error.partition(":")
    last = rest.rsplit(": ", 1)[-1].strip() if rest else ""
    last = _ERRNO.sub("", last)
    return f"{kind.strip()}: {last}" if last else kind.strip()


def plural(count: int, word: str, many: str | None = None) -> str:
    """`1 feed`, `2 feeds` (one wording for counts everywhere)."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


@dataclass
class PollSummary:
    """Outcomes since the last summary line; the newest outcome per source counts."""

    expected: int = 0
    _last: dict[str, str | None] = field(default_factory=dict)  # source → error or None
    items: int = 0
    alerts: int = 0

    def record(self, source: str, *, error: str | None, items: int = 0, alerts: int = 0) -> None:
        if error is not None:
            error = error.removeprefix(f"{source}: ")  # poll errors name their source first
        self._last[source] = error
        self.items += items
        self.alerts += alerts

    @property
    def polled(self) -> int:
        return len(self._last)

    @property
    def failed(self) -> int:
        return sum(1 for e in self._last.values() if e is not None)

    @property
    def all_failed(self) -> bool:
        return self.polled > 0 and self.failed == self.polled

    def round_complete(self) -> bool:
        return self.expected > 0 and self.polled >= self.expected

    def line(self, *, next_poll: float | None = None) -> str:
        ok = self.polled - self.failed
        parts = [f"{ok} of {plural(self.polled, 'source')} ok"]
        if self.failed:
            reasons = Counter(reason_of(e) for e in self._last.values() if e is not None)
            reason, count = reasons.most_common(1)[0]
            parts[0] += f", {self.failed} failed (commonest: {reason}, ×{count})"
        parts.append(f"{plural(self.items, 'item')} seen")
        parts.append(plural(self.alerts, "alert"))
        if next_poll is not None:
            parts.append(f"next poll in {max(next_poll, 0):.0f}s")
        return "poll summary: " + "; ".join(parts)

    def reset(self) -> None:
        """Start a new window (counts); the per-source picture is rebuilt by the next polls."""
        self._last.clear()
        self.items = 0
        self.alerts = 0
