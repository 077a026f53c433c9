"""Deterministic instruments and prices, with KRX limits and ticks (KIS.md section 12)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kis.ticks import Rounding, round_to_tick, tick_size


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    name: str
    base_price: int  # yesterday's close (stck_sdpr)
    etf: bool = False
    market: str = "KOSPI"  # rprs_mrkt_kor_name
    sector: str = ""  # bstp_kor_isnm


DEFAULT_INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument("005930", "삼성전자", 71_000, sector="전기·전자"),
    Instrument("000660", "SK하이닉스", 185_000, sector="전기·전자"),
    Instrument("035720", "카카오", 42_000, sector="IT 서비스"),
    Instrument("035420", "NAVER", 190_000, sector="IT 서비스"),
    Instrument("005380", "현대차", 240_000, sector="운송장비·부품"),
    Instrument("207940", "삼성바이오로직스", 780_000, sector="제약"),
    Instrument("069500", "KODEX 200", 35_000, etf=True, market="ETF"),
    Instrument("114800", "KODEX 인버스", 4_500, etf=True, market="ETF"),
    Instrument("001440", "대한전선", 12_000, sector="전기·전자"),
)

LIMIT_RATE = 0.30


@dataclass(slots=True)
class Quote:
    instrument: Instrument
    price: int
    upper: int
    lower: int
    high: int
    low: int
    volume: int = 0
    suspended: bool = False

    def tick(self, price: int | None = None) -> int:
        """`aspr_unit`: the tick at `price` (default: the current price)."""
        return tick_size(self.price if price is None else price, etf=self.instrument.etf)


def daily_limits(base: int, *, etf: bool = False) -> tuple[int, int]:
    """(lower, upper): ±30 % of the base price, kept on valid ticks inside the band."""
    upper = round_to_tick(base * (1 + LIMIT_RATE), Rounding.DOWN, etf=etf)
    lower = round_to_tick(base * (1 - LIMIT_RATE), Rounding.UP, etf=etf)
    return lower, upper


class Market:
    """Current prices by symbol. Pure state; the simulator drives fills on changes."""

    def __init__(self, instruments: Iterable[Instrument] = DEFAULT_INSTRUMENTS) -> None:
        self._quotes: dict[str, Quote] = {}
        for instrument in instruments:
            self.add(instrument)

    def add(self, instrument: Instrument) -> Quote:
        lower, upper = daily_limits(instrument.base_price, etf=instrument.etf)
        price = instrument.base_price
        quote = Quote(instrument, price, upper=upper, lower=lower, high=price, low=price)
        self._quotes[instrument.symbol] = quote
        return quote

    def get(self, symbol: str) -> Quote | None:
        return self._quotes.get(symbol)

    def quote(self, symbol: str) -> Quote:
        quote = self._quotes.get(symbol)
        if quote is None:
            raise KeyError(f"unknown symbol {symbol!r}")
        return quote

    def symbols(self) -> list[str]:
        return list(self._quotes)

    def move(self, symbol: str, price: int) -> Quote:
        """Set the current price; it must be on a tick and inside the day's limits."""
        quote = self.quote(symbol)
        if not quote.lower <= price <= quote.upper:
            raise ValueError(
                f"{symbol}: {price} outside today's limits {quote.lower}..{quote.upper}"
            )
        if price % quote.tick(price):
            raise ValueError(f"{symbol}: {price} is not on a tick of {quote.tick(price)}")
        quote.price = price
        quote.high = max(quote.high, price)
        quote.low = min(quote.low, price)
        return quote
