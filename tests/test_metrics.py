"""Prometheus metrics of the real process: METRICS_PORT serves /metrics on 127.0.0.1."""

from __future__ import annotations

import re
import signal
import socket
import urllib.request
from pathlib import Path

from bot.metrics import serve
from tests.support.botproc import BotProcess, rss, wait_until, write_rules
from tests.support.feed_server import FeedServer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return str(r.read().decode())
    except OSError:
        return ""


def _value(text: str, name: str, **labels: str) -> float | None:
    """The sample `name{labels…}` (labels matched as a subset), or None."""
    for line in text.splitlines():
        m = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if m and all(f'{k}="{v}"' in m.group(1) for k, v in labels.items()):
            return float(m.group(2))
    return None


def test_metrics_endpoint_counts_polls_events_alerts_deliveries(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.route(
        "/wire.xml",
        body=rss(["Tariffs on steel", "Tariffs on copper", "Weather is fine"]),
        content_type="application/rss+xml",
    )
    feed_server.route("/broken.xml", status=503, body=b"down")
    port = _free_port()
    env = {
        "RULES_DIR": str(
            write_rules(
                tmp_path / "rules",
                {"wire": feed_server.url("/wire.xml"), "broken": feed_server.url("/broken.xml")},
            )
        ),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'm.db'}",
        "METRICS_PORT": str(port),
        "CONSOLE": "true",  # no chat token: alerts go to the console adapter
        "DELIVERY_INTERVAL": "0.1",
        "POLL_JITTER": "0",
    }
    proc = BotProcess(env, tmp_path / "bot")
    with proc:

        def delivered() -> str:
            t = _scrape(port)
            sent = _value(t, "readout_deliveries_total", adapter="console", outcome="sent")
            return t if sent == 2 else ""

        text = wait_until(delivered, 30, "metrics after a poll", proc)
        proc.signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    assert _value(text, "readout_polls_total", source="wire", outcome="ok") == 1
    assert _value(text, "readout_polls_total", source="broken", outcome="error") == 1
    assert _value(text, "readout_events_total", source="wire") == 3
    assert _value(text, "readout_alerts_total", rule="tariff-test", severity="warning") == 2
    for name in (
        "readout_events_total",
        "readout_alerts_total",
        "readout_polls_total",
        "readout_deliveries_total",
    ):
        assert re.search(
            rf"^# TYPE {name.removesuffix('_total')}(_total)? counter$", text, re.MULTILINE
        ), name
    assert "Tariffs on steel" in proc.stdout  # the console adapter printed what was counted


def test_metrics_listen_on_loopback_only() -> None:
    port = _free_port()
    serve(port)
    assert "# HELP readout_polls_total" in _scrape(port)
    with socket.socket() as s:
        bound = {
            a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        } - {"127.0.0.1"}
        if bound:  # the machine has another IPv4 address: the port must not answer there
            s.settimeout(1)
            assert s.connect_ex((bound.pop(), port)) != 0
