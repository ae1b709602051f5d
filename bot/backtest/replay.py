"""CSV history → time-ordered events → the live pipeline under a simulated clock.

Readers turn each usable CSV row into one event and account for every row
they cannot use (`RowProblem`: file, line, column, what was wrong); a file
that cannot be used at all (missing, no header, a required column absent, no
usable row) raises `BacktestInputError`.

`replay` is the live code path with two things swapped: events come from the
CSVs instead of the sources, and alerts stay in a throwaway database (no
adapters, no console) instead of going out. Before each event the
`ManualClock` is set to the event's time, so the pipeline's dedup and
cooldowns and the engine's change windows and confirm windows see the same
timeline they would have seen live.
"""

from __future__ import annotations

import csv
import logging
import math
import re
import time as timer
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

from bot.backtest.memory_store import MemoryStore
from bot.clock import ManualClock, ensure_utc
from bot.models import Alert, NewsEvent, PriceEvent, stable_id
from bot.pipeline import Pipeline
from bot.rules.engine import RuleEngine
from bot.rules.loader import RuleSet
from bot.storage.protocols import ReplayStore
from bot.storage.store import Store

log = logging.getLogger(__name__)

MEMORY_DATABASE = "sqlite+aiosqlite:///:memory:"

NEW_YORK = ZoneInfo("America/New_York")
DAILY_CLOSE = time(16, 0)
"""A date-only price row is a sample at the US close: 16:00 New York (20:00 or 21:00 UTC)."""

TIME_COLUMNS = ("date", "datetime", "time", "timestamp", "observation_date")
"""Price CSVs: the first of these present is the time column."""
VALUE_COLUMN = "close"
"""Price CSVs: the value column (or the only other column of a two-column file)."""
RETWEET_COLUMN = "is_retweet"

_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_FALLBACK_FORMATS = (
    ("%m/%d/%Y", True),  # CBOE's VIX_History.csv
    ("%m/%d/%Y %H:%M:%S", False),
    ("%m/%d/%Y %H:%M", False),
    ("%a %b %d %H:%M:%S %z %Y", False),  # Twitter's classic created_at
)
_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n", ""}


class BacktestInputError(Exception):
    """Input that cannot be used at all: a missing file, a missing column, no usable row."""


@dataclass(frozen=True)
class RowProblem:
    """One CSV row left out, and why: `file:line: column c: message`."""

    path: str
    line: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f" column {self.column}:" if self.column else ""
        return f"{self.path}:{self.line}:{where} {self.message}"


E = TypeVar("E", NewsEvent, PriceEvent)


@dataclass
class CsvLoad(Generic[E]):
    """What one CSV gave: events, rows read, rows skipped (and why), remarks."""

    path: Path
    events: list[E] = field(default_factory=list)
    rows: int = 0
    skipped: list[RowProblem] = field(default_factory=list)
    left_out: int = 0
    """Good rows left out on purpose (retweets with --skip-retweets)."""
    notes: list[str] = field(default_factory=list)
    """Remarks for the user (what was left out and why, flags without effect)."""

    @property
    def name(self) -> str:
        return self.path.name

    def skipped_report(self, *, limit: int = 5) -> list[str]:
        """`file: N rows skipped:` then up to `limit` examples; empty when nothing was skipped."""
        if not self.skipped:
            return []
        n = len(self.skipped)
        lines = [f"{self.name}: {n} row{'s' if n != 1 else ''} skipped:"]
        lines += [f"  {p}" for p in self.skipped[:limit]]
        if n > limit:
            lines.append(f"  … and {n - limit} more")
        return lines


# ---------------------------------------------------------------------------
# Parsing helpers


def parse_time(text: str) -> tuple[datetime, bool] | None:
    """(UTC datetime, date-only?) from ISO 8601 and a few common CSV forms; None if unparsable.

    Naive times are taken as UTC.
    """
    text = text.strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        pass
    else:
        return ensure_utc(parsed), bool(_DATE_ONLY.fullmatch(text))
    for fmt, date_only in _FALLBACK_FORMATS:
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return ensure_utc(parsed), date_only
    return None


def parse_day(text: str, *, end: bool = False) -> datetime:
    """A `--from` / `--to` bound: a date (start of day, or end of day with `end`) or a datetime."""
    parsed = parse_time(text)
    if parsed is None:
        raise ValueError(f"not a date: {text!r} (expected YYYY-MM-DD or an ISO 8601 time)")
    when, date_only = parsed
    if date_only and end:
        return when + timedelta(days=1) - timedelta(microseconds=1)
    return when


def daily_close(day: date) -> datetime:
    """The US close of `day` (16:00 New York) in UTC."""
    return datetime.combine(day, DAILY_CLOSE, tzinfo=NEW_YORK).astimezone(UTC)


def _short(value: str, limit: int = 40) -> str:
    value = " ".join(value.split())
    return repr(value if len(value) <= limit else value[: limit - 1] + "…")


@dataclass
class _Row:
    line: int
    values: dict[str, str]
    fields: int


def _row_time(
    row: _Row, header: list[str], column: str, problem: Callable[[_Row, str | None, str], None]
) -> tuple[datetime, bool] | None:
    """The row's time, if the row has as many fields as the header and its date parses.

    Anything else is reported through `problem` and the row is skipped (None).
    """
    if row.fields < len(header):
        problem(
            row, header[row.fields], f"missing (the row has {row.fields} of {len(header)} columns)"
        )
        return None
    if row.fields > len(header):
        problem(
            row, None, f"{row.fields} fields but the header has {len(header)} (an unquoted comma?)"
        )
        return None
    raw_time = row.values[column]
    parsed = parse_time(raw_time)
    if parsed is None:
        problem(
            row,
            column,
            f"unparsable date {_short(raw_time)}" if raw_time.strip() else "empty date",
        )
    return parsed


def _read_csv(path: Path, required: Sequence[str]) -> tuple[list[str], Iterator[_Row]]:
    """Header and rows (with the line each row starts on); raises for unusable files."""
    if not path.exists():
        raise BacktestInputError(f"{path}: no such file")
    if not path.is_file():
        raise BacktestInputError(f"{path}: not a file")
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise BacktestInputError(f"{path}: cannot open: {exc.strerror or exc}") from None
    reader = csv.reader(handle)
    try:
        header = next(reader)
    except StopIteration:
        handle.close()
        raise BacktestInputError(f"{path}: empty file (expected a header line)") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        handle.close()
        raise BacktestInputError(f"{path}:1: cannot read the header: {exc}") from None
    header = [h.strip() for h in header]
    missing = [c for c in required if c not in header]
    if missing:
        handle.close()
        plural = "s" if len(missing) > 1 else ""
        raise BacktestInputError(
            f"{path}:1: missing column{plural} {', '.join(missing)} "
            f"(the header has: {', '.join(header) or 'nothing'})"
        )

    def rows() -> Iterator[_Row]:
        with handle:
            end = reader.line_num
            while True:
                start = end + 1
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except (csv.Error, UnicodeDecodeError) as exc:
                    raise BacktestInputError(
                        f"{path}:{start}: cannot read the file: {exc}"
                    ) from None
                end = reader.line_num
                if not values or (len(values) == 1 and not values[0].strip()):
                    continue  # blank line
                yield _Row(start, dict(zip(header, values, strict=False)), len(values))  # short rows: counted

    return header, rows()


# ---------------------------------------------------------------------------
# Readers


def _row_source(values: dict[str, str], column: str | None, default: str) -> str:
    """The row's source: its source cell (trimmed, at most 128 characters) or the file's."""
    cell = values.get(column, "").strip()[:128] if column else ""
    return cell or default


def read_headlines(
    path: Path,
    *,
    time_column: str = "created_at",
    text_column: str = "text",
    id_column: str | None = None,
    source: str | None = None,
    source_column: str | None = None,
    skip_retweets: bool = False,
) -> CsvLoad[NewsEvent]:
    """One NewsEvent per row at the row's own time.

    The event id is `source:<row id>` (from `id_column`, default `id` when the file
    has one), else a hash of time and text, so the same file gives the same ids.
    With a source column (`source_column`, default `source` when the file has one)
    each row is from the source it names (a blank cell: the file's source), so
    stories gather reports across sources as they do live.
    """
    path = Path(path)
    required = [time_column, text_column] + [c for c in (id_column, source_column) if c]
    header, rows = _read_csv(path, required)
    id_col = id_column or ("id" if "id" in header else None)
    src_col = source_column or ("source" if "source" in header else None)
    src = source or path.stem
    load: CsvLoad[NewsEvent] = CsvLoad(path)
    has_retweet = RETWEET_COLUMN in header
    if skip_retweets and not has_retweet:
        load.notes.append(f"no {RETWEET_COLUMN} column: --skip-retweets has no effect")
    retweets = 0
    first_line: dict[str, int] = {}

    def problem(row: _Row, column: str | None, message: str) -> None:
        load.skipped.append(RowProblem(load.name, row.line, column, message))

    for row in rows:
        load.rows += 1
        parsed = _row_time(row, header, time_column, problem)
        if parsed is None:
            continue
        text = row.values[text_column].strip()
        if not text:
            problem(row, text_column, "empty text")
            continue
        if has_retweet:
            flag = row.values[RETWEET_COLUMN].strip().lower()
            if flag not in _TRUE and flag not in _FALSE:
                problem(row, RETWEET_COLUMN, f"expected true or false, got {_short(flag)}")
                continue
            if skip_retweets and flag in _TRUE:
                retweets += 1
                continue
        when = parsed[0]
        row_id = _headline_id(row, id_col, when, text, first_line, problem)
        if row_id is None:
            continue
        row_src = _row_source(row.values, src_col, src)
        load.events.append(
            NewsEvent(id=f"{row_src}:{row_id}", source=row_src, title=text, published=when, seen_at=when)
        )
    load.left_out = retweets
    if retweets:
        load.notes.append(f"{retweets:,} retweets left out (--skip-retweets)")
    if not load.events:
        _no_rows(load)
    load.events.sort(key=lambda e: e.time)
    return load


def _headline_id(
    row: _Row,
    id_col: str | None,
    when: datetime,
    text: str,
    first_line: dict[str, int],
    problem: Callable[[_Row, str | None, str], None],
) -> str | None:
    """The row's id (its id column, else a hash of time and text); None for an empty or
    repeated id (reported)."""
    row_id = row.values[id_col].strip() if id_col is not None else stable_id(when.isoformat(), text)
    if not row_id:
        problem(row, id_col, "empty id")
        return None
    if row_id in first_line:
        problem(row, id_col, f"duplicate id {_short(row_id)} (first on line {first_line[row_id]})")
        return None
    first_line[row_id] = row.line
    return row_id


def _price_columns(path: Path, header: list[str]) -> tuple[str, str]:
    """(time column, value column) of a price CSV, or a `path:1:` error."""
    time_col = next((c for c in TIME_COLUMNS if c in header), None)
    if time_col is None:
        raise BacktestInputError(
            f"{path}:1: missing column date (or one of {', '.join(TIME_COLUMNS[1:])}); "
            f"the header has: {', '.join(header)}"
        )
    others = [c for c in header if c != time_col]
    if VALUE_COLUMN in header:
        return time_col, VALUE_COLUMN
    if len(others) == 1:
        return time_col, others[0]
    raise BacktestInputError(f"{path}:1: missing column close (the header has: {', '.join(header)})")


def read_prices(
    path: Path,
    symbol: str,
    *,
    source: str | None = None,
    tags: Iterable[str] = (),
) -> CsvLoad[PriceEvent]:
    """One PriceEvent per row: daily rows at the US close, previous_close = prior row's close.

    The time column is the first of `TIME_COLUMNS` present; the value column is
    `close`, or the other column of a two-column file.
    """
    path = Path(path)
    header, rows = _read_csv(path, [])
    time_col, value_col = _price_columns(path, list(header))
    src = source or f"backtest:{symbol}"
    tag_tuple = tuple(dict.fromkeys(tags))
    load: CsvLoad[PriceEvent] = CsvLoad(path)
    samples: list[tuple[datetime, float, int]] = []
    first_line: dict[datetime, int] = {}

    def problem(row: _Row, column: str | None, message: str) -> None:
        load.skipped.append(RowProblem(load.name, row.line, column, message))

    for row in rows:
        load.rows += 1
        parsed = _row_time(row, header, time_col, problem)
        if parsed is None:
            continue
        when, date_only = parsed
        if date_only:
            when = daily_close(when.date())
        raw_value = row.values[value_col].strip()
        try:
            value = float(raw_value)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            problem(
                row, value_col, f"not a number: {_short(raw_value)}" if raw_value else "empty value"
            )
            continue
        if when in first_line:
            problem(
                row,
                time_col,
                f"duplicate time {_short(row.values[time_col])} (first on line {first_line[when]})",
            )
            continue
        first_line[when] = row.line
        samples.append((when, value, row.line))
    samples.sort()
    previous: float | None = None
    for when, value, _line in samples:
        load.events.append(
            PriceEvent(
                id=f"{src}:{when.isoformat()}",
                source=src,
                symbol=symbol,
                time=when,
                last=value,
                previous_close=previous,
                tags=tag_tuple,
            )
        )
        previous = value
    if not load.events:
        _no_rows(load)
    return load


def _no_rows(load: CsvLoad[E]) -> None:
    detail = "\n".join(load.skipped_report())
    if load.rows == 0:
        raise BacktestInputError(f"{load.path}: no data rows (only a header)")
    raise BacktestInputError(f"{load.path}: no usable rows\n{detail}".rstrip())


def split_price_arg(value: str) -> tuple[str, Path]:
    """`SYMBOL=CSV`; the symbol may itself hold `=` (`ES=F=sp500.csv`): the split that names
    an existing file wins, else the last `=`."""
    positions = [i for i, ch in enumerate(value) if ch == "="]
    if not positions:
        raise ValueError(f"expected SYMBOL=CSV, got {value!r}")
    for i in positions:
        if i > 0 and Path(value[i + 1 :]).is_file():
            return value[:i], Path(value[i + 1 :])
    i = positions[-1]
    if i == 0 or i == len(value) - 1:
        raise ValueError(f"expected SYMBOL=CSV, got {value!r}")
    return value[:i], Path(value[i + 1 :])


def within(events: Iterable[E], start: datetime | None, end: datetime | None) -> list[E]:
    """Events with start <= time <= end (either bound optional)."""
    return [
        e for e in events if (start is None or e.time >= start) and (end is None or e.time <= end)
    ]


# ---------------------------------------------------------------------------
# Replay


@dataclass
class ReplayResult:
    alerts: list[Alert]
    news_events: int
    price_events: int
    stored_alerts: int
    seconds: float
    """Wall time of the replay itself (database set-up included, CSV reading not)."""

    @property
    def events(self) -> int:
        return self.news_events + self.price_events


@contextmanager
def _quiet_pipeline() -> Iterator[None]:
    """The pipeline logs one INFO line per alert; the backtest reports alerts itself."""
    logger = logging.getLogger("bot.pipeline")
    before = logger.level
    if not logger.isEnabledFor(logging.DEBUG):
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(before)


async def replay(
    events: Iterable[NewsEvent | PriceEvent],
    ruleset: RuleSet,
    *,
    database_url: str | None = None,
    engine: RuleEngine | None = None,
) -> ReplayResult:
    """Drive `events` through a fresh `Pipeline` in time order; return every alert it raised.

    Each event is processed on its own with the clock set to its time, exactly
    as a live poll would hand it over; at equal times, prices go first. The
    pipeline's state lives in a `MemoryStore` (fast), or with `database_url`
    in a real `Store` there (one SQL transaction per event, as live; slow).
    `engine`: a state-free engine over `ruleset` (`RuleEngine.fresh()`), to skip compiling.
    """
    ordered = sorted(events, key=lambda e: (e.time, e.kind == "news"))
    started = timer.perf_counter()
    clock = ManualClock(ordered[0].time if ordered else datetime.now(UTC))
    store: ReplayStore = MemoryStore() if database_url is None else await Store.open(database_url)
    alerts: list[Alert] = []
    try:
        if (seen := await store.seen_count()) > 0:
            raise BacktestInputError(
                f"{database_url}: the database already holds {seen:,} events, which would be "
                "skipped as seen; replay into a new database"
            )
        pipeline = Pipeline(store, ruleset, clock, console_min=None, active_adapters=frozenset(), engine=engine)
        with _quiet_pipeline():
            for ev in ordered:
                clock.set(ev.time)
                alerts.extend(await pipeline.process([ev]))
        stored = await store.alert_count()
    finally:
        await store.close()
    news = sum(1 for e in ordered if isinstance(e, NewsEvent))
    return ReplayResult(
        alerts=alerts,
        news_events=news,
        price_events=len(ordered) - news,
        stored_alerts=stored,
        seconds=timer.perf_counter() - started,
    )
