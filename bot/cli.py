"""Command line: `python -m bot run | once | demo | check-rules | explain | test-rules | dry-run | probe |
backtest | stats | db upgrade`.

Every failure a user can cause — a bad setting, a missing rules folder, a database that
does not exist, a rejected chat token — ends in one line saying what and how to fix it,
and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from bot.settings import Settings, settings_problems
from bot.startup import StartupError, check_database, explain
from bot.summary import NO_SOURCE_ANSWERED, plural

if TYPE_CHECKING:
    from bot.app import Readout

log = logging.getLogger("bot")

RULES_HELP = (
    "folder with sources.yaml, watchlists.yaml and rule files; files it lacks come from the "
    "bundled rules (default: $RULES_DIR, else ./rules, else the bundled rules)"
)


def _rules_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rules", type=Path, metavar="DIR", help=RULES_HELP)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bot",
        description="Readout: alerts on the US-China trade-war tape. Settings come from the "
        "environment or .env (see .env.example).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the bot: poll sources, alert, serve chat commands")
    _rules_option(run)

    once = sub.add_parser("once", help="poll every source once, evaluate, deliver, print a summary, exit")
    _rules_option(once)
    once.add_argument("--json", action="store_true", help="print each new alert as one JSON line on stdout")

    from bot.demo.run import DEFAULT_SPEED

    demo = sub.add_parser(
        "demo",
        help="play a built-in trade-war day from a local feed server through the real bot (offline)",
    )
    demo.add_argument(
        "--speed",
        type=_positive,
        default=DEFAULT_SPEED,
        metavar="MIN_PER_S",
        help="scenario minutes per real second (default 12: the 7-hour day in 35 s)",
    )
    _rules_option(demo)

    check = sub.add_parser("check-rules", help="validate sources, watch-lists and rules; path:line per problem")
    _rules_option(check)

    probe = sub.add_parser("probe", help="fetch every configured source once and report which answer")
    _rules_option(probe)

    bt = sub.add_parser("backtest", help="replay history through the rules")
    _rules_option(bt)
    try:
        from bot.backtest.cli import add_arguments
    except ImportError:  # the backtest package is optional at import time
        pass
    else:
        add_arguments(bt)

    _add_stats(sub)
    _add_explain(sub)
    _add_test_rules(sub)
    _add_dry_run(sub)

    db = sub.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade"], help="apply schema migrations")
    return p


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
    return value


def _add_test_rules(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tr = sub.add_parser("test-rules", help="run rule unit tests (default: every *.yaml under <rules>/tests/)")
    _rules_option(tr)
    tr.add_argument("files", nargs="*", type=Path, metavar="FILE", help="test files (default: <rules>/tests/*.yaml)")


def _since(value: str) -> float:
    from bot.rules.schema import parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return seconds


def _add_dry_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dr = sub.add_parser(
        "dry-run", help="replay the stored headlines and prices through the rules on disk: alerts then vs now"
    )
    _rules_option(dr)
    dr.add_argument("--since", type=_since, default=7 * 86400.0, help="how far back, e.g. 12h, 7d (default 7d)")


async def _dry_run(settings: Settings, since: float) -> int:
    """Rules on disk against what the bot saw: per rule, alerts then vs now, headlines gained/lost."""
    from datetime import timedelta

    from bot.dryrun import dry_run, report
    from bot.rules.loader import RuleSet
    from bot.storage.archive import EventArchive
    from bot.storage.store import Store

    ruleset = _load_or_report(settings)
    if ruleset is None:
        return 1
    assert isinstance(ruleset, RuleSet)
    store = await Store.open(settings.database_url)
    try:
        archive = EventArchive(store.engine, retention=timedelta(days=settings.event_retention_days))
        window = timedelta(seconds=since)
        run = await dry_run(archive, ruleset, since=datetime.now(UTC) - window)
    finally:
        await store.close()
    print("\n".join(report(run, rules_dir=str(settings.rules_dir), since=window)))
    return 0


def _add_explain(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ex = sub.add_parser(
        "explain",
        help="how the news rules read a text: what fires, near misses and why, tone",
        description="With no TEXT, reads one text per line of standard input.",
    )
    _rules_option(ex)
    ex.add_argument("--json", action="store_true", help="one JSON object per text, in input order")
    ex.add_argument("texts", nargs="*", metavar="TEXT", help="texts to read (default: one per line of standard input)")


def cmd_explain(settings: Settings, texts: Sequence[str], *, as_json: bool) -> int:
    """`explain`: exit 0 when every text was read, 1 when the rules do not load."""
    from bot.rules.explain import Explainer, render_text
    from bot.rules.loader import RuleSet

    ruleset = _load_or_report(settings)
    if ruleset is None:
        return 1
    assert isinstance(ruleset, RuleSet)
    explainer = Explainer(ruleset)
    lines = texts if texts else (line.rstrip("\r\n") for line in sys.stdin)
    colour = sys.stdout.isatty()
    out = sys.stdout
    for i, text in enumerate(lines):
        reading = explainer.read(text)
        if as_json:
            out.write(reading.model_dump_json() + "\n")
        else:
            out.write(("\n" if i else "") + render_text(reading, colour=colour) + "\n")
    out.flush()
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment and `.env`; a bad value raises ValidationError."""
    overrides = {}
    if getattr(args, "rules", None) is not None:
        overrides["rules_dir"] = args.rules
    return Settings(**overrides).with_found_rules()


def _secrets(settings: Settings) -> list[str]:
    return [
        s.get_secret_value()
        for s in (settings.telegram_bot_token, settings.discord_bot_token)
        if s is not None
    ]


def _setup(settings: Settings) -> None:
    from bot.logs import setup_logging

    setup_logging(level=settings.log_level, fmt=settings.log_format, secrets=_secrets(settings))


def cmd_check_rules(settings: Settings) -> int:
    from bot.rules.loader import check_rules_dir

    problems = check_rules_dir(settings.rules_dir, defaults=settings.defaults_dir())
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"{settings.rules_dir}: OK", file=sys.stderr)
    return 0


def _load_or_report(settings: Settings) -> object | None:
    from bot.rules.loader import RuleLoadError, load_rules_dir

    try:
        ruleset = load_rules_dir(settings.rules_dir, defaults=settings.defaults_dir())
    except RuleLoadError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None
    for warning in ruleset.warnings:
        log.warning("%s", warning)
    return ruleset


async def _opened(settings: Settings, **kwargs: Any) -> Readout | None:
    """Open the bot (rules, database); a database that cannot be used ends the start with
    one line (exit 1). SIGTERM or SIGINT while waiting for a database server ends the wait."""
    from bot.app import Readout
    from bot.storage.faults import DatabaseUnavailableError

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        return await Readout.open(settings, stop=stop, **kwargs)
    except DatabaseUnavailableError as exc:
        log.error("cannot start: %s", exc)
        return None
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def _run(settings: Settings) -> int:
    from bot.reload import watch_rules
    from bot.rules.loader import RuleSet

    ruleset = _load_or_report(settings)
    if ruleset is None:
        return 1
    assert isinstance(ruleset, RuleSet)
    if settings.metrics_port:
        from bot.metrics import serve

        serve(settings.metrics_port)
    bot = await _opened(settings, ruleset=ruleset)
    if bot is None:
        return 1
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, bot.request_stop)
    await bot.start()
    watcher = asyncio.create_task(watch_rules(bot, settings.rules_dir))
    try:
        await bot.wait_stopped()
        log.info("stopping")
    finally:
        watcher.cancel()
        await bot.stop()
    return 0


async def _once(settings: Settings, *, as_json: bool) -> int:
    from bot.app import build_adapters
    from bot.rules.loader import RuleSet

    ruleset = _load_or_report(settings)
    if ruleset is None:
        return 1
    assert isinstance(ruleset, RuleSet)
    adapters = build_adapters(settings)
    if as_json:  # stdout is for JSON lines only
        adapters = [a for a in adapters if a.name != "console"]
    bot = await _opened(settings, ruleset=ruleset, adapters=adapters, claim_sources=False)
    if bot is None:
        return 1
    await bot.start(scheduler=False)
    try:
        alerts = await bot.poll_once()
        await bot.drain_once()
    finally:
        await bot.stop()
    if as_json:
        for alert in alerts:
            sys.stdout.write(json.dumps(alert.to_json_dict(), ensure_ascii=False) + "\n")
        sys.stdout.flush()
    print(bot.summary.line(), file=sys.stderr)
    if bot.summary.all_failed:
        print(f"error: {NO_SOURCE_ANSWERED}", file=sys.stderr)
        return 1
    return 0


async def _probe(settings: Settings) -> int:
    """Check each source once, on first setup: no database, no alerts, one line per source."""
    from bot.rules.loader import RuleSet
    from bot.sources.config import Source
    from bot.sources.http import Validators, make_client, redact_url
    from bot.sources.poll import PollOutcome, poll_source

    ruleset = _load_or_report(settings)
    if ruleset is None:
        return 1
    assert isinstance(ruleset, RuleSet)
    from bot.sources.cadence import Cadence, format_seconds
    from bot.sources.hosts import HostGate

    cfg = ruleset.sources
    sources = cfg.enabled()
    now = datetime.now(UTC)
    cadence = Cadence()
    cadence.configure(sources, cfg.hosts, cfg.host_budget("*"))
    gate = HostGate(cfg.hosts, default=cfg.host_budget("*"))  # probe is polite too

    async def one(source: Source) -> PollOutcome:
        async with gate.request(source.host):
            return await poll_source(
                client, source, validators=Validators(), max_bytes=settings.http_max_bytes, now=now, discover=True
            )

    async with make_client(settings) as client:
        outcomes = await asyncio.gather(*(one(s) for s in sources))
    failed = 0
    for source, outcome in zip(sources, outcomes, strict=True):
        sid = source.source_id
        if outcome.error:
            failed += 1
            print(f"FAIL  {sid}: {outcome.error}")
        else:
            newest = max(outcome.events, key=lambda e: e.time, default=None)
            latest = f"; newest: {newest.title[:80]}" if newest is not None and hasattr(newest, "title") else ""
            push = ""
            if outcome.hub is not None:  # WebSub: pushed at once when WEBSUB_PUBLIC_URL is set
                push = f"; push via {redact_url(outcome.hub.hub)} ({'on' if settings.websub_public_url else 'off: set WEBSUB_PUBLIC_URL'})"
            print(f"OK    {sid}: {plural(len(outcome.events), 'item')}{latest}{push}")
        # What the cadence makes of the items the source shows and what its server said.
        cadence.observe(
            source,
            now=now,
            item_times=[e.time for e in outcome.events],
            hints=outcome.hints,
            failed=outcome.error is not None,
        )
        interval = cadence.next_interval(source, now)
        print(
            f"      poll every {format_seconds(interval.seconds)} ({3600 / interval.seconds:.3g} req/h now, "
            f"budget {3600 / source.interval:.3g}): {interval.reason}"
        )
    print(f"{len(sources) - failed} of {plural(len(sources), 'source')} answered")
    _print_surges(ruleset, now)
    return 1 if failed else 0


def _print_surges(ruleset: Any, now: datetime) -> None:
    """Calendar surges running now and the next ones (alert surges live in the running bot's /status)."""
    from bot.sources.surge import SurgeBoard

    board = SurgeBoard(ruleset)
    for sid, why in board.active(now):
        print(f"SURGE {sid}: {why}")
    upcoming = sorted((e for e in ruleset.calendar if e.window_start > now), key=lambda e: e.window_start)[:3]
    for entry in upcoming:
        print(f"NEXT  calendar surge {entry.window_start:%Y-%m-%d %H:%M UTC}: {entry.name}")


def _add_stats(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    stats = sub.add_parser("stats", help="per-rule track record: live outcomes beside the backtest")
    _rules_option(stats)
    stats.add_argument("rule", nargs="?", help="one rule id (default: every rule with a record)")
    stats.add_argument(
        "--backtest-report", type=Path, metavar="FILE.json", help="default: BACKTEST_REPORT"
    )


async def _stats(settings: Settings, rule: str | None, report_path: Path | None) -> int:
    """`python -m bot stats [rule]`: what /stats shows in chat, from the database."""
    from bot.storage.outcomes import OutcomeStore
    from bot.storage.store import Store
    from bot.track_record import ReportError, format_record, live_record, load_report

    path = report_path or settings.backtest_report
    try:
        report = load_report(path) if path is not None else None
    except ReportError as exc:
        print(f"stats: {exc}", file=sys.stderr)
        return 1
    store = await Store.open(settings.database_url)
    try:
        jobs = await OutcomeStore(store).done_jobs(rule_id=rule)
    finally:
        await store.close()
    lines = format_record(live_record(jobs), report, symbols=settings.outcome_symbols, rule=rule)
    print("\n".join(lines))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ValidationError as exc:
        for problem in settings_problems(exc):
            print(f"error: {problem} (from the environment or .env; see .env.example)", file=sys.stderr)
        return 1
    _setup(settings)
    try:
        return _dispatch(args, settings)
    except Exception as exc:
        line = explain(exc, settings)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command in ("run", "once", "db"):
        check_database(settings)
    handler = _COMMANDS.get(args.command)
    if handler is None:
        raise StartupError(f"unknown command {args.command!r}")
    return handler(args, settings)


def _cmd_test_rules(args: argparse.Namespace, settings: Settings) -> int:
    from bot.ruletest.cli import main as test_rules

    return test_rules(settings.rules_dir, args.files)


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.demo.run import run_demo

    return asyncio.run(run_demo(settings, speed=args.speed))


def _cmd_backtest(args: argparse.Namespace, settings: Settings) -> int:
    from bot.backtest.cli import run_backtest

    return run_backtest(args, settings)


def _cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from bot.storage.faults import create_private_sqlite_file
    from bot.storage.migrations import upgrade

    create_private_sqlite_file(settings.database_url)
    asyncio.run(upgrade(settings.database_url))
    return 0


# One entry per subcommand: (parsed arguments, settings) -> exit status.
_COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "check-rules": lambda args, settings: cmd_check_rules(settings),
    "test-rules": _cmd_test_rules,
    "dry-run": lambda args, settings: asyncio.run(_dry_run(settings, args.since)),
    "run": lambda args, settings: asyncio.run(_run(settings)),
    "once": lambda args, settings: asyncio.run(_once(settings, as_json=args.json)),
    "demo": _cmd_demo,
    "probe": lambda args, settings: asyncio.run(_probe(settings)),
    "backtest": _cmd_backtest,
    "stats": lambda args, settings: asyncio.run(_stats(settings, args.rule, args.backtest_report)),
    "explain": lambda args, settings: cmd_explain(settings, args.texts, as_json=args.json),
    "db": _cmd_db,
}
