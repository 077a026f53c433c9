"""Typed values passed to and returned by the KIS REST client."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal

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
    MARKET = "01"
    LIMIT = "00"

    @property
    def ord_dvsn(self) -> str:
        return self.value


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
    """One row of the daily orders/executions inquiry (for reconciliation)."""

    order_no: str
    branch: str
    symbol: str
    side: Side
    order_qty: int
    order_price: int
    order_time: str
    filled_qty: int
    avg_price: Decimal
    remaining_qty: int
    rejected_qty: int
    cancelled: bool
