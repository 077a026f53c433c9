"""KRX hours: regular session on trading days, the XKRX holiday calendar, special
sessions (late opens), and the next open in every refusal."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from kis.env import KST
from kis.markets import ClosedWhy
from kis.markets.krx import EXAM_DAY, SPECIAL_SESSIONS, KrxHours, SpecialSession, krx_calendar
from webhook_server.market_hours import MarketClock

HOURS = KrxHours()


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
    closed = HOURS.check(kst(TUESDAY, at))
    if open_:
        assert closed is None
    else:
        assert closed is not None
        assert closed.detail.startswith("outside today's session 09:00-15:30 KST")


def test_before_open_opens_today_after_close_opens_next_day() -> None:
    early = HOURS.check(kst(TUESDAY, time(8)))
    late = HOURS.check(kst(TUESDAY, time(16)))
    assert early is not None and early.why is ClosedWhy.BEFORE_OPEN
    assert early.next_open == kst(TUESDAY, time(9))
    assert late is not None and late.why is ClosedWhy.AFTER_CLOSE
    assert late.next_open == kst(date(2025, 3, 5), time(9))


def test_utc_input_converted_to_kst() -> None:
    # 00:00 UTC is 09:00 KST.
    assert HOURS.check(datetime(2025, 3, 4, 0, 0, tzinfo=UTC)) is None
    assert HOURS.check(datetime(2025, 3, 3, 23, 59, tzinfo=UTC)) is not None


def test_weekend_says_monday_opens() -> None:
    closed = HOURS.check(kst(date(2025, 3, 8), time(10)))
    assert closed is not None and closed.why is ClosedWhy.WEEKEND
    assert closed.detail == "Saturday"
    assert closed.message() == "KRX is closed: Saturday; opens 2025-03-10 09:00 KST"


@pytest.mark.parametrize(
    "day",
    [date(2025, 10, 6), date(2025, 10, 7), date(2025, 10, 8),  # Chuseok 2025
     date(2025, 12, 31),  # year-end closure
     date(2025, 5, 1),  # Workers' Day: KRX closed though not a public holiday
     date(2025, 1, 1), date(2024, 9, 17)],
)
def test_krx_holidays(day: date) -> None:
    closed = HOURS.check(kst(day, time(10)))
    assert closed is not None and closed.why is ClosedWhy.HOLIDAY
    assert closed.detail.startswith("holiday: ")
    assert day in krx_calendar()


def test_chuseok_refusal_names_the_next_open_after_the_whole_closure() -> None:
    closed = HOURS.check(kst(date(2025, 10, 6), time(10)))
    # Chuseok 6-8 Oct, Hangul Day 9 Oct: the next session is Friday 10 Oct.
    assert closed is not None and closed.next_open == kst(date(2025, 10, 10), time(9))


def test_holiday_name_in_reason() -> None:
    closed = HOURS.check(kst(date(2025, 12, 31), time(10)))
    assert closed is not None
    # 2026-01-01 is a holiday and 2026-01-02 the first trading day: it opens late.
    assert closed.message() == (
        "KRX is closed: holiday: End of Year Holiday; opens 2026-01-02 10:00 KST"
    )


def test_first_trading_day_of_the_year_opens_an_hour_late() -> None:
    first = date(2026, 1, 2)
    at_nine = HOURS.check(kst(first, time(9, 30)))
    assert at_nine is not None and at_nine.why is ClosedWhy.BEFORE_OPEN
    assert at_nine.next_open == kst(first, time(10))
    assert "late open: first trading day" in at_nine.detail
    assert HOURS.check(kst(first, time(10))) is None
    assert HOURS.check(kst(first, time(15, 30))) is not None  # closes as usual
    assert HOURS.check(kst(date(2026, 1, 5), time(9, 0))) is None  # then as usual


def test_exam_day_opens_and_closes_an_hour_late() -> None:
    exam = date(2026, 11, 19)
    assert SPECIAL_SESSIONS[exam] is EXAM_DAY
    assert HOURS.check(kst(exam, time(9, 30))) is not None
    assert HOURS.check(kst(exam, time(10, 0))) is None
    assert HOURS.check(kst(exam, time(16, 0))) is None
    after = HOURS.check(kst(exam, time(16, 30)))
    assert after is not None and after.why is ClosedWhy.AFTER_CLOSE


def test_special_sessions_table_is_extensible() -> None:
    day = date(2027, 11, 18)
    hours = KrxHours(special={day: SpecialSession(time(10), time(16, 30), "test")})
    assert hours.check(kst(day, time(9, 30))) is not None
    assert hours.check(kst(day, time(16, 0))) is None


def test_ordinary_trading_day_open() -> None:
    assert HOURS.check(kst(date(2025, 10, 10), time(10))) is None  # Friday after Hangul Day


def test_off_mode_always_open() -> None:
    off = MarketClock(enforce=False)
    assert off.check(kst(date(2025, 3, 8), time(3))) is None
    assert off.check(kst(date(2025, 12, 31), time(10))) is None


def test_naive_time_is_a_bug() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        HOURS.check(datetime(2025, 3, 4, 10, 0))  # noqa: DTZ001
