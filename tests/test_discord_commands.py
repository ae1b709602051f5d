"""The `/readout` slash commands with real discord.py objects.

Interactions are built from Discord payloads with the logged-in client's
connection state and dispatched through the real command tree (parameter
transformers, checks, error handler); replies go over discord.py's HTTP
client to the fake REST server, which records them. The tree's `_call` is
private discord.py API (as in discord.py's own tests/test_app_commands_invoke.py);
discord.py is pinned to ~=2.7.1.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import discord
import pytest

from bot.adapters.discord import DiscordAdapter
from bot.adapters.discord_commands import ReadoutCommands
from bot.clock import ManualClock
from bot.models import Alert, Severity, WatchItem
from bot.services import RuleSetHolder, Services
from bot.settings import Settings
from bot.sources.config import SourcesFile
from bot.storage.store import Store
from tests.support.command_cases import CASES, Case
from tests.support.fake_discord import APP_ID, TIMESTAMP, FakeDiscord

T0 = datetime(2025, 4, 2, 20, 0, tzinfo=UTC)
GUILD = 1_300_000_000_000_000_001
HERE = 1_300_000_000_000_000_010
OTHER = 1_300_000_000_000_000_020
USER = 1_300_000_000_000_000_099
TOKEN = "fake.discord.token"

ADMIN = discord.Permissions(view_channel=True, send_messages=True, manage_guild=True)
MEMBER = discord.Permissions(view_channel=True, send_messages=True)
BOT_OK = discord.Permissions(view_channel=True, send_messages=True, embed_links=True)

_ids = itertools.count(1_400_000_000_000_000_000)


# ---- a rule set with the loader's public surface ------------------------------


@dataclass
class StubRule:
    id: str
    description: str
    severity: Severity
    tags: tuple[str, ...] = ()
    enabled: bool = True
    watchlist: tuple[str, ...] = ()


@dataclass
class StubRuleSet:
    rules: list[StubRule] = field(default_factory=list)
    watchlists: dict[str, WatchItem] = field(default_factory=dict)
    sources: SourcesFile = field(default_factory=SourcesFile)

    def get(self, rule_id: str) -> StubRule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def tags(self) -> set[str]:
        return {t for r in self.rules for t in r.tags}

    def enabled_rules(self) -> list[StubRule]:
        return [r for r in self.rules if r.enabled]


RULESET = StubRuleSet(
    rules=[
        StubRule("tariff-announcement", "New US tariffs on China", Severity.warning, ("tariffs",)),
        StubRule("vix-spike", "VIX jumps", Severity.critical, ("volatility",)),
        StubRule(
            "readout-tone", "Readout tone shift", Severity.info, ("diplomacy",), enabled=False
        ),
    ],
    watchlists={
        "semis": WatchItem(
            name="semis", title="Semiconductors", why="Export controls", tickers=("NVDA", "AMD")
        ),
        "soy": WatchItem(
            name="soy", title="Agriculture", why="China buys US soybeans", tickers=("ADM", "BG")
        ),
    },
)


# ---- harness -------------------------------------------------------------------


@dataclass
class Reply:
    type: int
    ephemeral: bool
    content: str | None
    embeds: list[dict[str, Any]]
    followups: list[dict[str, Any]]
    data: dict[str, Any]


class Harness:
    def __init__(
        self, adapter: DiscordAdapter, fake: FakeDiscord, store: Store, clock: ManualClock
    ) -> None:
        self.adapter, self.fake, self.store, self.clock = adapter, fake, store, clock

    async def run(
        self,
        sub: str,
        options: dict[str, Any] | None = None,
        *,
        perms: discord.Permissions = ADMIN,
        app_perms: discord.Permissions = BOT_OK,
        channels: dict[int, dict[str, Any]] | None = None,
        focused: str | None = None,
    ) -> Reply:
        """Invoke `/readout <sub>` (or its autocomplete when `focused`) and return what was answered."""
        interaction_id = next(_ids)
        payload = interaction_payload(
            interaction_id,
            sub,
            options or {},
            perms=perms,
            app_perms=app_perms,
            channels=channels,
            focused=focused,
        )
        interaction = discord.Interaction(data=payload, state=self.adapter.client._connection)  # type: ignore[arg-type]
        await self.adapter.tree._call(interaction)
        replies = self.fake.replies(interaction_id)
        assert replies, f"/readout {sub} did not answer"
        first = replies[0]
        return Reply(
            type=first["type"],
            ephemeral=first["ephemeral"],
            content=first["content"],
            embeds=first["embeds"],
            followups=replies[1:],
            data=first["data"],
        )


def channel_data(
    channel_id: int, name: str, *, perms: discord.Permissions = ADMIN, type: int = 0
) -> dict[str, Any]:
    return {
        "id": str(channel_id),
        "name": name,
        "type": type,
        "permissions": str(perms.value),
        "parent_id": None,
    }


def interaction_payload(
    interaction_id: int,
    sub: str,
    options: dict[str, Any],
    *,
    perms: discord.Permissions,
    app_perms: discord.Permissions,
    channels: dict[int, dict[str, Any]] | None,
    focused: str | None,
) -> dict[str, Any]:
    opts = []
    for name, value in options.items():
        if isinstance(value, int) and value in (channels or {}):
            opt: dict[str, Any] = {"type": 7, "name": name, "value": str(value)}
        elif isinstance(value, int):
            opt = {"type": 4, "name": name, "value": value}
        else:
            opt = {"type": 3, "name": name, "value": value}
        if name == focused:
            opt["focused"] = True
        opts.append(opt)
    data: dict[str, Any] = {
        "id": str(APP_ID + 1),
        "name": "readout",
        "type": 1,
        "options": [{"type": 1, "name": sub, "options": opts}],
    }
    if channels:
        data["resolved"] = {"channels": {str(k): v for k, v in channels.items()}}
    return {
        "id": str(interaction_id),
        "application_id": str(APP_ID),
        "type": 4 if focused else 2,
        "token": f"tok{interaction_id}",
        "version": 1,
        "guild_id": str(GUILD),
        "channel_id": str(HERE),
        "channel": {
            "id": str(HERE),
            "type": 0,
            "guild_id": str(GUILD),
            "name": "general",
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
        },
        "member": {
            "user": {
                "id": str(USER),
                "username": "trader",
                "discriminator": "0",
                "avatar": None,
                "global_name": "Trader",
            },
            "roles": [],
            "joined_at": TIMESTAMP,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "permissions": str(perms.value),
        },
        "app_permissions": str(app_perms.value),
        "locale": "en-US",
        "guild_locale": "en-US",
        "attachment_size_limit": 8_388_608,
        "entitlements": [],
        "authorizing_integration_owners": {"0": str(GUILD)},
        "context": 0,
        "data": data,
    }


@pytest.fixture
async def h(tmp_path: Path, fake_discord: FakeDiscord) -> AsyncIterator[Harness]:
    settings = Settings(
        _env_file=None, discord_bot_token=TOKEN, discord_api_base=fake_discord.api_base
    )  # type: ignore[call-arg]
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'cmd.db'}")
    clock = ManualClock(T0)
    services = Services(
        settings=settings,
        store=store,
        clock=clock,
        rules=RuleSetHolder(RULESET),
        adapters=["discord"],
    )  # type: ignore[arg-type]
    adapter = DiscordAdapter(settings, connect_gateway=False)
    await adapter.start(services)
    try:
        yield Harness(adapter, fake_discord, store, clock)
    finally:
        await adapter.stop()
        await store.close()


async def _routing(store: Store) -> tuple[list[Any], list[Any], list[Any]]:
    return (
        await store.subscriptions("discord"),
        await store.destinations("discord"),
        await store.active_mutes(now=T0, adapter="discord"),
    )


# ---- the tree ------------------------------------------------------------------


def test_command_tree_shape() -> None:
    group = ReadoutCommands(SimpleNamespace(), send_alert=None)  # type: ignore[arg-type]
    tree = discord.app_commands.CommandTree(discord.Client(intents=discord.Intents.none()))
    tree.add_command(group)
    payload = group.to_dict(tree)
    assert payload["name"] == "readout"
    assert payload["dm_permission"] is False
    # Discord ignores default_member_permissions on subcommands: the handlers check instead.
    assert payload["default_member_permissions"] is None
    subs = {o["name"]: o for o in payload["options"]}
    assert set(subs) == {
        "subscribe",
        "unsubscribe",
        "subscriptions",
        "rules",
        "watchlist",
        "recent",
        "status",
        "mute",
        "unmute",
        "quiet",
        "filter",
        "why",
        "stats",
        "help",
        "test-alert",
        "try",
    }
    sub_opts = {o["name"]: o for o in subs["subscribe"]["options"]}
    assert sub_opts["channel"]["type"] == 7 and sub_opts["channel"]["channel_types"] == [0, 5]
    assert sub_opts["target"]["autocomplete"] is True and not sub_opts["target"]["required"]
    recent = subs["recent"]["options"][0]
    assert (recent["min_value"], recent["max_value"]) == (1, 20)
    mute = {o["name"]: o for o in subs["mute"]["options"]}
    assert mute["duration"]["required"] and mute["rule"]["autocomplete"]


# ---- subscribe / unsubscribe ---------------------------------------------------


async def test_subscribe_defaults_to_this_channel_and_warning(h: Harness) -> None:
    r = await h.run("subscribe")
    assert r.type == 4 and not r.ephemeral
    assert r.content == f"✅ Subscribed <#{HERE}> to warning and above."
    assert r.data["allowed_mentions"] == {"parse": []}
    subs, dests, _ = await _routing(h.store)
    assert [(s.address, s.selector, s.value) for s in subs] == [(str(HERE), "severity", "warning")]
    assert dests[0].chat_kind == f"guild:{GUILD}" and dests[0].title == "#general"


@pytest.mark.parametrize(
    ("target", "selector", "value"),
    [
        ("tariff-announcement", "rule", "tariff-announcement"),
        ("volatility", "tag", "volatility"),
        ("CRITICAL", "severity", "critical"),
    ],
)
async def test_subscribe_to_rule_tag_or_severity(
    h: Harness, target: str, selector: str, value: str
) -> None:
    r = await h.run("subscribe", {"target": target})
    assert not r.ephemeral
    subs, _, _ = await _routing(h.store)
    assert [(s.selector, s.value) for s in subs] == [(selector, value)]


async def test_members_without_manage_permissions_are_refused(h: Harness) -> None:
    for sub, options in [
        ("subscribe", {}),
        ("unsubscribe", {}),
        ("mute", {"duration": "1h"}),
        ("unmute", {}),
        ("quiet", {"window": "22:00-07:00"}),
        ("test-alert", {}),
    ]:
        r = await h.run(sub, options, perms=MEMBER)
        assert r.ephemeral, sub
        assert "needs the Manage Server or Manage Channels permission" in (r.content or ""), sub
    assert await _routing(h.store) == ([], [], [])
    assert h.fake.messages(HERE) == []


async def test_manage_channels_in_the_target_channel_is_enough(h: Harness) -> None:
    target = channel_data(
        OTHER, "alerts", perms=discord.Permissions(view_channel=True, manage_channels=True)
    )
    r = await h.run("subscribe", {"channel": OTHER}, perms=MEMBER, channels={OTHER: target})
    assert not r.ephemeral
    subs, _, _ = await _routing(h.store)
    assert [s.address for s in subs] == [str(OTHER)]


async def test_subscribe_other_channel_posts_a_notice_there(h: Harness) -> None:
    r = await h.run(
        "subscribe",
        {"channel": OTHER, "target": "vix-spike"},
        channels={OTHER: channel_data(OTHER, "alerts")},
    )
    assert r.content == f"✅ Subscribed <#{OTHER}> to rule `vix-spike`."
    [notice] = h.fake.messages(OTHER)
    assert "routed Readout alerts" in notice["content"]
    assert notice["request"]["allowed_mentions"] == {"parse": []}
    _, dests, _ = await _routing(h.store)
    assert [(d.address, d.title) for d in dests] == [(str(OTHER), "#alerts")]


@pytest.mark.parametrize("status", [403, 404])
async def test_channel_the_bot_cannot_post_in_changes_nothing(h: Harness, status: int) -> None:
    h.fake.fail(f"/channels/{OTHER}/messages", status)
    r = await h.run(
        "subscribe", {"channel": OTHER}, channels={OTHER: channel_data(OTHER, "locked")}
    )
    assert r.ephemeral
    assert (
        r.content
        == f"I can't post in <#{OTHER}>: give me View Channels, Send Messages and Embed Links there."
    )
    assert await _routing(h.store) == ([], [], [])


async def test_this_channel_without_embed_links_is_refused(h: Harness) -> None:
    r = await h.run(
        "subscribe", app_perms=discord.Permissions(view_channel=True, send_messages=True)
    )
    assert (
        r.ephemeral and r.content == "I can't post alerts here: I need Embed Links in this channel."
    )
    assert await _routing(h.store) == ([], [], [])


async def test_voice_channel_is_rejected_by_the_transformer(h: Harness) -> None:
    voice = channel_data(OTHER, "voice", type=2)
    r = await h.run("subscribe", {"channel": OTHER}, channels={OTHER: voice})
    assert r.ephemeral and r.content and r.content.startswith("I could not read")
    assert await _routing(h.store) == ([], [], [])


@pytest.mark.parametrize("target", ["no-such-rule", "x" * 80, "@everyone"])
async def test_unknown_target_is_explained(h: Harness, target: str) -> None:
    r = await h.run("subscribe", {"target": target})
    assert r.ephemeral
    assert r.content and "\n" not in r.content
    assert "unknown rule, tag or severity" in r.content or "too long" in r.content
    assert await _routing(h.store) == ([], [], [])


async def test_subscribing_twice_is_refused(h: Harness) -> None:
    await h.run("subscribe", {"target": "critical"})
    r = await h.run("subscribe", {"target": "critical"})
    assert r.ephemeral and r.content == f"Already subscribed to critical and above in <#{HERE}>."


async def test_unsubscribe_one_then_all(h: Harness) -> None:
    for target in ("critical", "tariffs", "vix-spike"):
        await h.run("subscribe", {"target": target})
    r = await h.run("unsubscribe", {"target": "tariffs"})
    assert not r.ephemeral and r.content == f"🔕 Unsubscribed <#{HERE}> from tag `tariffs`."
    subs, _, _ = await _routing(h.store)
    assert sorted(s.value for s in subs) == ["critical", "vix-spike"]
    r = await h.run("unsubscribe", {"target": "info"})
    assert r.ephemeral and r.content == (
        f"No subscription to `info` in <#{HERE}>; see `/readout subscriptions`."
    )
    r = await h.run("unsubscribe")
    assert "(2 subscriptions)" in (r.content or "")
    assert (await _routing(h.store))[0] == []
    r = await h.run("unsubscribe")
    assert r.ephemeral and r.content == f"No subscriptions in <#{HERE}> to stop."


async def test_target_autocomplete_offers_rules_tags_and_severities(h: Harness) -> None:
    r = await h.run("subscribe", {"target": "tar"}, focused="target")
    assert r.type == 8
    choices = {c["value"]: c["name"] for c in r.data["choices"]}
    assert choices == {
        "tariff-announcement": "rule: tariff-announcement — New US tariffs on China",
        "tariffs": "tag: tariffs",
    }
    r = await h.run("subscribe", {"target": ""}, focused="target")
    assert {"info", "warning", "critical", "vix-spike", "volatility"} <= {
        c["value"] for c in r.data["choices"]
    }


async def test_unsubscribe_autocomplete_offers_what_the_channel_has(h: Harness) -> None:
    await h.run("subscribe", {"target": "vix-spike"})
    r = await h.run("unsubscribe", {"target": ""}, focused="target")
    assert r.data["choices"] == [{"name": "rule `vix-spike`", "value": "vix-spike"}]


async def test_subscriptions_lists_this_servers_channels(h: Harness) -> None:
    await h.run("subscribe", {"target": "critical"})
    await h.run("subscribe", {"target": "tariffs"})
    await h.run("quiet", {"window": "22:00-07:00", "timezone": "Asia/Shanghai"})
    await h.store.ensure_destination("discord", "555", at=T0, chat_kind="guild:1")  # another server
    await h.store.subscribe("discord", "555", "severity", "info", at=T0)
    r = await h.run("subscriptions")
    assert r.ephemeral
    [embed] = r.embeds
    [f] = embed["fields"]
    assert f["name"] == "#general"
    assert f["value"] == (
        f"<#{HERE}>\n• critical and above\n• tag `tariffs`\n🌙 quiet 22:00–07:00 Asia/Shanghai"
    )


# ---- mute / unmute / quiet ---------------------------------------------------


async def test_mute_and_unmute(h: Harness) -> None:
    r = await h.run("mute", {"duration": "2h", "rule": "vix-spike"})
    until = T0 + timedelta(hours=2)
    assert not r.ephemeral
    assert (
        r.content
        == f"🔇 Muted rule `vix-spike` in <#{HERE}> until <t:{int(until.timestamp())}:f>. `/readout unmute` ends it."
    )
    [m] = (await _routing(h.store))[2]
    assert (m.address, m.rule_id, m.until) == (str(HERE), "vix-spike", until)
    r = await h.run("unmute")
    assert not r.ephemeral and (await _routing(h.store))[2] == []
    r = await h.run("unmute")
    assert r.ephemeral and r.content == f"Nothing is muted in <#{HERE}>."


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"duration": "soon"}, "duration must look like 30m, 2h, 1d or 1w"),
        ({"duration": "2y"}, "duration must look like 30m, 2h, 1d or 1w"),
        ({"duration": "400d"}, "duration can be at most 365d"),
        ({"duration": "1h", "rule": "nope"}, "unknown rule 'nope' (see /rules)"),
    ],
)
async def test_bad_mute_is_explained(h: Harness, options: dict[str, str], message: str) -> None:
    r = await h.run("mute", options)
    assert r.ephemeral and r.content == message
    assert (await _routing(h.store))[2] == []


async def test_quiet_hours_set_and_off(h: Harness) -> None:
    r = await h.run("quiet", {"window": "22:00-7:00", "timezone": "America/New_York"})
    # text is Markdown-escaped (America/New\_York shows as America/New_York)
    assert not r.ephemeral and "22:00–07:00 America/New_York" in (r.content or "").replace("\\", "")
    dest = await h.store.get_destination("discord", str(HERE))
    assert dest is not None and (dest.quiet_start, dest.quiet_end, dest.quiet_tz) == (
        "22:00",
        "07:00",
        "America/New_York",
    )
    r = await h.run("quiet", {"window": "off"})
    assert not r.ephemeral
    dest = await h.store.get_destination("discord", str(HERE))
    assert dest is not None and dest.quiet_start is None and dest.quiet_tz is None


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"window": "22:00-07:00", "timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"window": "late"}, "quiet hours must look like 22:00-07:00"),
        ({"window": "off"}, f"No quiet hours in <#{HERE}>."),
    ],
)
async def test_bad_quiet_is_explained(h: Harness, options: dict[str, str], fragment: str) -> None:
    r = await h.run("quiet", options)
    assert r.ephemeral and fragment in (r.content or "")
    assert await h.store.get_destination("discord", str(HERE)) is None


async def test_timezone_autocomplete(h: Harness) -> None:
    r = await h.run("quiet", {"window": "22:00-07:00", "timezone": "shang"}, focused="timezone")
    assert {"name": "Asia/Shanghai", "value": "Asia/Shanghai"} in r.data["choices"]


# ---- test-alert ------------------------------------------------------------------


async def test_test_alert_posts_through_send_alert(h: Harness) -> None:
    r = await h.run("test-alert")
    assert r.type == 5 and r.ephemeral  # deferred while posting
    [posted] = h.fake.messages(HERE)
    [embed] = posted["request"]["embeds"]
    assert embed["title"] == "Readout can post here: this is what alerts look like"
    assert embed["fields"][1]["name"] == "Watch: Semiconductors"
    assert posted["request"]["allowed_mentions"] == {"parse": []}
    [follow] = r.followups
    assert follow["content"].startswith("Sample alert posted.")


async def test_test_alert_reports_missing_access(h: Harness) -> None:
    h.fake.fail(f"/channels/{HERE}/messages", 403)
    r = await h.run("test-alert")
    [follow] = r.followups
    assert follow["content"].startswith("I can't post here")


# ---- read-only views -----------------------------------------------------------


async def test_rules_view(h: Harness) -> None:
    r = await h.run("rules", perms=MEMBER)
    assert r.ephemeral
    [embed] = r.embeds
    assert embed["title"] == "Readout rules: 2 enabled of 3"
    assert "`vix-spike` **critical** VIX jumps · volatility" in embed["description"]
    assert "*(disabled)*" in embed["description"]


async def test_watchlist_view_all_one_and_unknown(h: Harness) -> None:
    r = await h.run("watchlist", perms=MEMBER)
    assert r.ephemeral
    assert [f["name"] for f in r.embeds[0]["fields"]] == ["Semiconductors", "Agriculture"]
    r = await h.run("watchlist", {"sector": "semis"}, perms=MEMBER)
    assert r.embeds[0]["fields"] == [
        {"name": "Semiconductors", "value": "**NVDA, AMD**\nExport controls", "inline": False}
    ]
    r = await h.run("watchlist", {"sector": "oil"}, perms=MEMBER)
    assert r.ephemeral and r.content == "unknown sector 'oil'; sectors: semis, soy"
    r = await h.run("watchlist", {"sector": "agr"}, perms=MEMBER, focused="sector")
    assert r.data["choices"] == [{"name": "Agriculture (soy)", "value": "soy"}]


async def test_recent_view(h: Harness) -> None:
    async with h.store.transaction() as conn:
        for i in range(12):
            await h.store.insert_alert(
                conn,
                Alert(
                    id=f"{i:08x}" + "b" * 16,
                    rule_id="vix-spike",
                    rule_description="VIX jumps",
                    severity=Severity.critical if i == 11 else Severity.info,
                    kind="price",
                    event_id=f"e{i}",
                    key=f"k{i}",
                    title=f"VIX at {20 + i} <@123456789012345678>",
                    source="cboe",
                    event_time=T0,
                    created_at=T0 + timedelta(minutes=i),
                ),
            )
    r = await h.run("recent", {"n": 3}, perms=MEMBER)
    assert r.ephemeral
    [embed] = r.embeds
    assert embed["title"] == "Latest 3 alerts" and embed["color"] == 0xE74C3C
    lines = embed["description"].splitlines()
    assert len(lines) == 3 and "VIX at 31 <@\u200b123456789012345678>" in lines[0]
    r = await h.run("recent", perms=MEMBER)
    assert len(r.embeds[0]["description"].splitlines()) == 5


async def test_status_view(h: Harness) -> None:
    r = await h.run("status", perms=MEMBER)
    assert r.ephemeral
    [embed] = r.embeds
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Rules"] == "2 enabled of 3"
    assert fields["Queue"] == "0 pending, 0 held"
    assert fields["Adapters"] == "discord"


async def test_unexpected_failure_is_logged_and_answered(
    h: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken() -> None:
        raise RuntimeError("database is gone")

    monkeypatch.setattr(h.store, "all_source_states", broken)
    r = await h.run("status", perms=MEMBER)
    assert (
        r.ephemeral and r.content == "Something went wrong on Readout's side; it has been logged."
    )
    assert "discord: /readout status failed" in caplog.text
    assert TOKEN not in caplog.text


async def test_slash_command_over_the_gateway(tmp_path: Path, fake_discord: FakeDiscord) -> None:
    """End to end: INTERACTION_CREATE arrives on the (fake) gateway, the reply goes over REST."""
    settings = Settings(
        _env_file=None, discord_bot_token=TOKEN, discord_api_base=fake_discord.api_base
    )  # type: ignore[call-arg]
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}")
    services = Services(
        settings=settings, store=store, clock=ManualClock(T0), rules=RuleSetHolder(RULESET)
    )  # type: ignore[arg-type]
    adapter = DiscordAdapter(settings)
    await adapter.start(services)
    try:
        await fake_discord.wait_for_gateway()
        interaction_id = next(_ids)
        fake_discord.dispatch(
            "INTERACTION_CREATE",
            interaction_payload(
                interaction_id,
                "subscribe",
                {"target": "critical"},
                perms=ADMIN,
                app_perms=BOT_OK,
                channels=None,
                focused=None,
            ),
        )
        for _ in range(1000):  # the tree answers in a task of its own
            if fake_discord.replies(interaction_id):
                break
            await asyncio.sleep(0.01)
        [reply] = fake_discord.replies(interaction_id)
        assert reply["content"] == f"✅ Subscribed <#{HERE}> to critical and above."
        assert [(s.selector, s.value) for s in await store.subscriptions("discord")] == [
            ("severity", "critical")
        ]
    finally:
        await adapter.stop()
        await store.close()


async def test_command_flood_gets_one_refusal_then_silence(h: Harness) -> None:
    from bot.commands.limit import REFUSAL, CommandLimiter

    services = h.adapter.tree.get_command("readout").services  # type: ignore[union-attr]
    ticks = [0.0]
    services.command_limit = CommandLimiter(burst=2, period=60, clock=lambda: ticks[0])
    assert (await h.run("status", perms=MEMBER)).embeds
    # autocomplete while typing is not counted
    await h.run("subscribe", {"target": "tar"}, focused="target", perms=MEMBER)
    assert (await h.run("status", perms=MEMBER)).embeds
    refused = await h.run("status", perms=MEMBER)
    assert refused.ephemeral and refused.content == REFUSAL
    interaction_id = next(_ids)
    payload = interaction_payload(
        interaction_id, "subscribe", {"target": "critical"},
        perms=ADMIN, app_perms=BOT_OK, channels=None, focused=None,
    )
    await h.adapter.tree._call(
        discord.Interaction(data=payload, state=h.adapter.client._connection)  # type: ignore[arg-type]
    )
    assert h.fake.replies(interaction_id) == []  # silence, and nothing changed
    assert await h.store.subscriptions("discord") == []
    ticks[0] += 30
    assert "Subscribed" in ((await h.run("subscribe", {"target": "critical"})).content or "")


# ---- the shared case table (the same cases run against Telegram) ----------------------------

OPTION_NAMES = {
    "subscribe": ("target",),
    "unsubscribe": ("target",),
    "mute": ("duration", "rule"),
    "unmute": ("rule",),
    "quiet": ("window", "timezone"),
    "watchlist": ("sector",),
    "why": ("alert",),
    "recent": ("n",),
    "stats": ("rule",),
}


def options_for(case: Case) -> dict[str, Any]:
    """The case's arguments as this command's typed slash-command options."""
    if case.command == "filter":
        return {"words": " ".join(case.args)} if case.args else {}
    return dict(zip(OPTION_NAMES.get(case.command, ()), case.args, strict=False))


def neutral(content: str) -> str:
    """Discord's rendering back to the table's neutral text."""
    text = content.replace(f"<#{HERE}>", "this chat").replace("`/readout ", "`/")
    text = re.sub(
        r"<t:(\d+):f>",
        lambda m: datetime.fromtimestamp(int(m.group(1)), UTC).strftime("%Y-%m-%d %H:%M UTC"),
        text,
    )
    return text.replace("`", "").replace("\\", "")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_shared_command_cases(h: Harness, case: Case) -> None:
    address = str(HERE)
    if case.subscribed_before:
        await h.store.ensure_destination("discord", address, at=T0, chat_kind=f"guild:{GUILD}")
    for selector, value in case.subscribed_before:
        await h.store.subscribe("discord", address, selector, value, at=T0)  # type: ignore[arg-type]
    r = await h.run(case.command, options_for(case))
    assert case.expected in neutral(r.content or "")
    assert r.ephemeral is (case.outcome != "change")  # changes are announced; the rest is private
    after = {(s.selector, s.value) for s in await h.store.subscriptions("discord", address)}
    expected = case.subscribed_before if case.subscribed_after is None else case.subscribed_after
    assert after == set(expected)


# ---- /readout try --------------------------------------------------------------------------

# The Baltimore Post (Washington Post repost), 2018-09-15:
# https://thebaltimorepost.com/trump-has-decided-to-impose-additional-tariffs-on-200-billion-in-chinese-goods-in-dramatic-escalation-of-trade-battle/
TRY_HEADLINE = (
    "Trump has decided to impose additional tariffs on $200 billion in Chinese goods "
    "in dramatic escalation of trade battle"
)


async def test_try_reads_a_headline_for_any_member_and_changes_nothing(h: Harness) -> None:
    from bot.rules.loader import load_rules_dir

    services = h.adapter._services
    assert services is not None
    services.rules.replace(load_rules_dir(Path(__file__).parent / "fixtures/rules/good"), at=T0)
    r = await h.run("try", {"headline": TRY_HEADLINE}, perms=MEMBER)
    assert r.ephemeral  # a reading, not an announcement
    [embed] = r.embeds
    assert embed["title"] == "How Readout's rules read it"
    assert embed["description"] == f"*{TRY_HEADLINE}*"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Would fire"].splitlines() == [
        "`tariff-announcement` **warning** — matched tariffs, impose",
        "`readout-friction` **warning** — matched Chinese",
    ]
    assert fields["Near misses"].startswith("`readout-hope` — *tone: friction (-")
    assert fields["Tone"].startswith("**friction** (-") and "from escalation -" in fields["Tone"]
    assert fields["Watch-list"] == "chips, defensives"
    assert await _routing(h.store) == ([], [], [])  # nothing stored for this channel
    r = await h.run("try", {"headline": "x " * 81}, perms=MEMBER)
    assert r.ephemeral and r.content.startswith("too many arguments (at most 80)")
