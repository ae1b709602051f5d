"""What a chat receives: /start, /subscribe, /unsubscribe, /subscriptions, /filter."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.commands.parse import (
    MAX_FILTER_WORDS,
    PreferenceError,
    parse_filter_words,
    parse_selector,
)
from bot.commands.registry import ChatDestination, command, one_arg
from bot.commands.reply import (
    Button,
    Line,
    Refusal,
    Reply,
    Section,
    bold,
    chat,
    cmd,
    code,
    line,
    say,
    when,
)
from bot.models import Severity

if TYPE_CHECKING:
    from bot.rules.loader import RuleSet
    from bot.services import Services
    from bot.storage.store import Destination, Mute, Subscription

log = logging.getLogger(__name__)

CALLBACK_LIMIT = 64  # bytes of button data Telegram allows
MAX_BUTTONS = 90
CHOOSE = ((Button("Choose rules or tags…", "choose"),),)


def describe(selector: str, value: str) -> Line:
    """`warning and above`, `rule <tariff-truce>`, `tag <tariffs>`."""
    if selector == "severity":
        return line(f"{value} and above")
    return line(f"{selector} ", code(value))


def joined(parts: Sequence[Line], sep: str = ", ") -> Line:
    out: list[object] = []
    for i, p in enumerate(parts):
        if i:
            out.append(sep)
        out.extend(p)
    return line(*out)  # type: ignore[arg-type]


def choose_buttons(ruleset: RuleSet) -> tuple[tuple[Button, ...], ...]:
    """The subscribe keyboard: severities, tags, rules (whatever fits Telegram's data limit)."""
    options = [Button(f"{s.value}+", f"sub:severity:{s.value}") for s in Severity]
    options += [Button(f"#{tag}", f"sub:tag:{tag}") for tag in ruleset.tags()]
    options += [Button(rule.id, f"sub:rule:{rule.id}") for rule in ruleset.enabled_rules()]
    fitting = [b for b in options if len(b.action.encode("utf-8")) <= CALLBACK_LIMIT][:MAX_BUTTONS]
    return tuple(tuple(fitting[i : i + 3]) for i in range(0, len(fitting), 3))


@command("start")
async def start(services: Services, dest: ChatDestination, args: Sequence[str]) -> Reply:
    """Welcome, what Readout watches, and subscribe to the default set."""
    ruleset = services.rules.current
    feeds = len([f for f in ruleset.sources.feeds if f.enabled])
    lines = [
        line(
            "👋 ",
            bold("Readout"),
            " watches the US–China trade-war tape: tariffs, export controls, talks, "
            "the tone of official readouts, VIX, the yuan and futures.",
        ),
        line(
            f"{len(ruleset.enabled_rules())} rules, {len(ruleset.watchlists)} watch-lists, "
            f"{feeds} feeds."
        ),
    ]
    if not await dest.may_change():
        lines.append(
            line("An admin of this group can subscribe it with ", cmd("subscribe"), ". All commands: ", cmd("help"))
        )
        return Reply(lines=tuple(lines))
    await dest.ensure(services)
    subs = await services.store.subscriptions(dest.adapter, dest.address)
    if subs:
        lines.append(line("This chat gets: ", *joined([describe(s.selector, s.value) for s in subs], "; "), "."))
    else:
        await services.store.subscribe(
            dest.adapter, dest.address, "severity", Severity.warning.value, at=services.clock.now()
        )
        lines.append(line("✅ Subscribed to ", bold("warning and above"), ". ", cmd("subscribe info"), " gets everything."))
    lines.append(
        line(
            "Tune it: ", cmd("subscribe"), ", ", cmd("mute"), ", ", cmd("quiet"), ", ", cmd("filter"),
            ". All commands: ", cmd("help"),
        )
    )
    return Reply(lines=tuple(lines), buttons=CHOOSE)


@command("subscribe [rule-id | tag | severity | ?]")
async def subscribe(services: Services, dest: ChatDestination, args: Sequence[str]) -> Reply:
    """Get alerts: a rule, a tag, or a severity and above (default: warning)."""
    ruleset = services.rules.current
    arg = one_arg(args)
    if arg in ("?", "choose"):
        return Reply(lines=(line("Tap what this chat should get:"),), buttons=choose_buttons(ruleset))
    selector, value = parse_selector(arg, ruleset)
    await dest.require_change()
    what = describe(selector, value)
    existing = await services.store.subscriptions(dest.adapter, dest.address)
    if any(s.selector == selector and s.value == value for s in existing):
        raise Refusal("Already subscribed to ", *what, " in ", chat(dest.address), ".")
    await dest.check_route(what)
    await dest.ensure(services)
    await services.store.subscribe(dest.adapter, dest.address, selector, value, at=services.clock.now())
    log.info("%s: %s subscribed to %s=%s", dest.adapter, dest.address, selector, value)
    return Reply(
        lines=(line("✅ Subscribed ", chat(dest.address), " to ", *what, "."),),
        public=True,
        buttons=CHOOSE if arg is None else (),
    )


def find_subscription(subs: Sequence[Subscription], target: str) -> Subscription | None:
    """The subscription a user means: matched on what is subscribed, so rules and tags
    removed from the rule files since can still be unsubscribed."""
    low = target.lower()
    for s in subs:
        if s.value == target or (s.selector == "severity" and s.value == low):
            return s
    return None


@command("unsubscribe [rule-id | tag | severity]")
async def unsubscribe(services: Services, dest: ChatDestination, args: Sequence[str]) -> Reply:
    """Stop a subscription; with no argument, stop them all."""
    arg = one_arg(args)
    await dest.require_change()
    store = services.store
    existing = await store.subscriptions(dest.adapter, dest.address)
    if not existing:
        raise Refusal("No subscriptions in ", chat(dest.address), " to stop.")
    if arg is None or not arg.strip():
        n = await store.unsubscribe(dest.adapter, dest.address)
        s = "s" if n != 1 else ""
        return say(line("🔕 Unsubscribed ", chat(dest.address), f" from everything ({n} subscription{s})."), public=True)
    match = find_subscription(existing, arg.strip())
    if match is None:
        raise Refusal("No subscription to ", code(arg.strip()), " in ", chat(dest.address), "; see ", cmd("subscriptions"), ".")
    await store.unsubscribe(dest.adapter, dest.address, match.selector, match.value)
    what = describe(match.selector, match.value)
    return say(line("🔕 Unsubscribed ", chat(dest.address), " from ", *what, "."), public=True)


def _destination_lines(
    dest: Destination | None, subs: Sequence[Subscription], mutes: Sequence[Mute]
) -> list[Line]:
    lines = [line("• ", *describe(s.selector, s.value)) for s in subs] or [
        line("• nothing yet: ", cmd("subscribe"))
    ]
    for m in mutes:
        what = line("rule ", code(m.rule_id)) if m.rule_id else line("everything")
        lines.append(line("🔇 ", *what, " muted until ", when(m.until)))
    if dest is None:
        return lines
    if dest.quiet_start and dest.quiet_end:
        lines.append(line(f"🌙 quiet {dest.quiet_start}–{dest.quiet_end} {dest.quiet_tz or 'UTC'}"))
    if dest.include_words or dest.exclude_words:
        lines.append(line("🔎 filter ", filter_text(dest.include_words, dest.exclude_words)))
    if dest.disabled_at:
        lines.append(line("⚠️ delivery stopped ", when(dest.disabled_at), f": {dest.disabled_reason or ''}"))
    return lines


@command("subscriptions")
async def subscriptions(services: Services, dest: ChatDestination, args: Sequence[str]) -> Reply:
    """What this chat gets: subscriptions, mutes, quiet hours, filters."""
    store = services.store
    now = services.clock.now()
    if dest.scope is None:
        here = await store.get_destination(dest.adapter, dest.address)
        subs = await store.subscriptions(dest.adapter, dest.address)
        mutes = await store.active_mutes(now=now, adapter=dest.adapter, address=dest.address)
        return Reply(sections=(Section("This chat gets", tuple(_destination_lines(here, subs, mutes))),))
    # a scope (a Discord server): every destination of it that receives or holds something
    dests = [d for d in await store.destinations(dest.adapter) if d.chat_kind == dest.scope]
    all_subs = await store.subscriptions(dest.adapter)
    all_mutes = await store.active_mutes(now=now, adapter=dest.adapter)
    sections = []
    for d in dests:
        subs = [s for s in all_subs if s.address == d.address]
        if not subs and d.disabled_at is None and not d.quiet_start:
            continue
        mutes = [m for m in all_mutes if m.address == d.address]
        body = [line(chat(d.address, here=d.address == dest.address)), *_destination_lines(d, subs, mutes)]
        sections.append(Section(d.title or f"channel {d.address}", tuple(body)))
    if not sections:
        return Reply(title="Readout in this server", lines=(line("No channel here receives Readout alerts yet: ", cmd("subscribe"), "."),))
    return Reply(title="Readout in this server", sections=tuple(sections))


def filter_text(include: Sequence[str], exclude: Sequence[str]) -> str:
    return " ".join([f"+{w}" for w in include] + [f"-{w}" for w in exclude])


@command("filter +word -word | clear")
async def filter_words(services: Services, dest: ChatDestination, args: Sequence[str]) -> Reply:
    """Only alerts with +words, never alerts with -words (plain words)."""
    store = services.store
    if not args:
        here = await store.get_destination(dest.adapter, dest.address)
        words = filter_text(here.include_words, here.exclude_words) if here else ""
        return say(line("Filter: ", words or "none", ". Change it with ", cmd("filter +word -word"), "."))
    if len(args) == 1 and args[0].lower() == "clear":
        await dest.require_change()
        await dest.ensure(services)
        await store.update_destination(dest.adapter, dest.address, include_words=[], exclude_words=[])
        return say("Filter cleared.", public=True)
    include, exclude = parse_filter_words(list(args))
    await dest.require_change()
    here = await dest.ensure(services)
    inc = [w for w in here.include_words if w not in exclude] + [w for w in include if w not in here.include_words]
    exc = [w for w in here.exclude_words if w not in include] + [w for w in exclude if w not in here.exclude_words]
    if len(inc) + len(exc) > MAX_FILTER_WORDS:
        raise PreferenceError(f"at most {MAX_FILTER_WORDS} filter words in all; /filter clear starts over")
    await store.update_destination(dest.adapter, dest.address, include_words=inc, exclude_words=exc)
    return say(line("Filter: ", filter_text(inc, exc)), public=True)
