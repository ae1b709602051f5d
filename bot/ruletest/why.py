"""Why an expected news rule did not fire: `explain`'s reading of the test's headlines."""

from __future__ import annotations

from collections.abc import Sequence

from bot.rules.explain import Explainer, RuleReading
from bot.rules.loader import RuleSet


class NearMissReasons:
    """Compiles the rules once per test run; reads each headline of a failing test."""

    def __init__(self, ruleset: RuleSet) -> None:
        self._explainer = Explainer(ruleset)

    def __call__(self, rule_id: str, texts: Sequence[str]) -> str | None:
        readings: list[RuleReading] = []
        for text in texts:
            reading = next((r for r in self._explainer.read(text).rules if r.id == rule_id), None)
            if reading is None:  # not a news rule (price, confirm): explain has nothing to say
                return None
            readings.append(reading)
        # the headline that came closest speaks for the test
        best = next((r for r in readings if r.near_miss), readings[0] if readings else None)
        if best is None or best.failed is None:
            return None
        matched = f"matched {', '.join(best.matched)}; " if best.matched else ""
        return f"{matched}failed {best.failed}"
