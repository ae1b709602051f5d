"""How the news rules read one text: what fired, what nearly did and why, the tone.

`explain(ruleset, text)` is a pure function (no I/O, no clock). It does not match
anything itself: which rules fire comes from `RuleEngine.news_hits` (the code the
live pipeline and the backtest run), and the per-rule reasons from
`Condition.explain`, which walks the same compiled terms as `Condition.test`.
Source restrictions are ignored: the question is how the rules read the text,
whichever feed it came from.

Used by `python -m bot explain`, `test-rules` (near-miss reasons) and the chat
`/try` command.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict

from bot.models import Tone
from bot.rules.engine import CompiledNewsRule, NewsHit, RuleEngine, news_texts, tone_fires
from bot.rules.loader import RuleSet
from bot.rules.matcher import Anchor, AnchorProbe, all_anchors, tokens_of
from bot.rules.schema import ToneRule
from bot.rules.tone import ToneResult, ToneScorer, build_lexicon

__all__ = [
    "Explainer",
    "RuleReading",
    "TextReading",
    "ToneReading",
    "ToneTerm",
    "explain",
    "render_text",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class ToneTerm(_Model):
    """A lexicon phrase found in the text, as found (with its negator), and its weight."""

    phrase: str
    weight: float


class ToneReading(_Model):
    tone: Tone
    score: float
    raw: float
    terms: list[ToneTerm]

    @classmethod
    def of(cls, result: ToneResult) -> ToneReading:
        return cls.model_construct(
            tone=result.tone,
            score=result.score,
            raw=result.raw,
            terms=[ToneTerm.model_construct(phrase=p, weight=w) for p, w in result.terms],
        )


class RuleReading(_Model):
    """One news rule on one text.

    `failed` says which condition stopped the rule (None when it fired);
    `near_miss` is true when it did not fire although part of it matched.
    """

    id: str
    type: Literal["match", "tone"]
    enabled: bool
    fired: bool
    near_miss: bool
    matched: list[str]
    failed: str | None
    vetoed_by: list[str]
    tone: ToneReading | None = None
    source_restricted: bool = False


class TextReading(_Model):
    """The reading of one text (`explain --json` prints one per line)."""

    text: str
    fired: list[str]
    tone: Tone
    tone_score: float
    tone_terms: list[ToneTerm]
    watchlist: list[str]
    rules: list[RuleReading]


class Explainer:
    """Explains texts against one RuleSet (compile once, read many)."""

    def __init__(self, ruleset: RuleSet, *, shortcuts: bool = True) -> None:
        """`shortcuts=False` reads every condition in full (the tests compare the two)."""
        self._ruleset = ruleset
        self._shortcuts = shortcuts
        self._engine = RuleEngine(ruleset)
        compiled = self._engine.news_rules
        scorer = next(
            (c.scorer for c in compiled if c.scorer is not None and c.rule.enabled),
            next((c.scorer for c in compiled if c.scorer is not None), None),
        )
        self._scorer = scorer if scorer is not None else ToneScorer(build_lexicon())
        self._blank: dict[int, RuleReading] = {}
        self._probe = AnchorProbe(
            all_anchors(c.condition for c in compiled if c.condition is not None)
        )

    def read(self, text: str, summary: str = "") -> TextReading:
        hits = {h.rule.id: h for h in self._engine.news_hits(text, summary)}
        texts = news_texts(text, summary)
        tones: dict[tuple[int, str], ToneResult] = {}
        overall = self._tone(self._scorer, texts[("title", "summary")], tones)
        reads: dict[str, tuple[frozenset[str], frozenset[Anchor]]] = {}
        rules = [
            self._rule(c, texts, hits.get(c.rule.id), tones, reads) for c in self._engine.news_rules
        ]
        fired = [r.id for r in rules if r.fired]
        sectors: dict[str, None] = {}
        for rule_id in fired:
            rule = self._ruleset.get(rule_id)
            assert rule is not None
            for item in self._ruleset.watchlist_for(rule):
                sectors.setdefault(item.name, None)
        return TextReading.model_construct(
            text=text,
            fired=fired,
            tone=overall.tone,
            tone_score=overall.score,
            tone_terms=[ToneTerm.model_construct(phrase=p, weight=w) for p, w in overall.terms],
            watchlist=list(sectors),
            rules=rules,
        )

    @staticmethod
    def _tone(
        scorer: ToneScorer, text: str, cache: dict[tuple[int, str], ToneResult]
    ) -> ToneResult:
        key = (id(scorer), text)
        result = cache.get(key)
        if result is None:
            result = cache[key] = scorer.score(text)
        return result

    def _rule(
        self,
        compiled: CompiledNewsRule,
        texts: dict[tuple[str, ...], str],
        hit: NewsHit | None,
        tones: dict[tuple[int, str], ToneResult],
        reads: dict[str, tuple[frozenset[str], frozenset[Anchor]]],
    ) -> RuleReading:
        """One rule's reading; `reads` caches each text's tokens and present anchors."""
        rule = compiled.rule
        text = texts[compiled.fields]
        matched: list[str] = []
        failed: str | None = None
        vetoed: list[str] = []
        if (
            self._shortcuts
            and hit is None
            and compiled.scorer is None
            and compiled.condition is not None
            and text
        ):
            read = reads.get(text)
            if read is None:
                read = reads[text] = (tokens_of(text), self._probe.present(text))
            if compiled.condition.absent(read[1]):
                return self._unmatched(compiled)
        if compiled.condition is not None and self._shortcuts and hit is not None and rule.enabled:
            pass  # fired: the engine's matches are shown, and `test` passing means no veto
        elif compiled.condition is not None:
            read = reads.get(text)
            if read is None:
                read = reads[text] = (tokens_of(text), self._probe.present(text))
            present = read[1] if self._shortcuts else None
            trace = compiled.condition.explain(text, read[0], present=present)
            matched = trace.matched if trace.ok else _unique(trace.matched + trace.partial)
            vetoed = trace.vetoed_by
            if not trace.ok:
                failed = f"require: {trace.failed}" if isinstance(rule, ToneRule) else trace.failed
        tone: ToneReading | None = None
        if compiled.scorer is not None:
            assert isinstance(rule, ToneRule)
            result = self._tone(compiled.scorer, text, tones)
            tone = ToneReading.of(result)
            if failed is None and not tone_fires(rule, result):
                wanted = " or ".join(t.value for t in rule.alert_on)
                failed = (
                    f"tone: {result.tone.value} ({result.score:+.2f}); "
                    f"alerts on {wanted} with |score| >= {rule.min_score:g}"
                )
        if hit is None and failed is None:  # the engine's verdict wins; never seen in tests
            failed = "the engine did not fire this rule"
        fired = hit is not None and rule.enabled
        if hit is not None and not rule.enabled:
            failed = "disabled (enabled: false)"
        partial = bool(matched or vetoed or (tone is not None and tone.terms))
        return RuleReading.model_construct(
            id=rule.id,
            type=rule.type,
            enabled=rule.enabled,
            fired=fired,
            near_miss=not fired and partial,
            matched=hit.matched if hit is not None else matched,
            failed=None if fired else failed,
            vetoed_by=vetoed,
            tone=tone,
            source_restricted=rule.sources is not None,
        )

    def _unmatched(self, compiled: CompiledNewsRule) -> RuleReading:
        """A match rule none of whose terms can occur: one reading per rule, built once."""
        reading = self._blank.get(compiled.order)
        if reading is None:
            reading = self._blank[compiled.order] = self._rule(
                compiled, {compiled.fields: ""}, None, {}, {}
            )
        return reading


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def explain(ruleset: RuleSet, text: str, summary: str = "") -> TextReading:
    """How the news rules of `ruleset` read `text` (a headline; `summary` optional)."""
    return Explainer(ruleset).read(text, summary)


# ---------------------------------------------------------------------------
# Text form


_BOLD, _RESET = "\033[1m", "\033[0m"


def highlight(text: str, terms: Iterable[str], *, colour: bool) -> str:
    """`text` with each matched term marked: bold on a terminal, [brackets] otherwise."""
    spans: list[tuple[int, int]] = []
    for term in {t for t in terms if t.strip()}:
        words = [re.escape(w) for w in term.removesuffix("*").split()]
        pattern = r"\s+".join(words)
        for m in re.finditer(
            rf"(?<!\w){pattern}" + (r"\w*" if term.endswith("*") else ""), text, re.I
        ):
            spans.append((m.start(), m.end()))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    left, right = (_BOLD, _RESET) if colour else ("[", "]")
    out, pos = [], 0
    for start, end in merged:
        out.append(text[pos:start] + left + text[start:end] + right)
        pos = end
    return "".join(out) + text[pos:]


def render_text(reading: TextReading, *, colour: bool = False) -> str:
    """The reading for people: the text with matches marked, tone, one line per rule."""
    terms = [t for r in reading.rules if r.fired or r.near_miss for t in r.matched]
    lines = [highlight(reading.text, terms, colour=colour)]
    tone_terms = ", ".join(f"{t.phrase} ({t.weight:+.2f})" for t in reading.tone_terms)
    lines.append(
        f"  tone: {reading.tone.value} ({reading.tone_score:+.2f})"
        + (f" from {tone_terms}" if tone_terms else "")
    )
    for rule in reading.rules:
        if rule.fired:
            status = "FIRED"
        elif rule.near_miss:
            status = "near "
        else:
            status = "  -  "
        detail = ""
        if rule.matched:
            detail += " matched: " + ", ".join(rule.matched)
        if not rule.fired and rule.failed and (rule.near_miss or not rule.enabled):
            detail += ("; " if detail else " ") + "failed: " + rule.failed
        lines.append(f"  {status} {rule.id}{detail}")
    lines.append("  watch-list: " + (", ".join(reading.watchlist) or "-"))
    return "\n".join(lines)
