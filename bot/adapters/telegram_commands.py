"""Telegram commands: one handler per command, its docstring is its help text.

Bad input gets one line naming the right form (`/mute soon` → "duration must
look like 30m, 2h, 1d or 1w. Use: /mute <duration> [rule-id]"); changes in
groups need a chat administrator (`require_admin`). The parsing is shared
with Discord (`bot.delivery.preferences`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from telegram import BotCommand, Update
from telegram.constants import ParseMode

from bot.adapters.telegram_chat import (
    ADAPTER,
    Context,
    Handler,
    Refusal,
    address_of,
    choose_button,
    choose_keyboard,
    describe,
    ensure_destination,
    fmt_time,
    may_change,
    reply,
    require_admin,
    services_of,
)
from bot.adapters.telegram_render import alert_summary_line, esc, explain_lines
from bot.delivery.preferences import (
    MAX_ARG_LENGTH,
    MAX_FILTER_WORDS,
    PreferenceError,
    parse_duration,
    parse_filter_words,
    parse_quiet,
    parse_selector,
)
from bot.models import Severity
from bot.storage.store import Selector

if TYPE_CHECKING:
    from bot.rules.loader import RuleSet

MAX_ARGS = 25
RECENT_DEFAULT, RECENT_MAX = 5, 20

# ---- the command decorator ---------------------------------------------------------


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    help: str
    handler: Handler


COMMANDS: list[Command] = []


def command(usage: str) -> Callable[[Handler], Handler]:
    """Register a command; bad input becomes one line: what went wrong and the right form."""

    def wrap(func: Handler) -> Handler:
        name = usage.split()[0]
        help_text = (func.__doc__ or name).strip().splitlines()[0]

        @functools.wraps(func)
        async def run(update: Update, context: Context) -> None:
            message = update.effective_message
            if message is None:
                return
            try:
                check_args(context.args or [])
                await func(update, context)
            except (PreferenceError, Refusal) as exc:
                text = str(exc)
                if isinstance(exc, PreferenceError):
                    text = f"{text.rstrip('.')}. Use: /{usage}"
                await message.reply_text(esc(text), parse_mode=ParseMode.HTML)

        COMMANDS.append(Command(name, usage, help_text, run))
        return run

    return wrap


def check_args(args: Sequence[str]) -> None:
    if len(args) > MAX_ARGS:
        raise PreferenceError(f"too many arguments (at most {MAX_ARGS})")
    if any(len(a) > MAX_ARG_LENGTH for a in args):
        raise PreferenceError(f"argument too long (at most {MAX_ARG_LENGTH} characters)")


def one_arg(context: Context, *, required: bool = False) -> str | None:
    args = context.args or []
    if len(args) > 1:
        raise PreferenceError("one argument at a time")
    if required and not args:
        raise PreferenceError("an argument is needed")
    return args[0] if args else None


# ---- commands ----------------------------------------------------------------------


@command("start")
async def start(update: Update, context: Context) -> None:
    """Welcome, what Readout watches, and subscribe to the default set."""
    message = update.effective_message
    assert message is not None
    services = services_of(context)
    ruleset = services.rules.current
    lines = [
        (
            "👋 <b>Readout</b> watches the US–China trade-war tape: tariffs, export controls, talks, "
            "the tone of official readouts, VIX, the yuan and futures."
        ),
        (
            f"{len(ruleset.enabled_rules())} rules, {len(ruleset.watchlists)} watch-lists, "
            f"{len([f for f in ruleset.sources.feeds if f.enabled])} feeds."
        ),
    ]
    if await may_change(context, message.chat, update.effective_user, message.sender_chat):
        address = await ensure_destination(services, message)
        subs = await services.store.subscriptions(ADAPTER, address)
        if subs:
            lines.append(
                "This chat gets: " + "; ".join(describe(s.selector, s.value) for s in subs) + "."
            )
        else:
            await services.store.subscribe(
                ADAPTER, address, "severity", Severity.warning.value, at=services.clock.now()
            )
            lines.append(
                "✅ Subscribed to <b>warning and above</b>. /subscribe info gets everything."
            )
        lines.append("Tune it: /subscribe, /mute, /quiet, /filter. All commands: /help")
        await reply(message, lines, markup=choose_button())
    else:
        lines.append("An admin of this group can subscribe it with /subscribe. All commands: /help")
        await reply(message, lines)


@command("subscribe [rule-id | tag | severity | ?]")
async def subscribe(update: Update, context: Context) -> None:
    """Get alerts: a rule, a tag, or a severity and above (default: warning)."""
    message = update.effective_message
    assert message is not None
    services = services_of(context)
    arg = one_arg(context)
    if arg in ("?", "choose"):
        await reply(
            message,
            "Tap what this chat should get:",
            markup=choose_keyboard(services.rules.current),
        )
        return
    selector, value = parse_selector(arg, services.rules.current)
    await require_admin(update, context)
    address = await ensure_destination(services, message)
    new = await services.store.subscribe(ADAPTER, address, selector, value, at=services.clock.now())
    text = (
        f"✅ Subscribed to {describe(selector, value)}."
        if new
        else f"Already subscribed to {describe(selector, value)}."
    )
    await reply(message, text, markup=choose_button() if arg is None else None)


@command("unsubscribe [rule-id | tag | severity]")
async def unsubscribe(update: Update, context: Context) -> None:
    """Stop a subscription; with no argument, stop them all."""
    message = update.effective_message
    assert message is not None
    services = services_of(context)
    arg = one_arg(context)
    await require_admin(update, context)
    address = address_of(message)
    if arg is None:
        n = await services.store.unsubscribe(ADAPTER, address)
        await reply(
            message, f"Unsubscribed from everything ({n} subscription{'s' if n != 1 else ''})."
        )
        return
    selector, value = _selector_for_removal(arg, services.rules.current)
    n = await services.store.unsubscribe(ADAPTER, address, selector, value)
    if n:
        await reply(message, f"Unsubscribed from {describe(selector, value)}.")
    else:
        await reply(
            message,
            f"This chat had no subscription to {describe(selector, value)}; see /subscriptions.",
        )


def _selector_for_removal(arg: str, ruleset: RuleSet) -> tuple[Selector, str]:
    """Like parse_selector, but also accepts ids of rules and tags that are gone since."""
    try:
        return parse_selector(arg, ruleset)
    except PreferenceError:
        return ("rule", arg)


@command("subscriptions")
async def subscriptions(update: Update, context: Context) -> None:
    """What this chat gets: subscriptions, mutes, quiet hours, filters."""
    message = update.effective_message
    assert message is not None
    services = services_of(context)
    address = address_of(message)
    store = services.store
    subs = await store.subscriptions(ADAPTER, address)
    lines = ["<b>This chat gets</b>"]
    lines += [f"• {describe(s.selector, s.value)}" for s in subs] or ["• nothing yet: /subscribe"]
    dest = await store.get_destination(ADAPTER, address)
    mutes = await store.active_mutes(now=services.clock.now(), adapter=ADAPTER, address=address)
    for m in mutes:
        what = f"rule <code>{esc(m.rule_id)}</code>" if m.rule_id else "everything"
        lines.append(f"🔇 {what} muted until {esc(fmt_time(m.until))}")
    if dest is not None:
        if dest.quiet_start and dest.quiet_end:
            lines.append(
                f"🌙 quiet {esc(dest.quiet_start)}–{esc(dest.quiet_end)} {esc(dest.quiet_tz or 'UTC')}"
            )
        if dest.include_words or dest.exclude_words:
            words = [f"+{w}" for w in dest.include_words] + [f"-{w}" for w in dest.exclude_words]
            lines.append("🔎 filter " + esc(" ".join(words)))
        if dest.disabled_at:
            lines.append(
                f"⚠️ delivery stopped {esc(fmt_time(dest.disabled_at))}: {esc(dest.disabled_reason or '')}"
            )
    await reply(message, lines)


@command("filter +word -word | clear")
async def filter_words(update: Update, context: Context) -> None:
    """Only alerts with +words, never alerts with -words (plain words)."""
    message = update.effective_message
    assert message is not None
    services = services_of(context)
    args = context.args or []
    address = address_of(message)
    if not args:
        dest = await services.store.get_destination(ADAPTER, address)
        words = [f"+{w}" for w in (dest.include_words if dest else [])]
        words += [f"-{w}" for w in (dest.exclude_words if dest else [])]
        await reply(
            message,
            "Filter: "
            + (esc(" ".join(words)) if words else "none")
            + ". Change it with /filter +word -word.",
        )
        return
    if len(args) == 1 and args[0].lower() == "clear":
        await require_admin(update, context)
        await ensure_destination(services, message)
        await services.store.update_destination(
            ADAPTER, address, include_words=[], exclude_words=[]
        )
        await reply(message, "Filter cleared.")
        return
    include, exclude = parse_filter_words(args)
    await require_admin(update, context)
    dest = await services.store.ensure_destination(
        ADAPTER, address, at=services.clock.now(), chat_kind=message.chat.type
    )
    inc = [w for w in dest.include_words if w not in exclude] + [
        w for w in include if w not in dest.include_words
    ]
    exc = [w for w in dest.exclude_words if w not in include] + [
        w for w in exclude if w not in dest.exclude_words
    ]
    if len(inc) + len(exc) > MAX_FILTER_WORDS:
        raise PreferenceError(
            f"at most {MAX_FILTER_WORDS} filter words in all; /filter clear starts over"
        )
    await services.store.update_destination(ADAPTER, address, include_words=inc, exclude_words=exc)
    words = [f"+{w}" for w in inc] + [f"-{w}" for w in exc]
    await reply(message, "Filter: " + esc(" ".join(words)))


@command("why <alert>")
async def why(update: Update, context: Context) -> None:
    """Why an alert fired: rule, words or price move, tone terms."""
    message = update.effective_message
    assert message is not None
    arg = one_arg(context, required=True)
    assert arg is not None
    alert = await services_of(context).store.find_alert(arg)
    if alert is None:
        raise Refusal(
            f"No alert {arg[:20]!r}: use the #handle under an alert, e.g. /why 3f9a1c2e (see /recent)."
        )
    await reply(message, explain_lines(alert))


@command("rules")
async def rules(update: Update, context: Context) -> None:
    """The loaded rules: id, description, severity."""
    message = update.effective_message
    assert message is not None
    ruleset = services_of(context).rules.current
    lines = [f"<b>{len(ruleset.rules)} rules</b>"]
    for rule in ruleset.rules:
        off = " <i>(off)</i>" if not rule.enabled else ""
        lines.append(
            f"• <code>{esc(rule.id)}</code> — {esc(rule.description)} ({esc(rule.severity.value)}){off}"
        )
    await reply(message, lines)


@command("watchlist [sector]")
async def watchlist(update: Update, context: Context) -> None:
    """The watch-lists: sectors, tickers, why they matter."""
    message = update.effective_message
    assert message is not None
    lists = services_of(context).rules.current.watchlists
    arg = one_arg(context)
    if arg is not None:
        item = lists.get(arg.lower())
        if item is None:
            raise PreferenceError(f"unknown sector {arg[:40]!r}; sectors: {', '.join(lists)}")
        chosen = [item]
    else:
        chosen = list(lists.values())
    lines: list[str] = []
    for item in chosen:
        lines.append(
            f"<b>{esc(item.title)}</b> (<code>{esc(item.name)}</code>): "
            + ", ".join(esc(t) for t in item.tickers)
        )
        lines.append(f"  <i>{esc(item.why)}</i>")
    await reply(message, lines or ["No watch-lists loaded."])


@command("recent [n]")
async def recent(update: Update, context: Context) -> None:
    """The last alerts, newest first (n up to 20)."""
    message = update.effective_message
    assert message is not None
    arg = one_arg(context)
    n = RECENT_DEFAULT
    if arg is not None:
        if not arg.isdigit() or not 1 <= int(arg) <= RECENT_MAX:
            raise PreferenceError(f"n must be a number from 1 to {RECENT_MAX}")
        n = int(arg)
    alerts = await services_of(context).store.recent_alerts(limit=n)
    if not alerts:
        await reply(message, "No alerts yet.")
        return
    await reply(
        message, [f"<b>Last {len(alerts)} alerts</b>"] + [alert_summary_line(a) for a in alerts]
    )


@command("mute <duration> [rule-id]")
async def mute(update: Update, context: Context) -> None:
    """Pause alerts (all, or one rule) for 30m, 2h, 1d…"""
    message = update.effective_message
    assert message is not None
    services = services_of(context)
    args = context.args or []
    if not args or len(args) > 2:
        raise PreferenceError("give a duration and optionally a rule id")
    delta = parse_duration(args[0])
    rule_id = args[1] if len(args) == 2 else None
    if rule_id is not None and services.rules.current.get(rule_id) is None:
        raise PreferenceError(f"unknown rule {rule_id[:40]!r} (see /rules)")
    await require_admin(update, context)
    address = await ensure_destination(services, message)
    now = services.clock.now()
    await services.store.add_mute(ADAPTER, address, rule_id=rule_id, until=now + delta, at=now)
    what = f"rule <code>{esc(rule_id)}</code>" if rule_id else "all alerts"
    await reply(message, f"🔇 Muted {what} until {esc(fmt_time(now + delta))}. /unmute ends it.")


@command("unmute [rule-id]")
async def unmute(update: Update, context: Context) -> None:
    """End mutes (all, or one rule's)."""
    message = update.effective_message
    assert message is not None
    services = services_of(context)
    rule_id = one_arg(context)
    await require_admin(update, context)
    n = await services.store.clear_mutes(ADAPTER, address_of(message), rule_id)
    await reply(message, "🔔 Unmuted." if n else "Nothing was muted here.")


@command("quiet 22:00-07:00 [timezone] | off")
async def quiet(update: Update, context: Context) -> None:
    """Hold alerts at night and send one digest after (critical ones still come)."""
    message = update.effective_message
    assert message is not None
    services = services_of(context)
    args = context.args or []
    address = address_of(message)
    if not args:
        dest = await services.store.get_destination(ADAPTER, address)
        if dest and dest.quiet_start and dest.quiet_end:
            now_text = (
                f"{esc(dest.quiet_start)}–{esc(dest.quiet_end)} {esc(dest.quiet_tz or 'UTC')}"
            )
            await reply(message, f"Quiet hours: {now_text}. /quiet off ends them.")
        else:
            await reply(message, "No quiet hours. Set them with /quiet 22:00-07:00 Europe/London.")
        return
    if len(args) > 2:
        raise PreferenceError("give a window and optionally a time zone")
    if len(args) == 1 and args[0].lower() == "off":
        await require_admin(update, context)
        await ensure_destination(services, message)
        await services.store.update_destination(
            ADAPTER, address, quiet_start=None, quiet_end=None, quiet_tz=None
        )
        await reply(message, "Quiet hours off.")
        return
    start_, end, tz = parse_quiet(args[0], args[1] if len(args) == 2 else None)
    await require_admin(update, context)
    await ensure_destination(services, message)
    await services.store.update_destination(
        ADAPTER, address, quiet_start=start_, quiet_end=end, quiet_tz=tz
    )
    await reply(
        message,
        f"🌙 Quiet {esc(start_)}–{esc(end)} {esc(tz)}: alerts are held and sent as one digest after; critical ones still come.",
    )


@command("status")
async def status(update: Update, context: Context) -> None:
    """Sources and their health, rules loaded, queue depth."""
    message = update.effective_message
    assert message is not None
    report = await services_of(context).status()
    lines = [
        "<b>Readout status</b>",
        f"Rules: {report.rules_enabled} enabled of {report.rules_loaded}",
        f"Queue: {report.queue.get('pending', 0)} pending, {report.queue.get('held', 0)} held",
        f"Adapters: {esc(', '.join(report.adapters) or 'none')}",
    ]
    if report.rules_error:
        lines.append("⚠️ Last rules reload failed: " + esc(report.rules_error.splitlines()[0][:200]))
    if report.disabled_destinations:
        lines.append(
            f"Stopped destinations (blocked or removed): {len(report.disabled_destinations)}"
        )
    lines.append(f"<b>Sources ({len(report.sources)})</b>")
    for src in report.sources:
        mark = "✅" if src.healthy else ("⏳" if src.state is None or src.state.polls == 0 else "⚠️")
        lines.append(f"{mark} {esc(src.line())}")
    await reply(message, lines)


@command("help")
async def help_(update: Update, context: Context) -> None:
    """Every command, one line each."""
    message = update.effective_message
    assert message is not None
    lines = ["<b>Readout commands</b>"] + [f"/{esc(c.usage)} — {esc(c.help)}" for c in COMMANDS]
    lines.append("In groups, only admins can change subscriptions, mutes, quiet hours and filters.")
    await reply(message, lines)


def bot_commands() -> list[BotCommand]:
    """The command menu (setMyCommands)."""
    return [BotCommand(c.name, c.help[:256]) for c in COMMANDS]
