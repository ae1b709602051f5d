"""One APScheduler job per source, rescheduled after every poll by the `Cadence`.

Jobs live in memory (feed state lives in our own tables); `coalesce` and
`max_instances=1` mean a slow feed never piles up runs of itself. Each job's
trigger fires at the source's ceiling, a safety net only: after every run (and
whatever it raised) the next run is set to `Cadence.next_interval` from now.
`hasten` brings polls forward (a surge starting), never before politeness allows.

Two clocks: APScheduler runs on wall time; the cadence on the bot's clock (`now`, a
ManualClock in tests and backtests). Only delays cross from one to the other.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.sources.cadence import Cadence
from bot.sources.config import Source

log = logging.getLogger(__name__)

PollFn = Callable[[Source], Awaitable[Any]]
# The next run is set from inside the run, before APScheduler counts it finished (a
# callback on the next loop turn): a run due sooner would be skipped as "still running".
MIN_GAP = timedelta(seconds=1)


def job_id(source: Source) -> str:
    return f"{source.kind}:{source.source_id}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SourceScheduler:
    def __init__(
        self,
        poll: PollFn,
        *,
        jitter: float,
        cadence: Cadence | None = None,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._poll = poll
        self._jitter = jitter
        self.cadence = cadence or Cadence()
        self._now = now
        self._sources: dict[str, Source] = {}  # job id → source
        self._running: set[str] = set()
        self._hastened: set[str] = set()  # asked to hurry while a poll of theirs was running
        self._scheduler = AsyncIOScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60}
        )
        self._scheduler.add_listener(self._on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)

    def start(self, sources: Sequence[Source]) -> None:
        """(Re)build the jobs for `sources` and start; the first poll of each runs at once."""
        wanted = {job_id(s): s for s in sources}
        for job in self._scheduler.get_jobs():
            if job.id not in wanted:
                job.remove()
        existing = {job.id for job in self._scheduler.get_jobs()}
        self._sources = dict(wanted)
        for jid, source in wanted.items():
            trigger = IntervalTrigger(seconds=source.ceiling)  # safety net; `_run` sets each next poll
            if jid in existing:
                job = self._scheduler.get_job(jid)
                when = job.next_run_time if job is not None else None
                self._scheduler.modify_job(jid, trigger=trigger, args=[source], next_run_time=when)
            else:
                self._scheduler.add_job(self._run, trigger, args=[source], id=jid, name=jid, next_run_time=_utcnow())
        if not self._scheduler.running:
            self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    async def _run(self, source: Source) -> None:
        jid = job_id(source)
        self._running.add(jid)
        try:
            await self._poll(source)
        finally:
            self._running.discard(jid)
            self._reschedule(source)

    def _reschedule(self, source: Source) -> None:
        jid = job_id(source)
        if self._scheduler.get_job(jid) is None:
            return  # removed by a reload meanwhile
        now = self._now()
        if jid in self._hastened:
            self._hastened.discard(jid)
            delay = (self.cadence.earliest(source, now) - now).total_seconds()
        else:
            seconds = self.cadence.next_interval(source, now).seconds
            spread = random.uniform(0, min(self._jitter, seconds / 4)) if self._jitter else 0.0
            delay = seconds + spread
        self._scheduler.modify_job(jid, next_run_time=_utcnow() + max(timedelta(seconds=delay), MIN_GAP))

    def hasten(self, source_ids: Iterable[str], *, now: datetime) -> list[str]:
        """Poll these sources as soon as politeness allows (server hints, host budget); the ids
        that were brought forward (unknown ones are ignored). `now` is the bot's clock."""
        wanted = set(source_ids)
        moved: list[str] = []
        for jid, source in self._sources.items():
            if source.source_id not in wanted:
                continue
            if jid in self._running:
                self._hastened.add(jid)  # rescheduled when the poll in flight ends
                moved.append(source.source_id)
                continue
            job = self._scheduler.get_job(jid)
            if job is None:
                continue
            when = _utcnow() + (self.cadence.earliest(source, now) - now)
            if job.next_run_time is None or job.next_run_time - when > MIN_GAP:  # sooner, not by a hair
                self._scheduler.modify_job(jid, next_run_time=when)
                moved.append(source.source_id)
        return moved

    def next_poll_in(self) -> float | None:
        """Seconds until the earliest scheduled poll (None when nothing is scheduled)."""
        times: list[datetime] = [j.next_run_time for j in self._scheduler.get_jobs() if j.next_run_time is not None]
        if not times:
            return None
        return (min(times) - _utcnow()).total_seconds()

    def next_run(self, source: Source) -> datetime | None:
        """When `source` is polled next, wall time (None when it has no job)."""
        job = self._scheduler.get_job(job_id(source))
        return None if job is None else job.next_run_time

    def job_ids(self) -> list[str]:
        return sorted(j.id for j in self._scheduler.get_jobs())

    @staticmethod
    def _on_event(event: JobEvent) -> None:
        code = event.code
        if code == EVENT_JOB_ERROR:
            log.error("poll job %s raised: %r", event.job_id, getattr(event, "exception", None))
        elif code == EVENT_JOB_MISSED:
            log.warning("poll job %s missed its run time (loop busy)", event.job_id)
        else:
            log.warning("poll job %s still running; skipped a run", event.job_id)
