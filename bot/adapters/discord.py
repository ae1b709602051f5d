"""Discord adapter: slash commands over the gateway, alerts as embeds over REST.

`start` logs in over REST (`GET /users/@me`, `GET /oauth2/applications/@me`),
syncs the `/readout` command tree (to `DISCORD_GUILD_ID` when set, which is
instant; globally otherwise) and connects the gateway in a background task
of the running loop. Sending needs only the login: an alert is one
`POST /channels/{id}/messages` with an embed and `AllowedMentions.none()`.

Send outcomes, for the outbox worker:

- `Sent(message_id)`
- `RetryLater`: 429 (with Discord's `retry_after` when discord.py gives up
  waiting, i.e. beyond `MAX_RATELIMIT_WAIT` seconds; shorter ones it sleeps
  through itself), 5xx, network errors, not logged in yet, and 400s (our
  payload, not the channel's fault: the worker's attempts cap ends those)
- `Gone`: 403 (no access / missing permissions) or 404 (channel deleted);
  the worker unroutes the channel.

The token is a SecretStr and is never logged. `discord_api_base` replaces
discord.py's `Route.BASE` (a class-wide setting), and then the gateway URL is
taken from that API's `GET /gateway/bot` (discord.py would otherwise dial
gateway.discord.gg directly), so tests run against a local fake end to end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import aiohttp
import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.adapters.base import Gone, RetryLater, SendResult, Sent
from bot.adapters.discord_commands import ReadoutCommands, ReadoutTree
from bot.adapters.discord_embeds import alert_embed, digest_embed
from bot.models import Alert
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

ADAPTER = "discord"
MAX_RATELIMIT_WAIT = 30.0  # seconds discord.py may sleep on a 429 itself (its minimum)
LOGIN_RETRY = (5.0, 300.0)  # seconds: first and longest wait between login attempts
INTENTS = discord.Intents(guilds=True)  # channels and our own permissions; no message content


class DiscordAdapter:
    """Readout in Discord: `/readout …` commands and alert embeds in channels."""

    name = ADAPTER

    def __init__(self, settings: Settings, *, connect_gateway: bool = True) -> None:
        if settings.discord_bot_token is None:
            raise ValueError("DISCORD_BOT_TOKEN is not set")
        self._settings = settings
        self._connect_gateway = connect_gateway
        self._client: discord.Client | None = None
        self._tree: ReadoutTree | None = None
        self._task: asyncio.Task[None] | None = None
        self._logged_in = False
        self._base_before: str | None = None
        self._gateway_before: yarl.URL | None = None
        self._services: Services | None = None
        self.retry_delays = LOGIN_RETRY  # seconds: first and longest wait before reconnecting

    @property
    def client(self) -> discord.Client:
        if self._client is None:
            raise RuntimeError("the Discord adapter is not started")
        return self._client

    @property
    def tree(self) -> ReadoutTree:
        if self._tree is None:
            raise RuntimeError("the Discord adapter is not started")
        return self._tree

    # ---- lifecycle ----------------------------------------------------------

    async def start(self, services: Services) -> None:
        """Log in, sync commands, connect the gateway in the background.

        A rejected token raises (a configuration error); an unreachable Discord
        is logged and retried in the background, and sends answer RetryLater
        until the login succeeds.
        """
        if self._settings.discord_api_base:
            self._base_before = Route.BASE
            Route.BASE = self._settings.discord_api_base.rstrip("/")
        self._services = services
        try:
            await self._login()
        except discord.LoginFailure:
            await self.stop()
            raise RuntimeError("Discord rejected DISCORD_BOT_TOKEN (401): check the bot token") from None
        except (TimeoutError, discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            log.warning("discord: login failed (%s); retrying in the background", _describe(exc))
        self._task = asyncio.get_running_loop().create_task(self._run(), name="discord-gateway")

    def _build(self) -> discord.Client:
        """A fresh client with the `/readout` tree attached (a failed login spoils a client)."""
        assert self._services is not None
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False  # Readout has no voice
        client = discord.Client(
            intents=INTENTS,
            allowed_mentions=discord.AllowedMentions.none(),
            max_ratelimit_timeout=MAX_RATELIMIT_WAIT,
        )
        tree = ReadoutTree(client)
        tree.add_command(ReadoutCommands(self._services, send_alert=self.send_alert))
        self._client, self._tree = client, tree
        return client

    async def _login(self) -> None:
        client = self._build()
        try:
            await client.login(self._settings.discord_bot_token.get_secret_value())  # type: ignore[union-attr]
        except BaseException:
            await client.close()
            raise
        self._logged_in = True
        log.info("discord: logged in as %s (application %s)", client.user, client.application_id)
        await self.sync_commands()

    async def sync_commands(self) -> None:
        """Register `/readout` with Discord: on DISCORD_GUILD_ID when set, else globally."""
        tree = self.tree
        guild_id = self._settings.discord_guild_id
        try:
            if guild_id:
                guild = discord.Object(id=guild_id)
                tree.copy_global_to(guild=guild)
                synced = await tree.sync(guild=guild)
                log.info("discord: synced %d command(s) to guild %s", len(synced), guild_id)
            else:
                synced = await tree.sync()
                log.info("discord: synced %d command(s) globally (may take up to an hour to show)", len(synced))
        except discord.Forbidden:
            log.warning(
                "discord: could not sync commands to guild %s: invite the bot with the "
                "applications.commands scope",
                guild_id,
            )
        except (TimeoutError, discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            log.warning("discord: command sync failed (%s); existing commands stay", _describe(exc))

    async def _run(self) -> None:
        """Background: finish logging in if needed, then keep the gateway connected."""
        delay, longest = self.retry_delays
        try:
            while not self._logged_in:
                await asyncio.sleep(delay)
                try:
                    await self._login()
                except discord.LoginFailure:
                    log.error("discord: DISCORD_BOT_TOKEN was rejected (401); the Discord adapter stops")
                    return
                except (TimeoutError, discord.HTTPException, aiohttp.ClientError, OSError) as exc:
                    delay = min(delay * 2, longest)
                    log.warning("discord: login failed (%s); next try in %.0fs", _describe(exc), delay)
            if self._connect_gateway:
                await self._keep_gateway()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("discord: the Discord adapter's background task stopped")

    async def _keep_gateway(self) -> None:
        """Stay connected: discord.py reconnects by itself, except when the first connect fails."""
        client = self.client
        delay, longest = self.retry_delays
        while not client.is_closed():
            try:
                if self._settings.discord_api_base:
                    await self._gateway_from_api()
                await client.connect(reconnect=True)
            except discord.PrivilegedIntentsRequired:
                log.error("discord: the gateway refused our intents; enable them in the developer portal")
                return
            except Exception as exc:
                if client.is_closed():
                    log.error("discord: the gateway closed the connection (%s); slash commands are off", _describe(exc))
                    return
                log.warning("discord: gateway connection failed (%s); retrying in %.0fs", _describe(exc), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, longest)

    async def _gateway_from_api(self) -> None:
        """With DISCORD_API_BASE set, ask that API where its gateway is (discord.py assumes Discord's)."""
        _, url, _ = await self.client.http.get_bot_gateway()
        if self._gateway_before is None:
            self._gateway_before = DiscordWebSocket.DEFAULT_GATEWAY
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)

    @property
    def listen_on_start(self) -> bool:
        return self._connect_gateway

    @listen_on_start.setter
    def listen_on_start(self, on: bool) -> None:
        self._connect_gateway = on

    async def set_listening(self, on: bool) -> None:
        """Hold the gateway (slash commands) or not; REST sending works either way.

        With several workers only the leader holds the gateway. Letting go means
        a fresh login without it, since discord.py closes REST and gateway together.
        """
        if on == self._connect_gateway:
            return
        self._connect_gateway = on
        if on:
            if self._task is None or self._task.done():
                self._task = asyncio.get_running_loop().create_task(self._run(), name="discord-gateway")
            return
        services = self._services
        await self.stop()
        self._connect_gateway = False
        if services is not None:
            await self.start(services)

    async def stop(self) -> None:
        client, task = self._client, self._task
        if client is not None:
            await client.close()
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._client, self._task, self._logged_in = None, None, False
        if self._base_before is not None:
            Route.BASE, self._base_before = self._base_before, None
        if self._gateway_before is not None:
            DiscordWebSocket.DEFAULT_GATEWAY, self._gateway_before = self._gateway_before, None

    # ---- sending ------------------------------------------------------------

    async def send_alert(self, address: str, alert: Alert) -> SendResult:
        return await self._post(address, [alert_embed(alert)])

    async def send_digest(self, address: str, alerts: Sequence[Alert]) -> SendResult:
        if not alerts:
            return Sent(None)
        return await self._post(address, [digest_embed(alerts)])

    async def _post(self, address: str, embeds: list[discord.Embed]) -> SendResult:
        if self._client is None or not self._logged_in:
            return RetryLater("discord: not logged in yet")
        try:
            channel_id = int(address)
        except ValueError:
            return Gone(f"discord: {address[:40]!r} is not a channel id")
        channel = self._client.get_partial_messageable(channel_id)
        try:
            message = await channel.send(embeds=embeds, allowed_mentions=discord.AllowedMentions.none())
        except discord.RateLimited as exc:
            return RetryLater("discord: rate limited (429)", after=exc.retry_after)
        except (discord.Forbidden, discord.NotFound) as exc:
            reason = f"discord: channel {channel_id} unreachable ({exc.status} {exc.code}: {exc.text[:200]})"
            log.warning("%s", reason)
            return Gone(reason)
        except discord.HTTPException as exc:
            after = _retry_after(exc) if exc.status == 429 else None
            if exc.status == 401:
                log.error("discord: the bot token stopped working (401)")
            return RetryLater(f"discord: HTTP {exc.status} ({exc.code}: {exc.text[:200]})", after=after)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return RetryLater(f"discord: network error ({_describe(exc)})")
        return Sent(str(message.id))


def _retry_after(exc: discord.HTTPException) -> float | None:
    """Seconds from a 429 that discord.py did not handle (e.g. a Cloudflare limit)."""
    try:
        return float(exc.response.headers.get("Retry-After", ""))
    except (TypeError, ValueError, AttributeError):
        return None


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
