"""/try <headline>: how the news rules read a pasted headline (explain), for anyone, read-only.

Nothing is stored or sent: the headline goes through `bot.rules.explain` (the
engine's own matching, no pipeline, no cooldowns) and the reading comes back.
Rate-limited like every command by the adapters' per-user limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.commands.parse import PreferenceError
from bot.commands.registry import ChatDestination, command
from bot.commands.reply import Line, Reply, Section, bold, code, italic, line
from bot.rules.explain import Explainer, TextReading
from bot.rules.loader import RuleSet

if TYPE_CHECKING:
    from bot.services import Services

MAX_WORDS = 80
MAX_CHARS = 500
SHOWN_NEAR_MISSES = 4
REASON_CHARS = 160


class _Cache:
    """One Explainer for the rule set in force (compiled once, rebuilt after a reload)."""

    ruleset: RuleSet | None = None
    explainer: Explainer | None = None

    @classmethod
    def get(cls, ruleset: RuleSet) -> Explainer:
        if cls.ruleset is not ruleset or cls.explainer is None:
            cls.ruleset, cls.explainer = ruleset, Explainer(ruleset)
        return cls.explainer


def _rule_lines(reading: TextReading, ruleset: RuleSet) -> tuple[tuple[Line, ...], tuple[Line, ...]]:
    fired: list[Line] = []
    near: list[Line] = []
    for r in reading.rules:
        if r.fired:
            rule = ruleset.get(r.id)
            severity = rule.severity.value if rule is not None else ""
            matched = f" — matched {', '.join(r.matched)}" if r.matched else ""
            fired.append(line(code(r.id), " ", bold(severity), matched[:REASON_CHARS]))
        elif r.near_miss and r.enabled and len(near) < SHOWN_NEAR_MISSES:
            reason = (r.failed or "")[:REASON_CHARS]
            near.append(line(code(r.id), " — ", italic(reason)))
    return tuple(fired), tuple(near)


@command("try <headline>", max_args=MAX_WORDS)
async def try_(services: Services, dest: ChatDestination, args: Sequence[str]) -> Reply:
    """Paste a headline: which rules would fire, near misses and why, the tone."""
    text = " ".join(args).strip()
    if not text:
        raise PreferenceError("paste a headline after the command")
    if len(text) > MAX_CHARS:
        raise PreferenceError(f"at most {MAX_CHARS} characters")
    ruleset = services.rules.current
    reading = _Cache.get(ruleset).read(text)
    fired, near = _rule_lines(reading, ruleset)
    terms = ", ".join(f"{t.phrase} {t.weight:+.2f}" for t in reading.tone_terms)
    tone = line(bold(reading.tone.value), f" ({reading.tone_score:+.2f})", f" from {terms}" if terms else "")
    sections = [
        Section("Would fire", fired or (line("nothing"),)),
        Section("Tone", (tone,), inline=True),
        Section("Watch-list", (line(", ".join(reading.watchlist) or "-"),), inline=True),
    ]
    if near:
        sections.insert(1, Section("Near misses", near))
    return Reply(
        title="How Readout's rules read it",
        lines=(line(italic(text)),),
        sections=tuple(sections),
        footer="Nothing was sent or stored; cooldowns and sources are not applied.",
    )
