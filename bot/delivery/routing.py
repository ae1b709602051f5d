"""Routing: which destinations owe an alert, and whether it goes now, later or not at all.

Alertmanager's route → silence → inhibit, reduced to what chats set:
subscriptions pick destinations; mutes and filters skip (with the reason
recorded on the outbox row); quiet hours hold non-critical alerts until the
window ends, when they go out as one digest.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.delivery.preferences import passes_filters, quiet_until, session_hold_until
from bot.models import Alert, Severity
from bot.storage.protocols import RoutingReads
from bot.storage.store import Destination, Mute, OutboxEntry, OutboxStatus, Subscription

CONSOLE_ADDRESS = "stdout"

Address = tuple[str, str]  # (adapter, address)


class RoutingTable:
    """A snapshot of subscriptions, destinations and mutes, loaded once per batch.

    Subscriptions are indexed by what they select (rule id, tag, severity), so
    routing an alert costs the destinations it reaches, not every subscription
    there is: with 10,000 subscribers most alerts reach a few hundred.
    """

    def __init__(
        self,
        *,
        subscriptions: list[Subscription],
        destinations: list[Destination],
        mutes: list[Mute],
        console_min: Severity | None,
        active_adapters: frozenset[str],
    ) -> None:
        self._order: dict[Address, int] = {}  # first-seen order: routes come out in a stable order
        self._by_rule: dict[str, set[Address]] = {}
        self._by_tag: dict[str, set[Address]] = {}
        self._by_severity: dict[Severity, set[Address]] = {}
        for s in subscriptions:
            if s.adapter not in active_adapters:
                continue
            where = (s.adapter, s.address)
            self._order.setdefault(where, len(self._order))
            if s.selector == "rule":
                self._by_rule.setdefault(s.value, set()).add(where)
            elif s.selector == "tag":
                self._by_tag.setdefault(s.value, set()).add(where)
            elif s.selector == "severity":
                self._by_severity.setdefault(Severity(s.value), set()).add(where)
        self._dests = {(d.adapter, d.address): d for d in destinations}
        self._mutes: dict[Address, list[Mute]] = {}
        for m in mutes:
            self._mutes.setdefault((m.adapter, m.address), []).append(m)
        self._console_min = console_min

    @classmethod
    async def load(
        cls,
        store: RoutingReads,
        *,
        now: datetime,
        console_min: Severity | None,
        active_adapters: frozenset[str],
        conn: AsyncConnection | None = None,
    ) -> RoutingTable:
        """Read the table, on `conn` when inside a transaction (see `Database.reading`)."""
        return cls(
            subscriptions=await store.subscriptions(conn=conn),
            destinations=await store.destinations(conn=conn),
            mutes=await store.active_mutes(now=now, conn=conn),
            console_min=console_min,
            active_adapters=active_adapters,
        )

    def subscribers(self, alert: Alert) -> list[Address]:
        """Destinations with a subscription that selects this alert, in a stable order."""
        found: set[Address] = set(self._by_rule.get(alert.rule_id, ()))
        for tag in alert.tags:
            found |= self._by_tag.get(tag, set())
        for severity, where in self._by_severity.items():
            if alert.severity.at_least(severity):
                found |= where
        return sorted(found, key=self._order.__getitem__)

    def routes(self, alert: Alert, *, now: datetime) -> list[OutboxEntry]:
        """The outbox rows this alert owes: one per subscribed destination, plus the console."""
        out: list[OutboxEntry] = []
        if self._console_min is not None and alert.severity.at_least(self._console_min):
            out.append(
                OutboxEntry(
                    alert_id=alert.id, adapter="console", address=CONSOLE_ADDRESS, status="pending"
                )
            )
        for adapter, address in self.subscribers(alert):
            dest = self._dests.get((adapter, address)) or Destination(
                adapter=adapter, address=address
            )
            if dest.disabled_at is not None:
                continue
            out.append(self._decide(dest, alert, now))
        return out

    def digest_routes(self, digest: Alert, excess: Iterable[Alert], *, now: datetime) -> list[OutboxEntry]:
        """Rows for a flood digest: one per destination that would have been sent (now or
        after quiet hours) at least one of `excess`; held only where all of them were held."""
        best: dict[Address, OutboxEntry] = {}
        for alert in excess:
            for entry in self.routes(alert, now=now):
                if entry.status not in ("pending", "held"):
                    continue
                where = (entry.adapter, entry.address)
                seen = best.get(where)
                if seen is None or (seen.status == "held" and entry.status == "pending"):
                    best[where] = entry
        return [
            OutboxEntry(
                alert_id=digest.id,
                adapter=e.adapter,
                address=e.address,
                status=e.status,
                not_before=e.not_before,
                note=e.note,
            )
            for e in best.values()
        ]

    def _decide(self, dest: Destination, alert: Alert, now: datetime) -> OutboxEntry:
        def entry(
            status: OutboxStatus, *, not_before: datetime | None = None, note: str | None = None
        ) -> OutboxEntry:
            return OutboxEntry(
                alert_id=alert.id,
                adapter=dest.adapter,
                address=dest.address,
                status=status,
                not_before=not_before,
                note=note,
            )

        for m in self._mutes.get((dest.adapter, dest.address), []):
            if m.until > now and (m.rule_id is None or m.rule_id == alert.rule_id):
                what = f"rule {m.rule_id}" if m.rule_id else "all alerts"
                return entry("skipped", note=f"muted ({what}) until {m.until.isoformat()}")
        if not passes_filters(dest, alert):
            return entry("skipped", note="filtered by chat words")
        if alert.severity is not Severity.critical:
            until = quiet_until(dest, now)
            if until is not None:
                return entry("held", not_before=until, note="quiet hours")
            until = session_hold_until(dest, now)
            if until is not None:
                return entry("held", not_before=until, note=f"outside {dest.session}")
        return entry("pending")
