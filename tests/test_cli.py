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
    assert any(line.startswith("OK    wire: 6 item(s)") for line in out), res.stdout
    assert any(line.startswith("FAIL  gone:") and "404" in line for line in out)
    assert any(line.startswith("OK    yahoo:^VIX:") for line in out)
    assert out[-1] == "2 of 3 sources answered"
    assert not (tmp_path / "readout.db").exists()  # probing writes nothing
