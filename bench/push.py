"""Push latency: an item published through a local WebSub hub → the alert handed to the adapter.

    python bench/push.py [--pushes 200] [--poll-items 20] [--interval 5]

One process: the local hub (tests/support/websub_hub.py, its own thread) and the feed
server (its own thread) beside a running Readout (SQLite, scheduler on, WebSub on, a
recording adapter). The bot discovers the hub on its first poll, subscribes, the hub
verifies; then each of `--pushes` new headlines is published through the hub (signed
fat ping: the newest 20 items), and its latency runs from the moment `publish` is called
to the moment the adapter is handed the alert (new message or story edit).

Baseline, same run: `--poll-items` headlines added to a second feed without a hub,
polled every `--interval` seconds (5 s is the smallest sources.yaml allows; the shipped
sources poll every 120-600 s), same clock, same hand-off.
Goal: push p99 ≤ 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import _common

from bot.adapters.base import EditResult, MessageView, SendResult, Sent
from bot.app import Readout
from bot.models import Alert
from bot.settings import Settings
from tests.support.feed_server import FeedServer
from tests.support.websub_hub import WebSubHub



class StopwatchAdapter:
    """Notes when each alert is first handed over: as a new message, in a story's view, or an edit."""

    name = "console"
    takes_commands = False
    listen_on_start = False

    def __init__(self) -> None:
        self.handed: dict[str, float] = {}

    def _note(self, alerts: Sequence[Alert]) -> None:
        now = time.perf_counter()
        for alert in alerts:
            self.handed.setdefault(alert.title, now)

    async def start(self, services: object) -> None: ...

    async def stop(self) -> None: ...

    async def set_listening(self, on: bool) -> None: ...

    async def send_alert(self, address: str, alert: Alert) -> SendResult:
        self._note([alert])
        return Sent(message_id=str(len(self.handed)))

    async def send_view(self, address: str, view: MessageView) -> SendResult:
        self._note([view.lead, *view.more])
        return Sent(message_id=str(len(self.handed)))

    async def edit_view(self, address: str, message_id: str, view: MessageView) -> EditResult:
        self._note([view.lead, *view.more])
        return Sent(message_id=message_id)

    async def send_digest(self, address: str, alerts: Sequence[Alert]) -> SendResult:
        self._note(alerts)
        return Sent(message_id="digest")


def with_hub(body: bytes, hub: str, topic: str) -> bytes:
    """`_common.rss` with the channel's atom:link rel=hub / rel=self (WebSub discovery)."""
    links = f'<atom:link rel="hub" href="{hub}"/><atom:link rel="self" href="{topic}"/>'
    body = body.replace(b'<rss version="2.0">', b'<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">')
    return body.replace(b"<description>b</description>", b"<description>b</description>" + links.encode())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_for(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        await asyncio.sleep(0.01)
    return False


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pushes", type=int, default=200)
    ap.add_argument("--poll-items", type=int, default=20)
    ap.add_argument("--interval", type=int, default=5)
    args = ap.parse_args()
    print(f"machine: {_common.machine()}")
    rng = random.Random(3)
    titles = [f"{h} tariff {i}" for i, h in enumerate(_common.headlines(args.pushes + args.poll_items, seed=5))]
    pushed_titles, polled_titles = titles[: args.pushes], titles[args.pushes :]
    with tempfile.TemporaryDirectory() as tmp_name, FeedServer() as feeds, WebSubHub(lease_cap=86_400) as hub:
        tmp = Path(tmp_name)
        topic, plain = feeds.url("/pushed.xml"), feeds.url("/polled.xml")
        pushed_items = ["old story, no rule fires 1", "old story, no rule fires 2"]
        polled_items = list(pushed_items)
        feeds.route("/pushed.xml", body=with_hub(_common.rss(pushed_items, tag="p"), hub.url, topic))
        feeds.route("/polled.xml", body=_common.rss(polled_items, tag="q"))
        rules = tmp / "rules"
        rules.mkdir()
        (rules / "sources.yaml").write_text(
            f'feeds:\n  - id: pushed\n    url: "{topic}"\n    interval: 3600\n'
            f'  - id: polled\n    url: "{plain}"\n    interval: {args.interval}\n'
        )
        (rules / "watchlists.yaml").write_text("watchlists: {}\n")
        (rules / "rules.yaml").write_text(_common.TARIFF_RULE)
        port = free_port()
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            rules_dir=rules, rules_defaults=False, database_url=f"sqlite+aiosqlite:///{tmp / 'bot.db'}",
            poll_jitter=0.5, alerts_per_rule_max=100_000, alerts_per_poll_max=1_000, log_level="WARNING",
            websub_public_url=f"http://127.0.0.1:{port}", websub_listen_host="127.0.0.1", websub_listen_port=port,
            websub_check_seconds=0.5,
        )
        adapter = StopwatchAdapter()
        bot = await Readout.open(settings, adapters=[adapter])  # type: ignore[list-item]
        await bot.start()
        try:
            websub = bot.websub
            assert websub is not None
            if not await wait_for(lambda: websub.is_live("pushed"), 30):
                raise SystemExit("the subscription never went live")
            published: dict[str, float] = {}
            answered: dict[str, float] = {}  # the bot's 200 back at the hub: parsed, matched, committed
            polled_at: dict[str, float] = {}

            async def feed_polled() -> None:
                for title in polled_titles:
                    polled_items.insert(0, title)
                    feeds.route("/polled.xml", body=_common.rss(polled_items[:20], tag="q"))
                    polled_at[title] = time.perf_counter()
                    await asyncio.sleep(rng.uniform(0.3, 0.9))

            baseline = asyncio.create_task(feed_polled())
            statuses: list[int] = []
            for title in pushed_titles:
                pushed_items.insert(0, title)
                body = with_hub(_common.rss(pushed_items[:20], tag="p"), hub.url, topic)
                feeds.route("/pushed.xml", body=body)  # the safety-net poll would see the same
                published[title] = time.perf_counter()
                statuses += await hub.publish(topic, body)
                answered[title] = time.perf_counter()
                await asyncio.sleep(rng.uniform(0.02, 0.1))
            await baseline
            await wait_for(lambda: all(t in adapter.handed for t in titles), args.interval * 3 + 5)
        finally:
            await bot.stop()
    push = [adapter.handed[t] - at for t, at in published.items() if t in adapter.handed]
    poll = [adapter.handed[t] - at for t, at in polled_at.items() if t in adapter.handed]
    processed = [answered[t] - at for t, at in published.items()]
    lost = len(published) - len(push)
    bad = [s for s in statuses if s != 200]
    print(f"pushes: {len(published)} through the local hub ({lost} never handed over, {len(bad)} non-200 answers)")
    print(f"push  publish → adapter: p50 {_common.percentile(push, 50) * 1000:.0f} ms, p99 {_common.percentile(push, 99) * 1000:.0f} ms, "
          f"max {max(push) * 1000:.0f} ms")
    print(f"  of which publish → the bot's 200 (verify, parse, rules, commit): p50 {_common.percentile(processed, 50) * 1000:.0f} ms, "
          f"p99 {_common.percentile(processed, 99) * 1000:.0f} ms")
    if poll:
        print(f"poll  ({args.interval} s interval, {len(poll)} items) publish → adapter: p50 {_common.percentile(poll, 50):.2f} s, "
              f"p99 {_common.percentile(poll, 99):.2f} s")
        print(f"ratio poll/push: p50 {_common.percentile(poll, 50) / _common.percentile(push, 50):.0f}x, "
              f"p99 {_common.percentile(poll, 99) / _common.percentile(push, 99):.0f}x "
              f"(shipped intervals are 120-600 s: a polled item waits 60-300 s on average)")
    print(f"goal push p99 <= 1 s: {'met' if push and _common.percentile(push, 99) <= 1.0 and not lost else 'MISSED'}")


if __name__ == "__main__":
    asyncio.run(main())
