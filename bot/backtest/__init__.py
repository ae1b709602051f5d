"""Backtest: replay timestamped history through the live pipeline and report what fired.

`replay` reads CSVs into time-ordered events and drives the real `Pipeline`
(rule engine, dedup, cooldowns) under a simulated clock; `report` prints the
per-rule summary and the alert list; `outcomes` measures what each --prices symbol did
after every alert (per rule, against the baseline); `plot` draws the chart; `cli` wires the
`python -m bot backtest` command.
"""

from bot.backtest.replay import (
    BacktestInputError,
    CsvLoad,
    ReplayResult,
    RowProblem,
    read_headlines,
    read_prices,
    replay,
)

__all__ = [
    "BacktestInputError",
    "CsvLoad",
    "ReplayResult",
    "RowProblem",
    "read_headlines",
    "read_prices",
    "replay",
]
