"""Hostile rule files: alias bombs and unreadable entries, as `check-rules` and `run` see them.

The bomb runs in a real `python -m bot check-rules` process with its address
space capped, so a loader that expands aliases fails the test (MemoryError or
the timeout) instead of eating the machine.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.rules.loader import check_rules_dir
from bot.rules.yamlfile import YamlError, parse_yaml

REPO = Path(__file__).resolve().parents[1]
GOOD = REPO / "tests" / "fixtures" / "rules" / "good"

# Billion laughs: nine levels of nine references (9**9 leaves), 12 lines of YAML.
BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
rules: []
"""


def _limit_memory() -> None:  # runs in the child before exec
    limit = 1024 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _check_rules(rules: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "bot", "check-rules", "--rules", str(rules)],
        cwd=rules.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_limit_memory,
        check=False,
    )


def _rules_dir(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(GOOD, target)
    return target


def test_alias_bomb_is_refused_with_file_and_line(tmp_path: Path) -> None:
    rules = _rules_dir(tmp_path)
    (rules / "bomb.yaml").write_text(BOMB)
    res = _check_rules(rules)
    assert res.returncode == 1, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr[-2000:]
    assert lines[0].startswith(f"{rules}/bomb.yaml:"), lines
    assert "aliases expand" in lines[0]
    assert "Traceback" not in res.stderr


def test_modest_aliases_still_work() -> None:
    doc = parse_yaml("base: &b {severity: warning, tags: [x]}\none: *b\ntwo: *b\n", "f.yaml")
    assert doc.data["one"] == doc.data["two"] == {"severity": "warning", "tags": ["x"]}


def test_alias_budget_error_names_the_line() -> None:
    with pytest.raises(YamlError) as exc:
        parse_yaml(BOMB, "f.yaml")
    (problem,) = exc.value.problems
    assert problem.path == "f.yaml" and 2 <= problem.line <= 10
    assert "aliases expand" in problem.message


# ---------------------------------------------------------------------------
# Unreadable entries: reported, never skipped silently (and never opened when they would block)


def _unreadable_dir(tmp_path: Path) -> Path:
    rules = _rules_dir(tmp_path)
    (rules / "loop.yaml").symlink_to(rules / "loop.yaml")
    os.mkfifo(rules / "fifo.yaml")
    (rules / "zero.yaml").symlink_to("/dev/zero")
    return rules


def test_unreadable_rule_files_are_reported_by_the_loader(tmp_path: Path) -> None:
    rules = _unreadable_dir(tmp_path)
    found = [str(p).replace(str(rules), "DIR") for p in check_rules_dir(rules)]
    assert found == [
        "DIR/fifo.yaml:0: cannot read: not a regular file (a FIFO)",
        "DIR/loop.yaml:0: cannot read: symbolic link loop",
        "DIR/zero.yaml:0: cannot read: not a regular file (a character device)",
    ]


def test_check_rules_reports_unreadable_files_and_fails(tmp_path: Path) -> None:
    rules = _unreadable_dir(tmp_path)
    res = _check_rules(rules, timeout=30)
    assert res.returncode == 1, res.stderr
    assert "OK" not in res.stderr
    assert f"{rules}/fifo.yaml:0: cannot read: not a regular file (a FIFO)" in res.stderr.splitlines()
    assert f"{rules}/loop.yaml:0: cannot read: symbolic link loop" in res.stderr.splitlines()
    assert f"{rules}/zero.yaml:0: cannot read: not a regular file (a character device)" in res.stderr.splitlines()
