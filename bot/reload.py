"""Rule hot reload: edits under `rules/` take effect while the bot runs.

Only a complete, stable rule set goes live. After a change the watcher reads
every rule file, waits `settle` seconds and reads them again, until two
readings are identical: an editor writing a file in two halves (or a copy in
progress) is never loaded half-way. That snapshot is what gets validated.

A file that fails validation keeps its last good version in force (its rules
do not vanish; other files' edits still apply) and the problems are logged
with `path:line` and shown in /status until the file is valid again. Cooldown
and dedup state live in the database, so a reload forgets neither.

After a reload, the new rules are replayed on the stored events (`bot.dryrun`) and
one line per rule is logged: alerts then vs now. Only files directly in `rules/`
count: `rules/tests/` (rule tests) is neither loaded nor watched.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from watchfiles import awatch

from bot.dryrun import dry_run
from bot.rules.loader import RuleLoadError, RuleSet, load_rules_dir

if TYPE_CHECKING:
    from bot.app import Readout

log = logging.getLogger(__name__)

Snapshot = dict[str, str]
# Readings before a still-changing folder is loaded anyway (broken files keep their last good version).
MAX_SETTLE_ROUNDS = 30


def _is_rule_file(path: str) -> bool:
    return path.endswith((".yaml", ".yml"))


def read_snapshot(rules_dir: Path) -> Snapshot:
    """The text of every readable regular YAML file in `rules_dir` (the loader reports the rest)."""
    out: Snapshot = {}
    for path in sorted(rules_dir.iterdir()):
        if not _is_rule_file(path.name) or path.name.startswith((".", "_")):
            continue
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):
                continue
            out[path.name] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
    return out


async def stable_snapshot(rules_dir: Path, settle: float) -> Snapshot:
    """Read until two readings `settle` seconds apart are identical."""
    current = await asyncio.to_thread(read_snapshot, rules_dir)
    for _ in range(MAX_SETTLE_ROUNDS):
        if settle <= 0:
            break
        await asyncio.sleep(settle)
        again = await asyncio.to_thread(read_snapshot, rules_dir)
        if again == current:
            break
        current = again
    else:
        log.warning("rules folder still changing after %d readings; loading what is there", MAX_SETTLE_ROUNDS)
    return current


class RuleReloader:
    """Reloads one rules folder into one bot, remembering each file's last good text."""

    def __init__(self, bot: Readout, rules_dir: Path, *, settle: float = 1.0) -> None:
        self.bot = bot
        self.rules_dir = rules_dir
        self.settle = settle
        self.last_good: Snapshot = {}
        self._seen: Snapshot | None = None  # the last snapshot handled
        self._in_force: Snapshot | None = None  # the texts the rules in force came from

    def remember_current(self) -> None:
        """Take the folder as it is now as the last good version of each file (at start)."""
        self.last_good = read_snapshot(self.rules_dir)
        self._seen = dict(self.last_good)
        self._in_force = dict(self.last_good)

    async def reload(self) -> bool:
        """Load the settled folder; True when every file was valid as written."""
        snap = await stable_snapshot(self.rules_dir, self.settle)
        if snap == self._seen:
            return self.bot.services.rules.last_error is None  # handled already
        try:
            ruleset = await asyncio.to_thread(self._load, snap)
        except RuleLoadError as exc:
            return await self._fall_back(snap, exc)
        self._put_in_force(ruleset, snap)
        self.bot.services.rules.last_error = None
        log.info("rules reloaded: %s", self.bot.describe())
        await log_dry_run(self.bot, ruleset)
        return True

    def _load(self, contents: Mapping[str, str | None]) -> RuleSet:
        """The rule set from these texts of the user's files, over the bundled defaults."""
        return load_rules_dir(self.rules_dir, defaults=self.bot.settings.defaults_dir(), contents=contents)

    async def _fall_back(self, snap: Snapshot, exc: RuleLoadError) -> bool:
        """Retry with each broken file's last good text; else keep the rules in force."""
        for problem in exc.problems:
            log.error("rules reload rejected: %s", problem)
        first = f"reload rejected: {exc.problems[0]}" if exc.problems else "reload rejected"
        broken = {Path(p.path).name for p in exc.problems if Path(p.path).parent == self.rules_dir}
        if self.last_good and broken:
            # dict of str | None: None leaves a new, never-valid file out
            patched: dict[str, str | None] = {**snap, **{name: self.last_good.get(name) for name in broken}}
            try:
                ruleset = await asyncio.to_thread(self._load, patched)
            except RuleLoadError:
                pass
            else:
                kept = {n: t for n, t in patched.items() if t is not None}
                if kept != self._in_force:
                    self._put_in_force(ruleset, kept, good=[n for n in snap if n not in broken])
                    await log_dry_run(self.bot, ruleset)
                self._seen = snap
                log.error(
                    "rules: kept the last good version of %s until it is valid again; other edits applied",
                    ", ".join(sorted(broken)),
                )
                self.bot.services.rules.last_error = first
                return False
        self._seen = snap
        self.bot.services.rules.last_error = first
        return False

    def _put_in_force(self, ruleset: RuleSet, snap: Snapshot, *, good: list[str] | None = None) -> None:
        self.bot.reload_rules(ruleset)
        self._seen = self._in_force = snap
        names = snap if good is None else good
        for name in names:
            self.last_good[name] = snap[name]
        if good is None:
            for gone in set(self.last_good) - set(snap):
                del self.last_good[gone]


async def log_dry_run(bot: Readout, ruleset: RuleSet) -> None:
    """After a reload: the new rules on the last RELOAD_DRY_RUN_HOURS of stored events, one line per rule."""
    hours = bot.settings.reload_dry_run_hours
    if bot.archive is None or hours <= 0:
        return
    try:
        run = await dry_run(bot.archive, ruleset, since=bot.clock.now() - timedelta(hours=hours))
    except Exception:
        log.exception("rules reloaded, but the dry run over stored events failed")
        return
    log.info(
        "dry run of the new rules on %d headlines and %d price samples of the last %g hours:",
        run.news,
        run.prices,
        hours,
    )
    for diff in run.rules:
        log.info("dry run: %s", diff.line())


async def reload_now(bot: Readout, rules_dir: Path) -> bool:
    """Validate and swap in the rule set from `rules_dir` as it is now; False (and logged) if invalid."""
    return await RuleReloader(bot, rules_dir, settle=0).reload()


async def watch_rules(
    bot: Readout,
    rules_dir: Path,
    *,
    debounce_ms: int = 300,
    settle: float = 1.0,
    seen: asyncio.Event | None = None,
) -> None:
    """Reload on every settled change of a YAML file in `rules_dir`, until cancelled.

    `seen` is set whenever the watcher reports any change in the folder: a caller
    that touches a scratch file there and waits for it knows the watcher is armed.
    """
    reloader = RuleReloader(bot, rules_dir, settle=settle)
    try:
        await asyncio.to_thread(reloader.remember_current)
        async for changes in awatch(rules_dir, debounce=debounce_ms, recursive=False):
            if seen is not None:
                seen.set()
            if any(_is_rule_file(path) for _, path in changes):
                await reloader.reload()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("rule watcher stopped; rules will no longer hot-reload")
