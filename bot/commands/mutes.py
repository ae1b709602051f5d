"""Pausing alerts: /mute, /unmute, /quiet."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.commands.parse import PreferenceError, parse_duration, parse_quiet
from bot.commands.registry import ChatDestination, command, one_arg
from bot.commands.reply import Refusal, Reply, chat, cmd, code, line, say, when
from bot.market_calendar import Session

if TYPE_CHECKING:
    from bot.services import Services


@command("mute <duration> [rule-id]")
async def mute(services: Services, dest: ChatDestination, args: Sequence[str]) -> Reply:
    """Pause alerts (all, or one rule) for 30m, 2h, 1d…"""
    if not args or len(args) > 2:
        raise PreferenceError("give a duration and optionally a rule id")
    delta = parse_duration(args[0])
    rule_id = args[1].strip() if len(args) == 2 else None
    if rule_id is not None and services.rules.current.get(rule_id) is None:
        raise PreferenceError(f"unknown rule {rule_id[:40]!r} (see /rules)")
    await dest.require_change()
    await dest.ensure(services)
    now = services.clock.now()
    until = now + delta
    await services.store.add_mute(dest.adapter, dest.address, rule_id=rule_id, until=until, at=now)
    what = line("rule ", code(rule_id)) if rule_id else line("all alerts")
    return say(
        line("🔇 Muted ", *what, " in ", chat(dest.address), " until ", when(until), ". ", cmd("unmute"), " ends it."),
        public=True,
    )


@command("unmute [rule-id]")
async def unmute(services: Services, dest: ChatDestination, args: Sequence[str]) -> Reply:
    """End mutes (all, or one rule's)."""
    rule_id = one_arg(args)
    await dest.require_change()
    store = services.store
    active = await store.active_mutes(now=services.clock.now(), adapter=dest.adapter, address=dest.address)
    if not any(rule_id is None or m.rule_id == rule_id for m in active):
        raise Refusal("Nothing is muted in ", chat(dest.address), ".")
    await store.clear_mutes(dest.adapter, dest.address, rule_id)
    return say(line("🔔 Unmuted ", chat(dest.address), "."), public=True)


@command("quiet 22:00-07:00 [timezone] | us-regular | us-extended | fx | any | off")
async def quiet(services: Services, dest: ChatDestination, args: Sequence[str]) -> Reply:
    """Hold alerts at night, or outside US market hours; one digest after (critical ones still come)."""
    store = services.store
    if len(args) == 1 and args[0].strip().lower() in {s.value for s in Session}:
        return await _quiet_session(services, dest, Session(args[0].strip().lower()))
    if not args:
        here = await store.get_destination(dest.adapter, dest.address)
        if here and here.quiet_start and here.quiet_end:
            window = f"{here.quiet_start}–{here.quiet_end} {here.quiet_tz or 'UTC'}"
            return say(line(f"Quiet hours: {window}. ", cmd("quiet off"), " ends them."))
        return say(line("No quiet hours. Set them with ", cmd("quiet 22:00-07:00 Europe/London"), "."))
    if len(args) > 2:
        raise PreferenceError("give a window and optionally a time zone")
    if len(args) == 1 and args[0].strip().lower() == "off":
        await dest.require_change()
        here = await store.get_destination(dest.adapter, dest.address)
        if here is None or not here.quiet_start:
            raise Refusal("No quiet hours in ", chat(dest.address), ".")
        await store.update_destination(dest.adapter, dest.address, quiet_start=None, quiet_end=None, quiet_tz=None)
        return say(line("⏰ Quiet hours in ", chat(dest.address), " are off."), public=True)
    start, end, tz = parse_quiet(args[0], args[1] if len(args) == 2 else None)
    await dest.require_change()
    await dest.ensure(services)
    await store.update_destination(dest.adapter, dest.address, quiet_start=start, quiet_end=end, quiet_tz=tz)
    return say(
        line(
            f"🌙 Quiet {start}–{end} {tz} in ", chat(dest.address),
            ": alerts are held and sent as one digest after; critical ones still come.",
        ),
        public=True,
    )


async def _quiet_session(services: Services, dest: ChatDestination, session: Session) -> Reply:
    """`/quiet us-regular`: deliver non-critical alerts only in that market session (NYSE
    calendar: weekends and holidays held for the next open); `/quiet any` ends it."""
    await dest.require_change()
    await dest.ensure(services)
    value = None if session is Session.any else session.value
    await services.store.update_destination(dest.adapter, dest.address, session=value)
    if value is None:
        return say(line("⏰ Alerts in ", chat(dest.address), " come at any hour of the market."), public=True)
    return say(
        line(
            "🏛 Alerts in ", chat(dest.address), f" come only in the {value} session (market calendar); "
            "the rest are held and sent as one digest at the next open; critical ones still come.",
        ),
        public=True,
    )
