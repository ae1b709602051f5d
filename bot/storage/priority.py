"""Which owed row of each destination goes next: the most severe, then the oldest.

A flood of warnings queued for a chat never holds back a fresh critical alert:
each destination's next row is chosen by severity, then age, and among
destinations the critical ones are handed out first. A row in flight
(claimed, claim not lapsed) stays its destination's next row, so one
destination still has one message in flight at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, case, func, select

from bot.storage import tables as t


def severity_rank() -> ColumnElement[int]:
    """An outbox row's alert severity as a sort key: critical 0, warning 1, info 2 (missing: 1)."""
    o, a = t.outbox, t.alerts
    rank = case((a.c.severity == "critical", 0), (a.c.severity == "warning", 1), (a.c.severity == "info", 2), else_=1)
    return func.coalesce(select(rank).where(a.c.id == o.c.alert_id).scalar_subquery(), 1)


def next_owed(adapters: Sequence[str], *, now: datetime) -> Select[tuple[int]]:
    """Ids of each destination's next pending row (a row whose alert is missing ranks as warning)."""
    o, a = t.outbox, t.alerts
    in_flight = case((and_(o.c.claimed_until.is_not(None), o.c.claimed_until > now), 0), else_=1)
    severity = case((a.c.severity == "critical", 0), (a.c.severity == "warning", 1), (a.c.severity == "info", 2), else_=1)
    numbered = (
        select(
            o.c.id,
            func.row_number()
            .over(partition_by=(o.c.adapter, o.c.address), order_by=(in_flight, severity, o.c.id))
            .label("n"),
        )
        .select_from(o.outerjoin(a, a.c.id == o.c.alert_id))
        .where(and_(o.c.status == "pending", o.c.adapter.in_(list(adapters))))
        .subquery()
    )
    return select(numbered.c.id).where(numbered.c.n == 1)
