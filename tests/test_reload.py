"""Rule hot reload while the bot runs: a bad edit is refused with `path:line`, a good one takes over.

Readout runs in-process with the console adapter and a ManualClock; the real
`watch_rules` task watches a temporary rules folder (watchfiles), exactly as
`python -m bot run` does. Cooldown and dedup live in the database and must
survive every reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.adapters.console import ConsoleAdapter
from bot.app import Readout
from bot.clock import ManualClock
from bot.reload import reload_now, watch_rules
from bot.rules.loader import RuleSet
from bot.settings import Settings
from tests.support.botproc import rss, write_rules
from tests.support.feed_server import FeedServer

T0 = datetime(2025, 4, 2, 20, 0, tzinfo=UTC)

V1 = """\
rules:
  - id: trade
    type: match
    description: Trade headlines
    severity: warning
    key: title
    cooldown: 1h
    any: [tariff*]
"""
BROKEN = """\
rules:
  - id: trade
    type: match
    description: Trade headlines
    severity: loud
    key: title
    cooldown: 1h
    any: [tariff*]
"""
V2 = V1.replace("any: [tariff*]", "any: [tariff*, sanction*]")


class Running:
    def __init__(self, feeds: FeedServer, tmp_path: Path) -> None:
        self.feeds = feeds
        self.clock = ManualClock(T0)
        self.rules = write_rules(tmp_path / "rules", {"wire": feeds.url("/wire.xml")}, rule_file=V1)
        self.items: list[tuple[str, str]] = []  # (guid, title)
        feeds.route("/wire.xml", body=rss([], now=T0), content_type="application/rss+xml")
        self.out = io.StringIO()
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'reload.db'}",
            rules_dir=self.rules,
            console=True,
            poll_jitter=0,
        )
        self.settings = settings
        self.readout: Readout  # opened by the fixture (`open`)

    async def open(self) -> Readout:
        self.readout = await Readout.open(self.settings, clock=self.clock, adapters=[ConsoleAdapter(self.out)])
        return self.readout

    def publish(self, *titles: str) -> None:
        start = len(self.items)
        self.items += [(f"g{start + n}", t) for n, t in enumerate(titles)]
        body = "".join(
            f"<item><title>{t}</title><guid isPermaLink='false'>{g}</guid>"
            f"<pubDate>Wed, 02 Apr 2025 19:50:00 +0000</pubDate></item>"
            for g, t in self.items
        )
        self.feeds.route(
            "/wire.xml",
            body=f"<rss version='2.0'><channel><title>w</title>{body}</channel></rss>".encode(),
            content_type="application/rss+xml",
        )

    async def poll(self) -> list[str]:
        """Titles of the alerts one poll raises."""
        return [a.title for a in await self.readout.poll_once()]


@pytest.fixture
async def running(feed_server: FeedServer, tmp_path: Path) -> AsyncIterator[Running]:
    r = Running(feed_server, tmp_path)
    await r.open()
    await r.readout.start(scheduler=False)
    try:
        yield r
    finally:
        await r.readout.stop()


async def _until(check: object, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def _armed(folder: Path, seen: asyncio.Event, timeout: float = 30.0) -> None:
    """Wait until the watcher reports a change: touch a scratch (non-rule) file until it does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    probe = folder / "watcher-probe.txt"
    while not seen.is_set():
        assert loop.time() < deadline, "the rule watcher never reported a change"
        probe.write_text(str(loop.time()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(seen.wait(), timeout=0.2)
    probe.unlink()


async def test_bad_edit_rejected_with_path_line_then_fix_takes_over(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.reload")
    readout, holder = running.readout, running.readout.services.rules
    seen = asyncio.Event()
    watcher = asyncio.create_task(watch_rules(readout, running.rules, debounce_ms=50, seen=seen))
    try:
        await _armed(running.rules, seen)
        running.publish("Tariffs on steel")
        assert await running.poll() == ["Tariffs on steel"]

        # An invalid edit: rejected, logged at its file and line, the old rules stay.
        first_set = holder.current
        (running.rules / "rules.yaml").write_text(BROKEN)
        await _until(lambda: holder.last_error is not None)
        rejected = [r.getMessage() for r in caplog.records if "reload rejected" in r.getMessage()]
        assert rejected and re.search(r"rules\.yaml:5: .*severity", rejected[0]), rejected
        assert holder.current is first_set
        running.publish("Tariffs on aluminium", "Sanctions on banks")
        assert await running.poll() == ["Tariffs on aluminium"]  # the old rule, still in force

        # Fixed, and widened: the new rule set takes over.
        (running.rules / "rules.yaml").write_text(V2)
        await _until(lambda: holder.last_error is None and holder.current is not first_set)
        assert any("rules reloaded" in r.getMessage() for r in caplog.records)
        running.publish("Sanctions on chipmakers")
        # the feed still carries every earlier item: none is alerted again (dedup survived)
        assert await running.poll() == ["Sanctions on chipmakers"]
        # the same title under a new GUID is a new event, but its key is cooling down (cooldown survived)
        running.publish("Tariffs on steel")
        assert await running.poll() == []
        running.clock.advance(3601)
        running.publish("Tariffs on steel")
        assert await running.poll() == ["Tariffs on steel"]
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


async def test_reload_now_reports_every_problem_and_keeps_last_good(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="bot.reload")
    (running.rules / "rules.yaml").write_text(BROKEN + "  - id: trade\n    type: nope\n")
    (running.rules / "extra.yaml").write_text("rules: [\n")
    assert await reload_now(running.readout, running.rules) is False
    lines = [r.getMessage() for r in caplog.records]
    assert any(re.search(r"extra\.yaml:\d+: ", m) for m in lines), lines
    assert any(re.search(r"rules\.yaml:\d+: ", m) for m in lines), lines
    assert [r.id for r in running.readout.pipeline.ruleset.rules] == ["trade"]
    status = await running.readout.services.status()
    assert status.rules_error is not None and "reload rejected" in status.rules_error
    running.publish("Tariffs on lumber")
    assert await running.poll() == ["Tariffs on lumber"]

    (running.rules / "extra.yaml").unlink()
    (running.rules / "rules.yaml").write_text(V2)
    assert await reload_now(running.readout, running.rules) is True
    assert (await running.readout.services.status()).rules_error is None


TWO_RULES = V1 + """\
  - id: retaliation
    type: match
    description: Retaliation headlines
    severity: warning
    key: title
    any: [retaliat*]
"""


def _record_swaps(readout: Readout) -> list[list[str]]:
    """The rule ids of every rule set put in force from now on."""
    swaps: list[list[str]] = []
    real = readout.reload_rules

    def recording(ruleset: RuleSet) -> None:
        swaps.append([r.id for r in ruleset.rules])
        real(ruleset)

    readout.reload_rules = recording  # type: ignore[method-assign]
    return swaps


async def test_a_file_written_in_two_halves_never_goes_live_half_way(running: Running) -> None:
    """The first half parses (one rule of two); the writer pauses well past the watcher's
    debounce, then writes the rest. Only the complete file may go live."""
    (running.rules / "rules.yaml").write_text(TWO_RULES)
    assert await reload_now(running.readout, running.rules) is True
    swaps = _record_swaps(running.readout)
    watcher = asyncio.create_task(watch_rules(running.readout, running.rules, debounce_ms=50, settle=1.0))
    try:
        await asyncio.sleep(0.3)  # the watcher is armed
        wider = TWO_RULES.replace("any: [retaliat*]", "any: [retaliat*, countermeasure*]")
        with (running.rules / "rules.yaml").open("w") as f:  # in place, as an editor without atomic save
            f.write(wider[: wider.index("  - id: retaliation")])
            f.flush()
            await asyncio.sleep(0.4)  # the writer pauses mid-file: past the debounce, within the settle time
            f.write(wider[wider.index("  - id: retaliation") :])
        await _until(lambda: bool(swaps))
        running.publish("Beijing vows countermeasures")
        assert await running.poll() == ["Beijing vows countermeasures"]
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    assert swaps and all(ids == ["trade", "retaliation"] for ids in swaps), swaps


async def test_a_broken_file_keeps_its_last_good_rules_while_other_edits_apply(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="bot.reload")
    (running.rules / "other.yaml").write_text("rules:\n" + TWO_RULES[TWO_RULES.index("  - id: retaliation") :])
    assert await reload_now(running.readout, running.rules) is True
    holder = running.readout.services.rules
    watcher = asyncio.create_task(watch_rules(running.readout, running.rules, debounce_ms=50, settle=0.2))
    try:
        await asyncio.sleep(0.3)  # the watcher is armed
        # other.yaml breaks (a truncated save) while rules.yaml gains a term
        (running.rules / "other.yaml").write_text("rules:\n  - id: retaliation\n    type: match\n    any: [retal")
        (running.rules / "rules.yaml").write_text(V2)
        await _until(lambda: holder.last_error is not None)
        assert "other.yaml" in holder.last_error
        ids = [r.id for r in running.readout.pipeline.ruleset.rules]
        assert sorted(ids) == ["retaliation", "trade"], ids  # the broken file's last good rule is kept
        running.publish("Sanctions on banks", "China retaliates")
        assert sorted(await running.poll()) == ["China retaliates", "Sanctions on banks"]
        assert any("kept the last good version of other.yaml" in r.getMessage() for r in caplog.records)
        # fixed: its new version takes over and the error clears
        (running.rules / "other.yaml").write_text("rules:\n" + TWO_RULES[TWO_RULES.index("  - id: retaliation") :].replace("retaliat*", "retaliat*, reprisal*"))
        await _until(lambda: holder.last_error is None)
        running.publish("Reprisals feared")
        assert await running.poll() == ["Reprisals feared"]
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


async def test_reload_logs_a_dry_run_line_per_rule(running: Running, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.reload")
    running.publish("Tariffs on steel", "Sanctions on banks")
    assert await running.poll() == ["Tariffs on steel"]
    (running.rules / "rules.yaml").write_text(V2)
    assert await reload_now(running.readout, running.rules) is True
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("dry run")]
    assert lines == [
        "dry run of the new rules on 2 headlines and 0 price samples of the last 24 hours:",
        "dry run: trade: 1 then -> 2 now (+1 gained, -0 lost)",
    ]
    caplog.clear()
    running.readout.settings.reload_dry_run_hours = 0  # RELOAD_DRY_RUN_HOURS=0: reload only
    (running.rules / "rules.yaml").write_text(V1)
    assert await reload_now(running.readout, running.rules) is True
    assert not [r for r in caplog.records if r.getMessage().startswith("dry run")]


async def test_rule_tests_folder_is_neither_loaded_nor_watched(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.reload")
    readout, holder = running.readout, running.readout.services.rules
    (running.rules / "tests").mkdir()
    watcher = asyncio.create_task(watch_rules(readout, running.rules, debounce_ms=50))
    try:
        await asyncio.sleep(0.3)  # the watcher is armed
        first_set = holder.current
        # a rule-test file (not a rule file) under rules/tests/: no reload, nothing rejected
        (running.rules / "tests/trade.yaml").write_text("tests: [not, rules]\n")
        (running.rules / "rules.yaml").write_text(V2)  # then a real edit, to know the watcher saw both
        await _until(lambda: holder.current is not first_set)
        reloads = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rules reload")]
        assert len(reloads) == 1 and "rejected" not in reloads[0], reloads
        assert holder.last_error is None
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
