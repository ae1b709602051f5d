"""What adapters and commands may use: the store, the live rule set, the clock, status.

One object built by `bot.app`, handed to each adapter at start; no globals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from bot.clock import Clock
from bot.commands.limit import CommandLimiter
from bot.commands.urls import mask_urls
from bot.settings import Settings
from bot.storage.store import Destination, SourceState, Store

if TYPE_CHECKING:
    from bot.rules.loader import RuleSet
    from bot.sources.cadence import Cadence, CadenceView
    from bot.sources.config import Source
    from bot.sources.surge import SurgeBoard


class RuleSetHolder:
    """The rule set in force; hot reload swaps it, readers always see a whole one."""

    def __init__(self, ruleset: RuleSet) -> None:
        self._ruleset = ruleset
        self.loaded_at: datetime | None = None
        self.last_error: str | None = None

    @property
    def current(self) -> RuleSet:
        return self._ruleset

    def replace(self, ruleset: RuleSet, *, at: datetime) -> None:
        self._ruleset = ruleset
        self.loaded_at = at
        self.last_error = None


@dataclass(frozen=True)
class SourceHealth:
    source_id: str
    kind: str  # feed | price
    interval: int
    state: SourceState | None
    url: str | None = None  # shown (masked) to admins only
    cadence: CadenceView | None = None  # current interval, why, requests in the last hour
    push: str | None = None  # WebSub: live | pending | failed | … (None: not a push source)

    @property
    def healthy(self) -> bool:
        return self.state is not None and self.state.consecutive_failures == 0 and self.state.last_success_at is not None

    def line(self, *, reveal_urls: bool = True) -> str:
        """One line for /status and the logs; URLs in the error masked (or hidden: not
        `reveal_urls`) before it is cut short."""
        st = self.state
        if st is None or st.polls == 0:
            return f"{self.source_id}: not polled yet"
        ok = st.last_success_at.strftime("%Y-%m-%d %H:%M UTC") if st.last_success_at else "never"
        text = f"{self.source_id}: last ok {ok}"
        if st.consecutive_failures:
            first = st.last_error.splitlines()[0] if st.last_error else ""
            err = mask_urls(first, reveal=reveal_urls)[:120]
            text += f"; failing x{st.consecutive_failures}: {err}"
        if self.push is not None:
            text += f"; push {self.push}"
        return text

    def cadence_line(self) -> str | None:
        """`every 75 s, 9 req/h (budget 12): learned: 5.4 items/h on Mon 14h` (None: not polling)."""
        view = self.cadence
        if view is None:
            return None
        from bot.sources.cadence import format_seconds

        return (
            f"every {format_seconds(view.interval.seconds)}, {view.requests_per_hour:g} req/h "
            f"(budget {view.budget_per_hour:.3g}): {view.interval.reason[:80]}"
        )


@dataclass(frozen=True)
class StatusReport:
    sources: list[SourceHealth]
    rules_loaded: int
    rules_enabled: int
    queue: dict[str, int]
    disabled_destinations: list[Destination]
    adapters: list[str]
    rules_error: str | None = None
    surging: list[tuple[str, str]] = field(default_factory=list)  # (source id, why), issue 17

    @property
    def queue_depth(self) -> int:
        return sum(self.queue.values())


@dataclass
class Services:
    settings: Settings
    store: Store
    clock: Clock
    rules: RuleSetHolder
    adapters: list[str] = field(default_factory=list)
    command_limit: CommandLimiter = field(default_factory=CommandLimiter)  # shared by the chat adapters
    surges: SurgeBoard | None = None  # which sources surge and why, for /status
    cadence: Cadence | None = None  # the poll cadence, when this process polls
    push_states: Callable[[], Mapping[str, str]] | None = None  # WebSub, when on (bot.app)

    async def status(self) -> StatusReport:
        ruleset = self.rules.current
        states = {s.source_id: s for s in await self.store.all_source_states()}
        push = self.push_states() if self.push_states is not None else {}
        now = self.clock.now()
        sources = [
            SourceHealth(
                s.source_id,
                s.kind,
                s.interval,
                states.get(s.source_id),
                _url_of(s),
                self.cadence.describe(s, now) if self.cadence is not None else None,
                push=push.get(s.source_id),
            )
            for s in ruleset.sources.enabled()
        ]
        return StatusReport(
            sources=sources,
            rules_loaded=len(ruleset.rules),
            rules_enabled=len(ruleset.enabled_rules()),
            queue=await self.store.queue_depth(),
            disabled_destinations=[d for d in await self.store.destinations() if d.disabled_at],
            adapters=list(self.adapters),
            rules_error=self.rules.last_error,
            surging=self.surges.active(self.clock.now()) if self.surges is not None else [],
        )


def _url_of(source: Source) -> str | None:
    """Where a source is fetched from, for admins' /status (None when it cannot be built)."""
    try:
        return source.fetch_url()
    except ValueError:
        return None
