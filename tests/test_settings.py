"""Settings as a newcomer meets them: `.env.example` copied as is starts the console bot."""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.settings import Settings
from tests.support.feed_server import FeedServer

REPO = Path(__file__).resolve().parents[1]


def test_env_example_parses_as_is_with_no_chat_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    for name in list(os.environ):
        if name.startswith(("TELEGRAM_", "DISCORD_", "DATABASE_", "RULES_", "LOG_", "CONSOLE", "HTTP_", "POLL_")):
            monkeypatch.delenv(name)
    s = Settings(_env_file=tmp_path / ".env")  # type: ignore[call-arg]
    assert s.telegram_bot_token is None and s.discord_bot_token is None and s.discord_guild_id is None
    assert s.database_url == "sqlite+aiosqlite:///readout.db" and s.log_level == "INFO"
    assert s.http_timeout == 15 and s.poll_concurrency == 16  # inline comments are not part of values


def _read_until(proc: subprocess.Popen[str], wanted: str, timeout: float, *, also: str = "") -> list[str]:
    """stdout lines up to the first containing `wanted` (and `also`) (waits on the pipe, not on a clock)."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not sel.select(timeout=deadline - time.monotonic()):
            break
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if wanted in line and also in line:
            return lines
    raise AssertionError(f"{wanted!r} never printed; got {lines}")


def test_env_example_copied_to_dot_env_starts_the_console_bot(feed_server: FeedServer, tmp_path: Path) -> None:
    """The quick start with `cp .env.example .env`, and a rules folder holding only sources.yaml."""
    feed_server.fixture("/wire.xml", "feeds/rss20.xml")
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "sources.yaml").write_text(
        f"feeds:\n  - id: wire\n    url: {feed_server.url('/wire.xml')}\n    interval: 60\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DISCORD_", "DATABASE_", "RULES_"))}
    env.update(PYTHONPATH=str(REPO), NO_PROXY="127.0.0.1,localhost", BACKLOG_HOURS=str(24 * 365 * 20))
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # the headline fires more than one rule (its summary says "Beijing is expected to respond")
        lines = _read_until(proc, "US to impose 25% tariffs", timeout=60, also="tariff-announcement")
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    first = next(line for line in lines if "US to impose 25% tariffs" in line)
    assert "— wire · tariff-" in first  # one line: headline — source · rule …
    assert "tariff-announcement" in lines[-1]
    assert "Traceback" not in err
    assert "Readout started: 14 of 15 rules enabled, 1 source (1 feed, 0 price series); adapters: console" in err
    assert "poll summary: 1 of 1 source ok;" in err  # after the first round
    assert "alert " not in err  # the console line is the alert; no INFO duplicate
    assert (tmp_path / "readout.db").exists()  # state lives beside .env, as the README says
