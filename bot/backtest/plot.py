"""The backtest chart: a price series with a marker per alert, and alerts per rule as bars.

Drawn on a bare `matplotlib.figure.Figure` with the Agg canvas (no pyplot, no
display, no global state), so it runs headless and in tests.

Top panel: the series (VIX by default) as a line; each alert is a marker on
the line at its time (the last close at or before it), coloured by rule (or
severity), shaped by kind (news ●, price ▲, composite ★); threshold levels of
rules on the plotted symbol are dashed lines. With no price series the top
panel is a timeline with one lane per rule. Middle panel: alerts per rule. With an
event study, a bottom row with one panel per symbol: each rule's mean reaction
(next sample by default) with its 95 % interval, against the baseline (dashed).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bot.backtest.outcomes import EventStudy
from bot.models import Alert, PriceEvent
from bot.rules.loader import RuleSet
from bot.rules.schema import ThresholdRule

SEVERITY_COLORS = {"info": "#4C9BE8", "warning": "#F2A104", "critical": "#D62728"}
KIND_MARKERS = {"news": "o", "price": "^", "composite": "*"}
KIND_SIZES = {"news": 36, "price": 60, "composite": 140}
_PALETTE = [  # tab10 without its grey (grey is the price line), then darker extras
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#393b79",
    "#637939",
    "#8c6d31",
    "#843c39",
    "#7b4173",
    "#3182bd",
    "#e6550d",
    "#31a354",
    "#756bb1",
]


@dataclass(frozen=True)
class PriceSeries:
    symbol: str
    times: list[datetime]
    values: list[float]

    @classmethod
    def from_events(cls, symbol: str, events: Sequence[PriceEvent]) -> PriceSeries:
        ordered = sorted(events, key=lambda e: e.time)
        return cls(symbol, [e.time for e in ordered], [e.last for e in ordered])

    def value_at(self, when: datetime) -> float:
        """The last value at or before `when` (the first one before the series starts)."""
        i = bisect.bisect_right(self.times, when) - 1
        return self.values[max(i, 0)]


def rule_colors(rule_ids: Sequence[str], fired: Sequence[str] = ()) -> dict[str, str]:
    """A colour per rule; rules in `fired` get the first (most distinct) colours."""
    order = [*dict.fromkeys(fired), *(r for r in rule_ids if r not in fired)]
    return {r: _PALETTE[i % len(_PALETTE)] for i, r in enumerate(order)}


def plot_backtest(
    out: Path,
    alerts: Sequence[Alert],
    series: PriceSeries | None,
    *,
    rule_order: Sequence[str] = (),
    ruleset: RuleSet | None = None,
    color_by: str = "rule",
    title: str | None = None,
    reactions: EventStudy | None = None,
    horizon: int = 1,
) -> Figure:
    """Write the chart to `out` (format from its suffix, e.g. .png) and return the figure.

    `rule_order` fixes the bar order and colours (rules with no alerts get an
    empty bar); rules only seen in `alerts` follow.
    """
    counts: dict[str, int] = {r: 0 for r in rule_order}
    for a in alerts:
        counts[a.rule_id] = counts.get(a.rule_id, 0) + 1
    rules = list(counts)
    colors = rule_colors(rules, [r for r in rules if counts[r]])
    severity_of = _severities(alerts, rules, ruleset)

    def color(rule_id: str) -> str:
        if color_by == "severity":
            return SEVERITY_COLORS.get(severity_of.get(rule_id, "info"), "#7f7f7f")
        return colors[rule_id]

    top, bottom = _layout(reactions, rules, horizon, colors)
    fig = top.get_figure()
    assert isinstance(fig, Figure)

    # --- top: price series (or lanes) with a marker per alert -----------------
    by_rule: dict[tuple[str, str], list[Alert]] = {}
    for a in alerts:
        by_rule.setdefault((a.rule_id, a.kind), []).append(a)
    lane = {r: len(rules) - i for i, r in enumerate(rules)}
    on_series = series is not None and bool(series.times)
    if series is not None and on_series:
        _draw_series(top, series, ruleset)
    else:
        top.set_yticks(list(lane.values()), list(lane))
        top.set_ylim(0.3, len(rules) + 0.7)
        top.grid(axis="y", color="#eeeeee")
    for rule_id in sorted(rules, key=lambda r: -counts[r]):  # rare rules drawn last, on top
        for kind in ("news", "price", "composite"):
            group = by_rule.get((rule_id, kind), [])
            if not group:
                continue
            xs = [a.event_time for a in group]
            ys = [series.value_at(x) for x in xs] if series is not None and on_series else [lane[rule_id]] * len(xs)
            top.scatter(
                xs,  # type: ignore[arg-type]
                ys,
                s=KIND_SIZES[kind],
                marker=KIND_MARKERS[kind],
                color=color(rule_id),
                edgecolors="white",
                linewidths=0.6,
                alpha=0.85,
                zorder=3,
            )
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    top.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
    top.xaxis.set_major_formatter(formatter)
    top.grid(axis="x", color="#eeeeee")
    top.set_title(title or "Backtest: alerts over time", loc="left")

    if color_by == "severity":
        handles = [
            _handle("o", SEVERITY_COLORS[sev], sev)
            for sev in ("info", "warning", "critical")
            if any(severity_of.get(r) == sev and counts[r] for r in rules)
        ]
    else:
        handles = [_handle("o", colors[r], f"{r} ({counts[r]})") for r in rules if counts[r]]
    kinds = {a.kind for a in alerts}
    handles += [
        _handle(KIND_MARKERS[k], "none", f"{k} alert", edge="#333333")
        for k in ("news", "price", "composite")
        if k in kinds
    ]
    if handles:
        top.legend(
            handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False
        )

    # --- bottom: alerts per rule ------------------------------------------------
    rows = list(range(len(rules)))[::-1]
    bars = bottom.barh(
        rows, [counts[r] for r in rules], color=[color(r) for r in rules], height=0.7
    )
    bottom.set_yticks(rows, rules, fontsize=7 if len(rules) > 12 else 8)
    bottom.bar_label(bars, fontsize=8, padding=2)
    bottom.set_xlabel("alerts per rule")
    bottom.spines[["top", "right"]].set_visible(False)
    bottom.set_xlim(0, max([1, *counts.values()]) * 1.12)

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return fig


def _severities(alerts: Sequence[Alert], rules: Sequence[str], ruleset: RuleSet | None) -> dict[str, str]:
    """Severity per rule id: from its alerts, else from the rule set."""
    severity_of = {a.rule_id: a.severity.value for a in alerts}
    for r in rules:
        rule = ruleset.get(r) if ruleset is not None else None
        if rule is not None:
            severity_of.setdefault(r, rule.severity.value)
    return severity_of


def _draw_series(top: Any, series: PriceSeries, ruleset: RuleSet | None) -> None:
    """The price line, with a dashed line per threshold rule on that symbol.

    `top` is a matplotlib Axes (typed Any: its stubs refuse datetime x values)."""
    top.plot(series.times, series.values, color="#444444", linewidth=1.0, label=series.symbol, zorder=1)
    top.set_ylabel(series.symbol)
    for rule in ruleset.enabled_rules() if ruleset is not None else []:
        if isinstance(rule, ThresholdRule) and rule.symbol == series.symbol:
            top.axhline(rule.level, color="#999999", linestyle="--", linewidth=0.8, zorder=0)
            top.annotate(
                f"{rule.id} ({rule.level:g})",
                xy=(1, rule.level),
                xycoords=("axes fraction", "data"),
                xytext=(-4, 3),
                textcoords="offset points",
                ha="right",
                fontsize=8,
                color="#666666",
            )


def _layout(
    reactions: EventStudy | None, rules: Sequence[str], horizon: int, colors: dict[str, str]
) -> tuple[Axes, Axes]:
    """The figure: series and bars; with an event study, a row of reaction panels below."""
    bar_height = min(1.8, 0.6 + 0.1 * len(rules))
    if reactions is None or not reactions.symbols:
        fig = Figure(figsize=(13, 8.5), dpi=110, layout="constrained")
        FigureCanvasAgg(fig)
        top, bottom = fig.subplots(2, 1, height_ratios=[3, bar_height])
        return top, bottom
    reacted = _reacted_rules(reactions, rules, horizon)
    panel_height = 0.8 + 0.22 * max(1, len(reacted))
    fig = Figure(figsize=(13, 8.5 + 1.6 * panel_height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(3, len(reactions.symbols), height_ratios=[3, bar_height, panel_height])
    top = fig.add_subplot(grid[0, :])
    bottom = fig.add_subplot(grid[1, :])
    for j, symbol in enumerate(reactions.symbols):
        _reaction_panel(fig.add_subplot(grid[2, j]), reactions, symbol, horizon, reacted, colors)
    return top, bottom


def _reacted_rules(reactions: EventStudy | None, rules: Sequence[str], horizon: int) -> list[str]:
    """Rules with a reaction at `horizon` on some symbol, in bar order."""
    if reactions is None:
        return []
    return [
        r
        for r in [*rules, *(r for r in reactions.rules if r not in rules)]
        if r in reactions.rules
        and any(horizon in by_h for by_h in reactions.rules[r].outcome.values())
    ]


def _reaction_panel(
    ax: Axes,
    reactions: EventStudy,
    symbol: str,
    horizon: int,
    rules: Sequence[str],
    colors: dict[str, str],
) -> None:
    """Per rule: the mean change `horizon` samples after its alerts, with the 95 % interval
    (the difference's interval moved onto the baseline), against the baseline line."""
    base = reactions.baselines[symbol][horizon]
    rows = list(range(len(rules)))[::-1]
    for y, rule_id in zip(rows, rules, strict=True):
        r = reactions.rules[rule_id].outcome.get(symbol, {}).get(horizon)
        if r is None:
            continue
        color = colors.get(rule_id, "#333333")
        if r.ci95 is not None and base.mean_pct is not None:
            lo, hi = (base.mean_pct + c for c in r.ci95)
            ax.plot([lo, hi], [y, y], color=color, linewidth=2.2, alpha=0.6)
        ax.plot([r.mean_pct], [y], marker="o", color=color, markersize=5)
        ax.annotate(
            f"n={r.n}",
            xy=(1, y),
            xycoords=("axes fraction", "data"),
            xytext=(-2, 0),
            textcoords="offset points",
            ha="right",
            va="center",
            fontsize=6,
            color="#666666",
        )
    if base.mean_pct is not None:
        ax.axvline(base.mean_pct, color="#999999", linestyle="--", linewidth=0.9)
    ax.set_yticks(rows, list(rules), fontsize=7 if len(rules) > 12 else 8)
    if symbol != reactions.symbols[0]:
        ax.tick_params(axis="y", labelleft=False)
    ax.set_ylim(-0.7, max(len(rules), 1) - 0.3)
    words = "next sample" if horizon == 1 else f"{horizon} samples later"
    base_words = f"baseline {base.mean_pct:+.2f} %" if base.mean_pct is not None else "no baseline"
    ax.set_title(f"{symbol}, {words}: mean % change ({base_words})", fontsize=8, loc="left")
    ax.set_xlim(*_reaction_xlim(reactions, symbol, horizon, rules))
    ax.grid(axis="x", color="#eeeeee")
    ax.spines[["top", "right"]].set_visible(False)


WIDE_N = 5
"""Intervals of rules with fewer observations than this do not set the panel's scale."""


def _reaction_xlim(
    reactions: EventStudy, symbol: str, horizon: int, rules: Sequence[str]
) -> tuple[float, float]:
    """Room for every mean and for the intervals of rules with n >= WIDE_N (wider ones,
    from a handful of alerts, run off the edge rather than flatten everything else)."""
    base = reactions.baselines[symbol][horizon].mean_pct or 0.0
    xs = [base]
    for rule_id in rules:
        r = reactions.rules[rule_id].outcome.get(symbol, {}).get(horizon)
        if r is None:
            continue
        xs.append(r.mean_pct)
        if r.ci95 is not None and r.n >= WIDE_N:
            xs += [base + r.ci95[0], base + r.ci95[1]]
    lo, hi = min(xs), max(xs)
    pad = max(0.1 * (hi - lo), 0.05)
    return lo - pad, hi + pad


def _handle(marker: str, color: str, label: str, *, edge: str | None = None) -> Line2D:
    return Line2D(
        [],
        [],
        marker=marker,
        linestyle="",
        markerfacecolor=color,
        markeredgecolor=edge or color,
        markersize=7,
        label=label,
    )


def marker_count(fig: Figure) -> int:
    """How many alert markers the top panel holds (for tests and sanity checks)."""
    top = fig.axes[0]
    return sum(int(np.asarray(c.get_offsets()).shape[0]) for c in top.collections)
