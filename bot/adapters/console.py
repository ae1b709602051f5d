"""Console adapter: prints alerts to a stream. Needs no token; the default backend.

One line per alert — time, severity, headline, source, rule, tone, tickers — so a
busy tape stays readable; the full alert (why, watch-list reasons) is in chat and in
`once --json`. Like errbot's text backend it is a real adapter, so tests can drive
the whole bot through it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from bot.adapters.base import SendResult, Sent
from bot.delivery.render import SEVERITY_MARKER, TONE_LABEL
from bot.models import Alert

if TYPE_CHECKING:
    from bot.services import Services

MAX_TICKERS = 6


def one_line(alert: Alert) -> str:
    """`14:05 🟠 WARNING  headline — source · rule · tone friction -0.62 · watch SOYB, ADM`."""
    parts = [f"{alert.title} — {alert.source}", alert.rule_id]
    if alert.message:
        parts.append(alert.message)
    if alert.tone is not None:
        score = f" {alert.tone_score:+.2f}" if alert.tone_score is not None else ""
        parts.append(f"tone {TONE_LABEL[alert.tone]}{score}")
    tickers = alert.tickers
    if tickers:
        more = f" +{len(tickers) - MAX_TICKERS}" if len(tickers) > MAX_TICKERS else ""
        parts.append("watch " + ", ".join(tickers[:MAX_TICKERS]) + more)
    stamp = alert.event_time.strftime("%H:%M")
    head = f"{stamp} {SEVERITY_MARKER[alert.severity]} {alert.severity.value.upper():<8}"
    return " ".join(f"{head} {' · '.join(parts)}".split())  # feed text may carry newlines


class ConsoleAdapter:
    name = "console"
    takes_commands = False  # prints alerts; nothing to listen to
    listen_on_start = False

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = asyncio.Lock()
        self.sent = 0

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    async def start(self, services: Services) -> None:
        return None

    async def set_listening(self, on: bool) -> None:
        """No commands on the console: nothing to start or stop."""
        return None

    async def stop(self) -> None:
        self.stream.flush()

    async def send_alert(self, address: str, alert: Alert) -> SendResult:
        async with self._lock:
            self.stream.write(one_line(alert) + "\n")
            self.stream.flush()
            self.sent += 1
        return Sent(message_id=str(self.sent))

    async def send_digest(self, address: str, alerts: Sequence[Alert]) -> SendResult:
        async with self._lock:
            self.stream.write(f"Digest: {len(alerts)} alert(s) held during quiet hours\n")
            for alert in alerts:
                self.stream.write(f"  {one_line(alert)}\n")
            self.stream.flush()
            self.sent += 1
        return Sent(message_id=str(self.sent))
