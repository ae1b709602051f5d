"""One APScheduler job per source, each on its own interval, rebuilt from sources.yaml.

Jobs live in memory (feed state lives in our own tables); `coalesce` and
`max_instances=1` mean a slow feed never piles up runs of itself.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.sources.config import Source

log = logging.getLogger(__name__)

PollFn = Callable[[Source], Awaitable[Any]]


def job_id(source: Source) -> str:
    return f"{source.kind}:{source.source_id}"


class SourceScheduler:
    def __init__(self, poll: PollFn, *, jitter: float) -> None:
        self._poll = poll
        self._jitter = jitter
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
        for jid, source in wanted.items():
            trigger = IntervalTrigger(seconds=source.interval, jitter=min(self._jitter, source.interval / 4) or None)
            if jid in existing:
                self._scheduler.reschedule_job(jid, trigger=trigger)
                self._scheduler.modify_job(jid, args=[source])
            else:
                self._scheduler.add_job(self._poll, trigger, args=[source], id=jid, name=jid, next_run_time=datetime.now(UTC))
        if not self._scheduler.running:
            self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

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
