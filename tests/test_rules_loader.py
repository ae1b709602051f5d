"""Loading rule directories: the RuleSet API and exact `path:line: message` problems.

Each error case is one fixture under tests/fixtures/rules/bad/ (a file, or a
directory of files that override the good base), copied next to the good
fixture's sources.yaml and watchlists.yaml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.models import Severity, WatchItem
from bot.rules.loader import Problem, RuleLoadError, RuleSet, check_rules_dir, load_rules_dir
from bot.rules.schema import (
    ChangeRule,
    ConfirmRule,
    MatchRule,
    ThresholdRule,
    ToneRule,
    parse_duration,
)

FIXTURES = Path(__file__).parent / "fixtures" / "rules"
GOOD = FIXTURES / "good"
BAD = FIXTURES / "bad"
SHIPPED = Path(__file__).parent.parent / "rules"


def bad_dir(tmp_path: Path, case: str) -> Path:
    """The good base (sources + watch-lists) plus one failing fixture."""
    target = tmp_path / "rules"
    target.mkdir()
    for name in ("sources.yaml", "watchlists.yaml"):
        shutil.copy(GOOD / name, target / name)
    source = BAD / case
    if source.is_dir():
        for f in source.iterdir():
            shutil.copy(f, target / f.name)
    else:
        shutil.copy(source, target / source.name)
    return target


def problems(tmp_path: Path, case: str) -> list[str]:
    directory = bad_dir(tmp_path, case)
    found = check_rules_dir(directory)
    with pytest.raises(RuleLoadError) as exc:
        load_rules_dir(directory)
    assert exc.value.problems == found
    assert str(exc.value) == "\n".join(str(p) for p in found)
    return [str(p).replace(str(directory), "DIR") for p in found]


# ---------------------------------------------------------------------------
# Good directories


def test_good_dir_loads() -> None:
    ruleset = load_rules_dir(GOOD)
    assert check_rules_dir(GOOD) == []
    ids = [r.id for r in ruleset.rules]
    # news.yaml then prices.yml (name order), file order within each
    assert ids == [
        "tariff-announcement",
        "entity-list",
        "talks",
        "readout-friction",
        "readout-hope",
        "vix-30",
        "cnh-low",
        "vix-spike",
        "es-drop",
        "yuan-move",
        "vix-jump",
        "tariff-vix",
    ]
    assert [r.id for r in ruleset.enabled_rules()] == [
        i for i in ids if i not in ("talks", "vix-jump")
    ]
    assert ruleset.tags() == ["confirmed", "tariffs", "tone"]
    assert [f.id for f in ruleset.sources.feeds] == ["wire", "mofcom"]
    assert set(ruleset.watchlists) == {"chips", "defensives"}
    assert ruleset.watchlists["chips"] == WatchItem(
        name="chips",
        title="Semiconductors",
        why="Export controls hit chip sales to China.",
        tickers=("NVDA", "AMD", "SMH"),
    )
    assert ruleset.origin("vix-30") == f"{GOOD / 'prices.yml'}:2"


def test_rule_fields_and_types() -> None:
    ruleset = load_rules_dir(GOOD)
    tariff = ruleset.get("tariff-announcement")
    assert isinstance(tariff, MatchRule)
    assert (tariff.severity, tariff.cooldown, tariff.watchlist, tariff.tags) == (
        Severity.warning,
        900.0,
        ["chips"],
        ["tariffs"],
    )
    assert tariff.enabled and tariff.key == "rule" and tariff.sources is None
    assert isinstance(ruleset.get("readout-friction"), ToneRule)
    vix = ruleset.get("vix-30")
    assert isinstance(vix, ThresholdRule) and vix.above == 30 and vix.cooldown == 7200
    assert isinstance(ruleset.get("vix-jump"), ChangeRule)
    confirm = ruleset.get("tariff-vix")
    assert isinstance(confirm, ConfirmRule) and confirm.within == 1800
    assert ruleset.get("nope") is None
    assert ruleset.watchlist_for(vix)[0].name == "defensives"
    assert ruleset.watchlist_for(confirm) == ()


def test_ruleset_is_immutable() -> None:
    ruleset = load_rules_dir(GOOD)
    with pytest.raises(AttributeError):
        ruleset.rules = []  # type: ignore[misc]
    ruleset.rules.clear()  # a copy
    ruleset.watchlists.clear()
    assert len(ruleset.rules) == 12 and len(ruleset.watchlists) == 2
    with pytest.raises(ValidationError):
        ruleset.rules[0].enabled = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        ("90", 90.0),
        ("90s", 90.0),
        ("30m", 1800.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        (" 5 m ", 300.0),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", [True, "soon", "5w", -1, "1h30m", None, [1]])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_shipped_rules_load() -> None:
    if not (SHIPPED / "sources.yaml").exists():
        pytest.skip("rules/sources.yaml not present")
    ruleset = load_rules_dir(SHIPPED)
    ids = {r.id for r in ruleset.rules}
    assert {
        "tariff-announcement",
        "tariff-retaliation",
        "tariff-truce",
        "readout-hope",
        "readout-friction",
        "vix-above-30",
        "vix-above-40",
        "vix-spike",
        "yuan-move",
        "es-drop",
        "export-controls-chips",
        "export-controls-minerals",
        "trade-talks",
        "tariff-vix-confirm",
    } <= ids
    symbols = {r.symbol for r in ruleset.rules if isinstance(r, (ThresholdRule, ChangeRule))}
    assert symbols == {"^VIX", "ES=F", "CNH=X"}
    assert symbols <= {p.symbol for p in ruleset.sources.prices}
    every_ticker = [t for w in ruleset.watchlists.values() for t in w.tickers]
    assert {"ADM", "NVDA", "MP", "TSLA", "CAT", "XOM", "NKE", "BABA", "XLU", "GLD", "TLT"} <= set(
        every_ticker
    )


def test_yaml_anchors_and_aliases_are_allowed(tmp_path: Path) -> None:
    target = bad_dir(tmp_path, "unknown_key.yaml")
    (target / "unknown_key.yaml").unlink()
    (target / "r.yaml").write_text(
        "rules:\n"
        "  - id: a\n    type: match\n    description: A\n    any: &words [tariff, levies]\n"
        "  - id: b\n    type: match\n    description: B\n    all: [{any: *words}, impose]\n"
    )
    ruleset = load_rules_dir(target)
    assert [r.id for r in ruleset.rules] == ["a", "b"]


# ---------------------------------------------------------------------------
# One failing fixture per error case: exact lines


def test_unknown_key(tmp_path: Path) -> None:
    assert problems(tmp_path, "unknown_key.yaml") == [
        "DIR/unknown_key.yaml:5: rules[0]: unknown key 'severty' (did you mean 'severity'?)"
    ]


def test_bad_regex(tmp_path: Path) -> None:
    assert problems(tmp_path, "bad_regex.yaml") == [
        "DIR/bad_regex.yaml:7: rules[0].any[1].regex: bad regex '(\\d+%': missing ), unterminated subpattern at position 0"
    ]


def test_unknown_watchlist(tmp_path: Path) -> None:
    assert problems(tmp_path, "unknown_watchlist.yaml") == [
        "DIR/unknown_watchlist.yaml:7: rules[0].watchlist[1]: unknown watch-list 'soybeans' (known: chips, defensives)"
    ]


def test_missing_required_field(tmp_path: Path) -> None:
    assert problems(tmp_path, "missing_field.yaml") == [
        "DIR/missing_field.yaml:2: rules[0]: missing required key 'id'"
    ]


def test_duplicate_id_points_at_second_occurrence(tmp_path: Path) -> None:
    assert problems(tmp_path, "duplicate_id") == [
        "DIR/b.yaml:8: rules[1].id: duplicate rule id 'tariffs' (first defined at DIR/a.yaml:2)"
    ]


def test_bad_yaml_syntax(tmp_path: Path) -> None:
    assert problems(tmp_path, "bad_yaml.yaml") == [
        (
            "DIR/bad_yaml.yaml:6: YAML syntax error: found unexpected end of stream "
            "(while scanning a quoted scalar at line 4)"
        )
    ]


def test_bad_yaml_indentation(tmp_path: Path) -> None:
    assert problems(tmp_path, "bad_yaml_indent.yaml") == [
        (
            "DIR/bad_yaml_indent.yaml:4: YAML syntax error: expected <block end>, but found '<block mapping start>' "
            "(while parsing a block collection at line 2)"
        )
    ]


def test_wrong_types(tmp_path: Path) -> None:
    assert problems(tmp_path, "wrong_type.yaml") == [
        "DIR/wrong_type.yaml:6: rules[0].above: Input should be a valid number, unable to parse string as a number (got 'thirty')",
        "DIR/wrong_type.yaml:7: rules[0].enabled: Input should be a valid boolean, unable to interpret input (got 'maybe')",
        "DIR/wrong_type.yaml:8: rules[0].cooldown: expected a duration like 90, '90s', '30m', '2h' or '1d'",
    ]


def test_unknown_rule_type(tmp_path: Path) -> None:
    assert problems(tmp_path, "unknown_type.yaml") == [
        (
            "DIR/unknown_type.yaml:3: rules[0].type: unknown rule type 'treshold' "
            "(expected one of: 'match', 'tone', 'threshold', 'change', 'confirm')"
        )
    ]


def test_unknown_confirm_reference(tmp_path: Path) -> None:
    assert problems(tmp_path, "unknown_confirm.yaml") == [
        "DIR/unknown_confirm.yaml:12: rules[1].rules[1]: unknown rule id 'vix-jump'"
    ]


def test_redos_regexes(tmp_path: Path) -> None:
    hint = "rewrite it without nested or ambiguous repeats (atomic groups (?>...) and possessive quantifiers like a++ are allowed)"
    assert problems(tmp_path, "redos.yaml") == [
        f"DIR/redos.yaml:6: rules[0].any[0].regex: regex '(a+)+$' risks catastrophic backtracking (nested quantifier); {hint}",
        (
            f"DIR/redos.yaml:11: rules[1].any[0].regex: regex '(a|a)*b' risks catastrophic backtracking "
            f"(alternation with overlapping branches inside a repeat); {hint}"
        ),
        f"DIR/redos.yaml:16: rules[2].any[0].regex: regex '(.*)*x' risks catastrophic backtracking (nested quantifier); {hint}",
    ]


def test_bad_template_field(tmp_path: Path) -> None:
    assert problems(tmp_path, "bad_template.yaml") == [
        (
            "DIR/bad_template.yaml:5: rules[0].template: unknown template field {price} (allowed: change_pct, description, "
            "last, matched, previous_close, rule_id, sectors, severity, source, symbol, tickers, time, title, tone, "
            "tone_score, url, why)"
        )
    ]


def test_bad_watchlists_file(tmp_path: Path) -> None:
    assert problems(tmp_path, "bad_watchlists") == [
        "DIR/watchlists.yaml:2: watchlists.chips: missing required key 'tickers'",
        "DIR/watchlists.yaml:5: watchlists.chips: unknown key 'ticker' (did you mean 'tickers'?)",
        (
            "DIR/watchlists.yaml:9: watchlists.defensives.tickers[0]: String should match pattern "
            "'^[A-Z0-9^][A-Z0-9.^=-]{0,15}$' (got 'xlu')"
        ),
    ]


def test_bad_sources_file(tmp_path: Path) -> None:
    assert problems(tmp_path, "bad_sources") == [
        "DIR/sources.yaml:3: feeds[0].url: Input should be a valid URL, relative URL without a base (got 'not-a-url')",
        "DIR/sources.yaml:7: prices[0].provider: Input should be 'yahoo', 'cboe' or 'csv' (got 'bloomberg')",
    ]


def test_all_problems_across_files_are_collected(tmp_path: Path) -> None:
    found = problems(tmp_path, "many")
    assert found == [
        "DIR/a.yaml:5: rules[0]: unknown key 'severty' (did you mean 'severity'?)",
        (
            "DIR/b.yaml:5: rules[0].template: unknown template field {price} (allowed: change_pct, description, last, "
            "matched, previous_close, rule_id, sectors, severity, source, symbol, tickers, time, title, tone, tone_score, "
            "url, why)"
        ),
        "DIR/c.yaml:5: rules[0].watchlist[0]: unknown watch-list 'nope' (known: chips, defensives)",
    ]


# ---------------------------------------------------------------------------
# More cases built inline


def write_rules(tmp_path: Path, text: str) -> Path:
    target = bad_dir(tmp_path, "unknown_key.yaml")
    (target / "unknown_key.yaml").write_text(text)
    return target


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    target = write_rules(
        tmp_path,
        "rules:\n  - id: a\n    type: match\n    description: A\n    any: [x]\n    any: [y]\n",
    )
    assert [str(p) for p in check_rules_dir(target)] == [
        f"{target}/unknown_key.yaml:6: rules[0].any: duplicate key 'any'"
    ]


def test_confirm_cycle_and_self_reference(tmp_path: Path) -> None:
    target = write_rules(
        tmp_path,
        "rules:\n"
        "  - id: a\n    type: confirm\n    description: A\n    rules: [b, x]\n    within: 5m\n"
        "  - id: b\n    type: confirm\n    description: B\n    rules: [a, b]\n    within: 5m\n"
        "  - id: x\n    type: match\n    description: X\n    any: [x]\n",
    )
    assert [str(p).replace(str(target), "DIR") for p in check_rules_dir(target)] == [
        "DIR/unknown_key.yaml:5: rules[0].rules: confirm rules form a cycle: a -> b -> a",
        "DIR/unknown_key.yaml:10: rules[1].rules[1]: a confirm rule cannot reference itself",
    ]


def test_rule_level_checks(tmp_path: Path) -> None:
    target = write_rules(
        tmp_path,
        "rules:\n"
        "  - id: t\n    type: threshold\n    description: T\n    symbol: X\n    above: 1\n    below: 2\n"
        "  - id: c\n    type: change\n    description: C\n    symbol: X\n"
        "  - id: m\n    type: match\n    description: M\n    none: [x]\n"
        "  - id: n\n    type: tone\n    description: N\n    alert_on: [neutral]\n    key: symbol\n"
        "  - id: s\n    type: match\n    description: S\n    sources: [nowhere]\n    any: [5, {anyy: [x]}]\n"
        "  - just a string\n",
    )
    # rule `s` is invalid, so its unknown source is not reported as well
    assert [str(p).replace(str(target), "DIR") for p in check_rules_dir(target)] == [
        "DIR/unknown_key.yaml:2: rules[0]: a threshold rule needs exactly one of 'above' or 'below'",
        "DIR/unknown_key.yaml:8: rules[1]: a change rule needs exactly one of 'pct' or 'abs_pct'",
        "DIR/unknown_key.yaml:12: rules[2]: a match rule needs 'any' or 'all' (a 'none' list alone matches everything)",
        "DIR/unknown_key.yaml:19: rules[3].alert_on: alert_on takes 'hope' and/or 'friction' (neutral never alerts)",
        "DIR/unknown_key.yaml:20: rules[3].key: Input should be 'rule', 'title' or 'source' (got 'symbol')",
        (
            "DIR/unknown_key.yaml:25: rules[4].any[0]: expected a word/phrase, {regex: ...}, "
            "{near: [[...], [...]]} or a group {any|all|none: [...]} (got 5)"
        ),
        "DIR/unknown_key.yaml:25: rules[4].any[1]: unknown key 'anyy' (did you mean 'any'?)",
        (
            "DIR/unknown_key.yaml:26: rules[5]: Input should be a valid dictionary or object to extract fields from "
            "(got 'just a string')"
        ),
    ]


def test_missing_files_and_not_a_directory(tmp_path: Path) -> None:
    assert [str(p) for p in check_rules_dir(tmp_path / "nope")] == [
        f"{tmp_path / 'nope'}:0: not a directory"
    ]
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "r.yaml").write_text("")
    assert [str(p).replace(str(empty), "DIR") for p in check_rules_dir(empty)] == [
        "DIR/sources.yaml:0: missing: a rules directory needs sources.yaml",
        "DIR/watchlists.yaml:0: missing: a rules directory needs watchlists.yaml",
        "DIR/r.yaml:1: (top level): missing required key 'rules'",
    ]


def test_problem_str() -> None:
    assert str(Problem(path="rules/x.yaml", line=3, message="boom")) == "rules/x.yaml:3: boom"
    err = RuleLoadError(
        [Problem(path="a", line=1, message="x"), Problem(path="b", line=2, message="y")]
    )
    assert str(err) == "a:1: x\nb:2: y"


def test_ruleset_can_be_built_directly() -> None:
    from bot.sources.config import SourcesFile

    ruleset = RuleSet(sources=SourcesFile(), watchlists={}, rules=[])
    assert ruleset.rules == [] and ruleset.tags() == [] and ruleset.enabled_rules() == []


def test_unknown_source_in_a_valid_rule(tmp_path: Path) -> None:
    target = write_rules(
        tmp_path,
        "rules:\n  - id: a\n    type: match\n    description: A\n    sources: [wire, official, nowhere]\n    any: [x]\n",
    )
    assert [str(p).replace(str(target), "DIR") for p in check_rules_dir(target)] == [
        "DIR/unknown_key.yaml:5: rules[0].sources[2]: unknown source id or tag 'nowhere' (not in sources.yaml)"
    ]


def test_near_and_ignore_in_errors_point_at_the_line(tmp_path: Path) -> None:
    found = problems(tmp_path, "bad_near.yaml")
    assert found == [
        "DIR/bad_near.yaml:6: rules[0].any[0].near: List should have at least 2 items after validation, not 1",
        "DIR/bad_near.yaml:12: rules[1].any[0].within: Input should be less than or equal to 30 (got 99)",
        "DIR/bad_near.yaml:17: rules[2].any[0].near[1][0]: expected a word/phrase or {regex: ...} "
        "(YAML reads bare on/off/yes/no as true/false and 2025 as a number: quote them) (got True)",
        "DIR/bad_near.yaml:21: rules[3].ignore_in[0]: Input should be 'negated', 'denied' or 'hypothetical' (got 'maybe')",
        "DIR/bad_near.yaml:28: rules[4].any[0]: unknown key 'whithin' (did you mean 'within'?)",
    ]
