"""Markets as values: each market is one `Market` implementation (KRX, US), and
`Markets` finds the one an alert's ticker belongs to.

    markets = default_markets()
    inst = markets.parse("NASDAQ:AAPL")         # Instrument("US", "AAPL", "NASD")
    market = markets.of(inst)                     # the US market
    market.hours.check(now)                       # None, or Closed (with the next open)
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from kis.env import Environment
from kis.fillnotice import RecordDecoder
from kis.markets.base import (
    KRW,
    USD,
    Closed,
    ClosedWhy,
    Currency,
    Held,
    Instrument,
    Market,
    MarketHours,
    OrderTypeError,
    PlannedOrder,
    Price,
    Session,
    SymbolError,
)
from kis.markets.krx import Krx, KrxHours
from kis.markets.us import DEFAULT_SLIPPAGE, Us, UsHours


class Markets:
    """The markets moahook trades, tried in order for a ticker without an exchange."""

    def __init__(self, *markets: Market) -> None:
        if not markets:
            raise ValueError("at least one market")
        self._markets = {market.code: market for market in markets}

    def __iter__(self) -> Iterator[Market]:
        return iter(self._markets.values())

    def get(self, code: str) -> Market:
        market = self._markets.get(code)
        if market is None:
            raise KeyError(f"unknown market {code!r}")
        return market

    def of(self, instrument: Instrument) -> Market:
        return self.get(instrument.market)

    def parse(self, ticker: str, exchange: str | None = None) -> Instrument:
        """`NASDAQ:AAPL`, `KRX:005930`, `005930`, or a bare symbol with `exchange`.
        Raises `SymbolError` naming the field at fault."""
        raw = ticker.strip()
        if ":" in raw:
            prefix, _, symbol = raw.rpartition(":")
            return self._by_exchange(prefix, symbol, "ticker")
        if exchange is not None and exchange.strip():
            return self._by_exchange(exchange, raw, "exchange")
        errors: list[SymbolError] = []
        for market in self:
            try:
                return market.instrument(raw, None)
            except SymbolError as exc:
                errors.append(exc)
        # A market where only the exchange is missing speaks; else the first (KRX) does.
        raise next((e for e in errors if e.field == "exchange"), errors[0])

    def _by_exchange(self, exchange: str, symbol: str, field: str) -> Instrument:
        name = exchange.strip()
        for market in self:
            if market.claims(name):
                return market.instrument(symbol, name)
        raise SymbolError(
            f"{name[:20]!r} is not an exchange moahook trades (KRX, NASDAQ, NYSE, AMEX, "
            "NYSE Arca)",
            field,
        )

    def fill_notices(self, env: Environment) -> list[tuple[str, RecordDecoder]]:
        """Every market's fill-notice TR: all are registered on one KIS session."""
        return [market.fill_notice(env) for market in self]


def default_markets(*, us_slippage: Decimal = DEFAULT_SLIPPAGE) -> Markets:
    return Markets(Krx(), Us(slippage=us_slippage))


__all__ = [
    "KRW",
    "USD",
    "Closed",
    "ClosedWhy",
    "Currency",
    "Held",
    "Instrument",
    "Krx",
    "KrxHours",
    "Market",
    "MarketHours",
    "Markets",
    "OrderTypeError",
    "PlannedOrder",
    "Price",
    "Session",
    "SymbolError",
    "Us",
    "UsHours",
    "default_markets",
]
