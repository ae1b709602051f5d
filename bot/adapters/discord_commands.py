"""The `/readout …` slash commands: routing, mutes, quiet hours and read-only views.

All commands live in one guild-only group, `/readout`. Discord applies
`default_member_permissions` to top-level commands only (it is ignored on
subcommands), so the group stays visible to everyone for the read-only views
and each command that changes routing checks the caller in its handler:
Manage Server or Manage Channels (in the target channel), else an ephemeral
refusal. Server admins can still hide the whole group per role under
Server Settings → Integrations.

A channel is a destination with adapter "discord", address "<channel id>"
and `chat_kind` "guild:<guild id>" (so `/readout subscriptions` can list the
channels of one server without the gateway cache). The commands themselves —
parsing, checks, wording — are the platform-neutral ones of `bot.commands`
(shared with Telegram); this module declares their Discord options, builds the
destination (permission checks, the bot's own posting rights) and renders
replies: changes are answered publicly, everything else (bad input, refusals,
views) only to the caller. `/readout test-alert` is Discord's own.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import zoneinfo
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot import commands
from bot.adapters.base import Gone, RetryLater, SendResult, Sent
from bot.adapters.discord_embeds import line_markdown, reply_message, truncate
from bot.commands import ChatDestination, PreferenceError, Refusal
from bot.commands.limit import REFUSAL, Verdict
from bot.commands.reply import Line
from bot.commands.routing import describe
from bot.commands.tryout import MAX_CHARS as MAX_TRY_CHARS
from bot.commands.views import RECENT_DEFAULT, RECENT_MAX
from bot.models import Alert, Explanation, Severity, Tone, stable_id
from bot.storage.store import Selector

if TYPE_CHECKING:
    from bot.rules.loader import RuleSet
    from bot.services import Services

log = logging.getLogger(__name__)

ADAPTER = "discord"
ROUTING_PERMISSIONS = "Manage Server or Manage Channels"
NOTICE_TIMEOUT = 2.0  # seconds to post the "alerts will appear here" notice (interactions expire in 3)
MAX_CHOICES = 25
NO_MENTIONS = discord.AllowedMentions.none()

SendAlert = Callable[[str, Alert], Awaitable[SendResult]]


def may_route(perms: discord.Permissions) -> bool:
    """Whether these permissions allow changing what a channel receives."""
    return perms.administrator or perms.manage_guild or perms.manage_channels


def missing_post_permissions(perms: discord.Permissions, *, thread: bool = False) -> list[str]:
    """The permissions the bot lacks to post alert embeds, by their Discord names."""
    needed = [
        ("view_channel", "View Channels"),
        ("send_messages_in_threads" if thread else "send_messages", "Send Messages"),
        ("embed_links", "Embed Links"),
    ]
    return [label for attr, label in needed if not getattr(perms, attr)]




def sample_alert(now: datetime, ruleset: RuleSet | None, *, channel_id: int) -> Alert:
    """What `/readout test-alert` posts: a harmless alert in the real format."""
    watch = next(iter(ruleset.watchlists.values()), None) if ruleset is not None else None
    return Alert(
        id=stable_id("discord-test-alert", str(channel_id), now.isoformat()),
        rule_id="test-alert",
        rule_description="Readout test alert",
        severity=Severity.info,
        kind="news",
        event_id=stable_id("discord-test-event", now.isoformat()),
        key="test-alert",
        title="Readout can post here: this is what alerts look like",
        source="readout",
        event_time=now,
        created_at=now,
        tone=Tone.neutral,
        tone_score=0.0,
        watchlist=(watch,) if watch is not None else (),
        explanation=Explanation(matched_terms=("test",)),
        message="Colours: blue info, orange warning, red critical. Nothing to act on.",
    )


@functools.lru_cache(maxsize=1)
def _time_zones() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


class PostableChannel(app_commands.Transformer):
    """A text or announcement channel picked in the command UI (no gateway cache needed)."""

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.channel

    @property
    def channel_types(self) -> list[discord.ChannelType]:
        return [discord.ChannelType.text, discord.ChannelType.news]

    async def transform(self, interaction: discord.Interaction, value: Any, /) -> app_commands.AppCommandChannel:
        if not isinstance(value, app_commands.AppCommandChannel) or value.type not in self.channel_types:
            raise app_commands.TransformerError(value, self.type, self)
        return value


ChannelArg = app_commands.Transform[app_commands.AppCommandChannel, PostableChannel]


class CommandRateLimited(app_commands.CheckFailure):
    """The user is over the per-user command limit: told once (`silent` False), then not at all."""

    def __init__(self, *, silent: bool) -> None:
        super().__init__(REFUSAL)
        self.silent = silent


class ReadoutTree(app_commands.CommandTree[discord.Client]):
    """The command tree: every failed command gets one ephemeral line; surprises are logged."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError, /) -> None:
        original = getattr(error, "original", None)
        if isinstance(error, CommandRateLimited):
            if error.silent:
                return
            text = str(error)
        elif isinstance(original, Refusal | PreferenceError):
            text = str(original)
        elif isinstance(error, app_commands.TransformerError):
            text = f"I could not read {str(error.value)[:40]!r} as a {error.type.name}."
        elif isinstance(error, app_commands.CheckFailure):
            text = "Readout commands work in a server channel."
        elif isinstance(error, app_commands.CommandNotFound | app_commands.CommandSignatureMismatch):
            text = "This command is out of date; Readout re-syncs its commands when it starts."
        else:
            name = interaction.command.qualified_name if interaction.command else "?"
            log.error("discord: /%s failed", name, exc_info=error)
            text = "Something went wrong on Readout's side; it has been logged."
        try:
            await _answer(interaction, text)
        except discord.HTTPException:
            log.warning("discord: could not tell the user a command failed", exc_info=True)


class ReadoutCommands(app_commands.Group):
    """`/readout …`: route Readout alerts into this server's channels and look around.

    Each subcommand declares its typed options and runs the platform-neutral
    command of the same name (`bot.commands`) with them as arguments.
    """

    def __init__(self, services: Services, *, send_alert: SendAlert) -> None:
        super().__init__(
            name="readout",
            description="Readout: US–China trade-war alerts in this server",
            guild_only=True,
        )
        self.services = services
        self._send_alert = send_alert

    @property
    def ruleset(self) -> RuleSet:
        return self.services.rules.current

    def now(self) -> datetime:
        return self.services.clock.now()

    # ---- shared steps -------------------------------------------------------

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """Server channels only; then the per-user command limit (autocomplete is not counted)."""
        if interaction.guild_id is None or interaction.channel_id is None:
            return False
        if interaction.type is not discord.InteractionType.application_command:
            return True
        verdict = self.services.command_limit.check("discord", interaction.user.id)
        if verdict is Verdict.ALLOW:
            return True
        if verdict is Verdict.REFUSE:
            log.info("discord: user %s is over the command limit; refused", interaction.user.id)
        raise CommandRateLimited(silent=verdict is Verdict.SILENT)

    async def run(
        self,
        interaction: discord.Interaction,
        name: str,
        args: Sequence[str | None],
        channel: app_commands.AppCommandChannel | None = None,
    ) -> None:
        """Run command `name` for this channel (or `channel`) and answer: changes publicly,
        everything else only to the caller."""
        destination = self._destination(interaction, channel)
        given = [a.strip() for a in args if a is not None and a.strip()]
        answer = await commands.run(name, self.services, destination, given)
        content, embed = reply_message(answer)
        await _answer(interaction, content, embed=embed, ephemeral=answer.refusal or not answer.public)

    def _destination(
        self, interaction: discord.Interaction, channel: app_commands.AppCommandChannel | None
    ) -> ChatDestination:
        perms = channel.permissions if channel is not None else interaction.permissions
        name = channel.name if channel is not None else getattr(interaction.channel, "name", None)
        where = f" in <#{channel.id}>" if channel is not None else ""

        async def allowed() -> bool:
            return may_route(perms)

        async def check_route(what: Line) -> None:
            await self._check_bot_can_post(interaction, channel, line_markdown(what))

        return ChatDestination(
            adapter=ADAPTER,
            address=str(channel.id if channel is not None else interaction.channel_id),
            chat_kind=f"guild:{interaction.guild_id}",
            title=f"#{name}" if name else None,
            scope=f"guild:{interaction.guild_id}",
            may_change=allowed,
            refusal=f"Changing Readout's routing needs the {ROUTING_PERMISSIONS} permission{where}.",
            check_route=check_route,
            commands=COMMAND_NAMES,
            user_id=str(interaction.user.id),
        )

    def _require_routing(self, interaction: discord.Interaction) -> None:
        if not may_route(interaction.permissions):
            raise Refusal(f"Changing Readout's routing needs the {ROUTING_PERMISSIONS} permission.")

    async def _check_bot_can_post(
        self, interaction: discord.Interaction, channel: app_commands.AppCommandChannel | None, target: str
    ) -> None:
        """Refuse unless the bot can post embeds in the channel; another channel gets a notice."""
        if channel is None or channel.id == interaction.channel_id:
            thread = isinstance(interaction.channel, discord.Thread)
            missing = missing_post_permissions(interaction.app_permissions, thread=thread)
            if missing:
                raise Refusal(f"I can't post alerts here: I need {', '.join(missing)} in this channel.")
            return
        perms = _cached_bot_permissions(interaction, channel.id)
        if perms is not None:
            missing = missing_post_permissions(perms)
            if missing:
                raise Refusal(f"I can't post alerts in <#{channel.id}>: I need {', '.join(missing)} there.")
        notice = (
            f"📡 {interaction.user.mention} routed Readout alerts ({target}) to this channel. "
            "`/readout unsubscribe` stops them."
        )
        messageable = interaction.client.get_partial_messageable(channel.id, guild_id=interaction.guild_id)
        try:
            await asyncio.wait_for(messageable.send(notice, allowed_mentions=NO_MENTIONS), NOTICE_TIMEOUT)
        except (discord.Forbidden, discord.NotFound):
            raise Refusal(
                f"I can't post in <#{channel.id}>: give me View Channels, Send Messages and Embed Links there."
            ) from None
        except (TimeoutError, discord.HTTPException, discord.RateLimited, OSError):
            raise Refusal(
                f"I couldn't check <#{channel.id}> with Discord just now; nothing changed, try again."
            ) from None

    # ---- routing ------------------------------------------------------------

    @app_commands.command(name="subscribe", description="Route Readout alerts into a channel")
    @app_commands.describe(
        channel="Where alerts go (default: this channel)",
        target="A rule id, a tag, or a severity: info, warning, critical (default: warning and above)",
    )
    async def subscribe(
        self, interaction: discord.Interaction, channel: ChannelArg | None = None, target: str | None = None
    ) -> None:
        """Route alerts matching a rule, tag or severity into a channel."""
        await self.run(interaction, "subscribe", [target], channel)

    @app_commands.command(name="unsubscribe", description="Stop routing alerts into a channel")
    @app_commands.describe(
        channel="Which channel (default: this channel)",
        target="The rule id, tag or severity to remove (default: everything)",
    )
    async def unsubscribe(
        self, interaction: discord.Interaction, channel: ChannelArg | None = None, target: str | None = None
    ) -> None:
        """Remove one subscription from a channel, or all of them."""
        await self.run(interaction, "unsubscribe", [target], channel)

    @subscribe.autocomplete("target")
    async def _subscribe_target(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return target_choices(self.ruleset, current)

    @unsubscribe.autocomplete("target")
    async def _unsubscribe_target(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        channel = getattr(interaction.namespace, "channel", None)
        address = str(getattr(channel, "id", None) or interaction.channel_id)
        subs = await self.services.store.subscriptions(ADAPTER, address)
        low = current.lower()
        return [
            app_commands.Choice(name=truncate(line_markdown(describe(s.selector, s.value)), 100), value=s.value)
            for s in subs
            if low in s.value.lower()
        ][:MAX_CHOICES]

    @app_commands.command(name="subscriptions", description="What each channel of this server receives")
    async def subscriptions(self, interaction: discord.Interaction) -> None:
        """List this server's routed channels with their subscriptions, mutes and quiet hours."""
        await self.run(interaction, "subscriptions", [])

    @app_commands.command(name="filter", description="Only alerts with +words, never alerts with -words")
    @app_commands.describe(words="Like +china -soybeans, or clear (default: show the filter)")
    async def filter(self, interaction: discord.Interaction, words: str | None = None) -> None:
        """Set this channel's word filter."""
        await self.run(interaction, "filter", (words or "").split())

    # ---- mutes and quiet hours (this channel) -------------------------------

    @app_commands.command(name="mute", description="Pause alerts in this channel for a while")
    @app_commands.describe(duration="How long: 30m, 2h, 1d, 1w", rule="Only this rule (default: all alerts)")
    async def mute(self, interaction: discord.Interaction, duration: str, rule: str | None = None) -> None:
        """Mute all alerts, or one rule, in this channel for a duration."""
        await self.run(interaction, "mute", [duration, rule])

    @mute.autocomplete("rule")
    async def _mute_rule(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return rule_choices(self.ruleset, current)

    @app_commands.command(name="unmute", description="Lift the mutes in this channel")
    @app_commands.describe(rule="Only this rule's mute (default: every mute)")
    async def unmute(self, interaction: discord.Interaction, rule: str | None = None) -> None:
        """Clear this channel's mutes (all, or one rule's)."""
        await self.run(interaction, "unmute", [rule])

    @app_commands.command(name="quiet", description="Hold non-critical alerts in this channel during set hours")
    @app_commands.describe(
        window="Like 22:00-07:00, or off",
        timezone="An IANA time zone such as America/New_York (default UTC)",
    )
    async def quiet(self, interaction: discord.Interaction, window: str, timezone: str | None = None) -> None:
        """Set this channel's quiet hours (held alerts arrive as one digest), or `off`."""
        await self.run(interaction, "quiet", [window, timezone])

    @quiet.autocomplete("timezone")
    async def _quiet_timezone(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        low = current.lower()
        return [app_commands.Choice(name=z, value=z) for z in _time_zones() if low in z.lower()][:MAX_CHOICES]

    @app_commands.command(name="test-alert", description="Post a sample alert here to check permissions and format")
    async def test_alert(self, interaction: discord.Interaction) -> None:
        """Send a sample alert to this channel through the normal send path (Discord only)."""
        self._require_routing(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        alert = sample_alert(self.now(), self.ruleset, channel_id=interaction.channel_id or 0)
        result = await self._send_alert(str(interaction.channel_id), alert)
        if isinstance(result, Sent):
            text = "Sample alert posted. Real alerts arrive here once the channel is subscribed."
        elif isinstance(result, Gone):
            text = "I can't post here: I need View Channels, Send Messages and Embed Links in this channel."
        else:
            assert isinstance(result, RetryLater)
            text = f"Discord did not take the message just now ({result.reason}); try again shortly."
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    # ---- read-only views (answers only concern the caller: ephemeral) --------

    @app_commands.command(name="why", description="Why an alert fired")
    @app_commands.describe(alert="The #handle under the alert, e.g. 3f9a1c2e")
    async def why(self, interaction: discord.Interaction, alert: str) -> None:
        """Explain an alert: rule, words or price move, tone terms."""
        await self.run(interaction, "why", [alert])

    @app_commands.command(name="rules", description="The alert rules Readout runs")
    async def rules(self, interaction: discord.Interaction) -> None:
        """List the rules: id, severity, description, tags."""
        await self.run(interaction, "rules", [])

    @app_commands.command(name="watchlist", description="Watch-list sectors: tickers and why they matter")
    @app_commands.describe(sector="One sector (default: all)")
    async def watchlist(self, interaction: discord.Interaction, sector: str | None = None) -> None:
        """Show the watch-list, or one sector of it."""
        await self.run(interaction, "watchlist", [sector])

    @watchlist.autocomplete("sector")
    async def _watchlist_sector(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        low = current.lower()
        return [
            app_commands.Choice(name=truncate(f"{w.title} ({name})", 100), value=name)
            for name, w in self.ruleset.watchlists.items()
            if low in name.lower() or low in w.title.lower()
        ][:MAX_CHOICES]

    @app_commands.command(name="recent", description="The latest alerts")
    @app_commands.describe(n=f"How many (1–{RECENT_MAX}, default {RECENT_DEFAULT})")
    async def recent(
        self, interaction: discord.Interaction, n: app_commands.Range[int, 1, RECENT_MAX] = RECENT_DEFAULT
    ) -> None:
        """Show the last n alerts, newest first."""
        await self.run(interaction, "recent", [str(n)])

    @app_commands.command(name="try", description="How the rules read a headline: what fires, near misses, tone")
    @app_commands.describe(headline="Paste a headline (nothing is sent or stored)")
    async def try_(
        self, interaction: discord.Interaction, headline: app_commands.Range[str, 1, MAX_TRY_CHARS]
    ) -> None:
        """Show how the news rules read a pasted headline."""
        await self.run(interaction, "try", headline.split())

    @app_commands.command(name="status", description="Sources, rules, delivery queue")
    async def status(self, interaction: discord.Interaction) -> None:
        """Show source health, rules loaded, queue depth and unreachable channels."""
        await self.run(interaction, "status", [])

    @app_commands.command(name="stats", description="What the market did after each rule's alerts")
    @app_commands.describe(rule="One rule id (default: one line per rule)")
    async def stats(self, interaction: discord.Interaction, rule: str | None = None) -> None:
        """Per-rule track record: live outcomes beside the backtest's."""
        await self.run(interaction, "stats", [rule])

    @app_commands.command(name="help", description="Every Readout command, one line each")
    async def help(self, interaction: discord.Interaction) -> None:
        """List the commands."""
        await self.run(interaction, "help", [])


COMMAND_NAMES = frozenset(
    {"subscribe", "unsubscribe", "subscriptions", "filter", "mute", "unmute", "quiet", "why", "rules", "watchlist", "recent", "status", "help"}
)


# ---- helpers ---------------------------------------------------------------


async def _answer(
    interaction: discord.Interaction,
    text: str | None = None,
    *,
    embed: discord.Embed | None = None,
    ephemeral: bool = True,
) -> None:
    """Reply (or follow up, once answered); never pings."""
    kwargs: dict[str, Any] = {"ephemeral": ephemeral, "allowed_mentions": NO_MENTIONS}
    if embed is not None:
        kwargs["embed"] = embed
    if interaction.response.is_done():
        await interaction.followup.send(text or discord.utils.MISSING, **kwargs)
    else:
        await interaction.response.send_message(text, **kwargs)


def _cached_bot_permissions(interaction: discord.Interaction, channel_id: int) -> discord.Permissions | None:
    """The bot's permissions in a channel when the gateway cache knows it; else None."""
    guild = interaction.guild
    if guild is None or guild.me is None or guild.get_role(guild.id) is None:
        return None
    channel = guild.get_channel(channel_id)
    return None if channel is None else channel.permissions_for(guild.me)




def target_choices(ruleset: RuleSet, current: str) -> list[app_commands.Choice[str]]:
    """Autocomplete for `target`: severities, rule ids, tags containing what was typed."""
    low = current.lower()
    options: list[tuple[Selector, str, str]] = [
        ("severity", s.value, f"severity: {s.value} and above") for s in Severity
    ]
    options += [("rule", r.id, f"rule: {r.id} — {r.description}") for r in ruleset.rules]
    options += [("tag", t, f"tag: {t}") for t in sorted(ruleset.tags())]
    return [
        app_commands.Choice(name=truncate(label, 100), value=value[:100])
        for _, value, label in options
        if low in value.lower() or low in label.lower()
    ][:MAX_CHOICES]


def rule_choices(ruleset: RuleSet, current: str) -> list[app_commands.Choice[str]]:
    low = current.lower()
    return [
        app_commands.Choice(name=truncate(f"{r.id} — {r.description}", 100), value=r.id[:100])
        for r in ruleset.rules
        if low in r.id.lower() or low in r.description.lower()
    ][:MAX_CHOICES]
