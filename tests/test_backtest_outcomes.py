"""Backtest event study (bot/backtest/outcomes.py), checked against hand computations.

tests/fixtures/backtest/es_gaps.csv (daily closes, each a sample at 16:00 New York =
20:00 UTC in May): 05-01 100, 05-02 102, 05-03 (Fri) 99, 05-06 (Mon) 110, a duplicate
05-06 row (111, skipped by the reader), no 05-07 (gap), 05-08 121, 05-09 0 (non-positive,
left out by the study), 05-10 132. Usable samples, by index:
    0: 05-01 100   1: 05-02 102   2: 05-03 99   3: 05-06 110   4: 05-08 121   5: 05-10 132
Next-sample changes: +2, −2.941176 (102→99), +11.111111 (99→110), +10 (110→121),
+9.090909 (121→132); their mean is 29.260844 / 5 = 5.852169. Five-sample: 100→132 = +32.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.backtest.outcomes import (
    EventStudy,
    build_series,
    format_study,
    outcome_at,
    reaction,
    study,
)
from bot.backtest.plot import plot_backtest
from bot.backtest.replay import read_prices
from bot.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "backtest"
RULES = FIXTURES / "rules"
ES = FIXTURES / "es_gaps.csv"

NEXT_CHANGES = [2.0, 100 * (99 / 102 - 1), 100 * (110 / 99 - 1), 10.0, 100 * (132 / 121 - 1)]
BASELINE_1 = 5.852169  # mean of NEXT_CHANGES, by hand (see the module docstring)
T_975_1DF = 12.706205  # Student t, 97.5 % quantile, 1 degree of freedom (printed tables)


def utc(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2019, month, day, hour, minute, tzinfo=UTC)


def close(day: int) -> datetime:
    return utc(5, day, 20)  # 16:00 New York in May (EDT)


@dataclass(frozen=True)
class A:
    id: str
    rule_id: str
    event_time: datetime


@pytest.fixture
def es_study() -> EventStudy:
    load = read_prices(ES, "ES=F")
    series = build_series("ES=F", ((e.time, e.last) for e in load.events))
    alerts = [
        A("sat", "tariff", utc(5, 4, 15)),  # Saturday: base is Friday's close (99)
        A("sun", "tariff", utc(5, 5, 16)),  # Sunday: the same base sample, counted once
        A("early", "tariff", utc(5, 1, 12)),  # before the first sample: no outcome
        A("at-close", "other", close(1)),  # at a sample: that sample is the base
        A("after-close", "other", utc(5, 2, 21)),
        A("last", "other", utc(5, 10, 22)),  # on the last sample: nothing after it
    ]
    return study(
        alerts,
        {"ES=F": series},
        start=utc(5, 1),
        end=utc(5, 10, 23, 59),
        rule_order=["tariff", "other", "silent"],
    )


def test_the_reader_keeps_the_first_of_a_duplicate_date() -> None:
    load = read_prices(ES, "ES=F")
    assert [(e.time, e.last) for e in load.events][3] == (close(6), 110.0)
    assert [str(p) for p in load.skipped] == [
        "es_gaps.csv:6: column date: duplicate time '2019-05-06' (first on line 5)"
    ]


def test_weekend_alert_base_is_fridays_close_and_horizon_past_the_end_is_absent(
    es_study: EventStudy,
) -> None:
    assert es_study.outcome_json("sat") == {
        "ES=F": {
            "base": {"time": "2019-05-03T20:00:00+00:00", "value": 99.0},
            "after": {
                "1": {"time": "2019-05-06T20:00:00+00:00", "value": 110.0, "change_pct": 11.111111}
            },
        }
    }
    assert es_study.outcome_json("sun") == es_study.outcome_json("sat")


def test_an_alert_at_a_sample_uses_it_and_counts_across_the_gap_and_the_bad_price(
    es_study: EventStudy,
) -> None:
    out = es_study.outcome_json("at-close")["ES=F"]
    assert out["base"] == {"time": "2019-05-01T20:00:00+00:00", "value": 100.0}
    # 5th sample after 05-01: 05-02, 05-03, 05-06, 05-08, (05-09 left out) 05-10
    assert out["after"]["5"] == {
        "time": "2019-05-10T20:00:00+00:00",
        "value": 132.0,
        "change_pct": 32.0,
    }
    after = es_study.outcome_json("after-close")["ES=F"]
    assert after["base"]["value"] == 102.0
    assert after["after"]["1"]["change_pct"] == pytest.approx(-2.941176, abs=1e-6)


def test_no_base_and_no_sample_after_give_notes_not_crashes(es_study: EventStudy) -> None:
    assert es_study.outcome_json("early") == {}
    assert es_study.outcome_json("last")["ES=F"]["after"] == {}
    assert es_study.notes == [
        "ES=F: sample at 2019-05-09T20:00:00+00:00 left out: price 0 is not positive "
        "(a change in % needs a positive price)",
        "ES=F: 1 alert before its first sample: no outcome",
        "ES=F: 1 alert without a sample next sample (data ends 2019-05-10 20:00 UTC): "
        "that horizon is absent",
        "ES=F: 4 alerts without a sample 5 samples later (data ends 2019-05-10 20:00 UTC): "
        "that horizon is absent",
    ]


def test_baseline_is_every_h_sample_change_in_the_period(es_study: EventStudy) -> None:
    b1, b5 = es_study.baselines["ES=F"][1], es_study.baselines["ES=F"][5]
    assert b1.n == 5 and b1.mean_pct == pytest.approx(BASELINE_1, abs=1e-6)
    # sample standard deviation of NEXT_CHANGES, by hand: sum of squared deviations / 4
    squares = sum((c - BASELINE_1) ** 2 for c in NEXT_CHANGES)
    assert b1.sd_pct == pytest.approx(math.sqrt(squares / 4), abs=1e-5)
    assert (b5.n, b5.sd_pct) == (1, None) and b5.mean_pct == pytest.approx(32.0)
    # a shorter period drops the changes that start or end outside it
    later = study(
        [],
        {"ES=F": build_series("ES=F", [(close(d), v) for d, v in [(1, 100), (2, 102), (3, 99)]])},
        start=utc(5, 2),
        end=utc(5, 3, 23),
    )
    assert later.baselines["ES=F"][1].n == 1
    assert later.baselines["ES=F"][1].mean_pct == pytest.approx(-2.941176, abs=1e-6)


def test_per_rule_reactions_count_each_base_sample_once(es_study: EventStudy) -> None:
    report = es_study.to_report()
    tariff = report["rules"]["tariff"]
    assert tariff["n"] == 3  # alerts fired; sat and sun share the base sample: one observation
    assert tariff["outcome"]["ES=F"] == {
        "1": {
            "n": 1,
            "mean_pct": 11.111111,
            "median_pct": 11.111111,
            "up_share": 1.0,
            "diff_vs_baseline_pct": pytest.approx(11.111111 - BASELINE_1, abs=1e-6),
            "ci95": None,
        }
    }
    other = report["rules"]["other"]["outcome"]["ES=F"]
    # next sample: at-close +2, after-close −2.941176 (last has none): mean −0.470588
    mean = (2.0 - 2.941176) / 2
    diff = mean - BASELINE_1
    sd = (2.0 + 2.941176) / math.sqrt(2)  # two values: sd = |a − b| / √2
    half = T_975_1DF * sd / math.sqrt(2)
    assert other["1"]["n"] == 2
    assert other["1"]["mean_pct"] == pytest.approx(mean, abs=1e-6)
    assert other["1"]["median_pct"] == pytest.approx(mean, abs=1e-6)
    assert other["1"]["up_share"] == 0.5
    assert other["1"]["diff_vs_baseline_pct"] == pytest.approx(diff, abs=1e-5)
    assert other["1"]["ci95"] == pytest.approx([diff - half, diff + half], abs=1e-4)
    assert other["5"]["n"] == 1 and other["5"]["mean_pct"] == pytest.approx(32.0)
    assert report["rules"]["silent"] == {"n": 0, "outcome": {}}
    assert report["baseline"]["ES=F"]["5"] == {"mean_pct": 32.0, "sd_pct": None, "n": 1}  # rounded
    assert "counted once" in report["period"]["counting"]
    assert report["period"]["ci95"].startswith("Student t")


def test_plain_words_say_mean_baseline_n_and_interval(es_study: EventStudy) -> None:
    text = "\n".join(format_study(es_study))
    assert (
        "tariff: ES=F next sample +11.11 % vs baseline +5.85 %, n = 1 (too few for an interval)"
        in text
    )
    assert (
        "other: ES=F next sample −0.47 % vs baseline +5.85 %, n = 2, difference −6.32 %, "
        "95 % CI −37.71 … +25.07"
    ) in text
    assert "counted once" in text
    # one interval (other, next sample; it includes the baseline's difference 0)
    assert "0 of 1 intervals exclude the baseline; about 0.1 would by chance alone" in text


def test_a_one_row_series_and_a_series_of_bad_prices_give_notes() -> None:
    one = build_series("^VIX", [(close(3), 15.0)])
    assert one.notes == ("^VIX: one usable sample only: no change can be measured",)
    bad = build_series("X", [(close(2), -1.0), (close(3), math.nan)])
    assert bad.times == () and bad.notes[-1] == "X: no usable sample: no change can be measured"
    es = study(
        [A("a", "r", utc(5, 4))],
        {"^VIX": one, "X": bad},
        start=utc(5, 1),
        end=utc(5, 10),
    )
    assert es.outcome_json("a") == {
        "^VIX": {"base": {"time": "2019-05-03T20:00:00+00:00", "value": 15.0}, "after": {}}
    }
    assert es.rules["r"].outcome == {}
    assert es.baselines["^VIX"][1].n == 0 and es.baselines["X"][5].mean_pct is None
    assert "(no alert has an outcome)" in format_study(es)


def test_reaction_of_nothing_is_none_and_without_baseline_has_no_difference() -> None:
    assert reaction([], 0.1) is None
    r = reaction([1.0, 3.0], None)
    assert r is not None and (r.mean_pct, r.diff_vs_baseline_pct, r.ci95) == (2.0, None, None)
    assert outcome_at(build_series("X", []), utc(5, 1)) is None


def test_chart_gains_a_reaction_panel_per_symbol(es_study: EventStudy, tmp_path: Path) -> None:
    fig = plot_backtest(
        tmp_path / "chart.png", [], None, rule_order=["tariff", "other"], reactions=es_study
    )
    panel = fig.axes[2]
    assert panel.get_title(loc="left") == "ES=F, next sample: mean % change (baseline +5.85 %)"
    assert [t.get_text() for t in panel.get_yticklabels()] == ["tariff", "other"]
    # the mean of `other` is drawn at −0.47, its interval moved onto the baseline
    points = {tuple(line.get_xdata()) for line in panel.get_lines()}
    assert any(len(p) == 1 and p[0] == pytest.approx(-0.470588, abs=1e-5) for p in points)
    assert (tmp_path / "chart.png").stat().st_size > 10_000


def run_cli(*args: str) -> int:
    return main(["backtest", "--rules", str(RULES), *args])


def test_cli_json_lines_carry_outcomes_and_report_has_the_documented_shape(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    code = run_cli(
        "--headlines", str(FIXTURES / "headlines.csv"),
        "--skip-retweets",
        "--prices", f"ES=F={ES}",
        "--from", "2019-05-01", "--to", "2019-05-10",
        "--json", "--report", str(report),
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0
    lines = [json.loads(line) for line in captured.out.splitlines()]
    # Sunday 16:08 and Monday 13:35 UTC (before the close): both on Friday's close
    assert [(d["rule"], d["outcome"]["ES=F"]["base"]["value"]) for d in lines] == [
        ("tariff", 99.0),
        ("tariff", 99.0),
    ]
    assert lines[1]["outcome"]["ES=F"]["after"] == {
        "1": {"time": "2019-05-06T20:00:00+00:00", "value": 110.0, "change_pct": 11.111111}
    }
    doc = json.loads(report.read_text())
    assert set(doc) == {"period", "baseline", "rules"}
    assert doc["baseline"]["ES=F"]["1"]["n"] == 5
    assert doc["rules"]["tariff"]["n"] == 2
    assert doc["rules"]["tariff"]["outcome"]["ES=F"]["1"]["n"] == 1
    assert set(doc["rules"]["tariff"]["outcome"]["ES=F"]["1"]) == {
        "n", "mean_pct", "median_pct", "up_share", "diff_vs_baseline_pct", "ci95"
    }  # fmt: skip
    err = captured.err
    assert "tariff: ES=F next sample +11.11 % vs baseline +5.85 %, n = 1" in err
    assert "ES=F: sample at 2019-05-09T20:00:00+00:00 left out: price 0 is not positive" in err
    assert f"report: {report}" in err


def test_cli_report_without_prices_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = run_cli("--headlines", str(FIXTURES / "headlines.csv"), "--report", str(tmp_path / "r"))
    assert code == 1
    assert "--report: the market-reaction report needs --prices" in capsys.readouterr().err
