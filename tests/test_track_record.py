"""Track record (bot/track_record.py) and `python -m bot stats`: live outcomes beside the backtest."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import commands
from bot.cli import main
from bot.clock import ManualClock
from bot.commands import ChatDestination
from bot.rules.loader import load_rules_dir
from bot.services import RuleSetHolder, Services
from bot.settings import Settings
from bot.storage.outcomes import NewJob, OutcomeJob, OutcomeStore
from bot.storage.store import Store
from bot.track_record import ReportError, format_record, live_record, load_report

T0 = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
SYMBOLS = ["ES=F", "^VIX", "CNH=X"]


def job(n: int, rule: str, horizon: str, moves: dict[str, float | None]) -> OutcomeJob:
    return OutcomeJob(
        id=n,
        alert_id=f"a{n}",
        rule_id=rule,
        horizon=horizon,
        alert_time=T0,
        due_at=T0,
        status="done",
        moves={s: (None if c is None else {"change_pct": c}) for s, c in moves.items()},
    )


REPORT = {
    "period": {"start": "2018-01-01T00:00:00+00:00", "end": "2019-12-31T00:00:00+00:00"},
    "baseline": {"ES=F": {"1": {"mean_pct": 0.04, "sd_pct": 0.9, "n": 500}}},
    "rules": {
        "tariff": {
            "n": 63,
            "outcome": {
                "ES=F": {
                    "1": {
                        "n": 45,
                        "mean_pct": -0.08,
                        "median_pct": 0.08,
                        "up_share": 0.56,
                        "diff_vs_baseline_pct": -0.12,
                        "ci95": [-0.41, 0.17],
                    }
                }
            },
        },
        "quiet-rule": {"n": 0, "outcome": {}},
    },
}


def test_live_means_and_share_up_per_rule_horizon_and_symbol() -> None:
    jobs = [
        job(1, "tariff", "30m", {"ES=F": -0.8, "^VIX": 12.0, "CNH=X": None}),
        job(2, "tariff", "30m", {"ES=F": 0.4, "^VIX": -2.0, "CNH=X": 0.3}),
        job(3, "tariff", "1d", {"ES=F": -1.0}),
    ]
    record = live_record(jobs)["tariff"]
    assert record.alerts == 3  # distinct alert ids
    es = record.stats["30m"]["ES=F"]
    assert (es.n, round(es.mean_pct, 6), es.up_share) == (2, -0.2, 0.5)
    cnh = record.stats["30m"]["CNH=X"]
    assert (cnh.n, cnh.mean_pct, cnh.up_share) == (1, 0.3, 1.0)  # the "no quote" one left out
    assert record.stats["1d"]["ES=F"].n == 1


def test_text_puts_live_beside_the_backtest(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(REPORT))
    report = load_report(path)
    live = live_record([job(1, "tariff", "30m", {"ES=F": -0.8, "^VIX": 12.0})])
    lines = format_record(live, report, symbols=SYMBOLS, rule="tariff")
    assert lines == [
        "tariff: 1 live alerts with outcomes",
        "  live, 30 min later: ES −0.80 % (0% up, n=1), VIX +12.00 % (100% up, n=1)",
        "  backtest (63 alerts), next daily close: ES −0.08 % (56% up, n=45, "
        "vs baseline −0.12 %, CI −0.41 … +0.17)",
    ]
    compact = format_record(live, report, symbols=SYMBOLS, compact=True)
    assert compact == [
        "tariff: live n=1 (30 min: ES −0.8 %, VIX +12.0 %); backtest n=63 (next close: ES −0.08 %)"
    ]
    assert format_record({}, None, symbols=SYMBOLS, rule="nope") == [
        "No track record for nope yet."
    ]


def test_a_bad_report_is_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "r.json"
    bad.write_text('{"period": {},\n "rules": [')
    with pytest.raises(ReportError, match=r"r.json:2: not JSON"):
        load_report(bad)
    bad.write_text('{"rules": {}}')
    with pytest.raises(ReportError, match="not a backtest report: period: Field required"):
        load_report(bad)
    with pytest.raises(ReportError, match="cannot read"):
        load_report(tmp_path / "missing.json")


def test_stats_cli_prints_the_record_from_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"
    report = tmp_path / "report.json"
    report.write_text(json.dumps(REPORT))

    async def seed() -> None:
        store = await Store.open(url)
        try:
            outcomes = OutcomeStore(store)
            await outcomes.add_jobs(
                [NewJob(alert_id="a1", rule_id="tariff", horizon="30m", alert_time=T0, due_at=T0)]
            )
            [claimed] = await outcomes.claim_due(worker_id="w", now=T0 + timedelta(minutes=1))
            await outcomes.finish(
                claimed.id,
                worker_id="w",
                moves={"ES=F": {"change_pct": 0.5}},
                line="30 min later: ES +0.5 %",
                at=T0,
            )
        finally:
            await store.close()

    asyncio.run(seed())
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["stats", "tariff", "--backtest-report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "tariff: 1 live alerts with outcomes" in out
    assert "live, 30 min later: ES +0.50 % (100% up, n=1)" in out
    assert "backtest (63 alerts)" in out
    (tmp_path / "broken.json").write_text("[")
    assert main(["stats", "--backtest-report", str(tmp_path / "broken.json")]) == 1
    assert "broken.json:1: not JSON" in capsys.readouterr().err


async def test_stats_command_shows_live_beside_the_configured_backtest(
    store: Store, tmp_path: Path
) -> None:
    """/stats (both platforms run this same function): one line per rule, then one rule in full."""
    report = tmp_path / "report.json"
    report.write_text(json.dumps(REPORT))
    settings = Settings(_env_file=None, backtest_report=report)  # type: ignore[call-arg]
    ruleset = load_rules_dir(Path(__file__).resolve().parent.parent / "rules")
    services = Services(
        settings=settings, store=store, clock=ManualClock(T0), rules=RuleSetHolder(ruleset)
    )
    outcomes = OutcomeStore(store)
    await outcomes.add_jobs(
        [NewJob(alert_id="a1", rule_id="tariff", horizon="30m", alert_time=T0, due_at=T0)]
    )
    [claimed] = await outcomes.claim_due(worker_id="w", now=T0)
    await outcomes.finish(
        claimed.id, worker_id="w", moves={"ES=F": {"change_pct": -0.8}}, line="x", at=T0
    )
    here = ChatDestination("telegram", "42")
    reply = await commands.run("stats", services, here, [])
    text = ["".join(span.text for span in line) for line in reply.lines]
    assert reply.title == "Track record"
    assert "tariff: live n=1 (30 min: ES −0.8 %); backtest n=63 (next close: ES −0.08 %)" in text
    assert text[-1] == "One rule in detail: stats <rule-id>"
    refused = await commands.run("stats", services, here, ["no-such-rule"])
    assert "unknown rule 'no-such-rule'" in "".join(s.text for s in refused.lines[0])
