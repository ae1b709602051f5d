"""Regex bombs against the real process: rules with backtracking bombs and 480-character titles.

`python -m bot run` with the fake Bot API and the local feed server. The feed
carries titles built to make each bomb backtrack, then an ordinary tariff
headline. With matching on RE2 (and off the event loop) the tariff alert is
delivered and `/status` answers; a backtracking engine stalls on the first
title for longer than the test waits.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from pathlib import Path

from bot.rules.regex_engine import Alternation, compile_user_regex, user_regex_problem
from bot.storage.store import Store
from tests.support.botproc import RULE_FILE, BotProcess, rss, wait_until, write_rules
from tests.support.fake_telegram import FakeTelegram
from tests.support.feed_server import FeedServer

CHAT = 7301
BOMBS = [r"^(a|aa)+$", r"(.*a){12}x", r".*.*.*.*.*=", r"[a-z]+[a-z]+[a-z]+[a-z]+!"]
HOSTILE_TITLES = ["a" * 479 + "!", "a" * 480 + "?", "b" * 240 + " " + "a" * 239 + "?"]


def _bomb_rules() -> str:
    lines = [RULE_FILE.rstrip("\n")]
    for n, pattern in enumerate(BOMBS):
        lines += [
            f"  - id: bomb-{n}",
            "    type: match",
            "    description: A regex bomb",
            "    severity: info",
            "    key: title",
            "    any:",
            f"      - regex: '{pattern}'",
        ]
    return "\n".join(lines) + "\n"


async def _subscribe(db: Path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{db}")
    try:
        await store.subscribe("telegram", str(CHAT), "severity", "warning", at=datetime.now(UTC))
    finally:
        await store.close()


def test_regex_bombs_do_not_stall_alerts_or_commands(
    fake_telegram: FakeTelegram, feed_server: FeedServer, tmp_path: Path
) -> None:
    db = tmp_path / "bombs.db"
    rules = write_rules(tmp_path / "rules", {"wire": feed_server.url("/wire.xml")}, rule_file=_bomb_rules())
    feed_server.route(
        "/wire.xml", body=rss([*HOSTILE_TITLES, "Tariff headline after the bombs"]), content_type="application/rss+xml"
    )
    asyncio.run(_subscribe(db))
    env = {
        "TELEGRAM_BOT_TOKEN": fake_telegram.token,
        "TELEGRAM_BASE_URL": fake_telegram.base_url,
        "RULES_DIR": str(rules),
        "DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "DELIVERY_INTERVAL": "0.1",
        "POLL_JITTER": "0",
        "CONSOLE": "false",
    }
    proc = BotProcess(env, tmp_path / "bot")
    with proc:
        wait_until(
            lambda: any("Tariff headline after the bombs" in t for t in fake_telegram.texts(CHAT)),
            60,
            "the tariff alert behind the bombs",
            proc,
        )
        fake_telegram.push_message(CHAT, "/status")
        wait_until(
            lambda: [m for m in fake_telegram.sent_messages(CHAT) if "Sources" in m["plain"]],
            30,
            "/status reply",
            proc,
        )
        proc.signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


def test_alternation_reports_text_terms_and_user_regexes() -> None:
    both = Alternation([r"(?<!\w)tariffs?(?!\w)"], [r"\d+\s?%", r"^(a|aa)+$"])
    assert [m.group(0) for m in both.finditer("Tariffs of 25% and TARIFF")] == ["Tariffs", "TARIFF", "25%"]
    assert both.search("nothing here") is None
    assert compile_user_regex("CHINA").search("china's reply") is not None


def test_what_re2_cannot_run_is_named() -> None:
    assert user_regex_problem(r"\bduties\b") is None
    assert "lookaround" in (user_regex_problem(r"tariff(?= cut)") or "")
    assert "RE2" in (user_regex_problem(r"x{1001}") or "")
