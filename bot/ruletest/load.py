"""Read rule-test files into validated tests, or `file:line: message` problems.

Uses the same line-keeping YAML loader as the rule files (`bot.rules.yamlfile`), so
a malformed test points at its line exactly like `check-rules` does. Checks that
need the rule set (rule ids in `expect`, watch-list names) happen here too: a test
that names a rule that does not exist can never pass, and must say why.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from bot.rules.loader import RuleSet
from bot.rules.schema import ConfirmRule
from bot.rules.yamlfile import Problem, YamlDoc, YamlError, load_yaml, validation_problems
from bot.ruletest.schema import KNOWN_KEYS, RuleTest, RuleTestFile

TESTS_DIR = "tests"
"""Rule tests live in `<rules dir>/tests/`; the rule loader never looks into sub-folders."""


@dataclass(frozen=True)
class LoadedTest:
    test: RuleTest
    path: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def discover(rules_dir: Path) -> list[Path]:
    """Every `*.yaml` / `*.yml` under `<rules_dir>/tests/`, in name order (sub-folders too)."""
    root = rules_dir / TESTS_DIR
    if not root.is_dir():
        return []
    return sorted(
        p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file() and not p.name.startswith(".")
    )


def load_test_file(path: Path, ruleset: RuleSet) -> tuple[list[LoadedTest], list[Problem]]:
    """Tests of one file, or every problem in it (then no tests)."""
    try:
        doc = load_yaml(path)
    except YamlError as exc:
        return [], exc.problems
    if doc.data is None:
        return [], [Problem(path=doc.path, line=1, message="empty file: expected `tests:` with a list of tests")]
    if not isinstance(doc.data, dict):
        return [], [Problem(path=doc.path, line=1, message="expected a mapping with `tests:` at the top level")]
    try:
        parsed = RuleTestFile.model_validate(doc.data)
    except ValidationError as exc:
        return [], validation_problems(exc, doc, known_keys=KNOWN_KEYS)
    problems = _check_against_rules(parsed, doc, ruleset)
    if problems:
        return [], problems
    return [LoadedTest(t, doc.path, doc.line_of(("tests", i))) for i, t in enumerate(parsed.tests)], []


def _check_against_rules(parsed: RuleTestFile, doc: YamlDoc, ruleset: RuleSet) -> list[Problem]:
    ids = [r.id for r in ruleset.rules]
    sectors = ruleset.watchlists
    names = set(sectors) | {t for item in sectors.values() for t in item.tickers}
    # rules that alert: enabled ones, and the confirm rules' disabled building blocks do not
    problems: list[Problem] = []

    def unknown(rule_id: str, loc: tuple[str | int, ...], where: str) -> None:
        rule = ruleset.get(rule_id)
        if rule is None:
            hint = difflib.get_close_matches(rule_id, ids, n=1, cutoff=0.6)
            message = f"{where}: unknown rule id {rule_id!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
            problems.append(doc.problem(loc, message))
        elif not rule.enabled and loc[2] == "expect":
            used_by = [r.id for r in ruleset.rules if isinstance(r, ConfirmRule) and rule_id in r.rules]
            via = f" (a building block of {', '.join(used_by)})" if used_by else ""
            problems.append(doc.problem(loc, f"{where}: rule {rule_id!r} is disabled and never alerts{via}"))

    for i, test in enumerate(parsed.tests):
        for j, exp in enumerate(test.expect or []):
            unknown(exp.rule, ("tests", i, "expect", j, "rule"), f"tests[{i}].expect[{j}].rule")
            for k, name in enumerate(exp.watchlist or []):
                if name not in names:
                    problems.append(
                        doc.problem(
                            ("tests", i, "expect", j, "watchlist", k),
                            f"tests[{i}].expect[{j}].watchlist[{k}]: {name!r} is neither a watch-list sector "
                            f"nor one of its tickers (sectors: {', '.join(sorted(sectors))})",
                        )
                    )
        for j, rule_id in enumerate(test.expect_none):
            unknown(rule_id, ("tests", i, "expect_none", j), f"tests[{i}].expect_none[{j}]")
    return problems
