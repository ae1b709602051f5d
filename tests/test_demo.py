"""`python -m bot demo`: the built-in day runs offline, through the real bot, and alerts."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.demo.run import run_demo
from bot.demo.scenario import feed_id, load_scenario
from bot.settings import Settings

REPO = Path(__file__).resolve().parents[1]
LABELLED = REPO.parent / "shared" / "data" / "news_headlines_labelled.json"
READOUTS = REPO.parent / "shared" / "data" / "readout_sentences_labelled.json"


def _settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, rules_dir=REPO / "rules", database_url=f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}")  # type: ignore[call-arg]


def _rules_of(lines: list[str]) -> dict[str, list[str]]:
    """rule id → the console lines it produced: an alert's own line (`… — source · rule · …`),
    or a story update under it (`  ↳ #N title — +2 sources: … · also: rule (tone …), …`)."""
    out: dict[str, list[str]] = {}
    for line in lines:
        if line.startswith("  ↳ "):
            for bit in line.rsplit(" — ", 1)[1].split(" · "):
                if bit.startswith("also: "):
                    for rule in bit.removeprefix("also: ").split(", "):
                        out.setdefault(rule.split(" (")[0], []).append(line)
            continue
        rule = line.split(" — ", 1)[1].split(" · ")[1]
        out.setdefault(rule, []).append(line)
    return out


def _sources_of(line: str) -> set[str]:
    """The outlets a line names: an alert line's source, a story update's added sources."""
    if not line.startswith("  ↳ "):
        return {line.split(" — ", 1)[1].split(" · ")[0]}
    bits = [b for b in line.rsplit(" — ", 1)[1].split(" · ") if " source" in b.split(":")[0]]
    return {s for b in bits for s in b.split(": ", 1)[1].split(", ")}


async def test_demo_plays_the_day_through_the_real_bot(tmp_path: Path) -> None:
    out = io.StringIO()
    code = await run_demo(_settings(tmp_path), speed=5000, out=out)  # the day in about 0.1 s
    assert code == 0
    text = out.getvalue()
    # One line per alert: a story's first alert as a full line, each later one (other outlets,
    # other rules on the same headline) as a `↳` update of that story (stories: docs/stories.md)
    firsts = [line for line in text.splitlines() if " — " in line and line[:2].isdigit()]
    updates = [line for line in text.splitlines() if line.startswith("  ↳ #")]
    by_rule = _rules_of(firsts + updates)
    # every kind of alert the scenario is there to show
    assert {"readout-hope", "readout-friction", "tariff-announcement", "tariff-retaliation",
            "export-controls-chips", "vix-spike", "vix-above-30"} <= set(by_rule), sorted(by_rule)
    # the same story from several outlets: the console's messages are numbered in print order
    messages: dict[str, list[str]] = {f"#{n}": [line] for n, line in enumerate(firsts, 1)}
    for line in updates:
        messages[line.split()[1]].append(line)
    retaliation_sources = {
        source
        for lines in messages.values()
        if "tariff-retaliation" in _rules_of(lines)
        for line in lines
        for source in _sources_of(line)
    }
    assert {"kyiv-post", "west-hawaii-today-ap", "neon-nettle"} <= retaliation_sources
    # a hopeful readout reads as hope, a frictional one as friction
    assert any("Pragmatic and Constructive" in line and "tone hope" in line for line in by_rule["readout-hope"])
    assert any("tit-for-tat" in line and "tone friction" in line for line in by_rule["readout-friction"])
    # the VIX path: 21.70 is +35% on 16.05, 31.40 is through 30
    assert any("21.70" in line for line in by_rule["vix-spike"])
    assert any("31.40" in line for line in by_rule["vix-above-30"])
    # one line per alert, scenario times, and the closing line
    assert all(line[2] == ":" for line in firsts)
    assert text.splitlines()[-1].startswith(f"Demo over: {len(firsts) + len(updates)} alerts")


async def test_two_demo_runs_on_one_kept_database_both_alert(tmp_path: Path) -> None:
    """With a chat token the configured database is kept: a second run must not look old."""
    db = f"sqlite+aiosqlite:///{tmp_path / 'kept.db'}"
    settings = Settings(_env_file=None, rules_dir=REPO / "rules", database_url=db)  # type: ignore[call-arg]
    from bot.adapters.console import ConsoleAdapter
    from bot.demo import run as demo_run

    counts = []
    for _ in range(2):
        out = io.StringIO()
        # the kept-database path, without a chat backend: only the console adapter
        code = await demo_run.run_demo(
            settings.model_copy(update={"telegram_bot_token": None}), speed=5000, out=out,
            adapters=[ConsoleAdapter(out)],
        )
        assert code == 0
        counts.append(sum(1 for line in out.getvalue().splitlines() if " — " in line and line[:2].isdigit()))
    assert counts[0] > 0 and counts[0] == counts[1]


def test_python_m_bot_demo_runs_offline_from_any_folder(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_BOT_TOKEN", "DISCORD_BOT_TOKEN", "RULES_DIR", "DATABASE_URL")}
    env.update(PYTHONPATH=str(REPO), NO_PROXY="127.0.0.1,localhost")
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--speed", "3000"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "vix-spike" in proc.stdout and "tariff-retaliation" in proc.stdout
    assert "Traceback" not in proc.stderr and "alembic" not in proc.stderr
    assert not list(tmp_path.iterdir())  # nothing left behind: the state was temporary
    bad = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--speed", "0"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert bad.returncode == 2 and "expected a number above 0" in bad.stderr


def test_scenario_headlines_are_real_and_keep_their_outlet() -> None:
    """Demo data is real text: every headline is in the hand-labelled set with the same outlet and URL."""
    if not LABELLED.exists():
        pytest.skip(f"{LABELLED} is absent (../shared/data beside the repo)")
    labelled = {(h["title"], h["outlet"], h["url"], h["published"]) for h in json.loads(LABELLED.read_text())}
    sentences = {s["text"] for s in json.loads(READOUTS.read_text())}
    scenario = load_scenario()
    for step in scenario.news:
        assert (step.title, step.outlet, step.url, step.published) in labelled, step.title
        if step.summary:
            assert step.summary in sentences and step.summary_source, step.summary
    assert len({feed_id(s.outlet) for s in scenario.news}) == len(scenario.outlets())
