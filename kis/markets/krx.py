"""KRX stocks through KIS's domestic API (KIS.md sections 6-12)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import ClassVar, Final, Protocol

import holidays

from kis import reservations
from kis.client import BeforeSend, KisClient
from kis.env import KST, TR_IDS, Environment
from kis.fillnotice import RecordDecoder, notice_from_fields
from kis.markets.base import (
    KRW,
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
    OrderRequest,
    OrderType,
    PortfolioHolding,
    Reservation,
    ReservationRequest,
    Side,
)
from kis.ticks import Rounding, round_to_tick

CODE: Final = "KRX"
REGULAR_OPEN: Final = time(9, 0)
REGULAR_CLOSE: Final = time(15, 30)  # the closing auction ends here; later orders miss it
EXCHANGES: Final = ("KRX", "KOSPI", "KOSDAQ", "KONEX")
_CODE = re.compile(r"[0-9A-Z]{6}")


@dataclass(frozen=True, slots=True)
class SpecialSession:
    opens: time
    closes: time
    note: str


# Days KRX trades on other hours. Add a row when KRX announces one (the exam day is set
# each year by the Ministry of Education; KRX opens and closes an hour late).
EXAM_DAY: Final = SpecialSession(time(10, 0), time(16, 30), "late open: college entrance exam")
FIRST_DAY: Final = SpecialSession(time(10, 0), REGULAR_CLOSE, "late open: first trading day")
SPECIAL_SESSIONS: Final[dict[date, SpecialSession]] = {
    date(2023, 11, 16): EXAM_DAY,
    date(2024, 11, 14): EXAM_DAY,
    date(2025, 11, 13): EXAM_DAY,
    date(2026, 11, 19): EXAM_DAY,
}


class HolidayCalendar(Protocol):
    def get(self, key: date) -> str | None: ...


def krx_calendar() -> HolidayCalendar:
    """KRX closures (holidays' financial calendar XKRX: public holidays, May 1, Dec 31)."""
    calendar: HolidayCalendar = holidays.financial_holidays("XKRX")
    return calendar


class KrxHours(MarketHours):
    market: ClassVar[str] = CODE
    tz = KST

    def __init__(
        self,
        calendar: HolidayCalendar | None = None,
        special: dict[date, SpecialSession] | None = None,
    ) -> None:
        self._calendar = calendar if calendar is not None else krx_calendar()
        self._special = SPECIAL_SESSIONS if special is None else special

    def holiday(self, day: date) -> str | None:
        return self._calendar.get(day)

    def _trades(self, day: date) -> bool:
        return day.weekday() < 5 and not self.holiday(day)

    def session(self, day: date) -> Session | None:
        if not self._trades(day):
            return None
        special = self._special.get(day)
        if special is None and self._first_of_year(day):
            special = FIRST_DAY
        if special is None:
            return Session(self._at(day, REGULAR_OPEN), self._at(day, REGULAR_CLOSE))
        return Session(self._at(day, special.opens), self._at(day, special.closes), special.note)

    def _first_of_year(self, day: date) -> bool:
        return _first_trading_day(self, day.year) == day


@lru_cache(maxsize=16)
def _first_trading_day(hours: KrxHours, year: int) -> date:
    day = date(year, 1, 1)
    while not hours._trades(day):  # noqa: SLF001 - the calendar's own rule
        day += timedelta(days=1)
    return day


class Krx(Market):
    code: ClassVar[str] = CODE
    currency = KRW

    def __init__(self, hours: KrxHours | None = None) -> None:
        self.hours = hours or KrxHours()

    def claims(self, exchange: str) -> bool:
        return exchange.upper().replace(" ", "").startswith(EXCHANGES)

    def instrument(self, symbol: str, exchange: str | None) -> Instrument:
        code = symbol.upper().replace(" ", "")
        if len(code) == 7 and code.startswith("A"):
            code = code[1:]
        if not _CODE.fullmatch(code):
            raise SymbolError(
                f"{symbol!r} is not a KRX code (6 characters like 005930, KRX:005930 or "
                "A005930)"
            )
        return Instrument(CODE, code, CODE)

    def round_price(self, price: Decimal, side: Side, tick: Decimal | None = None) -> Decimal:
        rounding = Rounding.DOWN if side is Side.BUY else Rounding.UP
        return Decimal(round_to_tick(price, rounding, tick=int(tick or 0)))

    def check_order_type(self, env: Environment, order_type: OrderType, side: Side) -> None:
        if order_type not in (OrderType.MARKET, OrderType.LIMIT):
            raise OrderTypeError(
                f"KRX has no {order_type.value.upper()} order (market or limit only)"
            )

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
            return PlannedOrder(instrument, side, quantity, order_type, Decimal(0))
        if limit is None:
            raise ValueError("a limit order needs a price")
        return PlannedOrder(instrument, side, quantity, order_type, limit)

    async def quote(self, kis: KisClient, creds: AppCredentials, inst: Instrument) -> Price:
        quote = await kis.price(creds, inst.symbol)
        tick = Decimal(quote.tick) if quote.tick > 0 else None
        return Price(Decimal(quote.price), tick, quote.name)

    async def held(
        self, kis: KisClient, creds: AppCredentials, account: Account, inst: Instrument
    ) -> Held | None:
        holding = (await kis.balance(creds, account)).holding(inst.symbol)
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
        request = OrderRequest(
            symbol=order.instrument.symbol,
            side=order.side,
            quantity=order.quantity,
            order_type=order.order_type,
            price=int(order.kis_price),
        )
        return await kis.place_order(creds, account, request, before_send=before_send)

    async def executions(
        self,
        kis: KisClient,
        creds: AppCredentials,
        account: Account,
        day: date,
        inst: Instrument,
        order_no: str = "",
    ) -> list[Execution]:
        return await kis.daily_executions(
            creds, account, start=day, end=day, order_no=order_no, symbol=inst.symbol
        )

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
        return await kis.cancel_order(
            creds, account, branch=branch, order_no=order_no, quantity=quantity
        )

    async def portfolio(
        self, kis: KisClient, creds: AppCredentials, account: Account
    ) -> MarketPortfolio:
        balance = await kis.balance(creds, account)
        holdings = [
            PortfolioHolding(
                symbol=h.symbol, name=h.name, exchange=CODE, quantity=h.quantity,
                sellable=h.sellable, avg_price=h.avg_price, price=Decimal(h.price),
            )
            for h in balance.holdings
        ]
        return MarketPortfolio(
            CODE, self.currency.code, holdings, cash=Decimal(balance.cash),
            buying_power=Decimal(balance.settled_cash),
        )

    async def day_executions(
        self, kis: KisClient, creds: AppCredentials, account: Account, day: date
    ) -> list[Execution]:
        return await kis.daily_executions(creds, account, start=day, end=day)

    async def realised_pnl(
        self, kis: KisClient, creds: AppCredentials, account: Account
    ) -> Decimal | None:
        if creds.env is not Environment.REAL:
            return None  # KIS has no paper TR for it (KIS.md section 15)
        return (await kis.realised_pnl(creds, account)).total

    def reservable(self, env: Environment) -> bool:
        return env is Environment.REAL  # KIS.md section 14: no paper TR

    def in_reservation_window(self, now: datetime) -> bool:
        day = now.astimezone(KST).date()
        return reservations.in_entry_window(now, self.hours.session(day) is not None)

    async def reserve(
        self, kis: KisClient, creds: AppCredentials, account: Account, order: PlannedOrder
    ) -> str:
        market = order.order_type is OrderType.MARKET
        request = ReservationRequest(
            symbol=order.instrument.symbol, side=order.side, quantity=order.quantity,
            ord_dvsn_cd="01" if market else "00",
            price=0 if market else int(order.kis_price),
        )
        return await kis.place_reservation(creds, account, request)

    async def reservations(
        self, kis: KisClient, creds: AppCredentials, account: Account, start: date, end: date
    ) -> list[Reservation]:
        return await kis.reservations(creds, account, start=start, end=end)

    async def cancel_reservation(
        self, kis: KisClient, creds: AppCredentials, account: Account, *, seq: str,
        order_date: str,
    ) -> None:
        await kis.cancel_reservation(creds, account, seq=seq, order_date=order_date)

    def fill_notice(self, env: Environment) -> tuple[str, RecordDecoder]:
        return TR_IDS[env].fill_notice, notice_from_fields
