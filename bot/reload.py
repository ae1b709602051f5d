"""Rule hot reload: edits under `rules/` take effect while the bot runs.

A change that fails validation is rejected with `path:line` messages in the
log and the last good rule set stays in force. Cooldown and dedup state live
in the database, so a reload forgets neither. After a reload, the new rules are
replayed on the stored events (`bot.dryrun`) and one line per rule is logged:
alerts then vs now. Only files directly in `rules/` count: `rules/tests/`
(rule tests) is neither loaded nor watched.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from watchfiles import awatch

from bot.dryrun import dry_run
from bot.rules.loader import RuleLoadError, RuleSet, load_rules_dir

if TYPE_CHECKING:
    from bot.app import Readout

log = logging.getLogger(__name__)



def _is_rule_file(path: str) -> bool:
    return path.endswith((".yaml", ".yml"))


async def reload_now(bot: Readout, rules_dir: Path) -> bool:
    """Validate and swap in the rule set from `rules_dir`; False (and logged) if invalid."""
    try:
        ruleset = await asyncio.to_thread(load_rules_dir, rules_dir)
    except RuleLoadError as exc:
        for problem in exc.problems:
            log.error("rules reload rejected: %s", problem)
        bot.services.rules.last_error = f"reload rejected: {exc.problems[0]}" if exc.problems else "reload rejected"
        return False
    bot.reload_rules(ruleset)
    log.info("rules reloaded: %d rules (%d enabled)", len(ruleset.rules), len(ruleset.enabled_rules()))
    await log_dry_run(bot, ruleset)
    return True


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


async def watch_rules(bot: Readout, rules_dir: Path, *, debounce_ms: int = 300) -> None:
    """Reload on every settled change of a YAML file in `rules_dir`, until cancelled."""
    try:
        async for changes in awatch(rules_dir, debounce=debounce_ms, recursive=False):
            if any(_is_rule_file(path) for _, path in changes):
                await reload_now(bot, rules_dir)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("rule watcher stopped; rules will no longer hot-reload")
