"""Track record: /stats [rule] (Telegram) and /readout stats (Discord)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.commands.parse import PreferenceError
from bot.commands.registry import ChatDestination, command, one_arg
from bot.commands.reply import Reply, cmd, line
from bot.storage.outcomes import OutcomeStore
from bot.track_record import ReportError, format_record, live_record, load_report

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)


@command("stats [rule-id]")
async def stats(services: Services, dest: ChatDestination, args: Sequence[str]) -> Reply:
    """What the market did after each rule's alerts: live, and in the backtest."""
    rule = one_arg(args)
    ruleset = services.rules.current
    if rule is not None and ruleset.get(rule) is None:
        raise PreferenceError(f"unknown rule {rule[:40]!r} (see /rules)")
    report = None
    path = services.settings.backtest_report
    if path is not None:
        try:
            report = load_report(path)
        except ReportError as exc:
            log.warning("BACKTEST_REPORT: %s", exc)  # the operator's file; chat gets live only
    jobs = await OutcomeStore(services.store).done_jobs(rule_id=rule)
    lines = format_record(
        live_record(jobs),
        report,
        symbols=services.settings.outcome_symbols,
        rule=rule,
        rule_order=[r.id for r in ruleset.enabled_rules()],
        compact=rule is None,
    )
    if not jobs and (report is None or (rule is not None and rule not in report.rules)):
        return Reply(lines=tuple(line(t) for t in lines))  # nothing yet: one short line
    if rule is None:
        return Reply(
            title="Track record",
            lines=(*(line(t) for t in lines), line("One rule in detail: ", cmd("stats <rule-id>"))),
        )
    return Reply(title="Track record", lines=tuple(line(t) for t in lines))
