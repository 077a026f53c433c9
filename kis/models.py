"""Typed values passed to and returned by the KIS REST client."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from kis.env import Environment
from kis.secret import Secret, mask


@dataclass(frozen=True, slots=True, repr=False)
class AppCredentials:
    """One app key of one environment; the key and secret never show in repr."""

    app_key: str
    app_secret: Secret
    env: Environment

    def __repr__(self) -> str:
        return (
            f"AppCredentials(app_key={mask(self.app_key)!r}, "
            f"app_secret={self.app_secret!r}, env={self.env.value!r})"
        )

    __str__ = __repr__


# What a KIS app key, app secret and HTS ID look like (KIS.md: keys ~36 characters,
# secrets ~180): checked before anything is stored, in the chat and on the dashboard.
_APP_KEY: Final = re.compile(r"\S{16,128}")
_APP_SECRET: Final = re.compile(r"\S{32,512}")
_HTS_ID: Final = re.compile(r"[A-Za-z0-9_.\-]{2,32}")


def looks_like_app_key(text: str) -> bool:
    return _APP_KEY.fullmatch(text) is not None


def looks_like_app_secret(text: str) -> bool:
    return _APP_SECRET.fullmatch(text) is not None


def looks_like_hts_id(text: str) -> bool:
    return _HTS_ID.fullmatch(text) is not None


def _ascii_digits(text: str) -> bool:
    # str.isdigit() also takes other scripts' digits (full-width, Arabic-Indic).
    return text.isascii() and text.isdigit()


@dataclass(frozen=True, slots=True)
class Account:
    """`CANO` (8 digits) and `ACNT_PRDT_CD` (2 digits, "01" = ordinary brokerage)."""

    cano: str
    product_code: str = "01"

    def __post_init__(self) -> None:
        if len(self.cano) != 8 or not _ascii_digits(self.cano):
            raise ValueError("account number must be 8 digits (CANO), e.g. 12345678-01")
        if len(self.product_code) != 2 or not _ascii_digits(self.product_code):
            raise ValueError("account product code must be 2 digits, e.g. 12345678-01")

    @classmethod
    def parse(cls, text: str) -> Account:
        """Accepts "12345678-01", "1234567801" or "12345678" (product code "01")."""
        raw = text.strip()
        if "-" in raw:
            cano, _, product = raw.partition("-")
        elif len(raw) == 10:
            cano, product = raw[:8], raw[8:]
        else:
            cano, product = raw, "01"
        if not (_ascii_digits(cano) and len(cano) == 8):
            raise ValueError(
                "account number must be 8 digits, optionally followed by -01 "
                "(e.g. 12345678-01)"
            )
        if not (_ascii_digits(product) and len(product) == 2):
            raise ValueError(
                "account product code must be 2 digits after the dash (e.g. 12345678-01)"
            )
        return cls(cano=cano, product_code=product)

    def __str__(self) -> str:
        return f"{self.cano}-{self.product_code}"


class Side(enum.Enum):
    BUY = "buy"
    SELL = "sell"

    @property
    def kis_code(self) -> str:
        """`SLL_BUY_DVSN_CD` / fill notice `SELN_BYOV_CLS`: 01 sell, 02 buy."""
        return "01" if self is Side.SELL else "02"

    @classmethod
    def from_kis_code(cls, code: str) -> Side:
        if code == "01":
            return cls.SELL
        if code == "02":
            return cls.BUY
        raise ValueError(f"unknown sell/buy code {code!r}")


class OrderType(enum.Enum):
    """What the alert's `order_type` asks for; each market maps it to KIS's ORD_DVSN."""

    MARKET = "market"
    LIMIT = "limit"
    MOO = "moo"  # market on open (US, real only)
    LOO = "loo"  # limit on open
    MOC = "moc"  # market on close
    LOC = "loc"  # limit on close

    @property
    def ord_dvsn(self) -> str:
        """The domestic `ORD_DVSN` (KIS.md section 6): KRX has no on-open/on-close orders."""
        if self is OrderType.MARKET:
            return "01"
        if self is OrderType.LIMIT:
            return "00"
        raise ValueError(f"KRX has no {self.value.upper()} order")

    @property
    def has_price(self) -> bool:
        return self in (OrderType.LIMIT, OrderType.LOO, OrderType.LOC)


@dataclass(frozen=True, slots=True)
class OrderRequest:
    symbol: str
    side: Side
    quantity: int
    order_type: OrderType = OrderType.MARKET
    price: int = 0

    def __post_init__(self) -> None:
        if len(self.symbol) != 6 or not self.symbol.isalnum():
            raise ValueError(f"stock code must be 6 characters, got {self.symbol!r}")
        if self.quantity < 1:
            raise ValueError("order quantity must be at least 1")
        if self.order_type is OrderType.LIMIT and self.price <= 0:
            raise ValueError("a limit order needs a price above 0")
        if self.order_type is OrderType.MARKET and self.price != 0:
            raise ValueError("a market order carries no price (use 0)")


@dataclass(frozen=True, slots=True)
class OrderAck:
    """KIS accepted the order: `order_no` = ODNO, `branch` = KRX_FWDG_ORD_ORGNO."""

    order_no: str
    branch: str
    time: str  # HHMMSS, KST
    msg_cd: str
    msg1: str


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    price: int
    upper_limit: int
    lower_limit: int
    base_price: int
    tick: int
    name: str
    suspended: bool


@dataclass(frozen=True, slots=True)
class Holding:
    symbol: str
    name: str
    quantity: int
    sellable: int  # ord_psbl_qty: what can be sold now
    avg_price: Decimal
    price: int


@dataclass(frozen=True, slots=True)
class Balance:
    holdings: list[Holding] = field(default_factory=list)
    cash: int = 0
    total_eval: int = 0
    settled_cash: int = 0  # prvs_rcdl_excc_amt: cash after settlement (D+2)

    def holding(self, symbol: str) -> Holding | None:
        for item in self.holdings:
            if item.symbol == symbol:
                return item
        return None


@dataclass(frozen=True, slots=True)
class Buyable:
    quantity: int
    amount: int


@dataclass(frozen=True, slots=True)
class Execution:
    """One row of a daily orders/executions inquiry (for reconciliation), any market."""

    order_no: str
    branch: str
    symbol: str
    side: Side
    order_qty: int
    order_price: Decimal
    order_time: str
    filled_qty: int
    avg_price: Decimal
    remaining_qty: int
    rejected_qty: int
    cancelled: bool
    name: str = ""  # the instrument's name, when KIS gives it


# --- US stocks (KIS.md section 13) ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class OverseasOrderRequest:
    """An overseas order: `exchange` is the order code (NASD, NYSE, AMEX), `ord_dvsn`
    KIS's order type for it; `price` has the market's decimals, 0 for MOO/MOC."""

    symbol: str
    exchange: str
    side: Side
    quantity: int
    ord_dvsn: str
    price: Decimal

    def __post_init__(self) -> None:
        if not self.symbol or len(self.symbol) > 16:
            raise ValueError(f"not a US symbol: {self.symbol!r}")
        if self.quantity < 1:
            raise ValueError("order quantity must be at least 1")
        if self.price < 0:
            raise ValueError("price must not be negative")


@dataclass(frozen=True, slots=True)
class OverseasQuote:
    symbol: str
    exchange: str  # the order code (NASD, NYSE, AMEX)
    last: Decimal  # the close outside regular hours
    base: Decimal
    decimals: int
    orderable: bool


@dataclass(frozen=True, slots=True)
class OverseasHolding:
    symbol: str
    name: str
    exchange: str
    quantity: int
    sellable: int
    avg_price: Decimal
    price: Decimal
    profit: Decimal
    profit_rate: Decimal


@dataclass(frozen=True, slots=True)
class OverseasBalance:
    holdings: list[OverseasHolding] = field(default_factory=list)

    def holding(self, symbol: str) -> OverseasHolding | None:
        return next((h for h in self.holdings if h.symbol == symbol), None)


@dataclass(frozen=True, slots=True)
class BuyingPower:
    """What can be bought at a price, in the market's currency (`ord_psbl_frcr_amt`)."""

    amount: Decimal
    quantity: int


# --- portfolio (SPEC section 15) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PortfolioHolding:
    """A holding as `/balance` shows it, in the market's currency."""

    symbol: str
    name: str
    exchange: str
    quantity: int
    sellable: int
    avg_price: Decimal
    price: Decimal

    @property
    def cost(self) -> Decimal:
        return self.avg_price * self.quantity

    @property
    def value(self) -> Decimal:
        return self.price * self.quantity

    @property
    def profit(self) -> Decimal:
        return self.value - self.cost

    @property
    def profit_rate(self) -> Decimal | None:
        """Percent of the cost; None when the cost is unknown (0)."""
        return None if self.cost == 0 else self.profit / self.cost * 100


@dataclass(frozen=True, slots=True)
class MarketPortfolio:
    """One market of an account: cash, what can be spent, and what is held."""

    market: str
    currency: str
    holdings: list[PortfolioHolding]
    cash: Decimal | None = None  # deposit (KRX `dnca_tot_amt`); None when KIS gives none
    buying_power: Decimal | None = None

    @property
    def value(self) -> Decimal:
        return sum((h.value for h in self.holdings), Decimal(0))

    @property
    def cost(self) -> Decimal:
        return sum((h.cost for h in self.holdings), Decimal(0))


@dataclass(frozen=True, slots=True)
class RealisedPnl:
    """KIS's realised profit/loss of the day (`inquire-balance-rlz-pl`, REAL only)."""

    total: Decimal
    rate: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ReservationRequest:
    """A domestic reservation order (KIS.md section 14): `ord_dvsn_cd` 00 limit or 01
    market; `price` 0 for market."""

    symbol: str
    side: Side
    quantity: int
    ord_dvsn_cd: str
    price: int = 0

    def __post_init__(self) -> None:
        if self.quantity < 1:
            raise ValueError("order quantity must be at least 1")
        if self.ord_dvsn_cd not in ("00", "01"):
            raise ValueError("a reservation is a limit (00) or market (01) order")
        if (self.ord_dvsn_cd == "00") != (self.price > 0):
            raise ValueError("a limit reservation needs a price; a market one none")


@dataclass(frozen=True, slots=True)
class Reservation:
    """A row of KIS's reservation list (`order-resv-ccnl`)."""

    seq: str
    order_date: str  # RSVN_ORD_ORD_DT: the day it is (or was) sent
    symbol: str
    name: str
    side: Side
    quantity: int
    price: Decimal
    filled_qty: int
    filled_amount: Decimal
    order_no: str  # empty until KIS sent it at the open
    result: str  # prcs_rslt as KIS words it
    refusal: str  # rjct_rson2
    cancelled: bool
