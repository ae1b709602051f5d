"""Console adapter: prints alerts to a stream. Needs no token; the default backend.

One line per alert — time, severity, headline, source, rule, tone, tickers — so a
busy tape stays readable; the full alert (why, watch-list reasons) is in chat and in
`once --json`. A story's later alerts (other outlets, other rules on the same event)
cannot edit what a terminal printed: each is one compact `↳ #N` line under the story's
first (`+2 sources: … · also: rule-id (tone …)`). Like errbot's text backend it is a real adapter, so tests can drive
the whole bot through it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from bot.adapters.base import EditResult, MessageView, SendResult, Sent
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

    async def send_view(self, address: str, view: MessageView) -> SendResult:
        """A story's first message: its lead alert's line, then what it already gathered."""
        async with self._lock:
            self.stream.write(one_line(view.lead) + "\n")
            line = story_line(view)
            if line:
                self.stream.write(f"  {line}\n")
            self.stream.flush()
            self.sent += 1
        return Sent(message_id=str(self.sent))

    async def edit_view(self, address: str, message_id: str, view: MessageView) -> EditResult:
        """A terminal cannot rewrite what it printed: one compact line says what changed."""
        async with self._lock:
            title = " ".join(view.lead.title[:80].split())  # feed text may carry newlines
            self.stream.write(f"  ↳ #{message_id} {title} — {story_line(view) or 'updated'}\n")
            self.stream.flush()
        return Sent(message_id=message_id)

    async def send_digest(self, address: str, alerts: Sequence[Alert]) -> SendResult:
        async with self._lock:
            self.stream.write(f"Digest: {len(alerts)} alert(s) held during quiet hours\n")
            for alert in alerts:
                self.stream.write(f"  {one_line(alert)}\n")
            self.stream.flush()
            self.sent += 1
        return Sent(message_id=str(self.sent))


def story_line(view: MessageView) -> str:
    """"+2 sources: Reuters, Xinhua · also: tariff-retaliation, readout-friction (tone friction -0.62)
    · <notes>", or empty. Rule ids and tone, as on an alert's own line."""
    bits: list[str] = []
    sources = view.added_sources
    if sources:
        bits.append(f"+{len(sources)} source{'s' if len(sources) != 1 else ''}: " + ", ".join(s for s, _ in sources))
    rules: dict[str, str] = {}
    for alert in view.more:
        if alert.rule_id != view.lead.rule_id and alert.rule_id not in rules:
            tone = ""
            if alert.tone is not None:
                score = f" {alert.tone_score:+.2f}" if alert.tone_score is not None else ""
                tone = f" (tone {TONE_LABEL[alert.tone]}{score})"
            rules[alert.rule_id] = alert.rule_id + tone
    if rules:
        bits.append("also: " + ", ".join(rules.values()))
    bits.extend(view.notes)
    return " · ".join(bits)
