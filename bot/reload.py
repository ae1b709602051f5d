"""Rule hot reload: edits under `rules/` take effect while the bot runs.

A change that fails validation is rejected with `path:line` messages in the
log and the last good rule set stays in force. Cooldown and dedup state live
in the database, so a reload forgets neither.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from watchfiles import awatch

from bot.rules.loader import RuleLoadError, load_rules_dir

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
    return True


async def watch_rules(
    bot: Readout, rules_dir: Path, *, debounce_ms: int = 300, seen: asyncio.Event | None = None
) -> None:
    """Reload on every settled change of a YAML file in `rules_dir`, until cancelled.

    `seen` is set whenever the watcher reports any change in the folder: a caller
    that touches a scratch file there and waits for it knows the watcher is armed.
    """
    try:
        async for changes in awatch(rules_dir, debounce=debounce_ms, recursive=False):
            if seen is not None:
                seen.set()
            if any(_is_rule_file(path) for _, path in changes):
                await reload_now(bot, rules_dir)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("rule watcher stopped; rules will no longer hot-reload")
