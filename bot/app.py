"""Wires Readout together from Settings: store, rules, sources, pipeline, outbox, adapters.

No globals: everything hangs off one `Readout` object, so tests can run
several bots side by side and the backtest can swap where events come from.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import httpx

from bot.adapters.base import Adapter
from bot.adapters.console import ConsoleAdapter
from bot.clock import Clock, SystemClock
from bot.delivery.outbox import OutboxWorker
from bot.metrics import POLLS
from bot.models import Alert, Severity
from bot.pipeline import Pipeline
from bot.rules.loader import RuleSet, load_rules_dir
from bot.services import RuleSetHolder, Services
from bot.settings import Settings
from bot.sources.config import FeedSource, PriceSource
from bot.sources.http import Validators, make_client
from bot.sources.poll import PollOutcome, poll_feed, poll_price
from bot.sources.scheduler import SourceScheduler
from bot.storage.archive import EventArchive
from bot.storage.leader import LeaderLock
from bot.storage.store import PollRecord, SourceState, Store, make_worker_id

log = logging.getLogger(__name__)

Source = FeedSource | PriceSource

# A price CSV (FRED) answers with its whole history on every poll: only the
# tail can matter to the rules, the rest is old news already recorded.
PRICE_HISTORY_KEEP = 500


def source_id(source: Source) -> str:
    return source.id if isinstance(source, FeedSource) else source.source_id


def failure_backoff(state: SourceState, interval: int) -> datetime | None:
    """When a source that keeps failing may be polled again: after 3 failures in a row,
    the wait doubles per failure (2×, 4×, … the interval), capped at an hour."""
    failures = state.consecutive_failures
    if failures < 3 or state.last_error_at is None:
        return None
    wait = min(interval * 2 ** (failures - 2), 3600)
    return state.last_error_at + timedelta(seconds=max(wait, interval))


def build_adapters(settings: Settings) -> list[Adapter]:
    """Console when asked or when no chat token is set; each chat backend whose token is set."""
    adapters: list[Adapter] = []
    has_chat = settings.telegram_bot_token is not None or settings.discord_bot_token is not None
    if settings.console if settings.console is not None else not has_chat:
        adapters.append(ConsoleAdapter())
    if settings.telegram_bot_token is not None:
        from bot.adapters.telegram import TelegramAdapter

        adapters.append(TelegramAdapter(settings))
    if settings.discord_bot_token is not None:
        from bot.adapters.discord import DiscordAdapter

        adapters.append(DiscordAdapter(settings))
    return adapters


class Readout:
    """The bot. `start()` → runs in the background of the current loop → `stop()`."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        adapters: list[Adapter] | None = None,
        http_client: httpx.AsyncClient | None = None,
        ruleset: RuleSet | None = None,
        claim_sources: bool = True,
    ) -> None:
        self.settings = settings
        self.worker_id = make_worker_id()
        self._claim_sources = claim_sources  # `once` polls everything whoever holds the leases
        self.clock: Clock = clock or SystemClock()
        self.adapters = build_adapters(settings) if adapters is None else list(adapters)
        self._client = http_client
        self._own_client = http_client is None
        self._initial_ruleset = ruleset
        self._stop = asyncio.Event()
        # Polls in flight at once. 1,000 sources due together would otherwise all queue in
        # httpx's pool and the database pool, whose bookkeeping grows with the queue, and
        # their parsed items would wait in memory (README, Benchmarks).
        self._poll_slots = asyncio.Semaphore(settings.poll_concurrency)
        self._tasks: list[asyncio.Task[None]] = []
        self._scheduler: SourceScheduler | None = None
        self._started_adapters: list[Adapter] = []
        self.leader: LeaderLock | None = None
        self.store: Store
        self.archive: EventArchive | None = None
        self.services: Services
        self.pipeline: Pipeline
        self.outbox: OutboxWorker

    # ---- lifecycle -----------------------------------------------------------

    async def open(self) -> None:
        """Load rules and open the database; no network, no adapters yet."""
        ruleset = self._initial_ruleset or load_rules_dir(self.settings.rules_dir)
        self.store = await Store.open(self.settings.database_url)
        days = self.settings.event_retention_days
        self.archive = EventArchive(self.store.engine, retention=timedelta(days=days)) if days > 0 else None
        holder = RuleSetHolder(ruleset)
        holder.loaded_at = self.clock.now()
        self.services = Services(
            settings=self.settings,
            store=self.store,
            clock=self.clock,
            rules=holder,
            adapters=[a.name for a in self.adapters],
        )
        names = frozenset(a.name for a in self.adapters)
        console_min = self.settings.console_min_severity if "console" in names else None
        self.pipeline = Pipeline(
            self.store,
            ruleset,
            self.clock,
            console_min=console_min,
            active_adapters=names,
            archive=self.archive,
        )
        self.outbox = OutboxWorker(
            self.store,
            {a.name: a for a in self.adapters},
            self.clock,
            max_attempts=self.settings.delivery_max_attempts,
            worker_id=self.worker_id,
            claim_seconds=self.settings.delivery_claim_seconds,
        )
        if self._client is None:
            self._client = make_client(self.settings)

    async def start(self, *, scheduler: bool = True) -> None:
        """Open, start adapters, then (optionally) the poll scheduler and the outbox worker."""
        await self.open()
        # Several workers on one PostgreSQL: only the leader listens for chat commands.
        single = self.store.single_worker
        for adapter in self.adapters:
            if hasattr(adapter, "listen_on_start"):
                adapter.listen_on_start = single
            await adapter.start(self.services)
            self._started_adapters.append(adapter)
        if not single:
            self.leader = LeaderLock(self.store, name="chat")
            self._tasks.append(
                asyncio.create_task(self.leader.run(self._stop, interval=5.0, on_change=self._on_leadership))
            )
        if scheduler:
            self._scheduler = SourceScheduler(self.poll_source, jitter=self.settings.poll_jitter)
            self._scheduler.start(self._all_sources())
            self._tasks.append(
                asyncio.create_task(self.outbox.run(self._stop, interval=self.settings.delivery_interval))
            )
        log.info(
            "Readout started: %d rules, %d sources, adapters: %s",
            len(self.pipeline.ruleset.enabled_rules()),
            len(self._all_sources()),
            ", ".join(a.name for a in self.adapters) or "none",
        )

    async def stop(self) -> None:
        """Stop polling, let the outbox pass finish, stop adapters, close the database."""
        self._stop.set()
        if self._scheduler is not None:
            self._scheduler.shutdown()
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        for adapter in reversed(self._started_adapters):
            try:
                await adapter.stop()
            except Exception:
                log.exception("adapter %s failed to stop cleanly", adapter.name)
        self._started_adapters.clear()
        if hasattr(self, "store"):
            await self.store.release_claims(worker_id=self.worker_id)
        if self._own_client and self._client is not None:
            await self._client.aclose()
        if hasattr(self, "store"):
            await self.store.close()

    async def _on_leadership(self, leader: bool) -> None:
        log.info("worker %s %s the chat leadership", self.worker_id, "took" if leader else "gave up")
        for adapter in self._started_adapters:
            set_listening = getattr(adapter, "set_listening", None)
            if set_listening is not None and not self._stop.is_set():
                await set_listening(leader)

    async def wait_stopped(self) -> None:
        await self._stop.wait()

    def request_stop(self) -> None:
        self._stop.set()

    # ---- work ----------------------------------------------------------------

    def _all_sources(self) -> list[Source]:
        cfg = self.pipeline.ruleset.sources
        return [f for f in cfg.feeds if f.enabled] + [p for p in cfg.prices if p.enabled]

    def _lease_seconds(self, source: Source) -> float:
        """How long a claim on a source lasts: past its next poll, jitter included."""
        return source.interval * 1.5 + self.settings.poll_jitter

    async def poll_source(self, source: Source) -> list[Alert]:
        """Poll one source, record its health, process its new events. Never raises for feed faults.

        A slot covers the whole poll — claim, fetch and processing: with 1,000 sources due at
        once, only `poll_concurrency` of them hold a database or HTTP connection, and parsed
        items never pile up in memory faster than the pipeline writes them."""
        async with self._poll_slots:
            return await self._poll(source)

    async def _poll(self, source: Source) -> list[Alert]:
        sid = source_id(source)
        state: SourceState | None
        if self._claim_sources:
            state = await self.store.claim_source(
                sid,
                worker_id=self.worker_id,
                lease_seconds=self._lease_seconds(source),
                now=self.clock.now(),
            )
            if state is None:
                return []  # another worker polls this source this round
        else:
            state = await self.store.get_source_state(sid) or SourceState(source_id=sid)
        if (wait := failure_backoff(state, source.interval)) is not None and self.clock.now() < wait:
            return []  # a failing source is polled less often until it answers again
        validators = Validators(etag=state.etag, last_modified=state.last_modified)
        assert self._client is not None
        now = self.clock.now()
        outcome: PollOutcome
        if isinstance(source, FeedSource):
            outcome = await poll_feed(
                self._client, source, validators=validators, max_bytes=self.settings.http_max_bytes, now=now
            )
        else:
            outcome = await poll_price(
                self._client, source, validators=validators, max_bytes=self.settings.http_max_bytes, now=now
            )
        first_poll = state.last_success_at is None
        if outcome.error is not None:
            failed = await self.store.record_poll(sid, at=now, error=outcome.error)
            POLLS.labels(source=sid, outcome="error").inc()
            if failed.consecutive_failures == 1 or failed.consecutive_failures % 10 == 0:
                log.warning("source failed (x%d): %s", failed.consecutive_failures, outcome.error)
            return []
        POLLS.labels(source=sid, outcome="not_modified" if outcome.not_modified else "ok").inc()
        alert_after: datetime | None = None
        if first_poll:
            alert_after = now - timedelta(hours=self.settings.backlog_hours)
        events = outcome.events
        if isinstance(source, PriceSource) and len(events) > PRICE_HISTORY_KEEP:
            events = sorted(events, key=lambda e: e.time)[-PRICE_HISTORY_KEEP:]
        # The new ETag is stored with the items, in one transaction: a crash in between cannot
        # leave a 304 for items that were never processed.
        poll = PollRecord(
            source_id=sid,
            at=now,
            etag=outcome.validators.etag,
            last_modified=outcome.validators.last_modified,
            lease_owner=self.worker_id if self._claim_sources else None,
            lease_until=self.clock.now() + timedelta(seconds=self._lease_seconds(source)),
        )
        alerts = await self.pipeline.process(events, alert_after=alert_after, poll=poll)
        if state.consecutive_failures:
            log.info("source %s recovered after %d failures", sid, state.consecutive_failures)
        if alerts and hasattr(self, "outbox"):
            self.outbox.wake()  # deliver now, not at the next outbox tick
        return alerts

    async def poll_once(self) -> list[Alert]:
        """Poll every enabled source once (concurrently) and return the new alerts."""
        results = await asyncio.gather(*(self.poll_source(s) for s in self._all_sources()))
        return [a for batch in results for a in batch]

    async def drain_once(self) -> int:
        return await self.outbox.drain_once()

    def reload_rules(self, ruleset: RuleSet) -> None:
        """Put a validated rule set in force; cooldown and dedup live in the database and carry over."""
        self.pipeline.replace_ruleset(ruleset)
        self.services.rules.replace(ruleset, at=self.clock.now())
        if self._scheduler is not None:
            self._scheduler.start(self._all_sources())

    @property
    def console_min(self) -> Severity | None:
        return self.pipeline.console_min
