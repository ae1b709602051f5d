"""Looking around (changes nothing): /why, /rules, /watchlist, /recent, /status, /help."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.adapters.telegram_paid import paid_status
from bot.commands.parse import PreferenceError
from bot.commands.registry import COMMANDS, ChatDestination, command, one_arg
from bot.commands.reply import Refusal, Reply, Section, bold, chat, cmd, code, italic, line, say
from bot.commands.urls import mask_url, mask_urls
from bot.models import Severity

if TYPE_CHECKING:
    from bot.services import Services

RECENT_DEFAULT, RECENT_MAX = 5, 20


@command("why <alert>")
async def why(services: Services, dest: ChatDestination, args: Sequence[str]) -> Reply:
    """Why an alert fired: rule, words or price move, tone terms."""
    arg = one_arg(args, required=True)
    assert arg is not None
    alert = await services.store.find_alert(arg)
    if alert is None:
        raise Refusal(
            f"No alert {arg[:20]!r}: use the #handle under an alert, e.g. ",
            cmd("why 3f9a1c2e"), " (see ", cmd("recent"), ").",
        )
    return Reply(explain=alert)


@command("rules")
async def rules(services: Services, dest: ChatDestination, args: Sequence[str]) -> Reply:
    """The loaded rules: id, severity, description, tags."""
    ruleset = services.rules.current
    lines = []
    for r in ruleset.rules:
        tags = f" · {', '.join(r.tags)}" if r.tags else ""
        off = (" ", italic("(disabled)")) if not r.enabled else ()
        lines.append(line(code(r.id), " ", bold(r.severity.value), f" {r.description}{tags}", *off))
    return Reply(
        title=f"Readout rules: {len(ruleset.enabled_rules())} enabled of {len(ruleset.rules)}",
        lines=tuple(lines) or (line("No rules are loaded."),),
        footer="subscribe <rule-id> routes one rule here",
    )


@command("watchlist [sector]")
async def watchlist(services: Services, dest: ChatDestination, args: Sequence[str]) -> Reply:
    """The watch-lists: sectors, tickers, why they matter."""
    items = services.rules.current.watchlists
    arg = one_arg(args)
    if arg is not None:
        key = arg.strip().lower()
        item = items.get(key) or next((w for w in items.values() if w.title.lower() == key), None)
        if item is None:
            raise PreferenceError(f"unknown sector {arg[:40]!r}; sectors: {', '.join(items)}")
        chosen = [item]
    else:
        chosen = list(items.values())
    sections = tuple(
        Section(w.title, (line(bold(", ".join(w.tickers))), line(w.why))) for w in chosen
    )
    if not sections:
        return Reply(title="Readout watch-list", lines=(line("The watch-list is empty."),))
    return Reply(title="Readout watch-list", sections=sections)


@command("recent [n]")
async def recent(services: Services, dest: ChatDestination, args: Sequence[str]) -> Reply:
    """The last alerts, newest first (n up to 20)."""
    arg = one_arg(args)
    n = RECENT_DEFAULT
    if arg is not None:
        # isdecimal and ASCII: "²" and "٣" pass str.isdigit() but are not numbers int() reads
        if not (arg.isascii() and arg.isdecimal()) or not 1 <= int(arg) <= RECENT_MAX:
            raise PreferenceError(f"n must be a number from 1 to {RECENT_MAX}")
        n = int(arg)
    alerts = await services.store.recent_alerts(limit=n)
    if not alerts:
        return say("No alerts yet.")
    return Reply(
        title=f"Latest {len(alerts)} alert{'s' if len(alerts) != 1 else ''}",
        alerts=tuple(alerts),
        severity=max((a.severity for a in alerts), key=lambda s: s.rank),
    )


@command("status")
async def status(services: Services, dest: ChatDestination, args: Sequence[str]) -> Reply:
    """Sources and their health, rules loaded, queue depth."""
    report = await services.status()
    healthy = all(s.healthy for s in report.sources) and report.rules_error is None
    admin = dest.is_admin(services)  # URLs, masked, for admins only
    lines = [line(bold(f"Sources ({len(report.sources)})"))]
    for src in report.sources:
        mark = "✅" if src.healthy else ("⏳" if src.state is None or src.state.polls == 0 else "⚠️")
        where = f" · {mask_url(src.url)}" if admin and src.url else ""
        lines.append(line(f"{mark} {src.line(reveal_urls=admin)}{where}"))
        if (cadence := src.cadence_line()) is not None:
            lines.append(line(italic(f"    {cadence}")))
    rules_lines = [line(f"{report.rules_enabled} enabled of {report.rules_loaded}")]
    if report.rules_error:
        first = report.rules_error.splitlines()[0][:200]
        rules_lines.append(line("last reload failed: " + mask_urls(first, reveal=admin)))
    adapters = ", ".join(report.adapters) or "none"
    if admin and "telegram" in report.adapters:
        adapters += f" (Telegram API {mask_url(services.settings.telegram_base_url)})"
    adapter_lines = [line(adapters)]
    if admin and "telegram" in report.adapters and services.settings.paid_broadcast_from() is not None:
        adapter_lines.append(line(await paid_broadcast_line(services)))
    sections = [
        Section("Rules", tuple(rules_lines), inline=True),
        Section("Queue", (line(f"{report.queue.get('pending', 0)} pending, {report.queue.get('held', 0)} held"),), inline=True),
        Section("Adapters", tuple(adapter_lines), inline=True),
    ]
    if report.surging:  # sources polled at their floor for a while (issue 17), and why
        sections.append(
            Section(f"Surging ({len(report.surging)})", tuple(line(f"⚡ {sid}: {why}") for sid, why in report.surging))
        )
    lost = [
        d
        for d in report.disabled_destinations
        if d.adapter == dest.adapter and (dest.scope is None or d.chat_kind == dest.scope)
    ]
    if lost:
        sections.append(
            Section(
                f"Stopped destinations (blocked or removed): {len(lost)}",
                tuple(line(chat(d.address, here=d.address == dest.address)) for d in lost[:20]),
            )
        )
    return Reply(
        title="Readout status: " + ("all good" if healthy else "needs a look"),
        lines=tuple(lines),
        sections=tuple(sections),
        severity=None if healthy else Severity.warning,
    )


async def paid_broadcast_line(services: Services) -> str:
    """Admins' /status: today's Telegram paid broadcast spend against the cap."""
    settings = services.settings
    state = await paid_status(
        services.store,
        services.clock,
        from_severity=settings.paid_broadcast_from(),
        daily_stars=settings.telegram_paid_broadcast_daily_stars,
    )
    return (
        f"Paid broadcast ({settings.telegram_paid_broadcast} and above): "
        f"{state.spent_stars:,.1f} of {state.cap_stars:,} Stars spent today (UTC)"
    )


@command("help")
async def help_(services: Services, dest: ChatDestination, args: Sequence[str]) -> Reply:
    """Every command, one line each."""
    shown = [c for c in COMMANDS.values() if not dest.commands or c.name in dest.commands]
    return Reply(
        title="Readout commands",
        lines=(
            *(line(cmd(c.usage), f" — {c.help}") for c in shown),
            line("In groups and servers, only admins can change subscriptions, mutes, quiet hours and filters."),
        ),
    )
