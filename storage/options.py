"""A user's trading options: risk limits, confirm mode, daily digest, after-hours
reservations (SPEC section 15). Pure values, shared by the pipeline and the bot.

Limits are in the market's own currency: KRW caps apply to KRX orders, USD caps to US
orders (own `usd` limits rather than a conversion: no extra KIS call on the order path,
and a cap stays the figure the user typed whatever the exchange rate does). The
orders-per-day cap counts each market's day on its own (KRX: the KST date; US: the
New York date, so one US session is one day).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Final

CURRENCIES: Final = ("KRW", "USD")
MIN_CONFIRM_SECONDS: Final = 10
MAX_CONFIRM_SECONDS: Final = 3600
DEFAULT_CONFIRM_SECONDS: Final = 60


class LimitName(enum.StrEnum):
    ORDER = "order"  # most money per order (buys and sells)
    DAY = "day"  # most money bought per day
    ORDERS = "orders"  # most orders per day

    @property
    def is_money(self) -> bool:
        return self is not LimitName.ORDERS


@dataclass(frozen=True, slots=True)
class Limits:
    """None = no cap."""

    order_krw: Decimal | None = None
    day_krw: Decimal | None = None
    order_usd: Decimal | None = None
    day_usd: Decimal | None = None
    orders: int | None = None

    def get(self, name: LimitName, currency: str = "KRW") -> Decimal | None:
        if name is LimitName.ORDERS:
            return None if self.orders is None else Decimal(self.orders)
        value: Decimal | None = getattr(self, _field(name, currency))
        return value

    def with_value(self, name: LimitName, currency: str, value: Decimal | None) -> Limits:
        if name is LimitName.ORDERS:
            return replace(self, orders=None if value is None else int(value))
        changed: dict[str, object] = {_field(name, currency): value}
        return replace(self, **changed)  # type: ignore[arg-type]  # a money field by name

    def raises(self, name: LimitName, currency: str, value: Decimal | None) -> bool:
        """Whether setting `value` (None: no cap) loosens the cap — that needs 2FA."""
        current = self.get(name, currency)
        if current is None:
            return False  # from no cap to any cap is a tightening
        return value is None or value > current

    def amount_caps(self, currency: str) -> bool:
        """Whether an order in `currency` needs its amount to be checked."""
        return self.get(LimitName.ORDER, currency) is not None or (
            self.get(LimitName.DAY, currency) is not None
        )

    @property
    def any(self) -> bool:
        return any(
            v is not None
            for v in (self.order_krw, self.day_krw, self.order_usd, self.day_usd, self.orders)
        )


def _field(name: LimitName, currency: str) -> str:
    if currency not in CURRENCIES:
        raise ValueError(f"no limits in {currency}")
    return f"{name.value}_{currency.lower()}"


@dataclass(frozen=True, slots=True)
class UserOptions:
    confirm_seconds: int | None = None  # None: alerts become orders at once
    digest: bool = False
    afterhours_reserve: bool = False
    limits: Limits = Limits()

    @property
    def confirm(self) -> bool:
        return self.confirm_seconds is not None


NO_OPTIONS: Final = UserOptions()
