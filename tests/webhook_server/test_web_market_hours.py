"""MarketClock: KRX regular session on trading days, with the XKRX holiday calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from kis.env import KST
from webhook_server.market_hours import MarketClock, krx_calendar

CLOCK = MarketClock(enforce=True)


def kst(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=KST)


TUESDAY = date(2025, 3, 4)


@pytest.mark.parametrize(
    ("at", "open_"),
    [
        (time(8, 59, 59), False),
        (time(9, 0), True),
        (time(12, 0), True),
        (time(15, 29, 59), True),
        (time(15, 30), False),  # the closing auction has ended
        (time(15, 31), False),
        (time(0, 0), False),
    ],
)
def test_session_bounds(at: time, open_: bool) -> None:
    reason = CLOCK.check(kst(TUESDAY, at))
    if open_:
        assert reason is None
    else:
        assert reason is not None
        assert reason.startswith("KRX is closed: outside regular session 09:00-15:30 KST")


def test_utc_input_converted_to_kst() -> None:
    # 00:00 UTC is 09:00 KST.
    assert CLOCK.check(datetime(2025, 3, 4, 0, 0, tzinfo=UTC)) is None
    assert CLOCK.check(datetime(2025, 3, 3, 23, 59, tzinfo=UTC)) is not None


def test_weekend() -> None:
    assert CLOCK.check(kst(date(2025, 3, 8), time(10))) == "KRX is closed: Saturday"
    assert CLOCK.check(kst(date(2025, 3, 9), time(10))) == "KRX is closed: Sunday"


@pytest.mark.parametrize(
    "day",
    [date(2025, 10, 6), date(2025, 10, 7), date(2025, 10, 8),  # Chuseok 2025
     date(2025, 12, 31),  # year-end closure
     date(2025, 5, 1),  # Workers' Day: KRX closed though not a public holiday
     date(2025, 1, 1), date(2024, 9, 17)],
)
def test_krx_holidays(day: date) -> None:
    reason = CLOCK.check(kst(day, time(10)))
    assert reason is not None and reason.startswith("KRX is closed: holiday: ")
    assert day in krx_calendar()


def test_holiday_name_in_reason() -> None:
    assert CLOCK.check(kst(date(2025, 12, 31), time(10))) == (
        "KRX is closed: holiday: End of Year Holiday"
    )


def test_ordinary_trading_day_open() -> None:
    assert CLOCK.check(kst(date(2025, 10, 10), time(10))) is None  # Friday after Hangul Day


def test_off_mode_always_open() -> None:
    off = MarketClock(enforce=False)
    assert off.check(kst(date(2025, 3, 8), time(3))) is None
    assert off.check(kst(date(2025, 12, 31), time(10))) is None


def test_naive_time_is_a_bug() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CLOCK.check(datetime(2025, 3, 4, 10, 0))  # noqa: DTZ001
