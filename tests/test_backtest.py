"""Backtest: CSV readers, replay through the live pipeline, report, chart, CLI.

Fixtures in tests/fixtures/backtest/: small CSVs with known outcomes under the
rules in tests/fixtures/backtest/rules/ (a tariff match rule with a 1h cooldown
keyed per rule, a VIX > 30 threshold with hysteresis 1, and a tariff + VIX-jump
confirm rule within 30 minutes).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from matplotlib.patches import Rectangle

from bot.backtest.memory_store import MemoryStore
from bot.backtest.plot import PriceSeries, marker_count, plot_backtest
from bot.backtest.replay import (
    BacktestInputError,
    daily_close,
    parse_day,
    read_headlines,
    read_prices,
    replay,
    split_price_arg,
    within,
)
from bot.backtest.report import format_alerts, format_summary, summarize
from bot.cli import main
from bot.models import Alert, NewsEvent, PriceEvent
from bot.rules.loader import RuleSet, load_rules_dir

FIXTURES = Path(__file__).parent / "fixtures" / "backtest"
RULES = FIXTURES / "rules"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return load_rules_dir(RULES)


def fired(alerts: list[Alert]) -> list[tuple[str, str]]:
    return [(a.rule_id, a.event_time.isoformat()) for a in alerts]


# ---------------------------------------------------------------------------
# Readers


def test_headlines_become_news_events_at_their_own_time() -> None:
    load = read_headlines(FIXTURES / "headlines.csv")
    assert load.rows == 5 and not load.skipped
    assert [e.id for e in load.events] == [f"headlines:{i}" for i in range(101, 106)]
    first = load.events[0]
    assert first.source == "headlines"
    assert first.time == utc(2019, 5, 5, 16, 8, 46)
    assert first.title == (
        "Tariffs: the 10% will go up to 25% on Friday.\n"
        "325 Billions Dollars of goods remain untaxed."
    )


def test_headline_flags_pick_columns_source_and_retweets() -> None:
    load = read_headlines(FIXTURES / "headlines.csv", source="potus", skip_retweets=True)
    assert [e.id for e in load.events] == ["potus:101", "potus:102", "potus:103", "potus:104"]
    assert load.notes == ["1 retweets left out (--skip-retweets)"]
    renamed = read_headlines(
        FIXTURES / "vix_intraday.csv", time_column="datetime", text_column="close"
    )
    assert [e.title for e in renamed.events] == ["16.00", "18.00", "17.50"]
    assert renamed.notes == []


def test_daily_prices_are_samples_at_the_new_york_close() -> None:
    load = read_prices(FIXTURES / "vix_daily.csv", "^VIX", tags=["volatility"])
    assert load.rows == 8 and not load.skipped
    feb5 = load.events[2]
    assert feb5.time == utc(2018, 2, 5, 21, 0)  # 16:00 EST
    assert (feb5.last, feb5.previous_close) == (37.32, 17.31)
    assert load.events[0].previous_close is None
    assert feb5.tags == ("volatility",) and feb5.source == "backtest:^VIX"
    assert daily_close(date(2019, 8, 1)) == utc(2019, 8, 1, 20, 0)  # 16:00 EDT


def test_intraday_prices_keep_their_time() -> None:
    load = read_prices(FIXTURES / "vix_intraday.csv", "^VIX")
    assert [e.time for e in load.events] == [
        utc(2019, 5, 6, 13, 30),
        utc(2019, 5, 6, 13, 45),
        utc(2019, 5, 6, 14, 0),
    ]
    assert load.events[1].previous_close == 16.0


def test_bad_rows_are_skipped_and_reported_with_file_line_and_column() -> None:
    load = read_headlines(FIXTURES / "bad_rows.csv")
    assert load.rows == 8
    assert [e.id for e in load.events] == ["bad_rows:1"]
    assert [str(p) for p in load.skipped] == [
        "bad_rows.csv:4: column created_at: unparsable date 'yesterday'",
        "bad_rows.csv:5: column text: empty text",
        "bad_rows.csv:6: column text: missing (the row has 2 of 3 columns)",
        "bad_rows.csv:7: column id: duplicate id '1' (first on line 2)",
        "bad_rows.csv:8: column id: empty id",
        "bad_rows.csv:9: column created_at: unparsable date '2019-13-01T00:00:00Z'",
        "bad_rows.csv:10: 4 fields but the header has 3 (an unquoted comma?)",
    ]
    assert load.skipped_report(limit=2) == [
        "bad_rows.csv: 7 rows skipped:",
        "  bad_rows.csv:4: column created_at: unparsable date 'yesterday'",
        "  bad_rows.csv:5: column text: empty text",
        "  … and 5 more",
    ]


def test_bad_price_rows_are_skipped_and_reported() -> None:
    load = read_prices(FIXTURES / "bad_prices.csv", "^VIX")
    assert [str(p) for p in load.skipped] == [
        "bad_prices.csv:3: column close: not a number: '.'",
        "bad_prices.csv:5: column date: unparsable date '2018-02-31'",
        "bad_prices.csv:6: column close: empty value",
    ]
    # 02/05/2018 (CBOE's own format) is read; the previous close skips the bad row
    assert [(e.time.date(), e.previous_close) for e in load.events] == [
        (date(2018, 2, 1), None),
        (date(2018, 2, 5), 13.47),
    ]


@pytest.mark.parametrize(
    ("name", "rest"),
    [
        (
            "bad_missing_column.csv",
            ":1: missing column created_at (the header has: id, when, text)",
        ),
        ("header_only.csv", ": no data rows (only a header)"),
        (
            "bad_all_rows.csv",
            (
                ": no usable rows\nbad_all_rows.csv: 1 row skipped:\n"
                "  bad_all_rows.csv:2: column created_at: unparsable date 'soon'"
            ),
        ),
        ("no_such_file.csv", ": no such file"),
    ],
)
def test_unusable_headline_files_raise_a_clear_error(name: str, rest: str) -> None:
    with pytest.raises(BacktestInputError) as info:
        read_headlines(FIXTURES / name)
    assert str(info.value) == f"{FIXTURES / name}{rest}"


def test_price_file_without_a_time_or_value_column_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BacktestInputError, match=r"headlines\.csv:1: missing column date"):
        read_prices(FIXTURES / "headlines.csv", "^VIX")
    ohl = tmp_path / "ohl.csv"
    ohl.write_text("date,open,high\n2018-02-01,1,2\n")
    with pytest.raises(BacktestInputError, match=r"ohl\.csv:1: missing column close"):
        read_prices(ohl, "^VIX")


def test_price_argument_symbols_may_contain_equals(tmp_path: Path) -> None:
    csv = tmp_path / "sp500.csv"
    csv.write_text("date,close\n")
    assert split_price_arg(f"ES=F={csv}") == ("ES=F", csv)
    assert split_price_arg("^VIX=vix.csv") == ("^VIX", Path("vix.csv"))
    assert split_price_arg("ES=F=missing.csv") == ("ES=F", Path("missing.csv"))
    with pytest.raises(ValueError, match="expected SYMBOL=CSV"):
        split_price_arg("vix.csv")


def test_period_bounds() -> None:
    assert parse_day("2019-05-05") == utc(2019, 5, 5)
    assert parse_day("2019-05-05", end=True) == datetime(2019, 5, 5, 23, 59, 59, 999999, tzinfo=UTC)
    assert parse_day("2019-05-05T16:00:00Z", end=True) == utc(2019, 5, 5, 16)
    with pytest.raises(ValueError, match="not a date: 'May 5'"):
        parse_day("May 5")
    events = read_headlines(FIXTURES / "headlines.csv").events
    assert len(within(events, parse_day("2019-05-06"), None)) == 2


# ---------------------------------------------------------------------------
# Replay: known rows → known alerts


async def test_tariff_fires_near_miss_does_not_and_cooldown_suppresses(ruleset: RuleSet) -> None:
    news = read_headlines(FIXTURES / "headlines.csv").events
    result = await replay(news, ruleset)
    # 101 fires; 102 (24 min later) is inside the 1h cooldown; 103 mentions tariffs without
    # raising them; 104 fires the next day; 105 fires 1h25m after 104
    assert fired(result.alerts) == [
        ("tariff", "2019-05-05T16:08:46+00:00"),
        ("tariff", "2019-05-06T13:35:00+00:00"),
        ("tariff", "2019-05-06T15:00:00+00:00"),
    ]
    assert [a.event_id for a in result.alerts] == [
        "headlines:101",
        "headlines:104",
        "headlines:105",
    ]
    assert result.alerts[0].created_at == utc(2019, 5, 5, 16, 8, 46)  # the simulated clock
    assert (result.news_events, result.price_events, result.stored_alerts) == (5, 0, 3)


async def test_cooldown_is_what_silences_the_second_tweet(ruleset: RuleSet) -> None:
    news = read_headlines(FIXTURES / "headlines.csv").events
    only_102 = [e for e in news if e.id == "headlines:102"]
    result = await replay(only_102, ruleset)
    assert fired(result.alerts) == [("tariff", "2019-05-05T16:40:00+00:00")]


async def test_vix_crossing_30_fires_once_per_crossing(ruleset: RuleSet) -> None:
    prices = read_prices(FIXTURES / "vix_daily.csv", "^VIX").events
    result = await replay(prices, ruleset)
    # 37.32 crosses; 29.98 and 29.50 stay within the hysteresis, so 33.46 does not
    # fire again; 28.00 re-arms and 31.00 crosses again
    assert fired(result.alerts) == [
        ("vix-above-30", "2018-02-05T21:00:00+00:00"),
        ("vix-above-30", "2018-02-12T21:00:00+00:00"),
    ]
    assert result.alerts[0].explanation.price_detail == "^VIX 37.32 ≥ 30"


async def test_tariff_tweet_and_vix_jump_within_the_window_fire_the_composite(
    ruleset: RuleSet,
) -> None:
    news = read_headlines(FIXTURES / "headlines.csv").events
    prices = read_prices(FIXTURES / "vix_intraday.csv", "^VIX").events
    result = await replay([*news, *prices], ruleset)
    composite = [a for a in result.alerts if a.kind == "composite"]
    assert fired(composite) == [("tariff-vix-confirm", "2019-05-06T13:45:00+00:00")]
    assert composite[0].explanation.parts == ("tariff", "vix-jump")
    assert composite[0].severity.value == "critical"
    # the jump alone (a disabled building block) raises nothing
    assert not [a for a in result.alerts if a.rule_id == "vix-jump"]


async def test_vix_jump_outside_the_window_does_not_confirm(ruleset: RuleSet) -> None:
    news = [e for e in read_headlines(FIXTURES / "headlines.csv").events if e.id == "headlines:101"]
    prices = read_prices(FIXTURES / "vix_intraday.csv", "^VIX").events  # the next day
    result = await replay([*news, *prices], ruleset)
    assert [a.rule_id for a in result.alerts] == ["tariff"]


async def test_memory_state_and_sqlite_store_give_the_same_alerts(ruleset: RuleSet) -> None:
    events: list[NewsEvent | PriceEvent] = [
        *read_headlines(FIXTURES / "headlines.csv").events,
        *read_prices(FIXTURES / "vix_intraday.csv", "^VIX").events,
        *read_prices(FIXTURES / "vix_daily.csv", "^VIX", source="daily").events,
    ]
    fast = await replay(events, ruleset)
    live = await replay(events, ruleset, database_url="sqlite+aiosqlite:///:memory:")
    assert len(fast.alerts) == 6
    assert fast.alerts == live.alerts
    assert live.stored_alerts == fast.stored_alerts == 6


async def test_replay_refuses_a_database_that_already_saw_events(
    ruleset: RuleSet, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bt.db'}"
    news = read_headlines(FIXTURES / "headlines.csv").events
    assert len((await replay(news, ruleset, database_url=url)).alerts) == 3
    with pytest.raises(BacktestInputError, match="already holds 5 events"):
        await replay(news, ruleset, database_url=url)


async def test_memory_store_transaction_is_all_or_nothing() -> None:
    store = MemoryStore()
    ev = read_headlines(FIXTURES / "headlines.csv").events[0]
    with pytest.raises(RuntimeError):
        async with store.transaction() as conn:
            assert await store.mark_seen(conn, ev, at=ev.time)
            raise RuntimeError("crash mid-event")
    async with store.transaction() as conn:
        assert await store.mark_seen(conn, ev, at=ev.time)
        assert not await store.mark_seen(conn, ev, at=ev.time)


# ---------------------------------------------------------------------------
# Report and chart


async def test_report_lists_every_alert_and_summarizes_per_rule(ruleset: RuleSet) -> None:
    news = read_headlines(FIXTURES / "headlines.csv").events
    prices = read_prices(FIXTURES / "vix_intraday.csv", "^VIX").events
    alerts = (await replay([*news, *prices], ruleset)).alerts
    listing = format_alerts(alerts)
    assert listing[0].split() == ["time", "(UTC)", "rule", "severity", "tone", "text"]
    assert len(listing) == 2 + 4
    assert (
        "2019-05-05 16:08  tariff              warning   neutral  Tariffs: the 10% will go up"
        in listing[2]
    )
    summary = format_summary(summarize(alerts, ruleset))
    assert summary[:6] == [
        "rule                kind       severity  fired  first       last",
        "------------------  ---------  --------  -----  ----------  ----------",
        "tariff              news       warning       3  2019-05-05  2019-05-06",
        "vix-above-30        price      warning       0  -           -",
        "tariff-vix-confirm  composite  critical      1  2019-05-06  2019-05-06",
        "4 alerts from 2 of 3 rules",
    ]
    assert (
        "  tariff" in summary
        and "    2019-05-06 13:35  We will raise Tariffs on China to 25% on Friday." in summary
    )


async def test_plot_writes_a_png_with_one_marker_per_alert(
    ruleset: RuleSet, tmp_path: Path
) -> None:
    news = read_headlines(FIXTURES / "headlines.csv").events
    intraday = read_prices(FIXTURES / "vix_intraday.csv", "^VIX").events
    alerts = (await replay([*news, *intraday], ruleset)).alerts
    out = tmp_path / "chart.png"
    fig = plot_backtest(
        out,
        alerts,
        PriceSeries.from_events("^VIX", intraday),
        rule_order=[r.id for r in ruleset.enabled_rules()],
        ruleset=ruleset,
    )
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 20_000
    assert marker_count(fig) == len(alerts) == 4
    top, bars = fig.axes[:2]
    legend = top.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == [
        "tariff (3)",
        "tariff-vix-confirm (1)",
        "news alert",
        "composite alert",
    ]
    assert [p.get_width() for p in bars.patches if isinstance(p, Rectangle)] == [3, 0, 1]
    # no price series: one lane per rule, same markers
    fig2 = plot_backtest(
        tmp_path / "lanes.png", alerts, None, rule_order=["tariff", "tariff-vix-confirm"]
    )
    assert marker_count(fig2) == 4


# ---------------------------------------------------------------------------
# CLI


def run_cli(*args: str) -> int:
    return main(["backtest", "--rules", str(RULES), *args])


def test_cli_prints_the_alert_list_and_summary(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    chart = tmp_path / "out.png"
    code = run_cli(
        "--headlines",
        str(FIXTURES / "headlines.csv"),
        "--prices",
        f"^VIX={FIXTURES / 'vix_intraday.csv'}",
        "--plot",
        str(chart),
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "headlines.csv: 5 headlines in period (5 rows, 0 skipped)" in out
    assert "vix_intraday.csv as ^VIX: 3 samples in period (3 rows, 0 skipped)" in out
    assert "Alerts (4):" in out and "Summary by rule:" in out
    assert "tariff-vix-confirm  composite  critical      1  2019-05-06  2019-05-06" in out
    assert chart.stat().st_size > 20_000


def test_cli_json_lines_have_the_once_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli("--headlines", str(FIXTURES / "headlines.csv"), "--skip-retweets", "--json")
    captured = capsys.readouterr()
    assert code == 0
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [(d["rule"], d["time"]) for d in lines] == [
        ("tariff", "2019-05-05T16:08:46+00:00"),
        ("tariff", "2019-05-06T13:35:00+00:00"),
    ]
    assert set(lines[0]) == {
        "id",
        "rule",
        "description",
        "severity",
        "kind",
        "title",
        "url",
        "source",
        "time",
        "watchlist",
        "sectors",
        "tone",
        "tone_score",
        "why",
        "message",
        "story",
        "sources",
        "update",
    }
    assert lines[0]["watchlist"] == ["BABA", "FXI"]
    assert "Summary by rule:" in captured.err  # the table goes to stderr, stdout is JSON only
    assert "headlines.csv: 1 retweets left out (--skip-retweets)" in captured.err


def test_cli_period_limits_the_replay(capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli(
        "--headlines",
        str(FIXTURES / "headlines.csv"),
        "--from",
        "2019-05-06",
        "--to",
        "2019-05-06",
        "--json",
    )
    assert code == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_cli_reports_skipped_rows_and_still_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli("--headlines", str(FIXTURES / "bad_rows.csv"))
    captured = capsys.readouterr()
    assert code == 0
    assert captured.err.splitlines()[:7] == [
        "bad_rows.csv: 7 rows skipped:",
        "  bad_rows.csv:4: column created_at: unparsable date 'yesterday'",
        "  bad_rows.csv:5: column text: empty text",
        "  bad_rows.csv:6: column text: missing (the row has 2 of 3 columns)",
        "  bad_rows.csv:7: column id: duplicate id '1' (first on line 2)",
        "  bad_rows.csv:8: column id: empty id",
        "  … and 2 more",
    ]
    assert "bad_rows.csv: 1 headlines in period (8 rows, 7 skipped)" in captured.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--headlines", "FIX/bad_missing_column.csv"],
            "FIX/bad_missing_column.csv:1: missing column created_at",
        ),
        (["--headlines", "FIX/nope.csv"], "FIX/nope.csv: no such file"),
        (
            ["--headlines", "FIX/headlines.csv", "--prices", "^VIX=FIX/nope.csv"],
            "FIX/nope.csv: no such file",
        ),
        (
            ["--headlines", "FIX/headlines.csv", "--prices", "vix.csv"],
            "--prices: expected SYMBOL=CSV",
        ),
        (["--headlines", "FIX/headlines.csv", "--from", "soon"], "--from/--to: not a date: 'soon'"),
        (
            ["--headlines", "FIX/headlines.csv", "--from", "2020-01-01"],
            "no headlines or prices between",
        ),
        (
            ["--headlines", "FIX/headlines.csv", "--time-column", "when"],
            "FIX/headlines.csv:1: missing column when",
        ),
        (
            [
                "--headlines",
                "FIX/headlines.csv",
                "--prices",
                "^VIX=FIX/vix_daily.csv",
                "^VIX=FIX/vix_intraday.csv",
            ],
            "--prices: ^VIX is given twice",
        ),
        (
            ["--headlines", "FIX/headlines.csv", "--plot", "x.png", "--plot-symbol", "ES=F"],
            "--plot-symbol ES=F: no --prices given for it",
        ),
    ],
)
def test_cli_bad_input_exits_1_with_a_clear_message(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_cli(*(a.replace("FIX", str(FIXTURES)) for a in args))
    err = capsys.readouterr().err
    assert code == 1
    assert f"backtest: {message.replace('FIX', str(FIXTURES))}" in err


def test_cli_bad_rules_exit_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(
        ["backtest", "--rules", str(tmp_path), "--headlines", str(FIXTURES / "headlines.csv")]
    )
    assert code == 1
    assert "missing: a rules directory needs sources.yaml" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# The real 2018–2019 data beside the repo


@pytest.mark.skipif(
    not (SHARED_DATA / "trump_tweets_2018_2019.csv").is_file()
    or not (SHARED_DATA / "vix_daily.csv").is_file(),
    reason=f"real backtest data not found at {SHARED_DATA} (../shared/data beside the repo)",
)
async def test_real_2018_2019_archive_with_daily_vix(ruleset: RuleSet) -> None:
    tweets = read_headlines(SHARED_DATA / "trump_tweets_2018_2019.csv")
    vix = read_prices(SHARED_DATA / "vix_daily.csv", "^VIX")
    assert (tweets.rows, len(tweets.events), tweets.skipped) == (11_386, 11_386, [])
    assert (vix.rows, vix.skipped) == (9_223, [])
    period = within(vix.events, utc(2018, 1, 1), utc(2020, 1, 1))
    assert len(period) == 503

    started = time.perf_counter()
    result = await replay([*tweets.events, *period], ruleset)
    assert time.perf_counter() - started < 30  # about 1-2 s on a laptop
    assert result.events == 11_386 + 503

    by_event = {(a.rule_id, a.event_id) for a in result.alerts}
    # the 2019-05-05 "10% will go up to 25% on Friday" tweet, and the 2019-08-01 tariff on $300B
    assert ("tariff", "trump_tweets_2018_2019:1125069835044573186") in by_event
    assert ("tariff", "trump_tweets_2018_2019:1156979446877962243") in by_event
    vix_days = [a.event_time.date() for a in result.alerts if a.rule_id == "vix-above-30"]
    assert vix_days[0] == date(2018, 2, 5)  # Volmageddon: close 37.32


@pytest.mark.skipif(
    not (SHARED_DATA / "trump_tweets_2018_2019.csv").is_file()
    or not (SHARED_DATA / "vix_daily.csv").is_file(),
    reason=f"real backtest data not found at {SHARED_DATA} (../shared/data beside the repo)",
)
async def test_real_data_same_alerts_in_memory_and_in_sqlite() -> None:
    """May 2019 with the shipped rules: the in-memory state and the SQL Store agree."""
    rules = load_rules_dir(Path(__file__).resolve().parents[1] / "rules")
    start, end = utc(2019, 5, 1), utc(2019, 6, 1)
    tweets = within(read_headlines(SHARED_DATA / "trump_tweets_2018_2019.csv").events, start, end)
    vix = within(read_prices(SHARED_DATA / "vix_daily.csv", "^VIX").events, start, end)
    fast = await replay([*tweets, *vix], rules)
    live = await replay([*tweets, *vix], rules, database_url="sqlite+aiosqlite:///:memory:")
    assert fast.alerts and fast.alerts == live.alerts


def test_a_duplicate_price_date_is_reported_with_both_lines(tmp_path: Path) -> None:
    csv = tmp_path / "vix.csv"
    csv.write_text("date,close\n2019-05-03,12.87\n2019-05-06,15.44\n2019-05-06,15.50\n")
    load = read_prices(csv, "^VIX")
    assert [str(p) for p in load.skipped] == [
        "vix.csv:4: column date: duplicate time '2019-05-06' (first on line 3)"
    ]
    assert len(load.events) == 2


# ---- stories across sources -------------------------------------------------------------

# Real headlines (tests/fixtures/stories_april_2025.json keeps outlet, date and URL) of China's
# 34 %, 84 % and 125 % counter-tariffs of April 2025, one outlet per row.
STORIES_CSV = FIXTURES / "stories.csv"


def test_source_column_gives_each_row_its_source() -> None:
    events = read_headlines(STORIES_CSV).events
    assert events[0].source == "Amoledo" and events[0].id == "Amoledo:1"
    assert len({e.source for e in events}) == len(events)
    assert {e.source for e in read_headlines(STORIES_CSV, source="wire", source_column="id").events} == {
        str(n) for n in range(1, 9)
    }


def test_source_column_that_is_missing_is_a_clear_error() -> None:
    with pytest.raises(BacktestInputError, match="outlet"):
        read_headlines(STORIES_CSV, source_column="outlet")


def test_cli_json_stories_form_across_sources(capsys: pytest.CaptureFixture[str]) -> None:
    repo_rules = Path(__file__).resolve().parent.parent / "rules"
    code = main(["backtest", "--rules", str(repo_rules), "--headlines", str(STORIES_CSV), "--json"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0 and lines
    by_story: dict[str, list[dict[str, object]]] = {}
    for line in lines:
        by_story.setdefault(str(line["story"]), []).append(line)
    assert len(by_story) == 3  # 34 %, 84 %, 125 %: three events, three stories
    for group in by_story.values():
        assert [line["update"] for line in group] == [False] + [True] * (len(group) - 1)
    last = lines[-1]
    assert "125%" in str(last["title"])
    reported = list(dict.fromkeys(str(line["source"]) for line in by_story[str(last["story"])]))
    assert last["sources"] == reported and len(reported) >= 2  # every outlet so far, in order
