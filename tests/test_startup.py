"""Every bad input a newcomer can meet at start ends in one line and an exit code, never a traceback.

Each case runs the real entry point (`python -m bot …`) in a fresh folder with only the
environment it names, and checks stderr is exactly the one line (plus nothing else but
log lines) and the exit status.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bot.app import build_adapters
from bot.settings import Settings, async_database_url
from tests.support.fake_telegram import FakeTelegram
from tests.support.feed_server import FeedServer
from tests.test_cli import bot

REPO = Path(__file__).resolve().parents[1]


def errors(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr lines that are not log records (logs start with a date)."""
    assert "Traceback" not in proc.stderr, proc.stderr
    return [line for line in proc.stderr.splitlines() if line and not line[:4].isdigit()]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LOG_LEVEL": "verbose"}, "error: LOG_LEVEL='verbose': use one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ({"DISCORD_GUILD_ID": "my-server"}, "error: DISCORD_GUILD_ID='my-server': expected a valid integer"),
        ({"LOG_FORMAT": "xml"}, "error: LOG_FORMAT='xml': expected 'text' or 'json'"),
        ({"HTTP_TIMEOUT": "-1"}, "error: HTTP_TIMEOUT='-1': expected greater than 0"),
        ({"DATABASE_URL": "mysql://me@db/readout"}, "error: DATABASE_URL='mysql://me@db/readout': unsupported scheme 'mysql'; use sqlite+aiosqlite:///FILE, postgresql://"),
        ({"CONSOLE_MIN_SEVERITY": "loud"}, "error: CONSOLE_MIN_SEVERITY='loud': expected 'info', 'warning' or 'critical'"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it_and_what_is_accepted(
    env: dict[str, str], expected: str, tmp_path: Path
) -> None:
    proc = bot("check-rules", cwd=tmp_path, env=env)
    assert proc.returncode == 1
    [line] = errors(proc)
    assert line.startswith(expected), line
    assert line.endswith("(from the environment or .env; see .env.example)")


def test_a_bad_setting_in_dot_env_is_reported_the_same_way(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("LOG_LEVEL=verbose\n")
    proc = bot("check-rules", cwd=tmp_path)
    assert proc.returncode == 1
    assert errors(proc)[0].startswith("error: LOG_LEVEL='verbose'")


def test_a_token_is_never_echoed_in_a_settings_error(tmp_path: Path) -> None:
    """A bad value next to a token: the message names the variable, never the token."""
    secret = "123456:AAE-never-print-this-token"
    proc = bot("check-rules", cwd=tmp_path, env={"TELEGRAM_BOT_TOKEN": secret, "LOG_LEVEL": "loud"})
    assert proc.returncode == 1 and secret not in proc.stderr


def test_a_rules_folder_that_is_not_there_says_how_to_name_one(tmp_path: Path) -> None:
    proc = bot("run", "--rules", "my-rules", cwd=tmp_path)
    assert proc.returncode == 1
    [line] = errors(proc)
    assert line == "my-rules:0: not a directory (pass --rules DIR or set RULES_DIR; the bundled rules are used when neither is given)"


def test_started_from_another_folder_the_bundled_rules_are_used(tmp_path: Path) -> None:
    proc = bot("check-rules", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == f"{REPO / 'rules'}: OK"


def test_a_sqlite_file_in_a_missing_folder_is_one_line(feed_server: FeedServer, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "sources.yaml").write_text(f"feeds:\n  - id: wire\n    url: {feed_server.url('/none.xml')}\n")
    url = f"sqlite+aiosqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'r.db'}"
    proc = bot("once", "--rules", str(rules), cwd=tmp_path, env={"DATABASE_URL": url})
    assert proc.returncode == 1
    [line] = errors(proc)
    assert line.startswith("error: DATABASE_URL: cannot open the SQLite file") and "does not exist; create it" in line


def _pg_server() -> str:
    from tests.support.databases import server_url

    return server_url()


def _pg_or_skip() -> str:
    url = _pg_server()
    probe = subprocess.run(
        ["pg_isready", "-q", "-h", make_url(url).host or "127.0.0.1", "-p", str(make_url(url).port or 5432)],
        check=False,
    ) if shutil.which("pg_isready") else None
    if probe is None or probe.returncode != 0:
        pytest.skip("no PostgreSQL server answers here")
    return url


@pytest.mark.parametrize("command", [("db", "upgrade"), ("once",)])
def test_a_postgresql_database_that_does_not_exist_is_one_line_with_a_hint(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    """`once` and `run` open the database through the start-up wait for an unreachable server
    (bot/storage/faults.py): a database that does not exist is not waited for, it is said at once."""
    server = make_url(_pg_or_skip())
    name = f"readout_missing_{uuid.uuid4().hex[:8]}"
    # the form a hosting provider hands out: postgres://, no driver
    url = f"postgres://{server.username}@{server.host}:{server.port or 5432}/{name}"
    proc = bot(*command, cwd=tmp_path, env={"DATABASE_URL": url, "DATABASE_WAIT": "600"})
    assert proc.returncode == 1
    assert "not reachable (attempt" not in proc.stderr
    [line] = errors(proc)
    assert line.startswith(f'error: DATABASE_URL: database "{name}" does not exist on the server')
    assert f"createdb {name}" in line


def test_postgres_and_postgresql_urls_reach_the_async_driver(tmp_path: Path) -> None:
    """`postgres://` works end to end: `db upgrade` on the server's existing `postgres` database."""
    server = make_url(_pg_or_skip())
    for scheme in ("postgres", "postgresql"):
        url = f"{scheme}://{server.username}@{server.host}:{server.port or 5432}/postgres"
        proc = bot("db", "upgrade", cwd=tmp_path, env={"DATABASE_URL": url})
        assert proc.returncode == 0, proc.stderr


def test_database_url_forms() -> None:
    assert async_database_url("postgres://u:p@h:5432/db") == "postgresql+asyncpg://u:p@h:5432/db"
    assert async_database_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert async_database_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert async_database_url("sqlite:///readout.db") == "sqlite+aiosqlite:///readout.db"
    with pytest.raises(ValueError, match="unsupported scheme 'mysql'"):
        async_database_url("mysql://h/db")


@pytest.mark.parametrize("blank", ["", "   "])
def test_an_empty_token_never_turns_an_adapter_on(blank: str, tmp_path: Path) -> None:
    s = Settings(_env_file=None, telegram_bot_token=blank, discord_bot_token=blank)  # type: ignore[call-arg]
    assert s.telegram_bot_token is None and s.discord_bot_token is None
    assert [a.name for a in build_adapters(s)] == ["console"]


def test_a_rejected_telegram_token_at_start_is_one_line(fake_telegram: FakeTelegram, feed_server: FeedServer, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "sources.yaml").write_text(f"feeds:\n  - id: wire\n    url: {feed_server.url('/none.xml')}\n")
    proc = bot(
        "run", "--rules", str(rules), cwd=tmp_path,
        env={
            "TELEGRAM_BOT_TOKEN": "999:not-the-right-token",
            "TELEGRAM_BASE_URL": fake_telegram.base_url,
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'r.db'}",
        },
    )
    assert proc.returncode == 1
    [line] = errors(proc)
    assert line.startswith("error: Telegram rejected TELEGRAM_BOT_TOKEN") and "not-the-right-token" not in proc.stderr


def test_once_says_when_no_source_answered_and_fails(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "sources.yaml").write_text(
        f"feeds:\n  - id: a\n    url: http://127.0.0.1:{port}/a.xml\n  - id: b\n    url: http://127.0.0.1:{port}/b.xml\n"
    )
    proc = bot("once", "--rules", str(rules), cwd=tmp_path, env={"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"})
    assert proc.returncode == 1
    lines = errors(proc)
    assert lines[0].startswith("poll summary: 0 of 2 sources ok, 2 failed (commonest: network: ")
    assert lines[0].endswith("×2); 0 items seen; 0 alerts")
    assert lines[1].startswith("error: no source answered — offline or behind a proxy? try `python -m bot probe`")
    # each source's first failure is logged in this process, even though the database has seen it before
    again = bot("once", "--rules", str(rules), cwd=tmp_path, env={"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"})
    assert again.stderr.count("source failed") == 2
    assert "alembic" not in again.stderr  # no migration chatter on every command
