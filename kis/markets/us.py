"""US stocks (NASDAQ, NYSE, AMEX) through KIS's overseas API (KIS.md section 13).

Hours come from the time-zone database (daylight saving time) and the NYSE calendar of
the `holidays` package (closures and 13:00 early closes). KIS takes no plain market
order here: `order_type: market` becomes a limit at a marketable price.
"""

from __future__ import annotations

import re
from datetime import date, time
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import ClassVar, Final, Protocol
from zoneinfo import ZoneInfo

import holidays

from kis.client import BeforeSend, KisClient
from kis.env import OVERSEAS_TR_IDS, Environment
from kis.errors import KisError
from kis.fillnotice import RecordDecoder, notice_from_overseas_fields
from kis.markets.base import (
    USD,
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
from kis.models import (
    Account,
    AppCredentials,
    Execution,
    MarketPortfolio,
    OrderAck,
    OrderType,
    OverseasOrderRequest,
    PortfolioHolding,
    Side,
)

CODE: Final = "US"
NEW_YORK: Final = ZoneInfo("America/New_York")
REGULAR_OPEN: Final = time(9, 30)
REGULAR_CLOSE: Final = time(16, 0)
EARLY_CLOSE: Final = time(13, 0)
DEFAULT_SLIPPAGE: Final = Decimal("0.005")
MAX_SLIPPAGE: Final = Decimal("0.1")

# TradingView's exchange names -> KIS's order exchange codes (SPEC section 13). NYSE Arca
# lists ETFs that KIS trades under AMEX.
EXCHANGES: Final = {
    "NASDAQ": "NASD",
    "NASD": "NASD",
    "NAS": "NASD",
    "NYSE": "NYSE",
    "NYS": "NYSE",
    "AMEX": "AMEX",
    "AMS": "AMEX",
    "NYSEARCA": "AMEX",
    "ARCA": "AMEX",
    "NYSEAMERICAN": "AMEX",
}
_SYMBOL = re.compile(r"[A-Z]{1,6}(?:\.[A-Z0-9]{1,3})?")

# KIS's ORD_DVSN per order type, and the sides KIS lists for each (REAL only but 00).
ORD_DVSN: Final = {
    OrderType.MARKET: "00",  # sent as a marketable limit
    OrderType.LIMIT: "00",
    OrderType.MOO: "31",
    OrderType.LOO: "32",
    OrderType.MOC: "33",
    OrderType.LOC: "34",
}
_SIDES: Final = {
    OrderType.MOO: (Side.SELL,),
    OrderType.LOO: (Side.BUY, Side.SELL),
    OrderType.MOC: (Side.SELL,),
    OrderType.LOC: (Side.BUY, Side.SELL),
}

CENT: Final = Decimal("0.01")
SUB_PENNY: Final = Decimal("0.0001")


def tick_size(price: Decimal) -> Decimal:
    """The US tick: $0.01 at $1 and above, $0.0001 below."""
    return CENT if price >= 1 else SUB_PENNY


def round_to_tick(price: Decimal, side: Side) -> Decimal:
    """Down for buys (never pay more than asked), up for sells; never below one tick."""
    if price <= 0:
        raise ValueError("price must be positive")
    mode = ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
    rounded = price.quantize(tick_size(price), rounding=mode)
    return max(rounded, SUB_PENNY)


def marketable_limit(last: Decimal, side: Side, slippage: Decimal) -> Decimal:
    """`order_type: market` as a limit: the last price moved by `slippage` against the
    side, on the tick, and never on the wrong side of `last`."""
    if last <= 0:
        raise ValueError("the last price must be positive")
    if side is Side.BUY:
        price = round_to_tick(last * (1 + slippage), Side.BUY)
        return max(price, round_to_tick(last, Side.SELL))
    price = round_to_tick(last * (1 - slippage), Side.SELL)
    return min(price, round_to_tick(last, Side.BUY))


def parse_slippage(text: str) -> Decimal:
    """`0.5%` or `0.005` -> Decimal("0.005"); more than 0 and at most 10 %."""
    raw = text.strip()
    try:
        value = Decimal(raw[:-1]) / 100 if raw.endswith("%") else Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a percentage like 0.5%") from None
    if not value.is_finite() or not 0 < value <= MAX_SLIPPAGE:
        raise ValueError(f"{text!r} must be above 0% and at most 10%")
    return value


class HolidayCalendar(Protocol):
    def get(self, key: date) -> str | None: ...


def nyse_calendars() -> tuple[HolidayCalendar, HolidayCalendar]:
    """(closures, early closes) from holidays' NYSE financial calendar."""
    closed: HolidayCalendar = holidays.financial_holidays("NYSE")
    early: HolidayCalendar = holidays.financial_holidays(
        "NYSE", categories=(holidays.HALF_DAY,)
    )
    return closed, early


class UsHours(MarketHours):
    market: ClassVar[str] = CODE
    tz = NEW_YORK

    def __init__(
        self,
        closed: HolidayCalendar | None = None,
        early: HolidayCalendar | None = None,
    ) -> None:
        default_closed, default_early = nyse_calendars()
        self._closed = closed if closed is not None else default_closed
        self._early = early if early is not None else default_early

    def holiday(self, day: date) -> str | None:
        return self._closed.get(day)

    def session(self, day: date) -> Session | None:
        if day.weekday() >= 5 or self.holiday(day):
            return None
        early = self._early.get(day)
        closes = EARLY_CLOSE if early else REGULAR_CLOSE
        note = f"early close: {early.split(' (')[0]}" if early else ""
        return Session(self._at(day, REGULAR_OPEN), self._at(day, closes), note)


class Us(Market):
    code: ClassVar[str] = CODE
    currency = USD

    def __init__(
        self, hours: UsHours | None = None, *, slippage: Decimal = DEFAULT_SLIPPAGE
    ) -> None:
        if not 0 < slippage <= MAX_SLIPPAGE:
            raise ValueError("slippage must be above 0 and at most 10%")
        self.hours = hours or UsHours()
        self.slippage = slippage

    def claims(self, exchange: str) -> bool:
        return _exchange_key(exchange) in EXCHANGES

    def instrument(self, symbol: str, exchange: str | None) -> Instrument:
        ticker = symbol.strip().upper()
        if not _SYMBOL.fullmatch(ticker):
            raise SymbolError(
                f"{symbol!r} is not a US symbol (letters, optionally a class after a dot: "
                "AAPL, BRK.B)"
            )
        if not exchange:
            raise SymbolError(
                f"{symbol!r} needs its exchange: NASDAQ:{symbol}, or an \"exchange\" field "
                '("{{exchange}}")',
                "exchange",
            )
        code = EXCHANGES.get(_exchange_key(exchange))
        if code is None:
            raise SymbolError(
                f"{exchange!r} is not a US exchange KIS trades (NASDAQ, NYSE, AMEX, "
                "NYSE Arca)",
                "exchange",
            )
        return Instrument(CODE, ticker, code)

    def round_price(self, price: Decimal, side: Side, tick: Decimal | None = None) -> Decimal:
        return round_to_tick(price, side)

    def needs_quote(self, order_type: OrderType) -> bool:
        return order_type is OrderType.MARKET

    def check_order_type(self, env: Environment, order_type: OrderType, side: Side) -> None:
        sides = _SIDES.get(order_type)
        if sides is None:
            return
        name = order_type.value.upper()
        if env is Environment.PAPER:
            raise OrderTypeError(
                f"{name} orders are for real trading only: KIS paper trading takes US "
                "limit orders only"
            )
        if side not in sides:
            raise OrderTypeError(f"KIS takes {name} orders for sells only")

    def plan(
        self,
        env: Environment,
        instrument: Instrument,
        side: Side,
        quantity: int,
        order_type: OrderType,
        limit: Decimal | None,
        last: Decimal | None,
    ) -> PlannedOrder:
        self.check_order_type(env, order_type, side)
        if order_type is OrderType.MARKET:
            if last is None:
                raise ValueError("a US market order needs the last price")
            price = marketable_limit(last, side, self.slippage)
            return PlannedOrder(instrument, side, quantity, order_type, price, marketable=True)
        if order_type in (OrderType.MOO, OrderType.MOC):
            return PlannedOrder(instrument, side, quantity, order_type, Decimal(0))
        if limit is None:
            raise ValueError(f"a {order_type.value} order needs a price")
        price = round_to_tick(limit, side)
        return PlannedOrder(instrument, side, quantity, order_type, price)

    async def quote(self, kis: KisClient, creds: AppCredentials, inst: Instrument) -> Price:
        quote = await kis.overseas_price(creds, inst.exchange, inst.symbol)
        return Price(quote.last)

    async def held(
        self, kis: KisClient, creds: AppCredentials, account: Account, inst: Instrument
    ) -> Held | None:
        holding = (await kis.overseas_balance(creds, account)).holding(inst.symbol)
        if holding is None:
            return None
        return Held(holding.quantity, holding.sellable, holding.avg_price or None)

    async def place(
        self,
        kis: KisClient,
        creds: AppCredentials,
        account: Account,
        order: PlannedOrder,
        *,
        before_send: BeforeSend | None = None,
    ) -> OrderAck:
        request = OverseasOrderRequest(
            symbol=order.instrument.symbol,
            exchange=order.instrument.exchange,
            side=order.side,
            quantity=order.quantity,
            ord_dvsn=ORD_DVSN[order.order_type],
            price=order.kis_price,
        )
        return await kis.place_overseas_order(creds, account, request, before_send=before_send)

    async def executions(
        self,
        kis: KisClient,
        creds: AppCredentials,
        account: Account,
        day: date,
        inst: Instrument,
        order_no: str = "",
    ) -> list[Execution]:
        rows = await kis.overseas_executions(
            creds, account, start=day, end=day, symbol=inst.symbol, exchange=inst.exchange
        )
        return [row for row in rows if not order_no or row.order_no == order_no]

    async def cancel(
        self,
        kis: KisClient,
        creds: AppCredentials,
        account: Account,
        inst: Instrument,
        *,
        order_no: str,
        branch: str,
        quantity: int,
    ) -> OrderAck:
        return await kis.cancel_overseas_order(
            creds, account, exchange=inst.exchange, symbol=inst.symbol, order_no=order_no,
            quantity=quantity,
        )

    async def portfolio(
        self, kis: KisClient, creds: AppCredentials, account: Account
    ) -> MarketPortfolio:
        balance = await kis.overseas_balance(creds, account)
        holdings = [
            PortfolioHolding(
                symbol=h.symbol, name=h.name, exchange=h.exchange, quantity=h.quantity,
                sellable=h.sellable, avg_price=h.avg_price, price=h.price,
            )
            for h in balance.holdings
        ]
        buying_power: Decimal | None = None
        if holdings:
            # KIS answers buying power for an instrument; the amount is the account's
            first = holdings[0]
            try:
                power = await kis.overseas_buying_power(
                    creds, account, exchange=first.exchange or "NASD", symbol=first.symbol,
                    price=first.price if first.price > 0 else first.avg_price,
                )
            except KisError:
                power = None  # the holdings are still worth showing
            buying_power = None if power is None else power.amount
        return MarketPortfolio(CODE, self.currency.code, holdings, buying_power=buying_power)

    async def day_executions(
        self, kis: KisClient, creds: AppCredentials, account: Account, day: date
    ) -> list[Execution]:
        return await kis.overseas_executions(creds, account, start=day, end=day)

    def fill_notice(self, env: Environment) -> tuple[str, RecordDecoder]:
        return OVERSEAS_TR_IDS[env].fill_notice, notice_from_overseas_fields


def _exchange_key(name: str) -> str:
    return re.sub(r"[\s_-]", "", name.upper())
