"""`python -m bot test-rules [--rules DIR] [FILE ...]`: run rule tests, pytest-style.

Exit codes: 0 every test passed; 1 a test failed, a test file or the rules
directory is malformed (`file:line: message` on stderr, no test is run), or
there was no test file to run (a CI step that tests nothing is a mistake).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TextIO

from bot.rules.engine import RuleEngine
from bot.rules.loader import RuleLoadError, RuleSet, load_rules_dir
from bot.rules.yamlfile import Problem
from bot.ruletest.load import TESTS_DIR, LoadedTest, discover, load_test_file
from bot.ruletest.run import NearMiss, Outcome, format_failure, run_test
from bot.ruletest.why import NearMissReasons


def collect(rules_dir: Path, files: list[Path], ruleset: RuleSet) -> tuple[list[LoadedTest], list[Problem]]:
    paths = files or discover(rules_dir)
    tests: list[LoadedTest] = []
    problems: list[Problem] = []
    for path in paths:
        if not path.is_file():
            problems.append(Problem(path=str(path), line=0, message="no such file"))
            continue
        loaded, found = load_test_file(path, ruleset)
        tests += loaded
        problems += found
    return tests, problems


async def run_all(tests: list[LoadedTest], ruleset: RuleSet) -> list[Outcome]:
    near_miss: NearMiss = NearMissReasons(ruleset)
    engine = RuleEngine(ruleset)  # compiled once; each test gets a copy without state
    return [await run_test(t, ruleset, near_miss=near_miss, engine=engine) for t in tests]


def main(rules_dir: Path, files: list[Path], *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    try:
        ruleset = load_rules_dir(rules_dir)
    except RuleLoadError as exc:
        for problem in exc.problems:
            print(problem, file=err)
        return 1
    tests, problems = collect(rules_dir, files, ruleset)
    if problems:
        for problem in problems:
            print(problem, file=err)
        return 1
    if not tests:
        print(f"{rules_dir / TESTS_DIR}: no rule tests found (*.yaml)", file=err)
        return 1
    outcomes = asyncio.run(run_all(tests, ruleset))
    failed = [o for o in outcomes if not o.passed]
    for outcome in failed:
        print("\n".join(format_failure(outcome)), file=out)
        print(file=out)
    print(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed", file=out)
    return 1 if failed else 0
