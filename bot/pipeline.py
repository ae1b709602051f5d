"""Events → rules → alerts → outbox, one transaction per event.

An event is marked seen, its alerts written and routed to their destinations
in one transaction: a crash leaves either all of it or none, so an event is
never alerted twice and an alert is never lost between "seen" and "queued".
Dedup (rule × event) and cooldown (rule × key) are decided here against the
database, so they hold across restarts and across workers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.delivery.routing import RoutingTable
from bot.metrics import ALERTS, EVENTS
from bot.models import Alert, NewsEvent, PriceEvent, Severity
from bot.rules.engine import RuleEngine
from bot.rules.loader import RuleSet
from bot.storage.store import Store

log = logging.getLogger(__name__)


class Pipeline:
    def __init__(
        self,
        store: Store,
        ruleset: RuleSet,
        clock: Clock,
        *,
        console_min: Severity | None,
        active_adapters: frozenset[str],
    ) -> None:
        self.store = store
        self.clock = clock
        self.ruleset = ruleset
        self.engine = RuleEngine(ruleset)
        self.console_min = console_min
        self.active_adapters = active_adapters
        self._lock = asyncio.Lock()  # one batch at a time: engine state and SQLite writes stay ordered

    def replace_ruleset(self, ruleset: RuleSet) -> None:
        """Swap rules in place; price windows and confirm state carry over by rule id."""
        self.ruleset = ruleset
        self.engine.replace_ruleset(ruleset)

    async def process(
        self,
        events: Iterable[NewsEvent | PriceEvent],
        *,
        alert_after: datetime | None = None,
    ) -> list[Alert]:
        """Process new events in time order; events older than `alert_after` are only recorded."""
        ordered = sorted(events, key=lambda e: e.time)
        if not ordered:
            return []
        async with self._lock:
            return await self._process_batch(ordered, alert_after)

    async def _process_batch(
        self, ordered: list[NewsEvent | PriceEvent], alert_after: datetime | None
    ) -> list[Alert]:
        now = self.clock.now()
        routing = await RoutingTable.load(
            self.store, now=now, console_min=self.console_min, active_adapters=self.active_adapters
        )
        raised: list[Alert] = []
        for ev in ordered:
            raised.extend(await self._process_one(ev, routing, alert_after))
        return raised

    async def _process_one(
        self, ev: NewsEvent | PriceEvent, routing: RoutingTable, alert_after: datetime | None
    ) -> list[Alert]:
        now = self.clock.now()
        raised: list[Alert] = []
        async with self.store.transaction() as conn:
            if not await self.store.mark_seen(conn, ev, at=now):
                return []
            EVENTS.labels(source=ev.source).inc()
            candidates = self.engine.evaluate(ev, now=now)
            if alert_after is not None and ev.time < alert_after:
                if candidates:
                    log.debug("backlog: %s older than %s, recorded only", ev.id, alert_after)
                return []
            for alert in candidates:
                rule = self.ruleset.get(alert.rule_id)
                cooldown = rule.cooldown if rule is not None else 0.0
                if cooldown > 0:
                    last = await self.store.last_fired(conn, alert.rule_id, alert.key)
                    if last is not None and alert.created_at - last < timedelta(seconds=cooldown):
                        log.info(
                            "suppressed %s (key %r): cooldown %.0fs since %s",
                            alert.rule_id, alert.key, cooldown, last.isoformat(),
                        )
                        continue
                if not await self.store.insert_alert(conn, alert):
                    continue
                for route in routing.routes(alert, now=now):
                    await self.store.enqueue(
                        conn,
                        alert_id=alert.id,
                        adapter=route.adapter,
                        address=route.address,
                        status=route.status,
                        at=now,
                        not_before=route.not_before,
                        note=route.note,
                    )
                ALERTS.labels(rule=alert.rule_id, severity=alert.severity.value).inc()
                log.info("alert %s: %s [%s] %s", alert.id[:8], alert.rule_id, alert.severity.value, alert.title[:120])
                raised.append(alert)
        return raised
