"""`python -m bot dry-run`: the rules on disk replayed on the stored events, against what fired then.

The database is filled the way `run` fills it (Pipeline with the event archive, real
SQLite), then the command runs as a user would run it, on the same rules (no change)
and on edited ones (a headline gained, one lost).
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.clock import ManualClock
from bot.dryrun import compare
from bot.models import NewsEvent, PriceEvent
from bot.pipeline import Pipeline
from bot.rules.loader import load_rules_dir
from bot.storage.archive import EventArchive, PastAlert
from bot.storage.store import Store
from tests.test_cli import bot

GOOD_RULES = Path(__file__).resolve().parent / "fixtures/rules/good"


def headline(n: int, title: str, at: datetime) -> NewsEvent:
    return NewsEvent(id=f"news-{n}", source="wire", title=title, published=at, seen_at=at, tags=("media",))


async def fill(db: Path, rules: Path, start: datetime) -> None:
    """What `run` would have stored over two hours."""
    store = await Store.open(f"sqlite+aiosqlite:///{db}")
    clock = ManualClock(start)
    archive = EventArchive(store.engine, retention=timedelta(days=14))
    p = Pipeline(store, load_rules_dir(rules), clock, console_min=None, active_adapters=frozenset(), archive=archive)
    events: list[NewsEvent | PriceEvent] = [
        headline(1, "US to impose 25% tariffs on Chinese goods", start),
        headline(2, "Tariffs on Chinese steel take effect", start + timedelta(minutes=30)),
        headline(3, "US to raise tariffs on Chinese chips", start + timedelta(minutes=60)),
        PriceEvent(id="vix-1", source="cboe-vix", symbol="^VIX", time=start + timedelta(minutes=90),
                   last=30.02, previous_close=21.51),
    ]
    try:
        for ev in events:
            clock.set(ev.time)
            await p.process([ev])
    finally:
        await store.close()


def any_session(tmp_path: Path) -> Path:
    """The good rules with the price rules acting on quotes at any hour (`session: any`): this
    test's samples are stamped a few hours before now, whatever the weekday, and the US-session
    rule for price quotes is pinned in tests/test_market_calendar.py, not here."""
    rules = tmp_path / "good-any-session"
    if rules.exists():
        return rules
    shutil.copytree(GOOD_RULES, rules)
    prices = (rules / "prices.yml").read_text()
    (rules / "prices.yml").write_text(prices.replace("    type: threshold\n", "    type: threshold\n    session: any\n").replace("    type: change\n", "    type: change\n    session: any\n"))
    return rules


def edited(tmp_path: Path) -> Path:
    """The good rules with tariff-announcement widened to "take effect" and narrowed off "raise tariffs"."""
    rules = tmp_path / "edited"
    shutil.copytree(any_session(tmp_path), rules)
    news = (rules / "news.yaml").read_text()
    news = news.replace("announce*, retaliat*,", "announce*, retaliat*, effect,")
    news = news.replace('none: [tariff-free, "tariff free"]', 'none: [tariff-free, "tariff free", "raise tariffs"]')
    (rules / "news.yaml").write_text(news)
    return rules


async def test_dry_run_prints_then_vs_now_and_headlines_gained_and_lost(tmp_path: Path) -> None:
    start = (datetime.now(UTC) - timedelta(hours=3)).replace(second=0, microsecond=0)
    db = tmp_path / "readout.db"
    await fill(db, any_session(tmp_path), start)
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{db}"}
    rules = edited(tmp_path)
    res = bot("dry-run", "--rules", str(rules), "--since", "1d", cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr

    def at(minutes: int) -> str:
        return (start + timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M")

    assert res.stdout.splitlines() == [
        f"dry-run: rules in {rules} on 3 headlines and 1 price samples stored from {at(0)} to {at(90)} UTC",
        "rule                  then    now  gained   lost",
        "tariff-announcement      2      2      +1     -1",
        "vix-30                   1      1      +0     -0",
        "vix-spike                1      1      +0     -0",
        "",
        "tariff-announcement: 2 then -> 2 now (+1 gained, -1 lost)",
        f"  + {at(30)}  Tariffs on Chinese steel take effect",
        f"  - {at(60)}  US to raise tariffs on Chinese chips",
    ]
    same = bot("dry-run", "--rules", str(any_session(tmp_path)), cwd=tmp_path, env=env)
    assert same.returncode == 0, same.stderr
    assert same.stdout.splitlines()[-1] == "no change: the rules on disk raise the same alerts"
    # --since narrower than the history: the last 135 minutes hold one headline and the price
    recent = bot("dry-run", "--rules", str(rules), "--since", "135m", cwd=tmp_path, env=env)
    assert recent.returncode == 0 and "on 1 headlines and 1 price samples" in recent.stdout.splitlines()[0]


def test_dry_run_on_nothing_stored_and_on_bad_input(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"}
    empty = bot("dry-run", "--rules", str(GOOD_RULES), cwd=tmp_path, env=env)
    assert (empty.returncode, empty.stdout) == (
        0,
        "dry-run: no stored events in the last 7 days (see EVENT_RETENTION_DAYS)\n",
    )
    bad_since = bot("dry-run", "--rules", str(GOOD_RULES), "--since", "a week", cwd=tmp_path, env=env)
    assert bad_since.returncode == 2 and "argument --since: expected a duration" in bad_since.stderr
    broken = tmp_path / "broken"
    shutil.copytree(GOOD_RULES, broken)
    (broken / "extra.yaml").write_text("rules:\n  - id: x\n    type: nope\n")
    res = bot("dry-run", "--rules", str(broken), cwd=tmp_path, env=env)
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.splitlines()[-1].startswith(f"{broken / 'extra.yaml'}:3: ")


def test_compare_counts_per_rule_in_rule_order() -> None:
    t = datetime(2025, 1, 6, 14, 30, tzinfo=UTC)
    events = [headline(1, "a", t), headline(2, "b", t + timedelta(minutes=1))]
    past = [
        PastAlert("r2", "news-1", "a", t),
        PastAlert("r2", "news-2", "b", t + timedelta(minutes=1)),
        PastAlert("r1", "news-1", "a", t - timedelta(days=1)),  # before the archive began: not compared
    ]
    run = compare(events, past, [], ["r1", "r2"])
    assert [(r.rule_id, r.then, r.now, len(r.gained), len(r.lost)) for r in run.rules] == [("r2", 2, 0, 0, 2)]
    assert run.rules[0].line() == "r2: 2 then -> 0 now (+0 gained, -2 lost)"
