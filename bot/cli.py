"""Command line: `python -m bot run | once | check-rules | explain | test-rules | dry-run | backtest | db upgrade`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bot.settings import Settings

log = logging.getLogger("bot")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bot", description="Readout: trade-war tape alerts.")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the bot: poll sources, alert, serve chat commands")
    run.add_argument("--rules", type=Path, help="folder with sources.yaml, watchlists.yaml and rule files")

    once = sub.add_parser("once", help="poll every source once, evaluate, deliver, exit")
    once.add_argument("--rules", type=Path)
    once.add_argument("--json", action="store_true", help="print each new alert as one JSON line on stdout")

    check = sub.add_parser("check-rules", help="validate sources, watch-lists and rules")
    check.add_argument("--rules", type=Path)

    probe = sub.add_parser("probe", help="fetch every configured source once and report which answer")
    probe.add_argument("--rules", type=Path)

    bt = sub.add_parser("backtest", help="replay history through the rules")
    bt.add_argument("--rules", type=Path)
    try:
        from bot.backtest.cli import add_arguments
    except ImportError:  # the backtest package is optional at import time
        pass
    else:
        add_arguments(bt)

    _add_explain(sub)
    _add_test_rules(sub)
    _add_dry_run(sub)

    db = sub.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade"], help="apply schema migrations")
    return p


def _add_test_rules(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tr = sub.add_parser("test-rules", help="run rule unit tests (default: every *.yaml under <rules>/tests/)")
    tr.add_argument("--rules", type=Path)
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
    dr.add_argument("--rules", type=Path)
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
    ex.add_argument("--rules", type=Path)
    ex.add_argument("--json", action="store_true", help="one JSON object per text, in input order")
    ex.add_argument("texts", nargs="*", metavar="TEXT")


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
    overrides = {}
    if getattr(args, "rules", None) is not None:
        overrides["rules_dir"] = args.rules
    return Settings(**overrides)


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

    problems = check_rules_dir(settings.rules_dir)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"{settings.rules_dir}: OK", file=sys.stderr)
    return 0


def _load_or_report(settings: Settings) -> object | None:
    from bot.rules.loader import RuleLoadError, load_rules_dir

    try:
        return load_rules_dir(settings.rules_dir)
    except RuleLoadError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


async def _run(settings: Settings) -> int:
    from bot.app import Readout
    from bot.reload import watch_rules
    from bot.rules.loader import RuleSet

    ruleset = _load_or_report(settings)
    if ruleset is None:
        return 1
    assert isinstance(ruleset, RuleSet)
    if settings.metrics_port:
        from bot.metrics import serve

        serve(settings.metrics_port)
    bot = Readout(settings, ruleset=ruleset)
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
    from bot.app import Readout, build_adapters
    from bot.rules.loader import RuleSet

    ruleset = _load_or_report(settings)
    if ruleset is None:
        return 1
    assert isinstance(ruleset, RuleSet)
    adapters = build_adapters(settings)
    if as_json:  # stdout is for JSON lines only
        adapters = [a for a in adapters if a.name != "console"]
    bot = Readout(settings, ruleset=ruleset, adapters=adapters, claim_sources=False)
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
    return 0


async def _probe(settings: Settings) -> int:
    """Check each source once, on first setup: no database, no alerts, one line per source."""
    from bot.app import source_id
    from bot.rules.loader import RuleSet
    from bot.sources.config import FeedSource
    from bot.sources.http import Validators, make_client
    from bot.sources.poll import poll_feed, poll_price

    ruleset = _load_or_report(settings)
    if ruleset is None:
        return 1
    assert isinstance(ruleset, RuleSet)
    sources = [f for f in ruleset.sources.feeds if f.enabled] + [p for p in ruleset.sources.prices if p.enabled]
    now = datetime.now(UTC)
    async with make_client(settings) as client:
        outcomes = await asyncio.gather(
            *(
                (poll_feed if isinstance(s, FeedSource) else poll_price)(
                    client, s, validators=Validators(), max_bytes=settings.http_max_bytes, now=now  # type: ignore[arg-type]
                )
                for s in sources
            )
        )
    failed = 0
    for source, outcome in zip(sources, outcomes, strict=True):
        sid = source_id(source)
        if outcome.error:
            failed += 1
            print(f"FAIL  {sid}: {outcome.error}")
        else:
            newest = max(outcome.events, key=lambda e: e.time, default=None)
            latest = f"; newest: {newest.title[:80]}" if newest is not None and hasattr(newest, "title") else ""
            print(f"OK    {sid}: {len(outcome.events)} item(s){latest}")
    print(f"{len(sources) - failed} of {len(sources)} sources answered")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = _settings(args)
    _setup(settings)
    if args.command == "check-rules":
        return cmd_check_rules(settings)
    if args.command == "test-rules":
        from bot.ruletest.cli import main as test_rules

        return test_rules(settings.rules_dir, args.files)
    if args.command == "dry-run":
        return asyncio.run(_dry_run(settings, args.since))
    if args.command == "run":
        return asyncio.run(_run(settings))
    if args.command == "once":
        return asyncio.run(_once(settings, as_json=args.json))
    if args.command == "probe":
        return asyncio.run(_probe(settings))
    if args.command == "backtest":
        from bot.backtest.cli import run_backtest

        return run_backtest(args, settings)
    if args.command == "explain":
        return cmd_explain(settings, args.texts, as_json=args.json)
    if args.command == "db":
        from bot.storage.migrations import upgrade

        asyncio.run(upgrade(settings.database_url))
        return 0
    return 2
