"""Console adapter: prints alerts to a stream. Needs no token; the default backend.

Like errbot's text backend it is a real adapter, so tests can drive the whole
bot through it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from bot.adapters.base import SendResult, Sent
from bot.delivery.render import plain_text
from bot.models import Alert

if TYPE_CHECKING:
    from bot.services import Services

RULE = "─" * 72


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
            self.stream.write(f"{RULE}\n{plain_text(alert)}\n")
            self.stream.flush()
            self.sent += 1
        return Sent(message_id=str(self.sent))

    async def send_digest(self, address: str, alerts: Sequence[Alert]) -> SendResult:
        async with self._lock:
            self.stream.write(f"{RULE}\nDigest: {len(alerts)} alert(s) held during quiet hours\n")
            for alert in alerts:
                self.stream.write(f"{plain_text(alert)}\n")
            self.stream.flush()
            self.sent += 1
        return Sent(message_id=str(self.sent))
