"""KRX tick sizes, rounding and daily price limits (KIS.md section 12). Pure."""

from __future__ import annotations

import enum
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

# (upper bound exclusive, tick) for stocks since 2023-01-25.
_STOCK_TICKS: tuple[tuple[int, int], ...] = (
    (2_000, 1),
    (5_000, 5),
    (20_000, 10),
    (50_000, 50),
    (200_000, 100),
    (500_000, 500),
)
_TOP_TICK = 1_000
ETF_TICK = 5


class Rounding(enum.Enum):
    DOWN = "down"  # buys: never pay more than asked
    UP = "up"  # sells: never sell for less than asked


class PriceLimitError(ValueError):
    """A price outside the day's KRX limits; the message says which limit."""


def tick_size(price: int, *, etf: bool = False) -> int:
    if etf:
        return ETF_TICK
    for bound, tick in _STOCK_TICKS:
        if price < bound:
            return tick
    return _TOP_TICK


def round_to_tick(
    price: Decimal | int | float | str, rounding: Rounding, *, etf: bool = False, tick: int = 0
) -> int:
    """Round to a valid KRX price. `tick` (e.g. `aspr_unit` from KIS) overrides the table.

    Rounding up can cross into a band with a larger tick (4,999.5 → 5,000), so the
    result is re-checked against the tick of its own band.
    """
    value = Decimal(str(price))
    if value <= 0:
        raise ValueError("price must be positive")
    mode = ROUND_FLOOR if rounding is Rounding.DOWN else ROUND_CEILING
    whole = int(value.to_integral_value(mode))
    whole = max(whole, 1)
    step = tick or tick_size(whole, etf=etf)
    if rounding is Rounding.DOWN:
        result = (whole // step) * step
        if result <= 0:
            result = step
    else:
        result = -(-whole // step) * step
    if not tick:
        band_step = tick_size(result, etf=etf)
        if result % band_step:
            result = (
                (result // band_step) * band_step
                if rounding is Rounding.DOWN
                else -(-result // band_step) * band_step
            )
    return result


def is_on_tick(price: int, *, etf: bool = False) -> bool:
    return price > 0 and price % tick_size(price, etf=etf) == 0


def check_price_limits(price: int, *, lower: int, upper: int) -> None:
    """Raise `PriceLimitError` when `price` is outside [lower, upper] (`stck_llam`/`stck_mxpr`)."""
    if price > upper:
        raise PriceLimitError(f"price {price:,} is above today's upper limit {upper:,}")
    if price < lower:
        raise PriceLimitError(f"price {price:,} is below today's lower limit {lower:,}")
