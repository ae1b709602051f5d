"""`python -m bot backtest`: replay history through the rules; table, alert list, chart.

    python -m bot backtest --headlines ../shared/data/trump_tweets_2018_2019.csv \\
        --prices ^VIX=../shared/data/vix_daily.csv --plot backtest.png

Exit status: 0 on success; 1 on input that cannot be used (bad rules, a
missing file or column, a bad date bound, nothing in the period). Rows that
cannot be used are listed on stderr as `file:line: column c: message`, with
their count, and the rest of the file is replayed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TextIO

from bot.backtest.outcomes import EventStudy, build_series, format_study, study
from bot.backtest.replay import (
    BacktestInputError,
    CsvLoad,
    ReplayResult,
    parse_day,
    read_headlines,
    read_prices,
    replay,
    split_price_arg,
    within,
)
from bot.models import NewsEvent, PriceEvent
from bot.rules.loader import RuleLoadError, RuleSet, load_rules_dir
from bot.settings import Settings

DEFAULT_PLOT_SYMBOL = "^VIX"
SKIPPED_EXAMPLES = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The backtest flags (`--rules` is added by bot.cli)."""
    parser.add_argument(
        "--headlines",
        type=Path,
        required=True,
        metavar="CSV",
        help="headlines/statements CSV: one news event per row at its own time",
    )
    parser.add_argument(
        "--prices",
        action="extend",
        nargs="+",
        default=[],
        metavar="SYMBOL=CSV",
        help="price CSV(s) as SYMBOL=CSV, e.g. ^VIX=vix_daily.csv (date,close; daily rows are "
        "samples at the 16:00 New York close)",
    )
    parser.add_argument(
        "--from",
        dest="start",
        metavar="DATE",
        help="start (YYYY-MM-DD or ISO time; default: first headline)",
    )
    parser.add_argument(
        "--to", dest="end", metavar="DATE", help="end, inclusive (default: last headline)"
    )
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="OUT.png",
        help="write a chart of the alerts over the price series (needs: pip install 'readout[plot]')",
    )
    parser.add_argument(
        "--plot-symbol",
        metavar="SYMBOL",
        help=f"series to draw (default: {DEFAULT_PLOT_SYMBOL} if given, else the first)",
    )
    parser.add_argument(
        "--color-by",
        choices=["rule", "severity"],
        default="rule",
        help="marker colours on the chart",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print alerts as JSON lines on stdout (summary to stderr)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="FILE.json",
        help="write the market-reaction study (baselines, per-rule reactions with 95 %% CI) "
        "as JSON",
    )
    parser.add_argument(
        "--time-column", default="created_at", help="headline time column (default: created_at)"
    )
    parser.add_argument(
        "--text-column", default="text", help="headline text column (default: text)"
    )
    parser.add_argument(
        "--id-column", help="headline id column (default: id, when the file has one)"
    )
    parser.add_argument(
        "--source-name",
        help="source id given to the headlines (default: the file name without .csv)",
    )
    parser.add_argument(
        "--source-column",
        help="column naming each headline's source (default: source, when the file has one); "
        "each row is then from its own source and stories form across sources as live",
    )
    parser.add_argument(
        "--skip-retweets", action="store_true", help="leave out rows whose is_retweet is true"
    )
    parser.add_argument(
        "--database",
        metavar="URL",
        help="replay through a real database at URL (e.g. sqlite+aiosqlite:///bt.db): one SQL "
        "transaction per event as live, about 25x slower; default: the same state kept in memory",
    )


def run_backtest(args: argparse.Namespace, settings: Settings) -> int:
    """Run the backtest the parsed `args` describe; 0 on success, 1 on bad input."""
    try:
        return _run(args, settings)
    except BacktestInputError as exc:
        print(f"backtest: {exc}", file=sys.stderr)
        return 1


def _date_range(args: argparse.Namespace) -> tuple[datetime | None, datetime | None]:
    """--from/--to as datetimes (either may be absent)."""
    try:
        start = parse_day(args.start) if args.start else None
        end = parse_day(args.end, end=True) if args.end else None
    except ValueError as exc:
        raise BacktestInputError(f"--from/--to: {exc}") from None
    if start and end and start > end:
        raise BacktestInputError(f"--from {args.start} is after --to {args.end}")
    return start, end


def _read_price_args(args: argparse.Namespace, ruleset: RuleSet) -> list[tuple[str, CsvLoad[PriceEvent]]]:
    """Each --prices SYMBOL=CSV, read; one CSV per symbol."""
    prices: list[tuple[str, CsvLoad[PriceEvent]]] = []
    for spec in args.prices:
        try:
            symbol, path = split_price_arg(spec)
        except ValueError as exc:
            raise BacktestInputError(f"--prices: {exc}") from None
        if any(symbol == seen for seen, _ in prices):
            raise BacktestInputError(f"--prices: {symbol} is given twice (one CSV per symbol)")
        prices.append((symbol, read_prices(path, symbol, tags=_tags_for(ruleset, symbol))))
    return prices


def _report_loads(loads: Sequence[CsvLoad[NewsEvent] | CsvLoad[PriceEvent]], err: TextIO) -> None:
    for load in loads:
        for line in load.skipped_report(limit=SKIPPED_EXAMPLES):
            print(line, file=err)
        for note in load.notes:
            print(f"{load.name}: {note}", file=err)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    err = sys.stderr
    try:
        ruleset = load_rules_dir(settings.rules_dir, defaults=settings.defaults_dir())
    except RuleLoadError as exc:
        for problem in exc.problems:
            print(problem, file=err)
        print(f"backtest: {settings.rules_dir}: the rules have problems (see above)", file=err)
        return 1
    for warning in ruleset.warnings:  # the backtest brings its own prices (--prices)
        print(f"warning: {warning}", file=err)
    if args.plot is not None and importlib.util.find_spec("matplotlib") is None:
        raise BacktestInputError("--plot needs matplotlib: pip install 'readout[plot]' (or pip install matplotlib)")
    start, end = _date_range(args)

    began = time.perf_counter()
    headlines = read_headlines(
        args.headlines,
        time_column=args.time_column,
        text_column=args.text_column,
        id_column=args.id_column,
        source=args.source_name,
        source_column=args.source_column,
        skip_retweets=args.skip_retweets,
    )
    prices = _read_price_args(args, ruleset)
    if args.report is not None and not prices:
        raise BacktestInputError("--report: the market-reaction report needs --prices")
    read_seconds = time.perf_counter() - began
    symbols = [symbol for symbol, _ in prices]
    plot_symbol: str | None = args.plot_symbol or (
        DEFAULT_PLOT_SYMBOL if DEFAULT_PLOT_SYMBOL in symbols else next(iter(symbols), None)
    )
    if plot_symbol is not None and plot_symbol not in symbols:
        raise BacktestInputError(f"--plot-symbol {plot_symbol}: no --prices given for it")

    _report_loads([headlines, *(p for _, p in prices)], err)
    start = start or headlines.events[0].time
    end = end or headlines.events[-1].time
    news = within(headlines.events, start, end)
    series = {symbol: within(load.events, start, end) for symbol, load in prices}
    events: list[NewsEvent | PriceEvent] = [*news, *(e for evs in series.values() for e in evs)]
    if not events:
        raise BacktestInputError(f"no headlines or prices between {_day(start)} and {_day(end)}")

    result = asyncio.run(replay(events, ruleset, database_url=args.database))

    from bot.backtest.report import format_alerts, format_summary, summarize

    reactions = _study(result, prices, ruleset, start, end) if prices else None
    out: TextIO = err if args.json else sys.stdout
    if args.json:
        _print_json_lines(result, reactions)
    lines = _header(
        settings, ruleset, headlines, prices, news, series, start, end, result, read_seconds
    )
    if not args.json:
        lines += ["", f"Alerts ({len(result.alerts)}):", *format_alerts(result.alerts)]
    lines += ["", "Summary by rule:", *format_summary(summarize(result.alerts, ruleset))]
    lines += ["", *format_study(reactions)] if reactions is not None else []
    print("\n".join(lines), file=out)
    _write_report(args.report, reactions, out)
    if args.plot is not None:
        _plot(args.plot, result, ruleset, series, plot_symbol, reactions, args.color_by, start, end)
        print(f"chart: {args.plot}", file=out)
    return 0


def _plot(
    out: Path,
    result: ReplayResult,
    ruleset: RuleSet,
    series: dict[str, list[PriceEvent]],
    plot_symbol: str | None,
    reactions: EventStudy | None,
    color_by: str,
    start: datetime,
    end: datetime,
) -> None:
    from bot.backtest.plot import PriceSeries, plot_backtest

    plot_backtest(
        out,
        result.alerts,
        PriceSeries.from_events(plot_symbol, series[plot_symbol]) if plot_symbol else None,
        rule_order=[r.id for r in ruleset.enabled_rules()],
        ruleset=ruleset,
        color_by=color_by,
        reactions=reactions,
        title=f"Readout backtest {_day(start)} to {_day(end)}: {len(result.alerts)} alerts"
        + (f" on {plot_symbol}" if plot_symbol else ""),
    )


def _print_json_lines(result: ReplayResult, reactions: EventStudy | None) -> None:
    """One JSON line per alert; with --prices each carries its `outcome`."""
    for alert in result.alerts:
        line: dict[str, object] = alert.to_json_dict()
        if reactions is not None:
            line["outcome"] = reactions.outcome_json(alert.id)
        sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _study(
    result: ReplayResult,
    prices: list[tuple[str, CsvLoad[PriceEvent]]],
    ruleset: RuleSet,
    start: datetime,
    end: datetime,
) -> EventStudy:
    """Reactions after every alert on every --prices series (the whole file: an alert near the
    period's end still gets the samples after it; baselines stay within the period)."""
    series = {
        symbol: build_series(symbol, ((e.time, e.last) for e in load.events))
        for symbol, load in prices
    }
    return study(
        result.alerts,
        series,
        start=start,
        end=end,
        rule_order=[r.id for r in ruleset.enabled_rules()],
    )


def _write_report(path: Path | None, reactions: EventStudy | None, out: TextIO) -> None:
    """`--report FILE.json` (nothing without the flag or without --prices)."""
    if path is None or reactions is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(reactions.to_report(), indent=2, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise BacktestInputError(f"--report {path}: cannot write: {exc.strerror or exc}") from None
    print(f"report: {path}", file=out)


def _tags_for(ruleset: RuleSet, symbol: str) -> list[str]:
    """Tags of the live price sources for `symbol`, so rules limited by `sources:` tags apply."""
    return [t for p in ruleset.sources.prices if p.symbol == symbol for t in p.tags]


def _day(when: datetime) -> str:
    return when.strftime("%Y-%m-%d")


def _header(
    settings: Settings,
    ruleset: RuleSet,
    headlines: CsvLoad[NewsEvent],
    prices: list[tuple[str, CsvLoad[PriceEvent]]],
    news: list[NewsEvent],
    series: dict[str, list[PriceEvent]],
    start: datetime,
    end: datetime,
    result: ReplayResult,
    read_seconds: float,
) -> list[str]:
    lines = [
        (
            f"Backtest {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC, "
            f"rules from {settings.rules_dir} ({len(ruleset.enabled_rules())} enabled)"
        ),
        (
            f"  {headlines.name}: {len(news):,} headlines in period "
            f"({headlines.rows:,} rows, {len(headlines.skipped):,} skipped"
            + (f", {headlines.left_out:,} retweets left out)" if headlines.left_out else ")")
        ),
    ]
    for symbol, load in prices:
        lines.append(
            f"  {load.name} as {symbol}: {len(series[symbol]):,} samples in period "
            f"({load.rows:,} rows, {len(load.skipped):,} skipped)"
        )
    rate = result.events / result.seconds if result.seconds > 0 else float("inf")
    lines.append(
        f"Replayed {result.events:,} events in {result.seconds:.2f} s ({rate:,.0f} events/s; "
        f"CSV reading {read_seconds:.2f} s)"
    )
    return lines
