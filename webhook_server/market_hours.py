"""Whether the trading-hours guard applies (`MOAHOOK_MARKET_HOURS`); the calendars
themselves live with each market in `kis.markets`."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from kis.markets import Closed, MarketHours
from kis.markets.krx import KrxHours

MARKET_CLOSED: Final = "market_closed"  # refusal code for the pipeline


class MarketClock:
    """`check(now, hours)` → None when orders can be placed, else why not (next open)."""

    def __init__(self, enforce: bool, default: MarketHours | None = None) -> None:
        self.enforce = enforce
        self._default = default if default is not None or not enforce else KrxHours()

    def check(self, now: datetime, hours: MarketHours | None = None) -> Closed | None:
        if not self.enforce:
            return None
        calendar = hours or self._default
        if calendar is None:
            return None
        return calendar.check(now)
