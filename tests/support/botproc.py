"""Run the real bot (`python -m bot run`) as a subprocess against local fakes.

A small rules folder (one feed, one match rule), RSS built from headlines, a
stderr log file per run, and helpers to read the SQLite database the bot
writes — used by the crash, outage, secrets and metrics tests.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import TypeVar
from xml.sax.saxutils import escape as xml_escape

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent.parent

RULE_FILE = """\
rules:
  - id: tariff-test
    type: match
    description: Test tariff headlines
    severity: warning
    key: title
    any: [tariff*]
"""


def write_rules(folder: Path, feeds: dict[str, str], *, rule_file: str = RULE_FILE) -> Path:
    """A rules folder: `feeds` (id → url), one watch-list, `rules.yaml` from `rule_file`."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["feeds:"]
    for fid, url in feeds.items():
        lines += [f"  - id: {fid}", f'    url: "{url}"', "    interval: 60", "    tags: [test]"]
    (folder / "sources.yaml").write_text("\n".join(lines) + "\n")
    (folder / "watchlists.yaml").write_text(
        "watchlists:\n  chips:\n    title: Semiconductors\n    why: Export controls\n    tickers: [NVDA]\n"
    )
    (folder / "rules.yaml").write_text(rule_file)
    return folder


def rss(titles: Iterable[str], *, now: datetime | None = None) -> bytes:
    """An RSS 2.0 body, one item per title, published a few minutes ago, oldest last."""
    now = now or datetime.now(UTC)
    items = "".join(
        f"<item><title>{xml_escape(title)}</title>"
        f"<link>https://news.example.com/{n}</link>"
        f'<guid isPermaLink="false">item-{n}-{xml_escape(title)}</guid>'
        f"<pubDate>{format_datetime(now - timedelta(minutes=30) + timedelta(seconds=n))}</pubDate></item>"
        for n, title in enumerate(titles)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Test Wire</title><link>https://news.example.com/</link><description>t</description>{items}"
        "</channel></rss>"
    ).encode()


class BotProcess:
    """`python -m bot run` with the given environment; stderr (and stdout) go to log files."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", **env}
        self.stderr_path = logs.with_suffix(".stderr")
        self.stdout_path = logs.with_suffix(".stdout")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> BotProcess:
        with self.stderr_path.open("ab") as err, self.stdout_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "run"],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=err,
            )
        return self

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(10)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def __enter__(self) -> BotProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    what: str = "condition",
    proc: BotProcess | None = None,
) -> T:
    """Poll `predicate` until truthy; fail after `timeout` s (with the bot's stderr tail, if given)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if proc is not None and not proc.alive():
            raise AssertionError(f"bot exited while waiting for {what}:\n{proc.stderr[-3000:]}")
        if time.monotonic() > deadline:
            tail = proc.stderr[-3000:] if proc is not None else ""
            raise AssertionError(f"{what} not met within {timeout}s\n{tail}")
        time.sleep(0.05)


def db_query(db_file: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    """Read the bot's SQLite file from the test (a separate connection; WAL or not)."""
    if not db_file.exists():
        return []
    con = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return []
    finally:
        con.close()
