"""Rule engine throughput: 1,000 match rules × 100,000 headlines, ours vs a naive re.search loop.

    .venv/bin/python bench/rules_engine.py [--rules 1000] [--headlines 100000] [--naive-sample 5000]

The baseline is what one would write first: every rule compiled to regexes
(any-terms as one alternation, each all-term and none-term as its own), and
for every headline, for every rule, `re.search`. It is measured on a sample of
`--naive-sample` headlines and extrapolated (stated in the output); ours runs on
all of them. Both count matches on the sample so the comparison is like for like.
Target: ours ≥ 10× faster.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

from bot.models import NewsEvent
from bot.rules.engine import RuleEngine
from bot.rules.loader import load_rules_dir


def term_regex(term: str) -> str:
    prefix = term.endswith("*")
    words = term.rstrip("*").split()
    body = r"\s+".join(re.escape(w) for w in words)
    return r"(?<!\w)" + body + (r"\w*" if prefix else r"(?!\w)")


def naive_rules(conds: list[dict[str, list[str]]]) -> list[tuple[re.Pattern[str], list[re.Pattern[str]], list[re.Pattern[str]]]]:
    out = []
    for c in conds:
        any_ = re.compile("|".join(term_regex(t) for t in c["any"]), re.IGNORECASE)
        all_ = [re.compile(term_regex(t), re.IGNORECASE) for t in c.get("all", [])]
        none = [re.compile(term_regex(t), re.IGNORECASE) for t in c.get("none", [])]
        out.append((any_, all_, none))
    return out


def naive_count(rules, titles: list[str]) -> int:  # type: ignore[no-untyped-def]
    hits = 0
    for title in titles:
        for any_, all_, none in rules:
            if (
                re.search(any_, title)
                and all(re.search(p, title) for p in all_)
                and not any(re.search(p, title) for p in none)
            ):
                hits += 1
    return hits


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--headlines", type=int, default=100_000)
    ap.add_argument("--naive-sample", type=int, default=5000, help="headlines the baseline runs on")
    args = ap.parse_args()

    print(f"machine: {_common.machine()}")
    titles = _common.headlines(args.headlines)
    sample = titles[: min(args.naive_sample, len(titles))]
    with tempfile.TemporaryDirectory() as tmp:
        ruleset = load_rules_dir(_common.write_rules_dir(Path(tmp) / "rules", rules=args.rules))
    now = datetime(2025, 4, 9, 12, tzinfo=UTC)
    events = [
        NewsEvent(id=f"h{i}", source="bench", title=t, seen_at=now, published=now)
        for i, t in enumerate(titles)
    ]

    t0 = time.perf_counter()
    engine = RuleEngine(ruleset)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours_hits = 0
    ours_sample_hits = 0
    for i, ev in enumerate(events):
        n = len(engine.evaluate(ev, now=now))
        ours_hits += n
        if i < len(sample):
            ours_sample_hits += n
    ours_s = time.perf_counter() - t0

    naive = naive_rules(_common.rule_terms(args.rules))
    t0 = time.perf_counter()
    naive_sample_hits = naive_count(naive, sample)
    naive_sample_s = time.perf_counter() - t0
    naive_s = naive_sample_s * len(titles) / len(sample)

    print(f"rules: {args.rules}, headlines: {len(titles)} (naive measured on {len(sample)}, extrapolated)")
    print(f"matches on the sample: ours {ours_sample_hits}, naive {naive_sample_hits}; ours in all: {ours_hits}")
    print(f"ours:  {ours_s:8.2f} s ({len(titles) / ours_s:,.0f} headlines/s; compile {compile_s * 1000:.0f} ms)")
    print(f"naive: {naive_s:8.2f} s ({len(sample) / naive_sample_s:,.0f} headlines/s; {naive_sample_s:.2f} s measured)")
    ratio = naive_s / ours_s
    print(f"ratio naive/ours: {ratio:.1f}x  (target >= 10x: {'met' if ratio >= 10 else 'MISSED'})")


if __name__ == "__main__":
    main()
