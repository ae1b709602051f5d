"""Provider bodies → `PriceEvent`s: Yahoo chart JSON, CBOE delayed quotes, date,value CSV.

Every sample carries the previous close it should be compared with, so `change_pct` means
"versus the prior session" for quotes and "versus the prior row" for daily CSV series.
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.models import PriceEvent, stable_id
from bot.sources.config import PriceSource

# CBOE stamps quotes in US Eastern wall time without an offset (VIX settles 16:15 ET).
CBOE_TZ = ZoneInfo("America/New_York")
# Intraday Yahoo bars older than this before the latest sample belong to an earlier
# session, whose previous close we do not know.
YAHOO_SESSION = timedelta(hours=24)
_EPOCH_MAX = 4_102_444_800  # 2100-01-01: anything later is garbage, not a quote time
_MISSING = {"", ".", "nd", "na", "n/a", "nan", "null", "#n/a", "-"}
_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%Y/%m/%d", "%d.%m.%Y")


class PriceError(ValueError):
    """The body is not a price payload we can read."""


def parse_prices(body: bytes, source: PriceSource, seen_at: datetime) -> list[PriceEvent]:
    """Dispatch on `source.provider`; raises `PriceError` only."""
    if source.provider == "yahoo":
        return parse_yahoo_chart(body, source=source, seen_at=seen_at)
    if source.provider == "cboe":
        return parse_cboe_quote(body, source=source, seen_at=seen_at)
    return parse_csv_series(body, source=source, seen_at=seen_at)


def _event(source: PriceSource, when: datetime, last: float, prev: float | None) -> PriceEvent:
    return PriceEvent(
        id=stable_id("price", source.source_id, source.symbol, when.isoformat()),
        source=source.source_id,
        symbol=source.symbol,
        time=when,
        last=last,
        previous_close=prev,
        tags=source.tags,
    )


def _number(value: Any) -> float | None:
    """A finite float from a JSON number or numeric string; None for null/NaN/garbage."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.replace(",", "").strip())
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) else None


def _json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        snippet = body[:60].decode("utf-8", "replace").replace("\n", " ")
        raise PriceError(
            f"{what}: not JSON ({type(exc).__name__}); body starts {snippet!r}"
        ) from None


def _epoch(value: Any) -> datetime | None:
    number = _number(value)
    if number is None or not 0 < number < _EPOCH_MAX:
        return None
    try:
        return datetime.fromtimestamp(number, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


# --- Yahoo ------------------------------------------------------------------------------


def parse_yahoo_chart(body: bytes, *, source: PriceSource, seen_at: datetime) -> list[PriceEvent]:
    """`/v8/finance/chart/{symbol}`: the intraday bars of the latest session, then the quote.

    The series is returned (not just the last price) so rules can measure moves over a
    window; each sample carries the prior session's close. The last event is always
    `meta.regularMarketPrice` at `meta.regularMarketTime` when Yahoo gives them.
    """
    what = f"yahoo chart for {source.symbol}"
    doc = _json(body, what)
    chart = doc.get("chart") if isinstance(doc, dict) else None
    if not isinstance(chart, dict):
        raise PriceError(f"{what}: no 'chart' object")
    error = chart.get("error")
    if error:
        detail = error.get("description") or error.get("code") if isinstance(error, dict) else error
        raise PriceError(f"{what}: Yahoo error: {detail}")
    results = chart.get("result")
    if not isinstance(results, list) or not results or not isinstance(results[0], dict):
        raise PriceError(f"{what}: 'chart.result' is empty")
    result = results[0]
    meta = result.get("meta")
    if not isinstance(meta, dict):
        raise PriceError(f"{what}: 'chart.result[0].meta' missing")

    # `previousClose` is the prior session; `chartPreviousClose` is the close before the
    # requested range, which equals it only for range=1d — so it is the fallback.
    prev = _number(meta.get("previousClose"))
    if prev is None:
        prev = _number(meta.get("chartPreviousClose"))

    bars = _yahoo_bars(result)
    last_price = _number(meta.get("regularMarketPrice"))
    last_time = _epoch(meta.get("regularMarketTime"))
    if last_price is not None and last_time is not None:
        bars = [(t, v) for t, v in bars if t < last_time]
        bars.append((last_time, last_price))
    if not bars:
        raise PriceError(f"{what}: no regularMarketPrice and no intraday closes")
    newest = bars[-1][0]
    return [_event(source, t, v, prev) for t, v in bars if t > newest - YAHOO_SESSION]


def _yahoo_bars(result: dict[str, Any]) -> list[tuple[datetime, float]]:
    timestamps = result.get("timestamp")
    indicators = result.get("indicators")
    if not isinstance(timestamps, list) or not isinstance(indicators, dict):
        return []
    quotes = indicators.get("quote")
    if not isinstance(quotes, list) or not quotes or not isinstance(quotes[0], dict):
        return []
    closes = quotes[0].get("close")
    if not isinstance(closes, list):
        return []
    bars: dict[datetime, float] = {}
    for stamp, close in zip(timestamps, closes, strict=False):  # Yahoo pads unevenly
        when, value = _epoch(stamp), _number(close)
        if when is not None and value is not None:
            bars[when] = value
    return sorted(bars.items())


# --- CBOE -------------------------------------------------------------------------------


def parse_cboe_quote(body: bytes, *, source: PriceSource, seen_at: datetime) -> list[PriceEvent]:
    """CBOE delayed quote `{"data": {"current_price", "prev_day_close", "last_trade_time"}}`.

    `last_trade_time` is naive US Eastern; without it the top-level `timestamp`, then
    `seen_at`, stand in.
    """
    what = f"cboe quote for {source.symbol}"
    doc = _json(body, what)
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        raise PriceError(f"{what}: no 'data' object")
    last = _number(data.get("current_price"))
    if last is None:
        last = _number(data.get("close"))
    if last is None:
        raise PriceError(f"{what}: 'data.current_price' missing or not a number")
    when = _cboe_time(data.get("last_trade_time")) or _cboe_time(doc.get("timestamp"))
    if when is None:
        when = seen_at if seen_at.tzinfo else seen_at.replace(tzinfo=UTC)
    return [_event(source, when, last, _number(data.get("prev_day_close")))]


def _cboe_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=CBOE_TZ)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


# --- CSV --------------------------------------------------------------------------------


def parse_csv_series(body: bytes, *, source: PriceSource, seen_at: datetime) -> list[PriceEvent]:
    """`date,value` rows (FRED `observation_date,VIXCLS`, `DATE,VALUE`, CBOE history).

    The value column is `source.column` or else the second one; missing values (`.`,
    empty) are skipped, and each row's previous close is the prior row with a value.
    Dates become midnight UTC of that day.
    """
    what = f"csv series {source.symbol}"
    rows = _csv_rows(body, what)
    col = _value_column(rows[0], source, what)
    samples = _csv_samples(rows, col, what)
    events: list[PriceEvent] = []
    prev: float | None = None
    for when, value in sorted(samples.items()):  # oldest first, whatever the file order
        events.append(_event(source, when, value, prev))
        prev = value
    return events


def _csv_rows(body: bytes, what: str) -> list[list[str]]:
    """The non-blank rows of a UTF-8 CSV body (at least the header)."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PriceError(f"{what}: not UTF-8 text") from None
    if not text.strip():
        raise PriceError(f"{what}: empty body")
    if text.lstrip()[:1] in ("<", "{", "["):
        raise PriceError(f"{what}: got markup or JSON, not CSV")
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise PriceError(f"{what}: unreadable CSV: {exc}") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise PriceError(f"{what}: no rows")
    return rows


def _value_column(first: list[str], source: PriceSource, what: str) -> int:
    """Index of the value column: `source.column` by name, else the second."""
    header = [h.strip() for h in first]
    if len(header) < 2:
        raise PriceError(f"{what}: expected a header like 'date,value', got {first[:3]!r}")
    if _parse_date(header[0]) is not None:
        raise PriceError(f"{what}: first line is data, expected a header like 'date,value'")
    if source.column:
        folded = [h.lower() for h in header]
        if source.column.lower() not in folded:
            raise PriceError(f"{what}: no column {source.column!r} in header {header!r}")
        return folded.index(source.column.lower())
    return 1


def _csv_samples(rows: list[list[str]], col: int, what: str) -> dict[datetime, float]:
    """Date → value for the data rows; missing values skipped, bad numbers refused."""
    samples: dict[datetime, float] = {}
    first_undated: int | None = None
    for line_no, row in enumerate(rows[1:], start=2):
        when = _parse_date(row[0])
        if when is None:
            first_undated = first_undated or line_no
            continue
        raw = row[col].strip() if col < len(row) else ""
        if raw.lower() in _MISSING:
            continue
        value = _number(raw)
        if value is None:
            raise PriceError(f"{what}: line {line_no}: value {raw[:20]!r} is not a number")
        samples[when] = value
    if not samples and first_undated is not None:
        raise PriceError(f"{what}: line {first_undated}: no date in the first column")
    return samples


def _parse_date(value: str) -> datetime | None:
    value = value.strip()
    if not value or not value[0].isdigit():
        return None
    for fmt in _DATE_FORMATS:
        try:
            day = datetime.strptime(value, fmt).date()
        except ValueError:
            continue
        return datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
