"""bot.sources.prices: Yahoo chart, CBOE quote and date,value CSV bodies."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.models import stable_id
from bot.sources.config import PriceSource
from bot.sources.prices import PriceError, parse_prices

PRICES = Path(__file__).parent / "fixtures" / "prices"
SEEN = datetime(2025, 4, 8, 21, 0, tzinfo=UTC)
VIX_YAHOO = PriceSource(symbol="^VIX", provider="yahoo", tags=("volatility",))
VIX_CBOE = PriceSource(symbol="^VIX", provider="cboe", id="cboe-vix")
ES = PriceSource(symbol="ES=F", provider="yahoo")
CNH = PriceSource(symbol="CNH=X", provider="yahoo")
FRED_VIX = PriceSource(
    symbol="VIXCLS", provider="csv", url="https://fred.stlouisfed.org/graph/fredgraph.csv?id=VIXCLS"
)
FRED_CNY = PriceSource(
    symbol="DEXCHUS",
    provider="csv",
    url="https://fred.stlouisfed.org/graph/fredgraph.csv?id=DEXCHUS",
)


def load(name: str) -> bytes:
    return (PRICES / name).read_bytes()


def test_yahoo_vix_series_ends_with_the_quote() -> None:
    events = parse_prices(load("yahoo_vix.json"), VIX_YAHOO, SEEN)
    doc = json.loads(load("yahoo_vix.json"))["chart"]["result"][0]
    non_null = [c for c in doc["indicators"]["quote"][0]["close"] if c is not None]
    assert len(events) == len(non_null) + 1  # every bar before regularMarketTime, then the quote
    last = events[-1]
    assert last.last == 52.33
    assert last.previous_close == 46.98
    assert last.time == datetime(2025, 4, 8, 20, 15, 2, tzinfo=UTC)
    assert last.change_pct == pytest.approx((52.33 - 46.98) / 46.98 * 100)
    assert last.symbol == "^VIX" and last.source == "yahoo:^VIX" and last.tags == ("volatility",)
    assert last.id == stable_id("price", "yahoo:^VIX", "^VIX", last.time.isoformat())
    assert events[0].time == datetime(2025, 4, 8, 13, 30, tzinfo=UTC)
    assert all(e.previous_close == 46.98 for e in events)
    times = [e.time for e in events]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert len({e.id for e in events}) == len(events)


def test_yahoo_futures_fall_back_to_chart_previous_close() -> None:
    events = parse_prices(load("yahoo_es.json"), ES, SEEN)
    assert events[-1].last == 4998.25
    assert events[-1].previous_close == 5086.5
    assert events[-1].time == datetime(2025, 4, 8, 20, 9, 58, tzinfo=UTC)


def test_yahoo_yuan() -> None:
    last = parse_prices(load("yahoo_cnh.json"), CNH, SEEN)[-1]
    assert (last.symbol, last.last, last.previous_close) == ("CNH=X", 7.3498, 7.3245)


def test_yahoo_without_meta_price_uses_the_last_bar() -> None:
    doc = json.loads(load("yahoo_vix.json"))
    meta = doc["chart"]["result"][0]["meta"]
    del meta["regularMarketPrice"], meta["regularMarketTime"]
    events = parse_prices(json.dumps(doc).encode(), VIX_YAHOO, SEEN)
    assert events[-1].last == 52.33
    assert events[-1].time == datetime(2025, 4, 8, 20, 10, tzinfo=UTC)


def test_yahoo_quote_without_bars_is_one_event() -> None:
    doc = json.loads(load("yahoo_vix.json"))
    result = doc["chart"]["result"][0]
    del result["timestamp"], result["indicators"]
    (event,) = parse_prices(json.dumps(doc).encode(), VIX_YAHOO, SEEN)
    assert (event.last, event.previous_close) == (52.33, 46.98)


def test_yahoo_drops_bars_from_earlier_sessions() -> None:
    doc = json.loads(load("yahoo_vix.json"))
    result = doc["chart"]["result"][0]
    result["timestamp"] = [result["timestamp"][0] - 2 * 86_400, *result["timestamp"][1:]]
    events = parse_prices(json.dumps(doc).encode(), VIX_YAHOO, SEEN)
    assert min(e.time for e in events) > datetime(2025, 4, 7, 20, tzinfo=UTC)


def test_cboe_quote_time_is_eastern() -> None:
    (event,) = parse_prices(load("cboe_vix.json"), VIX_CBOE, SEEN)
    assert event.last == 52.33
    assert event.previous_close == 46.98
    assert event.time == datetime(2025, 4, 8, 20, 14, 59, tzinfo=UTC)  # 16:14:59 EDT
    assert event.source == "cboe-vix"
    assert event.id == stable_id("price", "cboe-vix", "^VIX", "2025-04-08T20:14:59+00:00")


def test_cboe_without_trade_time_uses_the_document_timestamp() -> None:
    doc = json.loads(load("cboe_vix.json"))
    del doc["data"]["last_trade_time"]
    (event,) = parse_prices(json.dumps(doc).encode(), VIX_CBOE, SEEN)
    assert event.time == datetime(2025, 4, 8, 21, 20, 2, tzinfo=UTC)


def test_fred_csv_skips_gaps_and_chains_previous_close() -> None:
    events = parse_prices(load("fred_vixcls.csv"), FRED_VIX, SEEN)
    assert len(events) == 11  # 12 rows, one '.'
    assert events[0].previous_close is None
    assert (events[5].time, events[5].last, events[5].previous_close) == (
        datetime(2025, 4, 8, tzinfo=UTC),
        52.33,
        46.98,
    )
    after_gap = events[-1]
    assert after_gap.time == datetime(2025, 4, 21, tzinfo=UTC)
    assert after_gap.previous_close == 30.89  # the prior row with a value
    assert after_gap.source == "csv:VIXCLS"


def test_fred_old_style_header() -> None:
    events = parse_prices(load("fred_dexchus.csv"), FRED_CNY, SEEN)
    assert [e.last for e in events] == [6.8958, 6.9234, 7.0298, 7.0305, 7.0496]
    assert events[-1].previous_close == 7.0305


def test_csv_named_column_and_us_dates() -> None:
    source = PriceSource(
        symbol="VIX", provider="csv", url="https://cdn.cboe.com/x.csv", column="close"
    )
    events = parse_prices(load("cboe_vix_history.csv"), source, SEEN)
    assert [(e.time.day, e.last) for e in events] == [(7, 46.98), (8, 52.33), (9, 33.62)]


def test_csv_rows_out_of_order_are_sorted_before_chaining() -> None:
    body = b"DATE,VALUE\n2025-04-09,33.62\n2025-04-08,52.33\n"
    events = parse_prices(body, FRED_VIX, SEEN)
    assert [e.last for e in events] == [52.33, 33.62]
    assert events[1].previous_close == 52.33


@pytest.mark.parametrize(
    ("name", "source", "message"),
    [
        ("yahoo_not_found.json", VIX_YAHOO, "Yahoo error: No data found, symbol may be delisted"),
        ("yahoo_truncated.json", VIX_YAHOO, "not JSON"),
        ("yahoo_html.html", VIX_YAHOO, "not JSON"),
        ("cboe_vix.json", VIX_YAHOO, "no 'chart' object"),
        ("cboe_no_price.json", VIX_CBOE, "'data.current_price' missing"),
        ("yahoo_vix.json", VIX_CBOE, "no 'data' object"),
        ("bad_value.csv", FRED_VIX, "line 3: value 'twenty' is not a number"),
        ("no_dates.csv", FRED_VIX, "no date in the first column"),
        ("yahoo_html.html", FRED_VIX, "got markup or JSON, not CSV"),
        (
            "fred_vixcls.csv",
            PriceSource(symbol="X", provider="csv", url="https://x.example", column="nope"),
            "no column 'nope'",
        ),
    ],
)
def test_bad_bodies_raise_price_error(name: str, source: PriceSource, message: str) -> None:
    with pytest.raises(PriceError) as info:
        parse_prices(load(name), source, SEEN)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "body", [b"", b"\xff\xfe\x00", b"2025-04-01,21.77\n", b"only_one_column\n1\n"]
)
def test_bad_csv_raise_price_error(body: bytes) -> None:
    with pytest.raises(PriceError):
        parse_prices(body, FRED_VIX, SEEN)


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "chart",
                    "result",
                    "meta",
                    "error",
                    "data",
                    "timestamp",
                    "indicators",
                    "quote",
                    "close",
                    "regularMarketPrice",
                    "regularMarketTime",
                    "previousClose",
                    "chartPreviousClose",
                    "current_price",
                    "prev_day_close",
                    "last_trade_time",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=25,
).map(lambda v: json.dumps(v).encode())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.binary(max_size=200)
    | _JSONISH
    | st.text(alphabet="0123456789-./,\nDATEVALU ").map(str.encode),
    source=st.sampled_from([VIX_YAHOO, VIX_CBOE, FRED_VIX]),
)
def test_garbage_raises_only_price_error(body: bytes, source: PriceSource) -> None:
    try:
        events = parse_prices(body, source, SEEN)
    except PriceError:
        return
    assert all(e.symbol == source.symbol for e in events)
