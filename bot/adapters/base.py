"""The one interface every chat backend implements (opsdroid-style lifecycle).

An adapter renders and sends; it never sees rules. `send_*` answers with a
`SendResult` so that retry policy lives in one place (the outbox worker):
`Sent`, `RetryLater` (transient: 5xx, timeout, 429 with its delay) or
`Gone` (permanent: blocked, chat deleted, no access).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

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


@dataclass(frozen=True)
class Uneditable:
    """The message cannot be edited any more (deleted by the user, too old): send a new one."""

    reason: str


EditResult = Sent | Uneditable | RetryLater | Gone


@dataclass(frozen=True)
class MessageView:
    """What one chat message shows: its lead alert, the alerts merged into it since (other
    sources reporting the story, other rules firing on it), and lines appended by others
    (e.g. what the market did next). Edits re-render the whole view."""

    lead: Alert
    more: tuple[Alert, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def added_sources(self) -> list[tuple[str, str | None]]:
        """(source, link) of each source beyond the lead's, in order of arrival."""
        seen = {self.lead.source}
        out: list[tuple[str, str | None]] = []
        for alert in self.more:
            if alert.source not in seen:
                seen.add(alert.source)
                out.append((alert.source, alert.url))
        return out

    @property
    def added_rules(self) -> list[str]:
        """Descriptions of the rules that fired beyond the lead's."""
        seen = {self.lead.rule_id}
        out: list[str] = []
        for alert in self.more:
            if alert.rule_id not in seen:
                seen.add(alert.rule_id)
                out.append(alert.rule_description)
        return out


class Adapter(Protocol):
    """A chat backend: `start`/`stop` its connection, send alerts to an address."""

    name: str

    async def start(self, services: Services) -> None: ...

    async def stop(self) -> None: ...

    async def send_alert(self, address: str, alert: Alert) -> SendResult: ...

    async def send_digest(self, address: str, alerts: Sequence[Alert]) -> SendResult: ...


@runtime_checkable
class EditingAdapter(Protocol):
    """An adapter that can show a `MessageView` and edit a message it sent in place.

    `edit_view` answers `Sent` (edited, or already showing exactly that), `Uneditable`
    (deleted or too old: the caller sends a new message), `RetryLater` or `Gone`."""

    name: str

    async def send_view(self, address: str, view: MessageView) -> SendResult: ...

    async def edit_view(self, address: str, message_id: str, view: MessageView) -> EditResult: ...
