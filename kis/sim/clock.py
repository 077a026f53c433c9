"""Time for the simulator: an injectable epoch clock and KST formatting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

KST = timezone(timedelta(hours=9), "KST")

Clock = Callable[[], float]


def kst(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=KST)


def kst_date(epoch: float) -> str:
    """YYYYMMDD in Korea."""
    return kst(epoch).strftime("%Y%m%d")


def kst_hms(epoch: float) -> str:
    """HHMMSS in Korea (ORD_TMD, STCK_CNTG_HOUR)."""
    return kst(epoch).strftime("%H%M%S")


def kst_stamp(epoch: float) -> str:
    """`YYYY-MM-DD HH:MM:SS` in Korea (access_token_token_expired)."""
    return kst(epoch).strftime("%Y-%m-%d %H:%M:%S")


class ManualClock:
    """A clock tests move by hand: `clock()` reads it, `advance()` moves it."""

    def __init__(self, start: float = 1_767_229_200.0) -> None:  # 2026-01-01 10:00 KST
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
