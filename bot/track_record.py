"""Per-rule track record: live outcomes from the database beside the backtest's report.

Live: for each rule, horizon (30 min, 1 trading day) and symbol, the number of
alerts with a quote, the mean change and the share up. Backtest: the same rule
in a `backtest --report` JSON (next daily sample), with its difference from
the baseline and 95 % interval. Shared by `python -m bot stats`, Telegram's
/stats and Discord's /readout stats, so all three say the same.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from bot.live_outcomes import HORIZON_WORDS, LABELS, MINUS
from bot.storage.outcomes import OutcomeJob


@dataclass(frozen=True)
class LiveStat:
    n: int
    mean_pct: float
    up_share: float


@dataclass
class RuleRecord:
    alerts: int
    stats: dict[str, dict[str, LiveStat]]
    """horizon → symbol → stat."""


def live_record(jobs: Iterable[OutcomeJob]) -> dict[str, RuleRecord]:
    """Finished jobs → per rule: distinct alerts, and per horizon and symbol the moves."""
    alerts: dict[str, set[str]] = {}
    changes: dict[str, dict[str, dict[str, list[float]]]] = {}
    for job in jobs:
        alerts.setdefault(job.rule_id, set()).add(job.alert_id)
        by_symbol = changes.setdefault(job.rule_id, {}).setdefault(job.horizon, {})
        for symbol, move in (job.moves or {}).items():
            values = by_symbol.setdefault(symbol, [])
            if isinstance(move, Mapping) and isinstance(move.get("change_pct"), (int, float)):
                values.append(float(move["change_pct"]))
    out: dict[str, RuleRecord] = {}
    for rule_id, ids in alerts.items():
        stats = {
            h: {
                s: LiveStat(len(v), statistics.fmean(v), sum(1 for x in v if x > 0) / len(v))
                for s, v in by_symbol.items()
                if v
            }
            for h, by_symbol in changes.get(rule_id, {}).items()
        }
        out[rule_id] = RuleRecord(len(ids), stats)
    return out


class _Reaction(BaseModel):
    n: int
    mean_pct: float
    median_pct: float | None = None
    up_share: float
    diff_vs_baseline_pct: float | None = None
    ci95: list[float | None] | None = None


class _RuleReport(BaseModel):
    n: int
    outcome: dict[str, dict[str, _Reaction]]


class BacktestReport(BaseModel):
    """The parts of a `backtest --report` JSON that the track record shows."""

    period: dict[str, Any]
    rules: dict[str, _RuleReport]


class ReportError(Exception):
    """A BACKTEST_REPORT that cannot be read (one line, with the path)."""


def load_report(path: Path) -> BacktestReport:
    try:
        return BacktestReport.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ReportError(f"{path}: not a backtest report: {where}: {first['msg']}") from None


def _pct(value: float, digits: int = 2) -> str:
    return f"{value:+.{digits}f}".replace("-", MINUS) + " %"


def _live_lines(record: RuleRecord, symbols: Sequence[str]) -> list[str]:
    lines = []
    for horizon, words in HORIZON_WORDS.items():
        stats = record.stats.get(horizon, {})
        parts = [
            f"{LABELS.get(s, s)} {_pct(st.mean_pct)} ({st.up_share:.0%} up, n={st.n})"
            for s in symbols
            if (st := stats.get(s)) is not None
        ]
        if parts:
            lines.append(f"  live, {words}: {', '.join(parts)}")
    return lines


def _backtest_part(symbol: str, r: _Reaction) -> str:
    part = f"{LABELS.get(symbol, symbol)} {_pct(r.mean_pct)} ({r.up_share:.0%} up, n={r.n}"
    if r.diff_vs_baseline_pct is not None:
        part += f", vs baseline {_pct(r.diff_vs_baseline_pct)}"
    if r.ci95 and len(r.ci95) == 2 and r.ci95[0] is not None and r.ci95[1] is not None:
        part += f", CI {_pct(r.ci95[0])[:-2]} … {_pct(r.ci95[1])[:-2]}"
    return part + ")"


def _compact(
    rule_id: str, record: RuleRecord | None, bt: _RuleReport | None, symbols: Sequence[str]
) -> str:
    """One line per rule (for chat): live 30-minute means, backtest next-close means."""
    text = f"{rule_id}: live n={record.alerts if record else 0}"
    stats = record.stats.get("30m", {}) if record else {}
    moves = [f"{LABELS.get(s, s)} {_pct(st.mean_pct, 1)}" for s in symbols if (st := stats.get(s))]
    if moves:
        text += f" (30 min: {', '.join(moves)})"
    if bt is not None and bt.n:
        moves = [
            f"{LABELS.get(s, s)} {_pct(r.mean_pct)}"
            for s in symbols
            if (r := bt.outcome.get(s, {}).get("1")) is not None
        ]
        text += f"; backtest n={bt.n}" + (f" (next close: {', '.join(moves)})" if moves else "")
    return text


def format_record(
    live: Mapping[str, RuleRecord],
    report: BacktestReport | None,
    *,
    symbols: Sequence[str],
    rule: str | None = None,
    rule_order: Sequence[str] = (),
    compact: bool = False,
) -> list[str]:
    """Plain text lines (chat adapters escape them): a block per rule, or with `compact`
    one line per rule."""
    rules = list(dict.fromkeys([*rule_order, *live, *(report.rules if report else {})]))
    if rule is not None:
        rules = [rule] if rule in rules else []
    lines: list[str] = []
    for rule_id in rules:
        record = live.get(rule_id)
        bt = report.rules.get(rule_id) if report else None
        if record is None and (bt is None or bt.n == 0):
            continue
        if compact:
            lines.append(_compact(rule_id, record, bt, symbols))
            continue
        lines.append(f"{rule_id}: {record.alerts if record else 0} live alerts with outcomes")
        if record is not None:
            lines += _live_lines(record, symbols)
        parts = [
            _backtest_part(s, r)
            for s in symbols
            if bt is not None and (r := bt.outcome.get(s, {}).get("1")) is not None
        ]
        if bt is not None and parts:
            lines.append(f"  backtest ({bt.n} alerts), next daily close: {', '.join(parts)}")
    if not lines:
        if rule is not None:
            return [f"No track record for {rule} yet."]
        return ["No track record yet: outcomes appear 30 minutes after the first alert."]
    return lines
