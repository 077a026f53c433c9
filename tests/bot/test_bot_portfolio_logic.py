"""The pure parts of the portfolio commands: when a digest is due (calendars, early
closes, closed days), `/limits` input, P&L arithmetic, long answers split for Telegram."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot.digest import due_days, next_due
from bot.pnl import Trade, realised
from bot.portfolio_views import chunks
from bot.routers.limits import LimitChange, LimitInputError, parse_change
from kis.env import KST
from kis.markets import default_markets
from storage.options import LimitName

NEW_YORK = ZoneInfo("America/New_York")
KRX, US = default_markets()


def _kst(day: date, hh: int, mm: int) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=KST).astimezone(UTC)


def _ny(day: date, hh: int, mm: int) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=NEW_YORK).astimezone(UTC)


MONDAY = date(2026, 1, 5)


def test_krx_digest_is_due_at_1540_kst_on_trading_days_only() -> None:
    assert due_days(KRX, _kst(MONDAY, 15, 39)) == []
    assert due_days(KRX, _kst(MONDAY, 15, 40)) == [MONDAY]
    assert due_days(KRX, _kst(MONDAY, 23, 0)) == [MONDAY]  # a restart still sends it
    assert due_days(KRX, _kst(date(2026, 1, 10), 16, 0)) == []  # Saturday: closed
    assert due_days(KRX, _kst(date(2026, 2, 17), 16, 0)) == []  # Seollal: closed
    # The college entrance exam day closes an hour late: the digest waits for it.
    exam = date(2026, 11, 19)
    assert due_days(KRX, _kst(exam, 16, 0)) == []
    assert due_days(KRX, _kst(exam, 16, 41)) == [exam]


def test_us_digest_follows_new_york_closes_early_closes_and_holidays() -> None:
    assert due_days(US, _ny(MONDAY, 16, 5)) == []
    assert due_days(US, _ny(MONDAY, 16, 10)) == [MONDAY]
    day_after_thanksgiving = date(2026, 11, 27)  # 13:00 early close
    assert due_days(US, _ny(day_after_thanksgiving, 13, 10)) == [day_after_thanksgiving]
    assert due_days(US, _ny(date(2026, 11, 26), 17, 0)) == []  # Thanksgiving: closed
    # After midnight in New York the previous session's digest is still due.
    assert due_days(US, _ny(date(2026, 1, 6), 1, 0)) == [MONDAY]


def test_next_due_points_at_the_next_close() -> None:
    assert next_due([KRX], _kst(MONDAY, 15, 39)) == pytest.approx(60)
    assert next_due([KRX], _kst(MONDAY, 10, 0)) == 60  # bounded by the pass interval


@pytest.mark.parametrize(
    ("args", "change"),
    [
        ("order 1,000,000", LimitChange(LimitName.ORDER, "KRW", Decimal(1_000_000))),
        ("day 5000000원", LimitChange(LimitName.DAY, "KRW", Decimal(5_000_000))),
        ("orders 50", LimitChange(LimitName.ORDERS, "", Decimal(50))),
        ("order $500.25 usd", LimitChange(LimitName.ORDER, "USD", Decimal("500.25"))),
        ("OFF day USD", LimitChange(LimitName.DAY, "USD", None)),
        ("off orders", LimitChange(LimitName.ORDERS, "", None)),
    ],
)
def test_limits_input(args: str, change: LimitChange) -> None:
    assert parse_change(args.split()) == change


@pytest.mark.parametrize(
    ("args", "key"),
    [
        ("weekly 5", "limits.bad_name"),
        ("order", "limits.usage"),
        ("order 0", "limits.bad_value"),
        ("order -5", "limits.bad_value"),
        ("order NaN", "limits.bad_value"),
        ("order 1e20", "limits.bad_value"),
        ("order 10.5", "limits.bad_value"),
        ("order 10.555 usd", "limits.bad_value"),
        ("order 10 eur", "limits.bad_currency"),
        ("orders 5 usd", "limits.orders_no_currency"),
        ("order 1 usd extra", "limits.usage"),
    ],
)
def test_limits_input_errors_name_what_is_wrong(args: str, key: str) -> None:
    with pytest.raises(LimitInputError) as error:
        parse_change(args.split())
    assert error.value.key == key


def _trade(side: str, symbol: str, qty: int, price: int, order_no: str = "") -> Trade:
    return Trade(order_no or f"{side}{symbol}", "0901", symbol, "", "KRX", side, qty,
                 Decimal(price))


def test_realised_uses_the_recorded_cost_then_the_holdings_average() -> None:
    trades = [
        _trade("buy", "005930", 2, 71_000),
        _trade("sell", "005930", 3, 73_000, "1"),  # sized at 70,000
        _trade("sell", "000660", 1, 190_000, "2"),  # still held at 185,000
        _trade("sell", "035720", 5, 40_000, "3"),  # cost unknown: left out, named
    ]
    total, missing = realised(trades, {"1": Decimal(70_000)}, {"000660": Decimal(185_000)})
    assert total == 3 * 3_000 + 5_000
    assert missing == ["035720"]


def test_long_answers_are_split_on_line_breaks() -> None:
    lines = [f"line {n:04d} " + "x" * 90 for n in range(100)]
    messages = chunks(lines, limit=1000)
    assert len(messages) > 1 and all(len(m) <= 1000 for m in messages)
    assert "\n".join(messages).splitlines() == lines
