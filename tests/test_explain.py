"""`explain`: the engine's own verdict per rule, near-miss reasons, tone, and the CLI contract.

Headlines are real (tests/fixtures/real_headlines_sample.json keeps outlet, date and URL:
a random sample of the hand-labelled set described in /work/shared/data/README.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.models import NewsEvent
from bot.rules.engine import RuleEngine, news_texts
from bot.rules.explain import Explainer, explain, highlight, render_text
from bot.rules.loader import RuleSet, load_rules_dir
from bot.rules.matcher import Condition, Near, _Gate, _near_matches, tokens_of

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE = json.loads((FIXTURES / "real_headlines_sample.json").read_text(encoding="utf-8"))
NEWS_RULES = {
    "tariff-announcement",
    "tariff-retaliation",
    "tariff-truce",
    "export-controls-chips",
    "export-controls-minerals",
    "trade-talks",
    "readout-hope",
    "readout-friction",
}


@pytest.fixture(scope="module")
def shipped() -> RuleSet:
    return load_rules_dir(REPO / "rules")


def _conditions(cond: Condition | Near) -> list[Condition | Near]:
    out: list[Condition | Near] = [cond]
    if isinstance(cond, Near):
        return out
    for part in (cond.any, cond.all, cond.none):
        if part is not None:
            for group in part.groups:
                out.extend(_conditions(group))
    return out


def test_explain_agrees_with_the_engine_on_real_headlines(shipped: RuleSet) -> None:
    engine = RuleEngine(shipped)
    explainer = Explainer(shipped)
    now = datetime(2025, 4, 4, tzinfo=UTC)
    fired_any = 0
    for i, item in enumerate(SAMPLE):
        event = NewsEvent(id=str(i), source="test", title=item["title"], seen_at=now)
        engine_ids = [a.rule_id for a in engine.evaluate(event, now=now) if a.kind == "news"]
        reading = explainer.read(item["title"])
        assert reading.fired == engine_ids, item["title"]
        fired_any += bool(engine_ids)
        for rule in reading.rules:
            assert rule.fired == (rule.id in engine_ids)
            assert (rule.failed is None) == rule.fired, (item["title"], rule)
    assert fired_any >= 10  # the sample is mostly trade-war news


def test_condition_explain_and_test_never_disagree(shipped: RuleSet) -> None:
    """Every compiled condition, nested groups included, on every sample text."""
    engine = RuleEngine(shipped)
    conditions = [
        c for n in engine.news_rules if n.condition is not None for c in _conditions(n.condition)
    ]
    assert len(conditions) > 10
    for item in SAMPLE:
        text = news_texts(item["title"])[("title",)]
        tokens = tokens_of(text)
        for cond in conditions:
            trace = cond.explain(text, tokens)
            assert trace.ok == (cond.test(text, tokens) is not None), (item["title"], cond.label())


LABELLED = Path(__file__).resolve().parents[2] / "shared" / "data" / "news_headlines_labelled.json"


@pytest.mark.skipif(not LABELLED.exists(), reason=f"labelled headlines not found at {LABELLED}")
def test_term_gates_never_change_a_verdict(
    shipped: RuleSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside conditions, terms are searched only when their anchor occurs (shared gates, one
    answer per text; a `near` stops at a list with no anchor; `none` is checked last). Every
    condition and nested group gives the same verdict and matches with every term searched."""
    titles = [h["title"] for h in json.loads(LABELLED.read_text(encoding="utf-8"))]
    titles += [item["title"] for item in SAMPLE] + [
        "U.S. re-imposes tariffs on China",  # a prefix anchor after a hyphen
        "CHINA RETALIATES WITH 34% LEVIES",
        "China's tariffs: not to be raised, officials deny reports",
    ]
    engine = RuleEngine(shipped)
    conditions = [
        c for n in engine.news_rules if n.condition is not None for c in _conditions(n.condition)
    ]
    texts = [news_texts(title)[("title",)] for title in titles]
    gated = [[cond.test(text) for cond in conditions] for text in texts]
    assert any(v is not None for row in gated for v in row)
    monkeypatch.setattr(_Gate, "pick", lambda self, scan: list(self.terms))
    _near_matches.cache_clear()  # holds matches found through the gates
    try:
        for text, row in zip(texts, gated, strict=True):
            assert [cond.test(text) for cond in conditions] == row, text
    finally:
        _near_matches.cache_clear()


@pytest.mark.skipif(not LABELLED.exists(), reason=f"labelled headlines not found at {LABELLED}")
def test_shortcuts_read_the_labelled_headlines_as_the_full_path_does(shipped: RuleSet) -> None:
    """The fast path (absent-anchor traces, fired rules taken from the engine) changes nothing."""
    titles = [h["title"] for h in json.loads(LABELLED.read_text(encoding="utf-8"))]
    fast, full = Explainer(shipped), Explainer(shipped, shortcuts=False)
    skipped_some = False
    for title in titles:
        assert fast.read(title) == full.read(title), title
        text = news_texts(title)[("title",)]
        present = fast._probe.present(text)
        skipped_some = skipped_some or any(
            n.condition is not None and n.condition.absent(present) for n in fast._engine.news_rules
        )
    assert skipped_some  # the shortcut is exercised, not just harmless


def test_absent_anchor_traces_equal_full_traces(shipped: RuleSet) -> None:
    """Every condition and nested group, with and without `present`, on real headlines."""
    explainer = Explainer(shipped)
    conditions = [
        c
        for n in explainer._engine.news_rules
        if n.condition is not None
        for c in _conditions(n.condition)
    ]
    titles = [item["title"] for item in SAMPLE]
    if LABELLED.exists():
        titles += [h["title"] for h in json.loads(LABELLED.read_text(encoding="utf-8"))]
    absent = 0
    for title in titles:
        text = news_texts(title)[("title",)]
        tokens = tokens_of(text)
        present = explainer._probe.present(text)
        for cond in conditions:
            for nested in (False, True):
                full = cond.explain(text, tokens, nested=nested)
                assert cond.explain(text, tokens, nested=nested, present=present) == full, (
                    title,
                    cond.label(),
                )
            absent += cond.absent(present)
    assert absent > 0


_OWN_RULES = """\
rules:
  - id: us-tariffs
    type: match
    description: US tariff moves
    all:
      - any: [tariff*, duties]
      - any: [impose*, raise*, hike*, slap*, double*]
    none: [delay*, "no plans"]
"""


def _own_ruleset(tmp_path: Path) -> RuleSet:
    for name in ("sources.yaml", "watchlists.yaml"):
        (tmp_path / name).write_text(
            (REPO / "rules" / name).read_text(encoding="utf-8"), encoding="utf-8"
        )
    (tmp_path / "own.yaml").write_text(_OWN_RULES, encoding="utf-8")
    return load_rules_dir(tmp_path)


def test_near_miss_names_the_failing_condition(tmp_path: Path) -> None:
    ruleset = _own_ruleset(tmp_path)
    # Engadget, 2019-08-13, https://www.engadget.com/2019-08-13-us-tariffs-delayed-phones-consoles-monitors-laptops.html
    reading = explain(
        ruleset, "US delays tariffs on some Chinese-made electronics until December 15th"
    )
    (rule,) = reading.rules
    assert not rule.fired and rule.near_miss
    assert rule.failed == "none: vetoed by delay* (delays)"
    assert rule.vetoed_by == ["delay* (delays)"]
    # Page Free Press (Luray), 2018-07-06,
    # http://luraypagefreepress.com/2018/07/06/united-states-tariffs-on-34b-chinese-imports-take-effect/
    reading = explain(ruleset, "United States tariffs on $34B Chinese imports take effect")
    (rule,) = reading.rules
    assert rule.near_miss and rule.matched == ["tariffs"]
    assert rule.failed == "all[1]: none of impose*, raise*, hike*, slap*, double* found"
    assert reading.fired == [] and reading.watchlist == []


def test_tone_terms_and_watchlist(shipped: RuleSet) -> None:
    # MOFCOM spokesperson on the $200bn tariff decision, 2018-09-18, quoted by XFA Finance,
    # http://en.xfafinance.com/html/Economies/Trade/2018/363945.shtml
    text = (
        "We feel deeply regretful over the decision. China will be forced to take synchronous "
        "countermeasures to safeguard our legitimate rights and interests as well as the global "
        "free trade order"
    )
    reading = explain(shipped, text)
    assert reading.tone.value == "friction"
    assert reading.tone_score < 0
    assert any("countermeasure" in t.phrase and t.weight < 0 for t in reading.tone_terms)
    assert "readout-friction" in reading.fired
    rule = shipped.get("readout-friction")
    assert rule is not None
    for sector in rule.watchlist:
        assert sector in reading.watchlist
    friction = next(r for r in reading.rules if r.id == "readout-friction")
    assert friction.tone is not None and friction.tone.terms


def test_highlight_marks_terms_without_colour_codes() -> None:
    marked = highlight("US raises tariffs on Chinese goods", ["tariffs", "raises"], colour=False)
    assert marked == "US [raises] [tariffs] on Chinese goods"
    assert "\033[" in highlight("US raises tariffs", ["tariffs"], colour=True)


def test_render_text_lists_every_rule(shipped: RuleSet) -> None:
    reading = explain(shipped, "US raises tariffs on Chinese goods to 25%")
    text = render_text(reading)
    assert "\033[" not in text
    assert "FIRED tariff-announcement" in text
    for rule_id in NEWS_RULES:
        assert rule_id in text


# ---------------------------------------------------------------------------
# CLI


def _bot(
    *args: str, stdin: str | None = None, hash_seed: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if hash_seed is not None:
        env["PYTHONHASHSEED"] = hash_seed
    for name in ("TELEGRAM_BOT_TOKEN", "DISCORD_BOT_TOKEN", "DATABASE_URL", "RULES_DIR"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        check=False,
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_json_is_the_same_in_every_process() -> None:
    """Vetoes and matched words come in rule order, not in a set's per-process hash order."""
    titles = [
        "Commerce Department Expands Restrictions on Exports to Russia and Belarus",
        "Additional US Sanctions and Export Controls Issued Against Russia and Belarus",
        "China, Beijing and Xi: Chinese officials meet US, EU and Japan on tariffs",
    ]
    outputs = {_bot("explain", "--json", *titles, hash_seed=seed).stdout for seed in ("1", "2", "3")}
    assert len(outputs) == 1
    readings = [json.loads(line) for line in outputs.pop().splitlines()]
    vetoes = {r["id"]: r["vetoed_by"] for r in readings[0]["rules"] if r["vetoed_by"]}
    # one veto (the Russia/Iran group), its matched words as the rule lists them
    [veto] = vetoes["export-controls-chips"]
    assert veto.startswith("{any: [Russia, Russian, Belarus") and veto.endswith("(Russia, Belarus)")


def test_cli_json_one_object_per_stdin_line_in_order() -> None:
    titles = [item["title"] for item in SAMPLE[:12]] + [""]
    proc = _bot("explain", "--json", stdin="\n".join(titles) + "\n")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["text"] for line in lines] == titles
    for line in lines:
        assert {"text", "fired", "tone", "tone_score", "watchlist", "rules"} <= set(line)
        assert line["tone"] in {"hope", "friction", "neutral"}
        assert set(line["fired"]) <= NEWS_RULES
        assert {r["id"] for r in line["rules"]} == NEWS_RULES
        assert [r["id"] for r in line["rules"] if r["fired"]] == line["fired"]
    assert lines[-1]["fired"] == [] and lines[-1]["tone"] == "neutral"


def test_cli_text_arguments_human_form() -> None:
    proc = _bot(
        "explain", "US raises tariffs on Chinese goods to 25%", "Apple launches a new iPhone"
    )
    assert proc.returncode == 0, proc.stderr
    assert "\033[" not in proc.stdout  # not a terminal: no colour codes
    assert "FIRED tariff-announcement" in proc.stdout
    assert "[tariffs]" in proc.stdout
    assert proc.stdout.count("watch-list:") == 2


def test_cli_bad_rules_dir_is_a_file_line_error(tmp_path: Path) -> None:
    shutil_copy(REPO / "rules", tmp_path)
    (tmp_path / "tariffs.yaml").write_text(
        "rules:\n  - id: broken\n    type: match\n    description: x\n    any: [tariff]\n    colour: red\n",
        encoding="utf-8",
    )
    proc = _bot("explain", "--rules", str(tmp_path), "US raises tariffs")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert f"{tmp_path / 'tariffs.yaml'}:6:" in proc.stderr


def test_cli_unknown_option_exits_2() -> None:
    proc = _bot("explain", "--jsn", "x")
    assert proc.returncode == 2
    assert "unrecognized arguments" in proc.stderr


def shutil_copy(src: Path, dst: Path) -> None:
    for path in src.glob("*.yaml"):
        (dst / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
