"""Is KRX's regular session open? Pure: the caller passes `now` (KIS.md section 12)."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Final, Protocol

import holidays

from kis.env import KST

SESSION_OPEN: Final = time(9, 0)
SESSION_CLOSE: Final = time(15, 30)  # the closing auction ends here; later orders miss it
MARKET_CLOSED: Final = "market_closed"  # refusal code for the pipeline


class HolidayCalendar(Protocol):
    def get(self, key: date) -> str | None: ...


def krx_calendar() -> HolidayCalendar:
    """KRX closures (holidays' financial calendar XKRX: public holidays, May 1, Dec 31)."""
    calendar: HolidayCalendar = holidays.financial_holidays("XKRX")
    return calendar


class MarketClock:
    """`check(now)` → None when orders can be placed, else the reason in English."""

    def __init__(self, enforce: bool, calendar: HolidayCalendar | None = None) -> None:
        self.enforce = enforce
        self._calendar = calendar if calendar is not None or not enforce else krx_calendar()

    def check(self, now: datetime) -> str | None:
        if not self.enforce:
            return None
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        local = now.astimezone(KST)
        day = local.date()
        if day.weekday() >= 5:
            return f"KRX is closed: {local:%A}"
        holiday = self._calendar.get(day) if self._calendar is not None else None
        if holiday:
            return f"KRX is closed: holiday: {holiday}"
        if not SESSION_OPEN <= local.time() < SESSION_CLOSE:
            return (
                f"KRX is closed: outside regular session {SESSION_OPEN:%H:%M}-"
                f"{SESSION_CLOSE:%H:%M} KST (now {local:%H:%M} KST)"
            )
        return None
