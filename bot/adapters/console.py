"""Console adapter: prints alerts to a stream. Needs no token; the default backend.

Like errbot's text backend it is a real adapter, so tests can drive the whole
bot through it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from bot.adapters.base import EditResult, MessageView, SendResult, Sent
from bot.delivery.render import plain_text
from bot.models import Alert

if TYPE_CHECKING:
    from bot.services import Services

RULE = "─" * 72


class ConsoleAdapter:
    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = asyncio.Lock()
        self.sent = 0

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    async def start(self, services: Services) -> None:
        return None

    async def stop(self) -> None:
        self.stream.flush()

    async def send_alert(self, address: str, alert: Alert) -> SendResult:
        async with self._lock:
            self.stream.write(f"{RULE}\n{plain_text(alert)}\n")
            self.stream.flush()
            self.sent += 1
        return Sent(message_id=str(self.sent))

    async def send_view(self, address: str, view: MessageView) -> SendResult:
        async with self._lock:
            self.stream.write(f"{RULE}\n{plain_text(view.lead)}\n")
            line = story_line(view)
            if line:
                self.stream.write(f"{line}\n")
            self.stream.flush()
            self.sent += 1
        return Sent(message_id=str(self.sent))

    async def edit_view(self, address: str, message_id: str, view: MessageView) -> EditResult:
        """A terminal cannot rewrite what it printed: one compact line says what changed."""
        async with self._lock:
            self.stream.write(f"  ↳ #{message_id} {view.lead.title[:60]!r}: {story_line(view) or 'updated'}\n")
            self.stream.flush()
        return Sent(message_id=message_id)

    async def send_digest(self, address: str, alerts: Sequence[Alert]) -> SendResult:
        async with self._lock:
            self.stream.write(f"{RULE}\nDigest: {len(alerts)} alert(s) held during quiet hours\n")
            for alert in alerts:
                self.stream.write(f"{plain_text(alert)}\n")
            self.stream.flush()
            self.sent += 1
        return Sent(message_id=str(self.sent))


def story_line(view: MessageView) -> str:
    """"+2 sources: Reuters, Xinhua · also: Tariff retaliation · <notes>", or empty."""
    bits: list[str] = []
    sources = view.added_sources
    if sources:
        bits.append(f"+{len(sources)} source{'s' if len(sources) != 1 else ''}: " + ", ".join(s for s, _ in sources))
    rules = view.added_rules
    if rules:
        bits.append("also: " + ", ".join(rules))
    bits.extend(view.notes)
    return " · ".join(bits)
