"""Loopback server for the demo: one RSS feed per outlet and a CBOE-style VIX quote.

An item appears in its feed once the scenario clock passes its time, as a real feed
would publish it; the quote answers the latest price the scenario has reached.
Binds 127.0.0.1 on a free port only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

from aiohttp import web

from bot.demo.scenario import Scenario, feed_id, scenario_datetime

QUOTE_PATH = "/quotes/vix.json"


class DemoServer:
    """Serves `scenario` as of `minutes()` (scenario minutes since its start)."""

    def __init__(self, scenario: Scenario, *, day: datetime, run_id: str, minutes: Callable[[], float]) -> None:
        self.scenario = scenario
        self.day = day
        self.run_id = run_id  # in every guid: each demo run's items are new, even in a kept database
        self.minutes = minutes
        self.port = 0
        self._runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/feeds/{feed}.xml", self._feed)
        app.router.add_get(QUOTE_PATH, self._quote)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server  # aiohttp exposes the bound port only here
        sockets = getattr(server, "sockets", None)
        assert sockets, "the demo server did not bind"
        self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _feed(self, request: web.Request) -> web.Response:
        wanted = request.match_info["feed"]
        outlets = self.scenario.outlets()
        if wanted not in outlets:
            raise web.HTTPNotFound()
        now = self.minutes()
        items = []
        for i, step in enumerate(self.scenario.news):
            if feed_id(step.outlet) != wanted or self.scenario.offset_minutes(step.at) > now:
                continue
            when = format_datetime(scenario_datetime(self.day, step.at), usegmt=True)
            items.append(
                "<item>"
                f"<title>{escape(step.title)}</title>"
                f"<link>{escape(step.url)}</link>"
                f'<guid isPermaLink="false">readout-demo-{self.run_id}-{i}</guid>'
                f"<pubDate>{when}</pubDate>"
                f"<description>{escape(step.summary)}</description>"
                "</item>"
            )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>{escape(outlets[wanted])}</title><link>{self.url('/')}</link>"
            f"<description>Readout demo feed</description>{''.join(reversed(items))}</channel></rss>"
        )
        return web.Response(body=body.encode(), content_type="application/rss+xml")

    async def _quote(self, request: web.Request) -> web.Response:
        path = self.scenario.prices
        now = self.minutes()
        reached = [q for q in path.quotes if self.scenario.offset_minutes(q.at) <= now]
        if not reached:
            raise web.HTTPServiceUnavailable(text="market not open yet")
        quote = reached[-1]
        # A second within the minute that differs per run: a kept database (chat mode) must not
        # take a second run's quotes for ones it has already seen.
        at = scenario_datetime(self.day, quote.at) + timedelta(seconds=int(self.run_id, 16) % 60)
        doc = {
            "timestamp": at.isoformat(),
            "data": {"current_price": quote.last, "prev_day_close": path.previous_close},
        }
        return web.Response(text=json.dumps(doc), content_type="application/json")
