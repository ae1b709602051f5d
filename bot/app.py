"""Wires Readout together from Settings: store, rules, sources, pipeline, outbox, adapters.

No globals: everything hangs off one `Readout` object, so tests can run
several bots side by side and the backtest can swap where events come from.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import httpx
from sqlalchemy.exc import SQLAlchemyError

from bot.adapters.base import Adapter
from bot.adapters.console import ConsoleAdapter
from bot.clock import Clock, SystemClock
from bot.delivery.flood import FloodGuard
from bot.delivery.outbox import OutboxWorker
from bot.live_outcomes import OutcomeTracker
from bot.metrics import POLLS
from bot.models import Alert, PriceEvent, Severity
from bot.pipeline import Pipeline
from bot.rules.loader import RuleSet, load_rules_dir
from bot.services import RuleSetHolder, Services
from bot.settings import Settings
from bot.sources.cadence import HORIZON, Cadence
from bot.sources.config import FeedSource, Source
from bot.sources.hosts import HostGate
from bot.sources.http import Validators, make_client
from bot.sources.news import parse_feed
from bot.sources.poll import PollOutcome, poll_source
from bot.sources.scheduler import SourceScheduler
from bot.sources.slots import PollSlot, PollSlots
from bot.sources.surge import SurgeBoard
from bot.sources.websub_endpoint import WebSubEndpoint
from bot.sources.websub_subscriber import WebSubSubscriber
from bot.storage import tables
from bot.storage.archive import EventArchive, item_times
from bot.storage.faults import open_store
from bot.storage.leader import LeaderLock
from bot.storage.outcomes import OutcomeStore
from bot.storage.store import PollRecord, SourceState, Store, make_worker_id
from bot.storage.surges import SqlSurges
from bot.storage.websub import WebSubStore
from bot.summary import PollSummary, plural

log = logging.getLogger(__name__)

# A price CSV (FRED) answers with its whole history on every poll: only the
# tail can matter to the rules, the rest is old news already recorded.
PRICE_HISTORY_KEEP = 500
SURGE_SYNC_SECONDS = 5.0  # how often surges raised on other workers (and calendar windows) are picked up
STOP_GRACE = 3.0  # seconds the delivery pass in progress may take to finish on stop
ADAPTER_STOP_SECONDS = 4.0  # seconds each adapter may take to stop (they stop side by side)


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

        adapters.append(TelegramAdapter(settings, patient_timeout=settings.delivery_patient_timeout))
    if settings.discord_bot_token is not None:
        from bot.adapters.discord import DiscordAdapter

        adapters.append(DiscordAdapter(settings))
    return adapters


class Readout:
    """The bot: `await Readout.open(settings)` → `start()` → runs in the background → `stop()`.

    Whole once built: `open` loads the rules and opens the database, then the
    constructor wires everything from them; no attribute appears later.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store,
        ruleset: RuleSet,
        clock: Clock | None = None,
        adapters: list[Adapter] | None = None,
        http_client: httpx.AsyncClient | None = None,
        claim_sources: bool = True,
        stop: asyncio.Event | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.worker_id = make_worker_id()
        self._claim_sources = claim_sources  # `once` polls everything whoever holds the leases
        self.clock: Clock = clock or SystemClock()
        self.adapters = build_adapters(settings) if adapters is None else list(adapters)
        self._own_client = http_client is None
        self._client = make_client(settings) if http_client is None else http_client
        self._stop = stop if stop is not None else asyncio.Event()
        # Polls in flight at once. 1,000 sources due together would otherwise all queue in
        # httpx's pool and the database pool, whose bookkeeping grows with the queue, and
        # their parsed items would wait in memory (docs/benchmarks.md).
        # Slow sources (a dripping body) cannot take every slot: see bot/sources/slots.py.
        self._poll_slots = PollSlots(
            general=settings.poll_concurrency, slow=settings.slow_slots(), slow_after=settings.poll_slow_after
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._scheduler: SourceScheduler | None = None
        # When each source is polled next (learned, bounded by politeness), and each host's
        # budget enforced at poll time: bot/sources/cadence.py, bot/sources/hosts.py.
        self.cadence = Cadence()
        self.hosts = HostGate()
        self._configure_polling(ruleset)
        self._started_adapters: list[Adapter] = []
        self.summary = PollSummary()
        self._first_round = asyncio.Event()
        self._failure_logged: set[str] = set()  # each source's first failure in this process is logged
        self.leader: LeaderLock | None = None
        # Surge mode (issue 17): alerts and calendar.yaml put sources on their floor for a while;
        # several workers share alert surges through the database.
        self.surges = SurgeBoard(ruleset, store=None if store.single_worker else SqlSurges(store.engine))
        self.cadence.surge = self.surges
        self.cadence.surge_ease = settings.surge_ease
        holder = RuleSetHolder(ruleset)
        holder.loaded_at = self.clock.now()
        self.services = Services(
            settings=settings,
            store=store,
            clock=self.clock,
            rules=holder,
            adapters=[a.name for a in self.adapters],
            surges=self.surges,
            cadence=self.cadence,
        )
        names = frozenset(a.name for a in self.adapters)
        console_min = settings.console_min_severity if "console" in names else None
        flood = FloodGuard(
            per_poll=settings.alerts_per_poll_max,
            per_rule=settings.alerts_per_rule_max,
            window=settings.alerts_per_rule_window,
        )
        days = settings.event_retention_days  # stored events for dry-run (bot.storage.archive)
        self.archive = EventArchive(store.engine, retention=timedelta(days=days)) if days > 0 else None
        self.pipeline = Pipeline(
            store,
            ruleset,
            self.clock,
            console_min=console_min,
            active_adapters=names,
            flood=flood,
            archive=self.archive,
        )
        self.outbox = OutboxWorker(
            store,
            {a.name: a for a in self.adapters},
            self.clock,
            max_attempts=settings.delivery_max_attempts,
            worker_id=self.worker_id,
            claim_seconds=settings.delivery_claim_seconds,
            gone_confirm_seconds=settings.delivery_gone_confirm_seconds,
            gone_burst=settings.delivery_gone_burst,
            fault_pause_seconds=settings.delivery_fault_pause_seconds,
        )
        self.outcomes = OutcomeTracker(
            OutcomeStore(store),
            self.clock,
            worker_id=self.worker_id,
            symbols=settings.outcome_symbols,
            annotate=self.outbox.messages.annotate,  # the message editor the outbox uses
        )
        # Push (WebSub), only with a public callback URL: see bot/sources/websub_subscriber.py.
        self.websub: WebSubSubscriber | None = None
        self._websub_endpoint: WebSubEndpoint | None = None
        if settings.websub_public_url is not None:
            self.websub = WebSubSubscriber(
                WebSubStore(store.engine), self._client, self.clock, settings,
                sources=self._feeds, leader=LeaderLock(store, name="websub"),
            )
            self._websub_endpoint = WebSubEndpoint(
                self.websub, sources=self._feeds, on_push=self.process_push,
                host=settings.websub_listen_host, port=settings.websub_listen_port, max_bytes=settings.http_max_bytes,
            )
            self.services.push_states = self.websub.states
            self.cadence.push = self.websub.is_live  # a source live on push is polled at its ceiling

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        clock: Clock | None = None,
        adapters: list[Adapter] | None = None,
        http_client: httpx.AsyncClient | None = None,
        ruleset: RuleSet | None = None,
        claim_sources: bool = True,
        stop: asyncio.Event | None = None,
    ) -> Readout:
        """Load the rules (unless given) and open the database; no network, no adapters yet.

        A database that cannot be used raises `DatabaseUnavailableError` (one line); a server
        that is not reachable yet is waited for (`database_wait`), and setting `stop` (SIGTERM)
        ends that wait. The event becomes the bot's own stop event."""
        rules = ruleset or load_rules_dir(settings.rules_dir, defaults=settings.defaults_dir())
        store = await open_store(settings.database_url, wait=settings.database_wait, stop=stop)
        return cls(
            settings,
            store=store,
            ruleset=rules,
            clock=clock,
            adapters=adapters,
            http_client=http_client,
            claim_sources=claim_sources,
            stop=stop,
        )

    # ---- lifecycle -----------------------------------------------------------

    async def start(self, *, scheduler: bool = True) -> None:
        """Start adapters, then (optionally) the poll scheduler and the outbox worker."""
        # Several workers on one PostgreSQL: only the leader listens for chat commands.
        single = self.store.single_worker
        for adapter in self.adapters:
            if adapter.takes_commands:
                adapter.listen_on_start = single
            await adapter.start(self.services)
            self._started_adapters.append(adapter)
        if not single:
            self.leader = LeaderLock(self.store, name="chat")
            self._tasks.append(
                asyncio.create_task(self.leader.run(self._stop, interval=5.0, on_change=self._on_leadership))
            )
        if scheduler and self.websub is not None and self._websub_endpoint is not None:
            await self._start_push(self.websub, self._websub_endpoint)
        if scheduler:
            await self.relearn()
            self._scheduler = SourceScheduler(
                self.poll_source, jitter=self.settings.poll_jitter, cadence=self.cadence, now=self.clock.now
            )
            self._scheduler.start(self._all_sources())
            self._tasks.append(
                asyncio.create_task(self.outbox.run(self._stop, interval=self.settings.delivery_interval))
            )
            self._tasks.append(
                asyncio.create_task(self.outcomes.run(self._stop, interval=self.settings.outcome_interval))
            )
            self._tasks.append(asyncio.create_task(self._log_summaries()))
            self._tasks.append(asyncio.create_task(self._watch_surges()))
        log.info("Readout started: %s; adapters: %s", self.describe(), ", ".join(a.name for a in self.adapters) or "none")

    async def _start_push(self, websub: WebSubSubscriber, endpoint: WebSubEndpoint) -> None:
        """The callback endpoint (before the first poll notes a hub) and the subscription upkeep.
        A port that cannot be bound leaves the bot polling only, with one error line."""
        try:
            await endpoint.start()
        except OSError as exc:
            log.error("push (WebSub) off: cannot listen on %s:%s (%s); polling only", endpoint.host, endpoint.port, exc)
            self.websub = self._websub_endpoint = None
            self.services.push_states = None
            self.cadence.push = None
            return
        self._tasks.append(asyncio.create_task(websub.run(self._stop)))

    async def relearn(self) -> int:
        """Teach the cadence each source's publishing rhythm from the stored item times (the
        event archive, else the seen-events table), so a restart does not start from scratch.
        Returns how many item times it read; a database error only costs the head start."""
        since = self.clock.now() - HORIZON
        try:
            if self.archive is not None:
                found = await self.archive.item_times(since)
            else:
                found = await item_times(self.store.engine, tables.events_seen, since)
        except (OSError, SQLAlchemyError) as exc:
            log.warning("could not read stored item times (%s); polling rhythms are learned afresh", type(exc).__name__)
            return 0
        now = self.clock.now()
        for source_id, times in found.items():
            self.cadence.learn(source_id, times, now=now)
        return sum(len(v) for v in found.values())

    def describe(self) -> str:
        """`14 of 15 rules enabled, 20 sources (12 feeds, 8 price series)`: the same words at start and reload."""
        ruleset = self.pipeline.ruleset
        cfg = ruleset.sources
        feeds = sum(1 for f in cfg.feeds if f.enabled)
        prices = sum(1 for p in cfg.prices if p.enabled)
        return (
            f"{len(ruleset.enabled_rules())} of {plural(len(ruleset.rules), 'rule')} enabled, "
            f"{plural(feeds + prices, 'source')} ({plural(feeds, 'feed')}, {plural(prices, 'price series', 'price series')})"
        )

    def next_poll_in(self) -> float | None:
        """Seconds until the scheduler's next poll, when it runs."""
        if self._scheduler is None:
            return None
        return self._scheduler.next_poll_in()

    async def _log_summaries(self) -> None:
        """One summary line after the first round of polls, then every `summary_minutes`."""
        self.summary.expected = len(self._all_sources())
        stop = asyncio.create_task(self._stop.wait())
        try:
            first = asyncio.create_task(self._first_round.wait())
            await asyncio.wait({first, stop}, return_when=asyncio.FIRST_COMPLETED)
            first.cancel()
            every = self.settings.summary_minutes * 60
            while not self._stop.is_set():
                log.info("%s", self.summary.line(next_poll=self.next_poll_in()))
                self.summary.reset()
                if every <= 0:
                    return
                await asyncio.wait({stop}, timeout=every)
        finally:
            stop.cancel()

    async def _watch_surges(self) -> None:
        """Every few seconds: share surges with other workers and open calendar windows."""
        stop = asyncio.create_task(self._stop.wait())
        try:
            while not self._stop.is_set():
                try:
                    await self.surge_tick()
                except (OSError, SQLAlchemyError) as exc:
                    log.warning("could not share surges (%s); retrying", type(exc).__name__)
                await asyncio.wait({stop}, timeout=SURGE_SYNC_SECONDS)
        finally:
            stop.cancel()

    async def surge_tick(self) -> list[str]:
        """One round of `_watch_surges`; the source ids brought forward."""
        now = self.clock.now()
        ids = [*self.surges.calendar_due(now), *await self.surges.sync(now)]
        return self._hasten(ids)

    def _hasten(self, source_ids: list[str]) -> list[str]:
        """Bring the next poll of these sources forward to now (their first surge poll)."""
        ids = list(dict.fromkeys(source_ids))
        if ids and self._scheduler is not None:
            self._scheduler.hasten(ids, now=self.clock.now())
        return ids

    async def stop(self) -> None:
        """Stop polling, let the outbox pass finish, stop adapters, close the database."""
        self._stop.set()
        if self._scheduler is not None:
            self._scheduler.shutdown()
        # Bounded, whatever is in flight (SIGTERM → exit in well under 10 s): the delivery pass
        # gets STOP_GRACE seconds, then is cancelled (its claimed rows are handed back below).
        tasks = [t for t in self._tasks if not t.done()]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=STOP_GRACE)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._websub_endpoint is not None:
            await self._websub_endpoint.stop()
        await asyncio.gather(*(self._stop_adapter(a) for a in reversed(self._started_adapters)))
        self._started_adapters.clear()
        try:  # a database that is down must not hold the exit: unreleased claims lapse
            await asyncio.wait_for(self.store.release_claims(worker_id=self.worker_id), STOP_GRACE)
        except (TimeoutError, OSError, SQLAlchemyError) as exc:
            log.warning("could not hand back claims on stop (%s); they lapse on their own", type(exc).__name__)
        if self._own_client:
            await self._client.aclose()
        await self.store.close()

    async def _stop_adapter(self, adapter: Adapter) -> None:
        try:
            await asyncio.wait_for(adapter.stop(), timeout=ADAPTER_STOP_SECONDS)
        except TimeoutError:
            log.warning("adapter %s did not stop within %.0fs; left behind", adapter.name, ADAPTER_STOP_SECONDS)
        except Exception:
            log.exception("adapter %s failed to stop cleanly", adapter.name)

    async def _on_leadership(self, leader: bool) -> None:
        log.info("worker %s %s the chat leadership", self.worker_id, "took" if leader else "gave up")
        for adapter in self._started_adapters:
            if adapter.takes_commands and not self._stop.is_set():
                await adapter.set_listening(leader)

    async def wait_stopped(self) -> None:
        await self._stop.wait()

    def request_stop(self) -> None:
        self._stop.set()

    # ---- work ----------------------------------------------------------------

    def _all_sources(self) -> list[Source]:
        return self.pipeline.ruleset.sources.enabled()

    def _feeds(self) -> dict[str, FeedSource]:
        return {f.id: f for f in self.pipeline.ruleset.sources.feeds if f.enabled}

    def _resting(self, state: SourceState, source: Source) -> bool:
        """Skip this poll: a failing source is polled less often until it answers again; a source
        live on push (its hub sends new items) only at its ceiling (`max_interval`), as a safety net."""
        if (wait := failure_backoff(state, source.interval)) is not None and self.clock.now() < wait:
            return True
        if self.websub is None or not self.websub.is_live(state.source_id) or state.last_success_at is None:
            return False
        return self.clock.now() - state.last_success_at < timedelta(seconds=source.ceiling)

    def _configure_polling(self, ruleset: RuleSet) -> None:
        cfg = ruleset.sources
        self.cadence.configure(cfg.enabled(), cfg.hosts, cfg.host_budget("*"))
        self.hosts.configure(cfg.hosts, cfg.host_budget("*"))

    @property
    def scheduler(self) -> SourceScheduler | None:
        """The poll scheduler while it runs (surges hasten it)."""
        return self._scheduler

    def _lease_seconds(self, source: Source) -> float:
        """How long a claim on a source lasts: past its next poll (as the cadence plans it now),
        jitter included, and never shorter than for its configured interval."""
        planned = self.cadence.next_interval(source, self.clock.now()).seconds
        return max(planned, float(source.interval)) * 1.5 + self.settings.poll_jitter

    async def poll_source(self, source: Source) -> list[Alert]:
        """Poll one source, record its health, process its new events. Never raises for feed faults.

        A slot covers the whole poll — claim, fetch and processing: with 1,000 sources due at
        once, only `poll_concurrency` of them hold a database or HTTP connection, and parsed
        items never pile up in memory faster than the pipeline writes them."""
        async with self._poll_slots.poll(source.source_id) as slot:
            return await self._poll(source, slot)

    async def _poll(self, source: Source, slot: PollSlot) -> list[Alert]:
        sid = source.source_id
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
        if self._resting(state, source):
            return []
        validators = Validators(etag=state.etag, last_modified=state.last_modified)
        async with self.hosts.request(source.host):  # the host's budget, whatever the cadence planned
            now = self.clock.now()
            outcome = await slot.fetch(
                poll_source(
                    self._client,
                    source,
                    validators=validators,
                    max_bytes=self.settings.http_max_bytes,
                    now=now,
                    deadline=self.settings.poll_deadline,
                    discover=self.websub is not None,
                ),
                lambda why: PollOutcome(source_id=sid, validators=validators, error=f"{sid}: {why}"),
            )
        self.cadence.observe(
            source,
            now=now,
            item_times=[e.time for e in outcome.events],
            hints=outcome.hints,
            failed=outcome.error is not None,
        )
        first_poll = state.last_success_at is None
        if outcome.error is not None:
            failed = await self.store.record_poll(sid, at=now, error=outcome.error)
            POLLS.labels(source=sid, outcome="error").inc()
            self._record(sid, error=outcome.error)
            if sid not in self._failure_logged or failed.consecutive_failures % 10 == 0:
                self._failure_logged.add(sid)
                log.warning("source failed (x%d): %s", failed.consecutive_failures, outcome.error)
            return []
        POLLS.labels(source=sid, outcome="not_modified" if outcome.not_modified else "ok").inc()
        alert_after: datetime | None = None
        if first_poll:
            if not outcome.events:
                # The first poll is the first that read items: a 304 or an empty feed recorded as
                # a success would switch the backlog filter off before any backlog was seen.
                log.debug("source %s: first poll read no items; backlog filter stays on", sid)
                self._record(sid, error=None)
                return []
            alert_after = now - timedelta(hours=self.settings.backlog_hours)
        events = outcome.events
        if source.kind == "price" and len(events) > PRICE_HISTORY_KEEP:
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
        self._record(sid, error=None, items=len(events), alerts=len(alerts))
        self._failure_logged.discard(sid)
        quotes = [e for e in events if isinstance(e, PriceEvent)]
        if quotes:  # every polled sample, for the live outcomes (30 min / 1 trading day later)
            await self.outcomes.outcomes.record_quotes(quotes, seen_at=now)
        if state.consecutive_failures:
            log.info("source %s recovered after %d failures", sid, state.consecutive_failures)
        if alerts:
            self.outbox.wake()  # deliver now, not at the next outbox tick
            self._hasten(self.surges.on_alerts(alerts, now=self.clock.now()))
        await self._note_hub(source, outcome)
        return alerts

    async def _note_hub(self, source: Source, outcome: PollOutcome) -> None:
        """What a feed's body said about a WebSub hub (one, or none any more): to the subscriber."""
        if self.websub is not None and not outcome.not_modified and isinstance(source, FeedSource):
            await self.websub.note(source, outcome.hub)

    async def process_push(self, source: FeedSource, body: bytes, content_type: str | None) -> list[Alert]:
        """Items a hub pushed for `source`: parsed and processed exactly like a poll's, so
        dedup holds between push and poll (raises `FeedError` for a body that is no feed)."""
        now = self.clock.now()
        events = parse_feed(body, source=source, seen_at=now, content_type=content_type)
        state = await self.store.get_source_state(source.id)
        first = state is None or state.last_success_at is None  # backlog filter as on a first poll
        alert_after = now - timedelta(hours=self.settings.backlog_hours) if first else None
        alerts = await self.pipeline.process(events, alert_after=alert_after)
        POLLS.labels(source=source.id, outcome="push").inc()
        if alerts:
            self.outbox.wake()
            self._hasten(self.surges.on_alerts(alerts, now=self.clock.now()))
        return alerts

    def _record(self, sid: str, *, error: str | None, items: int = 0, alerts: int = 0) -> None:
        self.summary.record(sid, error=error, items=items, alerts=alerts)
        if self.summary.round_complete():
            self._first_round.set()

    async def poll_once(self) -> list[Alert]:
        """Poll every enabled source once (concurrently) and return the new alerts."""
        results = await asyncio.gather(*(self.poll_source(s) for s in self._all_sources()))
        return [a for batch in results for a in batch]

    async def drain_once(self) -> int:
        return await self.outbox.drain_once()

    def reload_rules(self, ruleset: RuleSet) -> None:
        """Put a validated rule set in force; cooldown and dedup live in the database and carry over."""
        self.pipeline.replace_ruleset(ruleset)
        self.surges.replace_ruleset(ruleset)
        self.services.rules.replace(ruleset, at=self.clock.now())
        self._configure_polling(ruleset)
        if self._scheduler is not None:
            self._scheduler.start(self._all_sources())

    @property
    def console_min(self) -> Severity | None:
        return self.pipeline.console_min
