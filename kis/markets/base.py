"""What every market is: an instrument value, a currency, trading hours and the one
interface the order path uses (KIS.md sections 6-13). The pipeline, sizing and guards
take the market from the instrument and never branch on which one it is.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import ClassVar, Final

from kis.client import BeforeSend, KisClient
from kis.env import KST, Environment
from kis.fillnotice import RecordDecoder
from kis.models import (
    Account,
    AppCredentials,
    Execution,
    MarketPortfolio,
    OrderAck,
    OrderType,
    Reservation,
    Side,
)

# How far ahead the next open is searched: longer than any run of closed days.
_HORIZON_DAYS: Final = 31


class SymbolError(ValueError):
    """A ticker that cannot be an instrument of this market; `field` names the alert field."""

    def __init__(self, message: str, field: str = "ticker") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class OrderTypeError(ValueError):
    """An order type this market (or environment) does not take; the message says why."""


@dataclass(frozen=True, slots=True)
class Currency:
    code: str  # ISO 4217
    symbol: str
    decimals: int  # what amounts are shown with


KRW: Final = Currency("KRW", "₩", 0)
USD: Final = Currency("USD", "$", 2)


@dataclass(frozen=True, slots=True)
class Instrument:
    """What an alert trades: the market's code, KIS's symbol, the order exchange code."""

    market: str  # "KRX" | "US"
    symbol: str  # "005930" | "AAPL" | "BRK.B"
    exchange: str  # "KRX" | "NASD" | "NYSE" | "AMEX"

    def __str__(self) -> str:
        return f"{self.exchange}:{self.symbol}"


@dataclass(frozen=True, slots=True)
class Session:
    """One trading day's regular session; `note` names a special one (late open, early close)."""

    opens: datetime
    closes: datetime
    note: str = ""


class ClosedWhy(enum.StrEnum):
    WEEKEND = "weekend"
    HOLIDAY = "holiday"
    BEFORE_OPEN = "before_open"
    AFTER_CLOSE = "after_close"


@dataclass(frozen=True, slots=True)
class Closed:
    """Why the market is closed now and when it opens next (aware datetimes)."""

    market: str
    why: ClosedWhy
    detail: str  # the weekday, the holiday's name, or today's session hours
    now: datetime  # in the market's time zone
    next_open: datetime  # in the market's time zone

    @property
    def next_open_kst(self) -> datetime:
        return self.next_open.astimezone(KST)

    def opens_text(self) -> str:
        """`2026-03-09 09:30 New York (22:30 KST)`, or `2026-03-09 09:00 KST` for KRX."""
        local = self.next_open
        kst = self.next_open_kst
        if local.utcoffset() == kst.utcoffset():
            return f"{kst:%Y-%m-%d %H:%M} KST"
        return f"{local:%Y-%m-%d %H:%M} {_zone_name(local)} ({kst:%Y-%m-%d %H:%M} KST)"

    def message(self) -> str:
        """English, for logs and `/log`; the chat renders `why`/`detail`/`next_open` itself."""
        return f"{self.market} is closed: {self.detail}; opens {self.opens_text()}"


def _zone_name(moment: datetime) -> str:
    key = getattr(moment.tzinfo, "key", "")
    if key == "America/New_York":
        return "New York"
    return moment.tzname() or "local"


class MarketHours(abc.ABC):
    """A market's trading calendar: each day's session (or none), and from it whether
    the market is open now and when it opens next."""

    market: ClassVar[str]
    tz: ClassVar[tzinfo]

    @abc.abstractmethod
    def holiday(self, day: date) -> str | None:
        """The name of the holiday closing the market on `day` (a weekday), or None."""

    @abc.abstractmethod
    def session(self, day: date) -> Session | None:
        """`day`'s regular session, or None when the market is closed all day."""

    def _at(self, day: date, clock: time) -> datetime:
        return datetime.combine(day, clock, tzinfo=self.tz)

    def check(self, now: datetime) -> Closed | None:
        """None while the regular session is open, else why not and the next open."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        local = now.astimezone(self.tz)
        day = local.date()
        session = self.session(day)
        if session is not None and session.opens <= local < session.closes:
            return None
        if session is None:
            holiday = self.holiday(day) if day.weekday() < 5 else None
            why = ClosedWhy.HOLIDAY if holiday else ClosedWhy.WEEKEND
            detail = f"holiday: {holiday}" if holiday else f"{local:%A}"
        else:
            why = ClosedWhy.BEFORE_OPEN if local < session.opens else ClosedWhy.AFTER_CLOSE
            hours = f"{session.opens:%H:%M}-{session.closes:%H:%M}"
            note = f", {session.note}" if session.note else ""
            detail = (
                f"outside today's session {hours} {_zone_label(session.opens)}{note} "
                f"(now {local:%H:%M})"
            )
        return Closed(self.market, why, detail, local, self.next_open(now))

    def next_open(self, now: datetime) -> datetime:
        """The start of the next regular session after `now` (today's if still ahead)."""
        local = now.astimezone(self.tz)
        day = local.date()
        for offset in range(_HORIZON_DAYS):
            session = self.session(day + timedelta(days=offset))
            if session is not None and (offset > 0 or local < session.opens):
                return session.opens
        raise RuntimeError(f"{self.market}: no session within {_HORIZON_DAYS} days")

    def trading_day(self, moment: datetime) -> date:
        """The market's local date of `moment` (KIS's inquiry dates are local dates)."""
        return moment.astimezone(self.tz).date()


def _zone_label(moment: datetime) -> str:
    return "KST" if moment.utcoffset() == timedelta(hours=9) else _zone_name(moment)


@dataclass(frozen=True, slots=True)
class Price:
    """The current price as the sizing reads it; `tick` is KIS's own when it says one."""

    price: Decimal
    tick: Decimal | None = None
    name: str = ""


@dataclass(frozen=True, slots=True)
class Held:
    """A holding: `quantity` held, `sellable` what can be sold now (ord_psbl_qty), and
    the average purchase price KIS books for it."""

    quantity: int
    sellable: int
    avg_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    """An order ready for KIS: `kis_price` is what the request carries (0 = none);
    `marketable` says a market order became a limit at a marketable price."""

    instrument: Instrument
    side: Side
    quantity: int
    order_type: OrderType
    kis_price: Decimal
    marketable: bool = False


class Market(abc.ABC):
    """One market: KRX, US. A third (Hong Kong, Tokyo) is one more implementation."""

    code: ClassVar[str]
    currency: ClassVar[Currency]
    hours: MarketHours

    # -- symbols ------------------------------------------------------------------------

    @abc.abstractmethod
    def claims(self, exchange: str) -> bool:
        """Whether a TradingView exchange name (`NASDAQ`, `KRX`, …) belongs to this market."""

    @abc.abstractmethod
    def instrument(self, symbol: str, exchange: str | None) -> Instrument:
        """The instrument, or `SymbolError` naming what is wrong."""

    # -- prices -------------------------------------------------------------------------

    @abc.abstractmethod
    def round_price(self, price: Decimal, side: Side, tick: Decimal | None = None) -> Decimal:
        """A limit price on this market's tick: down for buys, up for sells."""

    def needs_quote(self, order_type: OrderType) -> bool:
        """Whether placing this order type needs the current price (beyond sizing)."""
        return False

    @abc.abstractmethod
    def check_order_type(self, env: Environment, order_type: OrderType, side: Side) -> None:
        """Raise `OrderTypeError` with the reason when KIS would not take it."""

    @abc.abstractmethod
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
        """The order KIS will receive; `last` is the current price when `needs_quote`."""

    # -- KIS ----------------------------------------------------------------------------

    @abc.abstractmethod
    async def quote(self, kis: KisClient, creds: AppCredentials, inst: Instrument) -> Price: ...

    @abc.abstractmethod
    async def held(
        self, kis: KisClient, creds: AppCredentials, account: Account, inst: Instrument
    ) -> Held | None: ...

    @abc.abstractmethod
    async def place(
        self,
        kis: KisClient,
        creds: AppCredentials,
        account: Account,
        order: PlannedOrder,
        *,
        before_send: BeforeSend | None = None,
    ) -> OrderAck:
        """Send once (never retried after it may have left: `OrderOutcomeUnknown`);
        `before_send` runs once, right before the request leaves (`KisClient`)."""

    @abc.abstractmethod
    async def executions(
        self,
        kis: KisClient,
        creds: AppCredentials,
        account: Account,
        day: date,
        inst: Instrument,
        order_no: str = "",
    ) -> list[Execution]:
        """The day's orders and fills (`day` is the market's `trading_day`)."""

    @abc.abstractmethod
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
    ) -> OrderAck: ...

    # -- the account (SPEC section 15) ------------------------------------------------------

    @abc.abstractmethod
    async def portfolio(
        self, kis: KisClient, creds: AppCredentials, account: Account
    ) -> MarketPortfolio:
        """Cash, buying power and every holding in this market, fresh from KIS."""

    async def day_executions(
        self, kis: KisClient, creds: AppCredentials, account: Account, day: date
    ) -> list[Execution]:
        """Every order of the market day `day` with its fills, all instruments."""
        raise NotImplementedError

    async def realised_pnl(
        self, kis: KisClient, creds: AppCredentials, account: Account
    ) -> Decimal | None:
        """Today's realised P&L as KIS books it; None where KIS has no such inquiry
        (the caller then works it out from fills and average prices)."""
        return None

    # -- reservation orders (REAL only where they exist) ----------------------------------

    def reservable(self, env: Environment) -> bool:
        """Whether KIS takes reservation orders for this market in `env`."""
        return False

    def in_reservation_window(self, now: datetime) -> bool:
        return False

    async def reserve(
        self, kis: KisClient, creds: AppCredentials, account: Account, order: PlannedOrder
    ) -> str:
        """Enter a reservation order once; its KIS sequence number."""
        raise OrderTypeError(f"KIS takes no reservation orders for {self.code}")

    async def reservations(
        self, kis: KisClient, creds: AppCredentials, account: Account, start: date, end: date
    ) -> list[Reservation]:
        raise OrderTypeError(f"KIS takes no reservation orders for {self.code}")

    async def cancel_reservation(
        self, kis: KisClient, creds: AppCredentials, account: Account, *, seq: str,
        order_date: str,
    ) -> None:
        raise OrderTypeError(f"KIS takes no reservation orders for {self.code}")

    # -- fill notices -------------------------------------------------------------------

    @abc.abstractmethod
    def fill_notice(self, env: Environment) -> tuple[str, RecordDecoder]:
        """The fill-notice TR for the environment and the decoder of its records."""
