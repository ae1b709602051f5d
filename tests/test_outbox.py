"""The outbox worker: order per destination, retry with backoff, 429 delays, gone destinations, digests,
and a fan-out's results written in batches."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event

from bot.adapters.base import EditResult, Gone, MessageView, RetryLater, SendResult, Sent
from bot.adapters.console import ConsoleAdapter
from bot.clock import ManualClock
from bot.delivery.outbox import OutboxWorker, backoff_seconds
from bot.delivery.settle import SentLog, SentResult
from bot.models import Alert, Severity
from bot.storage.store import Store
from bot.storage.stories import MessageRecord, SqlMessages
from tests.support.store_reads import deliveries, enqueue

T0 = datetime(2025, 4, 2, 20, 0, tzinfo=UTC)


class ScriptedAdapter:
    """A chat backend whose answers the test scripts, recording every call in order."""

    name = "chat"
    takes_commands = False
    listen_on_start = False

    def __init__(self) -> None:
        self.script: list[SendResult] = []
        self.calls: list[tuple[str, str]] = []
        self.digests: list[tuple[str, list[str]]] = []

    async def start(self, services: object) -> None: ...

    async def stop(self) -> None: ...

    async def set_listening(self, on: bool) -> None: ...

    async def send_alert(self, address: str, alert: Alert) -> SendResult:
        self.calls.append((address, alert.id))
        return self.script.pop(0) if self.script else Sent(message_id=str(len(self.calls)))

    async def send_digest(self, address: str, alerts: Sequence[Alert]) -> SendResult:
        self.digests.append((address, [a.id for a in alerts]))
        return Sent(message_id="digest")


def _alert(n: int, severity: Severity = Severity.warning) -> Alert:
    return Alert(
        id=f"alert{n:04d}" + "0" * 15,
        rule_id="r",
        rule_description="Rule",
        severity=severity,
        kind="news",
        event_id=f"e{n}",
        key="k",
        title=f"headline {n}",
        source="feed",
        event_time=T0,
        created_at=T0 + timedelta(seconds=n),
    )


async def _store_with(
    tmp_path: Path, alerts: list[Alert], routes: list[tuple[str, str, str]]
) -> Store:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'o.db'}")
    async with store.transaction() as conn:
        for a in alerts:
            assert await store.insert_alert(conn, a)
        for alert_id, address, status in routes:
            await enqueue(store,
                conn, alert_id=alert_id, adapter="chat", address=address, status=status, at=T0
            )  # type: ignore[arg-type]
    return store


async def test_order_is_kept_per_destination_across_a_retry(tmp_path: Path) -> None:
    alerts = [_alert(i) for i in range(3)]
    store = await _store_with(
        tmp_path,
        alerts,
        [(a.id, "A", "pending") for a in alerts] + [(alerts[0].id, "B", "pending")],
    )
    clock = ManualClock(T0)
    chat = ScriptedAdapter()
    chat.script = [RetryLater(reason="HTTP 502")]  # first send to A fails
    worker = OutboxWorker(store, {"chat": chat}, clock)
    await worker.drain_once()
    # A's first alert failed: A's later alerts wait behind it; B is unaffected.
    assert ("B", alerts[0].id) in chat.calls
    assert [c for c in chat.calls if c[0] == "A"] == [("A", alerts[0].id)]
    clock.advance(400)
    await worker.drain_once()
    assert [aid for addr, aid in chat.calls if addr == "A"] == [
        alerts[0].id,
        alerts[0].id,
        alerts[1].id,
        alerts[2].id,
    ]
    rows = await deliveries(store)
    assert {r.status for r in rows} == {"sent"}
    await store.close()


async def test_retry_after_is_honoured_without_counting_an_attempt(tmp_path: Path) -> None:
    a = _alert(1)
    store = await _store_with(tmp_path, [a], [(a.id, "A", "pending")])
    clock = ManualClock(T0)
    chat = ScriptedAdapter()
    chat.script = [RetryLater(reason="429", after=7)]
    worker = OutboxWorker(store, {"chat": chat}, clock)
    await worker.drain_once()
    row = (await deliveries(store))[0]
    assert row.status == "pending" and row.attempts == 0
    assert row.next_attempt_at == T0 + timedelta(seconds=7)
    clock.advance(6)
    await worker.drain_once()
    assert len(chat.calls) == 1  # not yet
    clock.advance(1)
    await worker.drain_once()
    assert len(chat.calls) == 2 and (await deliveries(store))[0].status == "sent"
    await store.close()


async def test_gone_destination_is_confirmed_then_disabled_keeping_subscriptions(tmp_path: Path) -> None:
    alerts = [_alert(1), _alert(2)]
    store = await _store_with(tmp_path, alerts, [(a.id, "A", "pending") for a in alerts])
    await store.ensure_destination("chat", "A", at=T0)
    await store.subscribe("chat", "A", "severity", "info", at=T0)
    chat = ScriptedAdapter()
    chat.script = [Gone(reason="Forbidden: bot was blocked by the user")] * 2
    clock = ManualClock(T0)
    worker = OutboxWorker(store, {"chat": chat}, clock, gone_confirm_seconds=60)
    await worker.drain_once()
    dest = await store.get_destination("chat", "A")
    assert dest is not None and dest.disabled_at is None  # one answer is not enough
    clock.advance(60)
    await worker.drain_once()
    await worker.drain_once()
    assert len(chat.calls) == 2
    assert [r.status for r in await deliveries(store)] == ["dead", "dead"]
    dest = await store.get_destination("chat", "A")
    assert (
        dest is not None
        and dest.disabled_at is not None
        and "blocked" in (dest.disabled_reason or "")
    )
    assert len(await store.subscriptions("chat", "A")) == 1  # disabled, never deleted
    await store.close()


async def test_gives_up_after_max_attempts(tmp_path: Path) -> None:
    a = _alert(1)
    store = await _store_with(tmp_path, [a], [(a.id, "A", "pending")])
    clock = ManualClock(T0)
    chat = ScriptedAdapter()
    chat.script = [RetryLater(reason="timeout")] * 3
    worker = OutboxWorker(store, {"chat": chat}, clock, max_attempts=3)
    for _ in range(5):
        await worker.drain_once()
        clock.advance(3600)
    row = (await deliveries(store))[0]
    assert row.status == "dead" and row.last_error == "timeout" and len(chat.calls) == 3
    await store.close()


async def test_held_rows_go_out_as_one_digest_when_the_hold_ends(tmp_path: Path) -> None:
    alerts = [_alert(1), _alert(2)]
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}")
    async with store.transaction() as conn:
        for x in alerts:
            await store.insert_alert(conn, x)
            await enqueue(store,
                conn,
                alert_id=x.id,
                adapter="chat",
                address="A",
                status="held",
                at=T0,
                not_before=T0 + timedelta(hours=8),
            )
    clock = ManualClock(T0)
    chat = ScriptedAdapter()
    worker = OutboxWorker(store, {"chat": chat}, clock)
    await worker.drain_once()
    assert chat.digests == []
    clock.advance(8 * 3600)
    await worker.drain_once()
    assert chat.digests == [("A", [alerts[0].id, alerts[1].id])]
    assert {r.status for r in await deliveries(store)} == {"sent"}
    await store.close()


async def test_console_adapter_prints_readably(tmp_path: Path) -> None:
    a = _alert(1, Severity.critical)
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    async with store.transaction() as conn:
        await store.insert_alert(conn, a)
        await enqueue(store,
            conn, alert_id=a.id, adapter="console", address="stdout", status="pending", at=T0
        )
    out = io.StringIO()
    worker = OutboxWorker(store, {"console": ConsoleAdapter(out)}, ManualClock(T0))
    assert await worker.drain_once() == 1
    text = out.getvalue()
    # one line per alert: severity, headline, source and rule; no `#handle` (no /why on a console)
    assert text.count("\n") == 1 and "CRITICAL" in text and "headline 1" in text
    assert a.rule_id in text and "#alert000" not in text
    await store.close()


@pytest.mark.parametrize("attempts", [0, 1, 5, 30])
def test_backoff_grows_and_is_capped(attempts: int) -> None:
    for _ in range(50):
        delay = backoff_seconds(attempts)
        ceiling = min(300.0, 2.0 * 2**attempts)
        assert ceiling / 2 <= delay <= ceiling


class EditingScriptedAdapter(ScriptedAdapter):
    """`ScriptedAdapter` that shows views and edits them (one message per story per chat)."""

    def __init__(self) -> None:
        super().__init__()
        self.edits: list[tuple[str, str]] = []

    async def send_view(self, address: str, view: MessageView) -> SendResult:
        return await self.send_alert(address, view.lead)

    async def edit_view(self, address: str, message_id: str, view: MessageView) -> EditResult:
        self.edits.append((address, message_id))
        return Sent(message_id=message_id)


async def test_fan_out_writes_results_in_batches_and_keeps_each_chats_message(tmp_path: Path) -> None:
    """One alert to 300 chats: every row sent once and recorded with its message id, every
    chat's story message recorded — in a handful of statements per claimed batch, not three
    per message (the reads and writes are batched; see `bot.delivery.settle`)."""
    chats = [str(1000 + i) for i in range(300)]
    alert = _alert(1, Severity.critical)
    store = await _store_with(tmp_path, [alert], [(alert.id, c, "pending") for c in chats])
    chat = EditingScriptedAdapter()
    worker = OutboxWorker(store, {"chat": chat}, ManualClock(T0), concurrency=16)
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", count)
    try:
        assert await worker.drain_once() == len(chats)
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", count)
    assert sorted(a for a, _ in chat.calls) == sorted(chats)  # each chat once
    rows = await deliveries(store)
    assert {r.status for r in rows} == {"sent"} and all(r.attempts == 1 for r in rows)
    assert {r.address: r.message_id for r in rows} == {a: m for a, m in _sent_ids(chat)}
    editor = worker.messages.messages
    for c in (chats[0], chats[-1]):
        record = await editor.get("chat", c, alert.id)
        assert record is not None and record.alert_ids == (alert.id,) and record.severity == "critical"
    assert worker.sent_log.waiting == 0 and worker.sent_log.written == len(chats)
    assert len(statements) < len(chats) // 3, f"{len(statements)} statements for {len(chats)} messages"

    # The story's next alert edits each chat's message: the records were found.
    follow = _alert(2, Severity.critical).model_copy(update={"story": alert.id})
    async with store.transaction() as conn:
        await store.insert_alert(conn, follow)
        for c in chats[:3]:
            await enqueue(store, conn, alert_id=follow.id, adapter="chat", address=c, status="pending", at=T0)  # type: ignore[arg-type]
    await worker.drain_once()
    assert sorted(a for a, _ in chat.edits) == sorted(chats[:3])
    await store.close()


def _sent_ids(chat: ScriptedAdapter) -> list[tuple[str, str]]:
    return [(address, str(n)) for n, (address, _) in enumerate(chat.calls, start=1)]


async def test_sent_results_that_fail_to_write_stay_waiting_and_rows_stay_owed(tmp_path: Path) -> None:
    """A failed flush writes nothing (one transaction) and keeps the results for the next one."""
    alert = _alert(1)
    store = await _store_with(tmp_path, [alert], [(alert.id, "A", "pending")])
    [row] = await deliveries(store)
    log = SentLog(store, window=60)
    log.add(SentResult(row.id, "7", T0, None))
    log.add(SentResult(10_000_000, "8", T0, MessageRecord("chat", "A", "t", "8", ("x",), (), "info", T0)))
    real = store.mark_sent_each

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database gone")

    store.mark_sent_each = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await log.flush()
    assert log.waiting == 2
    [still] = await deliveries(store)
    assert still.status == "pending"
    assert await SqlMessages(store.engine).get("chat", "A", "t") is None  # rolled back with it
    store.mark_sent_each = real  # type: ignore[method-assign]
    await log.flush()
    assert log.waiting == 0 and log.written == 2 and log.flushes == 1
    [done] = await deliveries(store)
    assert done.status == "sent" and done.message_id == "7"
    await store.close()
