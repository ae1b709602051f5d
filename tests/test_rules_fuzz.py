"""Garbage in rule files: the loader reports problems, it never crashes (hypothesis)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.rules.loader import Problem, RuleLoadError, check_rules_dir, load_rules_dir

GOOD = Path(__file__).resolve().parent / "fixtures" / "rules" / "good"

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["match", "tone", "threshold", "change", "confirm", "30m", "1h", "(a+)+$", "^VIX", "critical"]),
)
keys = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["id", "type", "description", "severity", "cooldown", "watchlist", "any", "all",
                     "none", "regex", "symbol", "above", "pct", "rules", "within", "template", "rules"]),
)
documents = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5), max_leaves=25)


def _check(text: str) -> list[Problem]:
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules"
        shutil.copytree(GOOD, rules)
        (rules / "fuzz.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
        problems = check_rules_dir(rules)
        try:
            load_rules_dir(rules)
        except RuleLoadError as exc:
            assert exc.problems == problems
        else:
            assert problems == []
    return problems


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_structured_garbage_gives_problems_not_crashes(doc: object) -> None:
    for text in (yaml.safe_dump({"rules": [doc]}), yaml.safe_dump(doc)):
        for p in _check(text):
            assert p.path.endswith("fuzz.yaml") and p.line >= 0 and p.message


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200).filter(lambda s: "\x00" not in s and not any(0xD800 <= ord(c) <= 0xDFFF for c in s)))
def test_arbitrary_text_gives_problems_not_crashes(text: str) -> None:
    _check(text)


def test_a_control_character_is_reported_with_its_line() -> None:
    problems = _check("rules:\n  - id: x\n    description: bad \x1f byte\n")
    assert [(p.line, p.message) for p in problems] == [(3, "control character U+001F is not allowed in YAML")]
