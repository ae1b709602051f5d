"""The command line as a user runs it: `once --json`, `check-rules`, `run` refusing bad rules."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.feed_server import FeedServer
from tests.test_app import make_rules_dir

REPO = Path(__file__).resolve().parents[1]
REQUIRED = {"rule", "severity", "kind", "title", "url", "source", "watchlist", "tone", "tone_score"}


def bot(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "PYTHONPATH": str(REPO), **(env or {})}
    for name in ("TELEGRAM_BOT_TOKEN", "DISCORD_BOT_TOKEN", "DATABASE_URL", "RULES_DIR"):
        full_env.pop(name, None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


def test_once_json_prints_each_alert_once_across_runs(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.fixture("/wire.xml", "feeds/rss20.xml")
    feed_server.fixture("/cnh.json", "prices/yahoo_cnh.json")
    rules = make_rules_dir(tmp_path, feed_server, {"wire": "/wire.xml"}, {"CNH=X": "/cnh.json"})
    env = {"BACKLOG_HOURS": str(24 * 365 * 20), "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"}
    first = bot("once", "--json", "--rules", str(rules), cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    lines = [json.loads(line) for line in first.stdout.splitlines()]
    assert lines, first.stderr
    for line in lines:
        assert REQUIRED <= set(line)
        assert line["kind"] in {"news", "price", "composite"}
        assert isinstance(line["watchlist"], list)
    tariff = next(x for x in lines if x["rule"] == "tariff-announcement")
    assert tariff["title"] == "US to impose 25% tariffs on $200 billion of Chinese goods"
    assert tariff["url"] == "https://news.example.com/2018/09/17/tariffs-200-billion"
    assert tariff["source"] == "wire" and tariff["tone"] is None and tariff["tone_score"] is None
    tone = next(x for x in lines if x["rule"] == "readout-hope")
    assert tone["tone"] == "hope" and 0 < tone["tone_score"] <= 1
    # Stories: every news alert names its story and the sources so far; prices have none.
    assert tariff["story"] and tariff["sources"] == ["wire"] and isinstance(tariff["update"], bool)
    assert all(x["story"] is None and x["sources"] == [] and x["update"] is False
               for x in lines if x["kind"] == "price")
    same = [x for x in lines if x["story"] == tariff["story"]]
    assert [x["update"] for x in same] == [False] + [True] * (len(same) - 1)
    second = bot("once", "--json", "--rules", str(rules), cwd=tmp_path, env=env)
    assert second.returncode == 0 and second.stdout == ""


def test_check_rules_ok_and_error_lines(tmp_path: Path) -> None:
    ok = bot("check-rules", "--rules", str(REPO / "rules"), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "bad"
    shutil.copytree(REPO / "tests/fixtures/rules/good", bad)
    shutil.copy(REPO / "tests/fixtures/rules/bad/unknown_key.yaml", bad / "unknown_key.yaml")
    shutil.copy(REPO / "tests/fixtures/rules/bad/bad_regex.yaml", bad / "bad_regex.yaml")
    res = bot("check-rules", "--rules", str(bad), cwd=tmp_path)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert f"{bad}/unknown_key.yaml:5: rules[0]: unknown key 'severty' (did you mean 'severity'?)" in lines
    assert any(line.startswith(f"{bad}/bad_regex.yaml:") for line in lines)


def test_run_refuses_to_start_on_a_bad_rule_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(REPO / "tests/fixtures/rules/good", bad)
    shutil.copy(REPO / "tests/fixtures/rules/bad/unknown_key.yaml", bad / "unknown_key.yaml")
    res = bot("run", "--rules", str(bad), cwd=tmp_path, env={"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"})
    assert res.returncode == 1
    assert f"{bad}/unknown_key.yaml:5: rules[0]: unknown key 'severty'" in res.stderr


def test_probe_reports_each_source(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.fixture("/wire.xml", "feeds/rss20.xml")
    feed_server.route("/gone.xml", status=404, body=b"not here")
    feed_server.fixture("/vix.json", "prices/yahoo_vix.json")
    rules = make_rules_dir(tmp_path, feed_server, {"wire": "/wire.xml", "gone": "/gone.xml"}, {"^VIX": "/vix.json"})
    res = bot("probe", "--rules", str(rules), cwd=tmp_path)
    assert res.returncode == 1
    out = res.stdout.splitlines()
    assert any(line.startswith("OK    wire: 6 items") for line in out), res.stdout
    assert any(line.startswith("FAIL  gone:") and "404" in line for line in out)
    assert any(line.startswith("OK    yahoo:^VIX:") for line in out)
    assert out[-1] == "2 of 3 sources answered"
    assert not (tmp_path / "readout.db").exists()  # probing writes nothing


def test_probe_says_how_often_each_source_would_be_polled_and_why(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.fixture("/wire.xml", "feeds/rss20.xml", headers={"Cache-Control": "max-age=900"})
    feed_server.route("/limited.xml", status=429, body=b"slow down", headers={"Retry-After": "31536000"})
    rules = make_rules_dir(tmp_path, feed_server, {}, {})
    (rules / "sources.yaml").write_text(
        "feeds:\n"
        f"  - id: wire\n    url: {feed_server.url('/wire.xml')}\n    interval: 300\n    max_interval: 600\n"
        f"  - id: limited\n    url: {feed_server.url('/limited.xml')}\n    interval: 300\n"
        "hosts:\n  127.0.0.1:\n    requests_per_minute: 10\n    connections: 1\n"
    )
    res = bot("probe", "--rules", str(rules), cwd=tmp_path)
    out = res.stdout.splitlines()
    wire = out.index(next(line for line in out if line.startswith("OK    wire:")))
    assert out[wire + 1] == (
        "      poll every 10 min (6 req/h now, budget 12): server max-age 900 s (clamped to the ceiling)"
    ), res.stdout
    limited = out.index(next(line for line in out if line.startswith("FAIL  limited:") and "429" in line))
    assert out[limited + 1].startswith("      poll every 24 h (0.0417 req/h now, budget 12): Retry-After until ")
    assert res.stderr.count("Retry-After of 31536000 s clamped to a day") == 1
    assert out[-1] == "1 of 2 sources answered"


def test_every_option_has_help_text() -> None:
    """`python -m bot COMMAND --help` explains each option (defaults where they matter)."""
    import argparse

    from bot.cli import _parser

    parser = _parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{name} {action.option_strings or action.dest} has no help text"
    demo_help = sub.choices["demo"].format_help()
    assert "(default 12:" in demo_help and "--rules DIR" in demo_help and "None" not in demo_help


def test_check_rules_reports_a_price_rule_without_a_source_as_an_error(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "sources.yaml").write_text("feeds: []\nprices: []\n")
    (rules / "gold.yaml").write_text(
        "rules:\n  - id: gold-spike\n    type: change\n    description: Gold up 3%\n    symbol: GC=F\n    pct: 3\n"
    )
    proc = bot("check-rules", "--rules", str(rules), cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"{rules / 'gold.yaml'}:5: rules[0].symbol: no enabled source in sources.yaml provides 'GC=F', "
        "so this rule can never fire (add it under `prices:`)"
    )


def test_rules_defaults_false_opts_out_of_the_bundled_files(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "sources.yaml").write_text("feeds: []\n")
    assert bot("check-rules", "--rules", str(rules), cwd=tmp_path).returncode == 0  # layered
    proc = bot("check-rules", "--rules", str(rules), cwd=tmp_path, env={"RULES_DEFAULTS": "false"})
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"{rules / 'watchlists.yaml'}:0: missing: a rules directory needs watchlists.yaml"
