"""Telegram paid broadcast: which messages may go at 1,000/s, and the Stars they may spend.

Opt-in (`TELEGRAM_PAID_BROADCAST=critical` or `warning`, with
`TELEGRAM_PAID_BROADCAST_DAILY_STARS`). A new message of an alert at or above the
chosen severity is sent with `allow_paid_broadcast` — PTB's AIORateLimiter then
paces it with its own 1,000/s limiter instead of the 30/s one — and costs 0.1
Star from the bot's balance. Edits and digests always go the normal way.

Every paid message is reserved before it is sent, in the database
(`bot.storage.paid`), in blocks (ten, doubling while they run out fast), so the
daily cap holds across workers and restarts. The paid path turns itself off, and the rest of the messages go
through the normal limiter, when:

- the day's cap is reached (checked again every `recheck` seconds: another
  worker may hand some back; a new UTC day starts afresh);
- the balance read (`getMyStarBalance`, Bot API 9.1, read at most every
  `recheck` seconds) says the bot has less than one message's worth left, or
  what was read has been spent since;
- Telegram refuses a paid message for lack of Stars. The Bot API does not document
  that answer; Readout treats as one a 400 or 402 whose description names the
  balance or Stars (MTProto's error is `BALANCE_TOO_LOW`, a 400): see
  `is_out_of_stars`. The refused message was not delivered, so it is sent again at
  once the normal way — nothing lost, nothing doubled.

Each switch is logged once (per day for the cap, per spell for the balance).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from telegram import Bot
from telegram.error import TelegramError

from bot.clock import Clock
from bot.models import Severity
from bot.storage.paid import PaidSpend, day_of
from bot.storage.store import Store

log = logging.getLogger(__name__)

MESSAGES_PER_STAR = 10  # 0.1 Star a message
# Descriptions (lower case, substrings) of a paid message refused for lack of Stars (assumed:
# undocumented in the Bot API; MTProto's payment error is BALANCE_TOO_LOW).
OUT_OF_STARS = ("balance_too_low", "balance too low", "not enough stars", "insufficient stars",
                "stars_insufficient", "not enough funds", "payment required")


def is_out_of_stars(status: int | None, description: str) -> bool:
    """A refusal that means "the bot's Stars balance cannot pay for this paid message"."""
    text = description.lower()
    if status == 402:
        return True
    return any(m in text for m in OUT_OF_STARS) or ("stars" in text and "balance" in text)


@dataclass(frozen=True)
class PaidStatus:
    """Today's spend, for /status: Stars reserved or spent today against the cap."""

    on: bool
    severity: Severity | None
    spent_stars: float
    cap_stars: int


class PaidBroadcast:
    """Decides per message whether it goes paid, and keeps the spend under the cap."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        from_severity: Severity | None,
        daily_stars: int,
        block: int = 10,
        max_block: int = 200,
        recheck: float = 60.0,
        idle_release: float = 2.0,
    ) -> None:
        """`block`: messages reserved per database round trip at first; while reservations
        run out within a second of each other it doubles, up to `max_block` (a fan-out at
        1,000/s makes a few dozen round trips, not a thousand, each of which every paid
        send would wait on); `recheck`: seconds before the cap or the balance is looked at
        again after it ran out; `idle_release`: seconds without a paid message after which
        the reservation in hand is handed back."""
        self.spend = PaidSpend(store)
        self.clock = clock
        self.from_severity = from_severity
        self.cap = daily_stars * MESSAGES_PER_STAR
        self.block = max(1, block)
        self.max_block = max(self.block, max_block)
        self._next_block = self.block
        self._reserved_at = -1e18  # monotonic: the last reservation
        self.recheck = recheck
        self.idle_release = idle_release
        self.bot: Bot | None = None  # set by the adapter once connected (balance reads)
        self._lock = asyncio.Lock()
        self._day = ""
        self._held = 0  # messages of `_day` reserved and not yet used
        self._cap_seen: tuple[str, float] | None = None  # (day, monotonic) the cap was hit
        self._balance: int | None = None  # messages the last balance read (minus since) pays for
        self._balance_at = -1e18
        self._broke_at: float | None = None  # monotonic: refused or read too little
        self._balance_unreadable = False
        self._release: asyncio.TimerHandle | None = None
        self._releasing: set[asyncio.Task[None]] = set()
        self.paid_sent = 0  # paid messages this process sent (for tests and the bench)
        self.fallbacks = 0  # eligible messages that went the normal way

    @property
    def on(self) -> bool:
        return self.from_severity is not None and self.cap > 0

    def eligible(self, severity: Severity) -> bool:
        return self.from_severity is not None and severity.at_least(self.from_severity)

    async def take(self, severity: Severity) -> bool:
        """One paid message may go now (reserved); False: send it the normal way."""
        if not self.on or not self.eligible(severity):
            return False
        async with self._lock:
            ok = await self._take_locked()
        if not ok:
            self.fallbacks += 1
        return ok

    async def _take_locked(self) -> bool:
        now = time.monotonic()
        if self._broke_at is not None:
            if now - self._broke_at < self.recheck:
                return False
            self._broke_at = None
            self._balance_at = -1e18  # read it again before spending
        if not await self._balance_allows(now):
            return False
        day = day_of(self.clock.now())
        if day != self._day:
            await self._give_back()
            self._day = day
        if self._held == 0:
            if self._cap_seen is not None and self._cap_seen[0] == day and now - self._cap_seen[1] < self.recheck:
                return False
            quick = now - self._reserved_at < 1.0
            self._next_block = min(self.max_block, self._next_block * 2) if quick else self.block
            self._reserved_at = now
            got = await self.spend.reserve(day, self._next_block, cap=self.cap, at=self.clock.now())
            if got == 0:
                if self._cap_seen is None or self._cap_seen[0] != day:
                    log.warning(
                        "telegram: paid broadcast cap reached (%d Stars for %s UTC): the rest go "
                        "through the normal 30/s limiter", self.cap // MESSAGES_PER_STAR, day,
                    )
                self._cap_seen = (day, now)
                return False
            self._held = got
        self._held -= 1
        if self._balance is not None:
            self._balance -= 1
        self.paid_sent += 1
        self._schedule_release()
        return True

    async def _balance_allows(self, now: float) -> bool:
        """Read the balance when the last read is `recheck` old; too little → fall back."""
        if self.bot is None or self._balance_unreadable:
            return True
        if now - self._balance_at >= self.recheck:
            try:
                amount = await self.bot.get_my_star_balance()
            except TelegramError as exc:
                self._balance_unreadable = True
                log.warning("telegram: cannot read the Stars balance (%s); relying on Telegram's "
                            "refusals to stop paid broadcast", exc.message)
                return True
            nano = amount.nanostar_amount or 0
            self._balance = amount.amount * MESSAGES_PER_STAR + nano // 100_000_000
            self._balance_at = now
        if self._balance is not None and self._balance < 1:
            await self._broke("the Stars balance read says too little is left")
            return False
        return True

    async def refund(self) -> None:
        """A reserved paid message did not go (refused, or sent the normal way after all)."""
        async with self._lock:
            self._held += 1
            self.paid_sent -= 1
            if self._balance is not None:
                self._balance += 1

    async def out_of_stars(self, reason: str) -> None:
        """Telegram refused a paid message for lack of Stars: normal limiter for a while."""
        async with self._lock:
            self._held += 1  # that message was not charged
            self.paid_sent -= 1
            self._balance = 0
            await self._broke(f"Telegram refused a paid message ({reason})")

    async def _broke(self, why: str) -> None:
        if self._broke_at is None:
            log.warning("telegram: paid broadcast off for now: %s; the rest go through the normal "
                        "30/s limiter (retried in %.0fs)", why, self.recheck)
        self._broke_at = time.monotonic()
        await self._give_back()

    def _schedule_release(self) -> None:
        if self._release is not None:
            self._release.cancel()
        self._release = asyncio.get_running_loop().call_later(self.idle_release, self._release_now)

    def _release_now(self) -> None:
        task = asyncio.get_running_loop().create_task(self.release())
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    async def _give_back(self) -> None:
        held, self._held = self._held, 0
        if held and self._day:
            await self.spend.release(self._day, held, at=self.clock.now())

    async def release(self) -> None:
        """Hand back the reservation in hand (idle, or the adapter stopping)."""
        async with self._lock:
            await self._give_back()

    async def close(self) -> None:
        if self._release is not None:
            self._release.cancel()
            self._release = None
        with contextlib.suppress(Exception):
            await self.release()

    async def status(self) -> PaidStatus:
        spent = await self.spend.spent(day_of(self.clock.now())) if self.on else 0
        return PaidStatus(self.on, self.from_severity, spent / MESSAGES_PER_STAR, self.cap // MESSAGES_PER_STAR)


async def paid_status(store: Store, clock: Clock, *, from_severity: Severity | None, daily_stars: int) -> PaidStatus:
    """Today's spend without a running adapter (/status reads the database)."""
    budget = PaidBroadcast(store, clock, from_severity=from_severity, daily_stars=daily_stars)
    return await budget.status()
