"""`python -m bot test-rules`: rule unit tests in `<rules>/tests/*.yaml`.

Runs against the fixture rule set `tests/fixtures/rules/good` (stable, unlike the
shipped rules) with the test files in `tests/fixtures/ruletests/`: exit codes,
the failure blocks, the summary line, and one `file:line` error per malformed entry.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from bot.rules.loader import load_rules_dir
from bot.ruletest.cli import main
from tests.test_cli import bot

REPO = Path(__file__).resolve().parents[1]
GOOD_RULES = REPO / "tests/fixtures/rules/good"
CASES = REPO / "tests/fixtures/ruletests"


def run(rules: Path, *files: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(rules, list(files), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """The good fixture rules with a `tests/` folder of their own."""
    target = tmp_path / "rules"
    shutil.copytree(GOOD_RULES, target)
    (target / "tests").mkdir()
    return target


def test_passing_file_exits_0_with_summary(rules_dir: Path) -> None:
    shutil.copy(CASES / "passing.yaml", rules_dir / "tests/passing.yaml")
    code, out, err = run(rules_dir)  # default: every file under <rules>/tests/
    assert (code, out, err) == (0, "6 passed, 0 failed\n", "")


def test_failures_print_file_line_name_expected_and_got(rules_dir: Path) -> None:
    code, out, err = run(rules_dir, CASES / "failing.yaml")
    path = CASES / "failing.yaml"
    assert code == 1 and err == ""
    assert out == (
        f"FAILED {path}:8: wrong severity and a rule that must not fire\n"
        "  expected: tariff-announcement severity critical\n"
        "  expected not to fire: tariff-announcement\n"
        "  got:      tariff-announcement at 0m (warning)\n"
        "\n"
        f"FAILED {path}:15: nothing may fire, but something does\n"
        "  expected: nothing fires\n"
        "  got:      vix-spike at 0m (warning)\n"
        "\n"
        f"FAILED {path}:20: an expected rule that does not fire\n"
        "  expected: tariff-announcement at 0m\n"
        "  got:      nothing fired\n"
        "  why not:  tariff-announcement: failed all[0]: none of tariff*, levies found\n"
        "\n"
        "1 passed, 3 failed\n"
    )


def test_malformed_file_is_file_line_errors_and_nothing_runs(rules_dir: Path) -> None:
    path = CASES / "malformed.yaml"
    code, out, err = run(rules_dir, path)
    assert code == 1 and out == ""
    assert err.splitlines() == [
        f"{path}:4: tests[0].events[0].at: expected a duration like 90, '90s', '30m', '1.5h', '2d' or '1w'",
        f"{path}:5: tests[0].events[1]: an event needs either `headline` or `price`",
        f"{path}:8: tests[0]: unknown key 'expect_non' (did you mean 'expect_none'?)",
        f"{path}:10: tests[1].events: a test needs at least one event",
        f"{path}:12: tests[2]: a test needs `expect` (use [] for \"nothing fires\") or `expect_none`",
    ]


def test_unknown_rule_ids_and_watchlists_are_errors(rules_dir: Path) -> None:
    path = CASES / "unknown_ids.yaml"
    code, out, err = run(rules_dir, path, CASES / "passing.yaml")
    assert code == 1 and out == ""  # one bad file stops the run: no partial green
    assert err.splitlines() == [
        f"{path}:6: tests[0].expect[0].rule: unknown rule id 'tarif-announcement' (did you mean 'tariff-announcement'?)",
        f"{path}:7: tests[0].expect[1].rule: rule 'vix-jump' is disabled and never alerts (a building block of tariff-vix)",
        f"{path}:8: tests[0].expect[2].watchlist[0]: 'gold' is neither a watch-list sector nor one of its tickers "
        "(sectors: chips, defensives)",
        f"{path}:9: tests[0].expect_none[0]: unknown rule id 'no-such-rule'",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "1: empty file: expected `tests:` with a list of tests"),
        ("tests: []\n", "1: tests: no tests: `tests:` lists none"),
        ("- a\n- b\n", "1: expected a mapping with `tests:` at the top level"),
        ("tests:\n  - name: x\n    events: [{at: 0, headline: y}]\n   expect: []\n", "4: YAML syntax error"),
        (
            "tests:\n  - name: x\n    events: [{at: -5m, headline: y}]\n    expect: []\n",
            "3: tests[0].events[0].at: expected a duration",
        ),
        (
            "tests:\n  - name: x\n    events: [{at: 0, price: {symbol: '^VIX'}}]\n    expect: []\n",
            "3: tests[0].events[0].price: missing required key 'value'",
        ),
        (
            "tests:\n  - name: x\n    events: [{at: 0, headline: y}]\n    expect: [{rule: vix-30, count: 0}]\n",
            "4: tests[0].expect[0].count: Input should be greater than or equal to 1",
        ),
    ],
)
def test_each_malformed_shape_names_its_line(rules_dir: Path, text: str, message: str) -> None:
    path = rules_dir / "tests/case.yaml"
    path.write_text(text)
    code, out, err = run(rules_dir)
    assert code == 1 and out == ""
    assert err.startswith(f"{path}:{message}"), err


def test_no_test_files_is_an_error(rules_dir: Path) -> None:
    code, out, err = run(rules_dir)
    assert (code, out) == (1, "")
    assert err == f"{rules_dir / 'tests'}: no rule tests found (*.yaml)\n"
    code, _, err = run(rules_dir, rules_dir / "tests/missing.yaml")
    assert code == 1 and err == f"{rules_dir / 'tests/missing.yaml'}:0: no such file\n"


def test_tests_folder_is_never_loaded_as_rules(rules_dir: Path) -> None:
    (rules_dir / "tests/not_rules.yaml").write_text("tests: [this is not a rule file]\n")
    (rules_dir / "tests/deeper").mkdir()
    (rules_dir / "tests/deeper/x.yaml").write_text("rules: [{id: bad}]\n")
    ruleset = load_rules_dir(rules_dir)
    assert "bad" not in {r.id for r in ruleset.rules}


def test_bad_rules_directory_is_reported_first(rules_dir: Path) -> None:
    (rules_dir / "broken.yaml").write_text("rules:\n  - id: x\n    type: nope\n")
    code, out, err = run(rules_dir, CASES / "passing.yaml")
    assert code == 1 and out == ""
    assert err.startswith(f"{rules_dir / 'broken.yaml'}:3: ")


def test_command_line_exit_codes_and_help(rules_dir: Path, tmp_path: Path) -> None:
    shutil.copy(CASES / "passing.yaml", rules_dir / "tests/passing.yaml")
    ok = bot("test-rules", "--rules", str(rules_dir), cwd=tmp_path)
    assert (ok.returncode, ok.stdout) == (0, "6 passed, 0 failed\n"), ok.stderr
    failing = bot("test-rules", "--rules", str(rules_dir), str(CASES / "failing.yaml"), cwd=tmp_path)
    assert failing.returncode == 1 and failing.stdout.endswith("1 passed, 3 failed\n")
    usage = bot("--help", cwd=tmp_path)
    assert "test-rules" in usage.stdout and "dry-run" in usage.stdout


def test_shipped_rules_pass_their_shipped_tests() -> None:
    """What CI runs: `python -m bot test-rules` over rules/tests/ (at least 100 cases)."""
    code, out, err = run(REPO / "rules")
    assert code == 0, out + err
    passed = int(out.splitlines()[-1].split()[0])
    assert passed >= 100, out


def test_each_test_starts_from_nothing(rules_dir: Path) -> None:
    """The rules are compiled once per run, but no crossing, window or confirm state carries over."""
    code, out, err = run(rules_dir, CASES / "isolation.yaml")
    assert (code, out, err) == (0, "2 passed, 0 failed\n", "")
