"""Run the demo: a loopback server plays the scenario, a real Readout polls it.

The bot is the same one `run` starts — HTTP fetch, feed parsing, rules, dedup and cooldown,
outbox, adapters — with its sources pointed at 127.0.0.1. Instead of the scheduler, the demo
moves the scenario clock from one scenario time to the next, polls every source and
delivers, then waits (scenario minutes ÷ `--speed`) before the next: every headline and
quote is seen in order at any speed, so a fast test run shows what a person sees. Without a chat token
the state lives in a temporary SQLite file that is removed at the end; with one, the
configured database is used so that subscribed chats get the demo's alerts too.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

import yaml

from bot.adapters.base import Adapter
from bot.adapters.console import ConsoleAdapter
from bot.demo.scenario import Scenario, feed_id, load_scenario
from bot.demo.server import QUOTE_PATH, DemoServer
from bot.rules.loader import load_rules_dir
from bot.settings import Settings
from bot.summary import plural

log = logging.getLogger(__name__)

DEFAULT_SPEED = 12.0  # scenario minutes per real second: the 7-hour day in 35 s


def demo_sources(scenario: Scenario, server: DemoServer, run_id: str) -> dict[str, object]:
    """`sources.yaml` for the demo: one feed per outlet, the VIX quote; nothing else."""
    return {
        "feeds": [
            {"id": fid, "name": name, "url": server.url(f"/feeds/{fid}.xml"), "interval": 5, "tags": ["demo", "media"]}
            for fid, name in scenario.outlets().items()
        ],
        "prices": [
            {
                "symbol": scenario.prices.symbol,
                "provider": "cboe",
                "id": "demo-vix",
                "url": server.url(QUOTE_PATH),
                "interval": 5,
                "tags": ["volatility"],
            }
        ],
    }


async def run_demo(
    settings: Settings,
    *,
    speed: float = DEFAULT_SPEED,
    out: TextIO | None = None,
    adapters: Sequence[Adapter] | None = None,
) -> int:
    """Play the scenario once through a real Readout; 0 when it raised alerts."""
    from bot.app import Readout, build_adapters

    stream = out or sys.stdout
    scenario = load_scenario()
    run_id = secrets.token_hex(4)
    day = scenario_day(datetime.now(UTC))
    started = time.monotonic()
    now = [0.0]  # scenario minutes since the start, moved by the loop below
    server = DemoServer(scenario, day=day, run_id=run_id, minutes=lambda: now[0])
    await server.start()
    with tempfile.TemporaryDirectory(prefix="readout-demo-") as tmp:
        rules = Path(tmp) / "rules"
        rules.mkdir()
        (rules / "sources.yaml").write_text(yaml.safe_dump(demo_sources(scenario, server, run_id)), encoding="utf-8")
        has_chat = settings.telegram_bot_token is not None or settings.discord_bot_token is not None
        overrides: dict[str, object] = {
            "rules_dir": rules,
            "backlog_hours": 72.0,  # the bot's clock is the scenario's (ScenarioClock): kept as a margin
            "console": True,
        }
        if not has_chat:
            overrides["database_url"] = f"sqlite+aiosqlite:///{Path(tmp) / 'demo.db'}"
        demo_settings = settings.model_copy(update=overrides)
        # The user's rules (or the bundled ones) over the demo's sources.yaml.
        ruleset = load_rules_dir(rules, defaults=settings.rules_dir if settings.rules_dir.is_dir() else settings.defaults_dir())
        console = ConsoleAdapter(stream)
        chosen = list(adapters) if adapters is not None else [
            console, *(a for a in build_adapters(demo_settings) if a.name != "console")
        ]
        try:
            bot = await Readout.open(
                demo_settings, ruleset=ruleset, adapters=chosen, claim_sources=False, clock=ScenarioClock(day, now)
            )
        except BaseException:
            await server.stop()
            raise
        stream.write(
            f"Readout demo: {scenario.title}, {scenario.start:%H:%M}–{scenario.end:%H:%M} UTC, "
            f"{plural(len(scenario.news), 'real headline')} from {plural(len(scenario.outlets()), 'outlet')} "
            f"and a VIX spike, served from {server.url('')} at {speed:g} scenario minutes a second.\n"
            f"Each line below is one alert: time, severity, headline — outlet · rule · tone · tickers to watch.\n"
        )
        stream.flush()
        alerts = 0
        try:
            await bot.start(scheduler=False)
            for at in _moments(scenario):
                await asyncio.sleep((at - now[0]) / speed)
                now[0] = at
                alerts += len(await bot.poll_once())
                await bot.drain_once()
        finally:
            await bot.stop()
            await server.stop()
    where = "the temporary database is gone" if not has_chat else f"state is in {_safe(settings.database_url)}"
    stream.write(
        f"Demo over: {plural(alerts, 'alert')} in {time.monotonic() - started:.0f}s; {where}. "
        "Next: `python -m bot run` polls the real sources (README: Quick start).\n"
    )
    stream.flush()
    return 0 if alerts else 1


def scenario_day(now: datetime) -> datetime:
    """Midnight UTC of the last NYSE trading day before `now`: the scenario plays on it. Price
    rules act only on fresh quotes inside the US session (`bot.market_calendar`), so the day's
    VIX spike must fall on a trading day, as it would live."""
    from bot.market_calendar import trading_day

    day = now.date() - timedelta(days=1)
    while not trading_day(day):
        day -= timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


class ScenarioClock:
    """The bot's clock during the demo: the scenario's time on its day, as the server publishes."""

    def __init__(self, day: datetime, minutes: list[float]) -> None:
        self.day, self.minutes = day, minutes

    def now(self) -> datetime:
        return self.day + timedelta(minutes=self.minutes[0])


def _moments(scenario: Scenario) -> list[float]:
    """Every scenario time something is published, in order, and the end of the day."""
    times = {scenario.offset_minutes(s.at) for s in scenario.news}
    times |= {scenario.offset_minutes(q.at) for q in scenario.prices.quotes}
    return sorted(t for t in times | {scenario.minutes} if 0 <= t <= scenario.minutes)


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


__all__ = ["DEFAULT_SPEED", "feed_id", "run_demo"]
