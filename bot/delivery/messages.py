"""One chat message per story per destination, edited in place as the story grows.

The outbox worker hands every alert here (`deliver`). The alert's *thread* is
its story (or, without a story, the alert itself). If the destination has no
message for the thread yet, a new one is sent and recorded (`alert_messages`).
Otherwise the recorded message is re-rendered with the alert merged in — its
source added to "+N sources: …", its rule to "Also: …" — and edited in place.

Edits never lose an update: a message the user deleted, or one the platform no
longer lets us edit, is `Uneditable`, and the whole view goes out as a new
message that becomes the thread's message. Telegram's "message is not
modified" means the message already shows exactly this, so it counts as done.

A rise to **critical** sends a new message (edits notify nobody; a critical
escalation must), led by the critical alert and listing the story so far; later
reports edit that new message.

Others edit delivered messages through the same API: `annotate(alert_id, note)`
appends a line to every message that shows the alert and edits each in place
(e.g. "30 min later: ES −0.8 %"); `refresh` re-renders one thread's message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime

from bot.adapters.base import Adapter, EditingAdapter, MessageView, SendResult, Sent, Uneditable
from bot.clock import Clock
from bot.models import Alert, Severity
from bot.storage.store import Store
from bot.storage.stories import MessageRecord, SqlMessages

log = logging.getLogger(__name__)

MAX_SHOWN = 100  # alerts read to render one message (a message shows at most 20 sources anyway)


def thread_of(alert: Alert) -> str:
    return alert.story or alert.id


class MessageEditor:
    def __init__(self, store: Store, adapters: Mapping[str, Adapter], clock: Clock) -> None:
        self.store = store
        self.messages = SqlMessages(store.engine)
        self.adapters = adapters
        self.clock = clock
        self._can_edit: dict[str, tuple[Adapter, EditingAdapter | None]] = {}

    async def deliver(self, adapter_name: str, address: str, alert: Alert) -> SendResult:
        """Send `alert`, or merge it into its thread's message (see module docstring)."""
        result, new_message = await self.send(adapter_name, address, alert)
        if new_message is not None:
            await self.messages.put(new_message)
        return result

    async def send(
        self, adapter_name: str, address: str, alert: Alert, *, known_new: bool = False
    ) -> tuple[SendResult, MessageRecord | None]:
        """`deliver`, except that a *new* message's record is handed back, not written: the
        outbox writes it together with the row's `mark_sent` (one transaction for many).
        `known_new`: the caller read (`without_message`) that this destination has no message
        for the thread; nothing else creates one while the row is claimed, so no read here."""
        adapter = self._editing(adapter_name)
        if adapter is None:
            return await self.adapters[adapter_name].send_alert(address, alert), None
        thread = thread_of(alert)
        record = None if known_new else await self.messages.get(adapter_name, address, thread)
        if record is None:  # the common case: a new story here; the alert is at hand, no read
            return await self._send_new(adapter, address, thread, (alert.id,), (), alert.severity,
                                        view=MessageView(lead=alert))
        ids = record.alert_ids if alert.id in record.alert_ids else (*record.alert_ids, alert.id)
        if alert.severity is Severity.critical and record.severity != Severity.critical.value:
            # Lead with the critical alert; the story so far follows as sources and rules.
            ordered = (alert.id, *(i for i in record.alert_ids if i != alert.id))
            log.info("story %s rose to critical: new message in %s:%s", thread, adapter_name, address)
            return await self._send_new(adapter, address, thread, ordered, record.notes, alert.severity)
        return await self._edit(adapter, record, ids), None

    async def without_message(self, wanted: Sequence[tuple[str, str, Alert]]) -> set[tuple[str, str, str]]:
        """(adapter, address, thread) of these deliveries whose destination has no message for
        the alert's thread yet — read for a whole claimed batch at once (`send(known_new=…)`)."""
        keys = {
            (name, address, thread_of(alert))
            for name, address, alert in wanted
            if name in self.adapters and self._editing(name) is not None
        }
        if not keys:
            return set()
        return keys - await self.messages.existing(list(keys))

    async def refresh(self, adapter_name: str, address: str, thread: str) -> SendResult | None:
        """Re-render a thread's message from what it records (None: no such message)."""
        record = await self.messages.get(adapter_name, address, thread)
        adapter = self.adapters.get(adapter_name)
        if record is None or not isinstance(adapter, EditingAdapter):
            return None
        return await self._edit(adapter, record, record.alert_ids)

    async def annotate(self, alert_id: str, note: str) -> dict[tuple[str, str], SendResult]:
        """Append `note` to every delivered message that shows `alert_id`, and edit each.

        The note is stored first: a failed edit (RetryLater) keeps it, and the next
        `refresh` or story update shows it."""
        alert = (await self.store.get_alerts([alert_id])).get(alert_id)
        if alert is None:
            return {}
        results: dict[tuple[str, str], SendResult] = {}
        for record in await self.messages.for_alert(alert_id, thread_of(alert)):
            if record.adapter not in self.adapters:
                continue
            await self.messages.add_note(record.adapter, record.address, record.thread, note)
            result = await self.refresh(record.adapter, record.address, record.thread)
            if result is not None:
                results[(record.adapter, record.address)] = result
        return results

    # ---- internals ------------------------------------------------------------------

    def _editing(self, adapter_name: str) -> EditingAdapter | None:
        """The adapter if it edits messages; asked once per adapter (a runtime Protocol check
        costs more than a fan-out's whole per-message bookkeeping)."""
        adapter = self.adapters[adapter_name]
        known = self._can_edit.get(adapter_name)
        if known is None or known[0] is not adapter:  # first time, or the adapter was replaced
            known = self._can_edit[adapter_name] = (adapter, adapter if isinstance(adapter, EditingAdapter) else None)
        return known[1]

    async def _view(self, ids: tuple[str, ...], notes: tuple[str, ...]) -> MessageView | None:
        if len(ids) > MAX_SHOWN:  # a story reported everywhere: the lead and the latest reports
            ids = (ids[0], *ids[1 - MAX_SHOWN :])
        alerts = await self.store.get_alerts(list(ids))
        present = [alerts[i] for i in ids if i in alerts]
        if not present:
            return None
        return MessageView(lead=present[0], more=tuple(present[1:]), notes=notes)

    async def _send_new(
        self,
        adapter: EditingAdapter,
        address: str,
        thread: str,
        ids: tuple[str, ...],
        notes: tuple[str, ...],
        severity: Severity,
        *,
        view: MessageView | None = None,
    ) -> tuple[SendResult, MessageRecord | None]:
        """Send the thread's view as a new message; its record is returned for the caller to write."""
        view = view or await self._view(ids, notes)
        if view is None:
            return Sent(), None
        result = await adapter.send_view(address, view)
        if isinstance(result, Sent) and result.message_id is not None:
            return result, MessageRecord(adapter.name, address, thread, result.message_id, ids, notes,
                                         severity.value, self._now())
        return result, None

    async def _edit(self, adapter: EditingAdapter, record: MessageRecord, ids: tuple[str, ...]) -> SendResult:
        view = await self._view(ids, record.notes)
        if view is None:
            return Sent(record.message_id)
        result = await adapter.edit_view(record.address, record.message_id, view)
        if isinstance(result, Uneditable):
            log.info("message %s in %s:%s can't be edited (%s): sending a new one",
                     record.message_id, record.adapter, record.address, result.reason)
            sent, new_message = await self._send_new(adapter, record.address, record.thread, ids,
                                                     record.notes, Severity(record.severity))
            if new_message is not None:
                await self.messages.put(new_message)
            return sent
        if isinstance(result, Sent):
            await self.messages.put(
                MessageRecord(record.adapter, record.address, record.thread, record.message_id, ids,
                              record.notes, record.severity, record.sent_at, self._now())
            )
        return result

    def _now(self) -> datetime:
        return self.clock.now()
