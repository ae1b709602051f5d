"""The one interface every chat backend implements (opsdroid-style lifecycle).

An adapter renders and sends; it never sees rules. `send_*` answers with a
`SendResult` so that retry policy lives in one place (the outbox worker):
`Sent`, `RetryLater` (transient: 5xx, timeout, 429 with its delay) or
`Gone` (permanent: blocked, chat deleted, no access).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from bot.models import Alert

if TYPE_CHECKING:
    from bot.services import Services


@dataclass(frozen=True)
class Sent:
    message_id: str | None = None


@dataclass(frozen=True)
class RetryLater:
    reason: str
    after: float | None = None  # seconds; None lets the worker's backoff decide


@dataclass(frozen=True)
class Gone:
    reason: str


SendResult = Sent | RetryLater | Gone


class Adapter(Protocol):
    """A chat backend: `start`/`stop` its connection, send alerts to an address.

    Capabilities are declared here, not probed: `takes_commands` says the
    adapter listens for chat commands. With several workers only the leader
    listens: the app sets `listen_on_start` before `start` and calls
    `set_listening` when leadership moves (adapters without commands ignore both).
    """

    name: str
    takes_commands: bool
    listen_on_start: bool

    async def set_listening(self, on: bool) -> None: ...

    async def start(self, services: Services) -> None: ...

    async def stop(self) -> None: ...

    async def send_alert(self, address: str, alert: Alert) -> SendResult: ...

    async def send_digest(self, address: str, alerts: Sequence[Alert]) -> SendResult: ...
