"""Live outcomes: what the watched symbols did 30 minutes and one trading day after each alert.

For every alert Readout stores, two jobs are scheduled (`30m` and `1d`; the
trading day comes from the XNYS calendar, so a Friday alert's +1 is Monday and
holidays are skipped). When a job is due, the tracker reads the polled quotes
(`quotes` table) at the alert's time and at the due time, writes one line —
"30 min later: ES −0.8 %, VIX +12 %, USD/CNH +0.3 %" — and edits the alert's
sent messages carry it (through the message editor's `annotate`; a symbol whose quote is missing or stale says
"no quote"). Jobs live in the database: a restart loses nothing, and with
several workers each job is claimed by one of them (see `OutcomeStore`).
Time comes from the injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.clock import Clock
from bot.market_calendar import QUOTE_MAX_AGE, add_trading_days
from bot.storage.outcomes import NewJob, OutcomeJob, OutcomeStore, Quote

log = logging.getLogger(__name__)

MINUS = "\u2212"
DEFAULT_SYMBOLS: tuple[str, ...] = ("ES=F", "^VIX", "CNH=X")
LABELS: Mapping[str, str] = {"ES=F": "ES", "^VIX": "VIX", "CNH=X": "USD/CNH"}
"""Short names in the outcome line; other symbols are shown as they are."""
HORIZON_WORDS: Mapping[str, str] = {"30m": "30 min later", "1d": "1 trading day later"}
SCHEDULE_LOOKBACK = timedelta(days=2)
"""Alerts created this far back are scheduled (covers a worker that was down a while)."""
QUOTE_RETENTION = timedelta(days=10)
"""Quotes kept: the longest +1 trading day (a long weekend with a holiday) and some margin."""

AnnotateFn = Callable[[str, str], Awaitable[object]]
"""(alert id, line): append the line to every sent message showing the alert and edit each
(`bot.delivery.messages.MessageEditor.annotate`; a message that can no longer be edited is
sent anew with the line)."""


def due_at(alert_time: datetime, horizon: str) -> datetime:
    if horizon == "30m":
        return alert_time + timedelta(minutes=30)
    if horizon == "1d":
        return add_trading_days(alert_time, 1)
    raise ValueError(f"unknown horizon {horizon!r}")


def fmt_change(pct: float) -> str:
    """+12 %, −0.8 %, +0.3 % (whole percent from 10 on; a real minus sign)."""
    text = f"{pct:+.0f}" if abs(pct) >= 10 else f"{pct:+.1f}"
    if text in ("-0.0", "+0.0"):
        text = "+0.0"
    return text.replace("-", MINUS) + " %"


@dataclass(frozen=True)
class Move:
    symbol: str
    base: Quote
    after: Quote

    @property
    def change_pct(self) -> float:
        return 100.0 * (self.after.value / self.base.value - 1.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base.value,
            "base_time": self.base.time.isoformat(),
            "value": self.after.value,
            "time": self.after.time.isoformat(),
            "change_pct": round(self.change_pct, 6),
        }


def outcome_line(horizon: str, moves: Mapping[str, Move | None], symbols: Sequence[str]) -> str:
    parts = []
    for symbol in symbols:
        label = LABELS.get(symbol, symbol)
        move = moves.get(symbol)
        parts.append(f"{label} {fmt_change(move.change_pct)}" if move else f"{label} no quote")
    return f"{HORIZON_WORDS.get(horizon, horizon)}: {', '.join(parts)}"


class OutcomeTracker:
    """Schedules, computes and posts live outcomes; `run_once` is one pass, `run` loops."""

    def __init__(
        self,
        outcomes: OutcomeStore,
        clock: Clock,
        *,
        worker_id: str,
        symbols: Sequence[str] = DEFAULT_SYMBOLS,
        annotate: AnnotateFn | None = None,
        max_age: timedelta = QUOTE_MAX_AGE,
        lease_seconds: float = 60.0,
    ) -> None:
        self.outcomes = outcomes
        self.clock = clock
        self.worker_id = worker_id
        self.symbols = tuple(symbols)
        self.annotate = annotate
        self.max_age = max_age
        self.lease_seconds = lease_seconds

    async def schedule(self) -> int:
        """One job per horizon for every recent alert that has none; returns jobs added."""
        now = self.clock.now()
        fresh = await self.outcomes.alerts_without_jobs(since=now - SCHEDULE_LOOKBACK)
        jobs = [
            NewJob(
                alert_id=alert_id,
                rule_id=rule_id,
                horizon=h,
                alert_time=created,
                due_at=due_at(created, h),
            )
            for alert_id, rule_id, created in fresh
            for h in HORIZON_WORDS
        ]
        return await self.outcomes.add_jobs(jobs)

    async def quote_near(self, symbol: str, at: datetime) -> Quote | None:
        """The last quote at or before `at`, if it is no older than `max_age`."""
        quote = await self.outcomes.quote_at(symbol, at)
        if quote is None or at - quote.time > self.max_age:
            return None
        return quote

    async def compute(self, job: OutcomeJob) -> tuple[dict[str, Any], str]:
        """(moves per symbol, the line) for one due job."""
        moves: dict[str, Move | None] = {}
        for symbol in self.symbols:
            base = await self.quote_near(symbol, job.alert_time)
            after = await self.quote_near(symbol, job.due_at)
            ok = base is not None and after is not None and after.time > base.time
            ok = ok and base is not None and base.value > 0
            moves[symbol] = Move(symbol, base, after) if ok and base and after else None
        line = outcome_line(job.horizon, moves, self.symbols)
        return {s: (m.to_json() if m else None) for s, m in moves.items()}, line

    async def run_once(self) -> int:
        """Schedule new alerts, then finish every due job this worker can claim; jobs done."""
        await self.schedule()
        now = self.clock.now()
        jobs = await self.outcomes.claim_due(
            worker_id=self.worker_id, now=now, lease_seconds=self.lease_seconds
        )
        done = 0
        for job in jobs:
            moves, line = await self.compute(job)
            if not await self.outcomes.finish(
                job.id, worker_id=self.worker_id, moves=moves, line=line, at=self.clock.now()
            ):
                continue  # the lease lapsed and another worker finished it
            done += 1
            log.info("outcome %s %s: %s", job.alert_id, job.horizon, line)
            if self.annotate is not None:
                try:
                    await self.annotate(job.alert_id, line)
                except Exception:  # the line is stored; one failed edit must not stop the pass
                    log.exception("outcome line for %s not posted", job.alert_id)
        return done

    async def run(self, stop: asyncio.Event, *, interval: float = 30.0) -> None:
        """Pass every `interval` seconds until `stop` is set; prunes old quotes once an hour."""
        last_prune: datetime | None = None
        while not stop.is_set():
            try:
                await self.run_once()
                now = self.clock.now()
                if last_prune is None or now - last_prune > timedelta(hours=1):
                    await self.outcomes.prune_quotes(before=now - QUOTE_RETENTION)
                    last_prune = now
            except Exception:
                log.exception("outcome pass failed; retrying in %.0f s", interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
        await self.outcomes.release(worker_id=self.worker_id)
