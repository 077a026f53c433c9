"""US market: hours across the 2026 DST switches, NYSE holidays and early closes, the
tick, the marketable-limit price, symbols and the order types KIS takes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest

from kis.env import KST, Environment
from kis.markets import ClosedWhy, Instrument, OrderTypeError, SymbolError, default_markets
from kis.markets.us import (
    NEW_YORK,
    Us,
    UsHours,
    marketable_limit,
    parse_slippage,
    round_to_tick,
    tick_size,
)
from kis.models import OrderType, Side

HOURS = UsHours()
US = Us()
MARKETS = default_markets()


def kst(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=KST)


def ny(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=NEW_YORK)


# --- hours ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        # Friday 6 March 2026, winter time: 09:30-16:00 New York = 23:30-06:00 KST.
        (kst(date(2026, 3, 6), time(23, 29)), False),
        (kst(date(2026, 3, 6), time(23, 30)), True),
        (kst(date(2026, 3, 7), time(5, 59)), True),
        (kst(date(2026, 3, 7), time(6, 0)), False),
        # Monday 9 March, after DST began on Sunday 8 March: 22:30-05:00 KST.
        (kst(date(2026, 3, 9), time(22, 29)), False),
        (kst(date(2026, 3, 9), time(22, 30)), True),
        (kst(date(2026, 3, 10), time(4, 59)), True),
        (kst(date(2026, 3, 10), time(5, 0)), False),
        # Friday 30 October, still summer time.
        (kst(date(2026, 10, 30), time(22, 30)), True),
        # Monday 2 November, after DST ended on Sunday 1 November: 23:30 KST again.
        (kst(date(2026, 11, 2), time(22, 30)), False),
        (kst(date(2026, 11, 2), time(23, 30)), True),
        (kst(date(2026, 11, 3), time(5, 59)), True),
    ],
)
def test_regular_session_across_both_2026_dst_switches(moment: datetime, open_: bool) -> None:
    assert (HOURS.check(moment) is None) is open_


def test_next_open_over_the_spring_switch_in_kst_and_new_york() -> None:
    closed = HOURS.check(kst(date(2026, 3, 8), time(12)))  # Saturday 23:00 in New York
    assert closed is not None and closed.why is ClosedWhy.WEEKEND
    assert closed.next_open == ny(date(2026, 3, 9), time(9, 30))
    assert closed.next_open_kst == kst(date(2026, 3, 9), time(22, 30))
    assert closed.opens_text() == "2026-03-09 09:30 New York (2026-03-09 22:30 KST)"


def test_next_open_over_the_autumn_switch() -> None:
    closed = HOURS.check(ny(date(2026, 10, 30), time(16, 5)))
    assert closed is not None and closed.why is ClosedWhy.AFTER_CLOSE
    assert closed.next_open_kst == kst(date(2026, 11, 2), time(23, 30))


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (date(2026, 1, 19), "Martin Luther King Jr. Day"),
        (date(2026, 4, 3), "Good Friday"),
        (date(2026, 6, 19), "Juneteenth"),
        (date(2026, 7, 3), "Independence Day (observed)"),
        (date(2026, 11, 26), "Thanksgiving Day"),
        (date(2026, 12, 25), "Christmas Day"),
    ],
)
def test_nyse_holidays_closed_with_name(day: date, name: str) -> None:
    closed = HOURS.check(ny(day, time(11)))
    assert closed is not None and closed.why is ClosedWhy.HOLIDAY
    assert name in closed.detail


def test_thanksgiving_refusal_names_the_early_close_day_as_next_open() -> None:
    closed = HOURS.check(ny(date(2026, 11, 26), time(11)))
    assert closed is not None and closed.next_open == ny(date(2026, 11, 27), time(9, 30))
    assert "Thanksgiving" in closed.message() and "23:30 KST" in closed.message()


@pytest.mark.parametrize("day", [date(2026, 11, 27), date(2026, 12, 24)])
def test_early_closes_at_13_00(day: date) -> None:
    assert HOURS.check(ny(day, time(12, 59))) is None
    closed = HOURS.check(ny(day, time(13, 0)))
    assert closed is not None and closed.why is ClosedWhy.AFTER_CLOSE
    assert "13:00" in closed.detail and "early close" in closed.detail


def test_ordinary_day_is_not_an_early_close() -> None:
    assert HOURS.check(ny(date(2026, 12, 23), time(15, 59))) is None


def test_session_of_a_korean_holiday_is_open_in_new_york() -> None:
    # Chuseok in Korea, an ordinary Thursday in New York.
    assert HOURS.check(ny(date(2026, 9, 24), time(10))) is None


# --- ticks and prices --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "side", "expected"),
    [
        ("190.129", Side.BUY, "190.12"),
        ("190.121", Side.SELL, "190.13"),
        ("1.00", Side.BUY, "1.00"),
        ("0.99995", Side.SELL, "1.0000"),
        ("0.123456", Side.BUY, "0.1234"),
        ("0.123411", Side.SELL, "0.1235"),
        ("0.00001", Side.BUY, "0.0001"),  # never below one tick
    ],
)
def test_limit_rounding_to_the_us_tick(price: str, side: Side, expected: str) -> None:
    rounded = round_to_tick(Decimal(price), side)
    assert rounded == Decimal(expected)
    assert rounded % tick_size(rounded) == 0


@pytest.mark.parametrize("last", ["190.12", "1.00", "0.9999", "0.5012", "12345.67", "3.01"])
@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_marketable_limit_within_the_slippage_and_on_the_tick(last: str, side: Side) -> None:
    slippage = Decimal("0.005")
    price = marketable_limit(Decimal(last), side, slippage)
    assert price % tick_size(price) == 0
    move = (price - Decimal(last)) / Decimal(last)
    if side is Side.BUY:
        assert 0 <= move <= slippage
    else:
        assert -slippage <= move <= 0


def test_marketable_limit_example() -> None:
    assert marketable_limit(Decimal("190.12"), Side.BUY, Decimal("0.005")) == Decimal("191.07")
    assert marketable_limit(Decimal("190.12"), Side.SELL, Decimal("0.005")) == Decimal("189.17")


@pytest.mark.parametrize(
    ("text", "value"), [("0.5%", "0.005"), ("1%", "0.01"), ("0.002", "0.002"), (" 2 % ", "0.02")]
)
def test_slippage_setting(text: str, value: str) -> None:
    assert parse_slippage(text.replace(" ", "")) == Decimal(value)


@pytest.mark.parametrize("text", ["0%", "-1%", "11%", "abc", "NaN"])
def test_slippage_setting_refused(text: str) -> None:
    with pytest.raises(ValueError, match="%"):
        parse_slippage(text)


# --- symbols -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ticker", "exchange", "expected"),
    [
        ("NASDAQ:AAPL", None, Instrument("US", "AAPL", "NASD")),
        ("NYSE:KO", None, Instrument("US", "KO", "NYSE")),
        ("AMEX:SPY", None, Instrument("US", "SPY", "AMEX")),
        ("NYSE Arca:SPY", None, Instrument("US", "SPY", "AMEX")),
        ("ARCA:SPY", None, Instrument("US", "SPY", "AMEX")),
        ("AAPL", "NASDAQ", Instrument("US", "AAPL", "NASD")),
        ("brk.b", "NYSE", Instrument("US", "BRK.B", "NYSE")),
        ("NYSE:BRK.B", None, Instrument("US", "BRK.B", "NYSE")),
        ("005930", None, Instrument("KRX", "005930", "KRX")),
        ("KRX:005930", None, Instrument("KRX", "005930", "KRX")),
        ("A005930", None, Instrument("KRX", "005930", "KRX")),
        ("005930", "KRX", Instrument("KRX", "005930", "KRX")),
    ],
)
def test_tickers(ticker: str, exchange: str | None, expected: Instrument) -> None:
    assert MARKETS.parse(ticker, exchange) == expected


@pytest.mark.parametrize(
    ("ticker", "exchange", "field", "words"),
    [
        ("AAPL", None, "exchange", "needs its exchange"),
        ("BATS:AAPL", None, "ticker", "not an exchange moahook trades"),
        ("AAPL", "LSE", "exchange", "not an exchange moahook trades"),
        ("NASDAQ:005930", None, "ticker", "not a US symbol"),
        ("NASDAQ:AA PL", None, "ticker", "not a US symbol"),
        ("NYSE:BRK..B", None, "ticker", "not a US symbol"),
        ("KRX:AAPL", None, "ticker", "not a KRX code"),
    ],
)
def test_what_cannot_be_a_symbol(
    ticker: str, exchange: str | None, field: str, words: str
) -> None:
    with pytest.raises(SymbolError, match=words) as caught:
        MARKETS.parse(ticker, exchange)
    assert caught.value.field == field


# --- order types ---------------------------------------------------------------------------

AAPL = Instrument("US", "AAPL", "NASD")


def test_market_order_becomes_a_marketable_limit() -> None:
    plan = US.plan(Environment.PAPER, AAPL, Side.BUY, 3, OrderType.MARKET, None, Decimal("100"))
    assert plan.marketable and plan.kis_price == Decimal("100.50")


@pytest.mark.parametrize("kind", [OrderType.MOO, OrderType.LOO, OrderType.MOC, OrderType.LOC])
def test_on_open_and_close_orders_refused_in_paper(kind: OrderType) -> None:
    with pytest.raises(OrderTypeError, match="real trading only"):
        US.check_order_type(Environment.PAPER, kind, Side.SELL)


@pytest.mark.parametrize(
    ("kind", "side", "allowed"),
    [
        (OrderType.MOO, Side.BUY, False),
        (OrderType.MOO, Side.SELL, True),
        (OrderType.LOO, Side.BUY, True),
        (OrderType.MOC, Side.BUY, False),
        (OrderType.MOC, Side.SELL, True),
        (OrderType.LOC, Side.BUY, True),
        (OrderType.LOC, Side.SELL, True),
    ],
)
def test_on_open_and_close_sides_in_real(kind: OrderType, side: Side, allowed: bool) -> None:
    if allowed:
        US.check_order_type(Environment.REAL, kind, side)
    else:
        with pytest.raises(OrderTypeError, match="sells only"):
            US.check_order_type(Environment.REAL, kind, side)


def test_krx_has_no_on_open_orders() -> None:
    with pytest.raises(OrderTypeError, match="KRX has no MOO"):
        MARKETS.get("KRX").check_order_type(Environment.REAL, OrderType.MOO, Side.SELL)


def test_utc_now_is_fine() -> None:
    assert HOURS.check(datetime(2026, 3, 9, 14, 30, tzinfo=UTC)) is None  # 10:30 New York
