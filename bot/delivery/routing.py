"""Routing: which destinations owe an alert, and whether it goes now, later or not at all.

Alertmanager's route → silence → inhibit, reduced to what chats set:
subscriptions pick destinations; mutes and filters skip (with the reason
recorded on the outbox row); quiet hours hold non-critical alerts until the
window ends, when they go out as one digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.delivery.preferences import passes_filters, quiet_until, subscription_matches
from bot.models import Alert, Severity
from bot.storage.store import Destination, Mute, OutboxStatus, Store, Subscription

CONSOLE_ADDRESS = "stdout"


@dataclass(frozen=True)
class Route:
    adapter: str
    address: str
    status: OutboxStatus
    not_before: datetime | None = None
    note: str | None = None


class RoutingTable:
    """A snapshot of subscriptions, destinations and mutes, loaded once per batch."""

    def __init__(
        self,
        *,
        subscriptions: list[Subscription],
        destinations: list[Destination],
        mutes: list[Mute],
        console_min: Severity | None,
        active_adapters: frozenset[str],
    ) -> None:
        self._subs: dict[tuple[str, str], list[Subscription]] = {}
        for s in subscriptions:
            self._subs.setdefault((s.adapter, s.address), []).append(s)
        self._dests = {(d.adapter, d.address): d for d in destinations}
        self._mutes: dict[tuple[str, str], list[Mute]] = {}
        for m in mutes:
            self._mutes.setdefault((m.adapter, m.address), []).append(m)
        self._console_min = console_min
        self._active = active_adapters

    @classmethod
    async def load(
        cls,
        store: Store,
        *,
        now: datetime,
        console_min: Severity | None,
        active_adapters: frozenset[str],
    ) -> RoutingTable:
        return cls(
            subscriptions=await store.subscriptions(),
            destinations=await store.destinations(),
            mutes=await store.active_mutes(now=now),
            console_min=console_min,
            active_adapters=active_adapters,
        )

    def routes(self, alert: Alert, *, now: datetime) -> list[Route]:
        out: list[Route] = []
        if self._console_min is not None and alert.severity.at_least(self._console_min):
            out.append(Route("console", CONSOLE_ADDRESS, "pending"))
        for (adapter, address), subs in self._subs.items():
            if adapter not in self._active:
                continue
            if not any(subscription_matches(s.selector, s.value, alert) for s in subs):
                continue
            dest = self._dests.get((adapter, address)) or Destination(adapter=adapter, address=address)
            if dest.disabled_at is not None:
                continue
            out.append(self._decide(dest, alert, now))
        return out

    def _decide(self, dest: Destination, alert: Alert, now: datetime) -> Route:
        for m in self._mutes.get((dest.adapter, dest.address), []):
            if m.until > now and (m.rule_id is None or m.rule_id == alert.rule_id):
                what = f"rule {m.rule_id}" if m.rule_id else "all alerts"
                return Route(dest.adapter, dest.address, "skipped", note=f"muted ({what}) until {m.until.isoformat()}")
        if not passes_filters(dest, alert):
            return Route(dest.adapter, dest.address, "skipped", note="filtered by chat words")
        if alert.severity is not Severity.critical:
            until = quiet_until(dest, now)
            if until is not None:
                return Route(dest.adapter, dest.address, "held", not_before=until, note="quiet hours")
        return Route(dest.adapter, dest.address, "pending")
