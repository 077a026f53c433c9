"""Risk limits (SPEC section 15) as a guard of the order path: after sizing, because it
needs the order's amount, and before KIS is asked for the order.

Per order: the order's amount against the cap (pure). Per day: the order is counted
against its market day in the database, atomically (`DayLimits.hold`), so concurrent
orders of one user never pass a cap together; the hold is given back when the order is
not placed after all. A market order's amount is its quantity at the current price
(US: at the marketable limit it is sent with).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Final

from kis.client import KisClient
from kis.env import Environment
from kis.errors import KisError
from kis.markets import Instrument, Market
from kis.models import AppCredentials, Side
from storage.facade import Storage
from storage.options import LimitName, Limits
from storage.portfolio_records import HoldResult
from webhook_server.db_gate import DbGate
from webhook_server.guards import Refusal
from webhook_server.sizing import SizedOrder

LIMIT_ORDER: Final = "limit_order"
LIMIT_DAY: Final = "limit_day"
LIMIT_ORDERS: Final = "limit_orders"
LIMIT_UNCHECKED: Final = "limit_unchecked"


def unit_price(market: Market, env: Environment, inst: Instrument, sized: SizedOrder) -> (
    Decimal | None
):
    """What one share of the order costs, when the order says it (limit price, or a
    market order priced from the current price); None when the price must be asked."""
    if sized.order_type.has_price and sized.price > 0:
        return sized.price
    if market.needs_quote(sized.order_type) and sized.last is not None:
        planned = market.plan(env, inst, sized.side, sized.quantity, sized.order_type, None,
                              sized.last)
        return planned.kis_price or sized.last
    return sized.last


def money_text(value: Decimal) -> str:
    """Plain figures for refusal params (the chat formats them in the currency)."""
    normal = value.normalize()
    return format(normal if normal == normal.to_integral_value() else value, "f")


def order_refusal(
    limits: Limits, currency: str, quantity: int, unit: Decimal
) -> Refusal | None:
    """The per-order cap, in the order's currency."""
    cap = limits.get(LimitName.ORDER, currency)
    amount = unit * quantity
    if cap is None or amount <= cap:
        return None
    return Refusal(
        LIMIT_ORDER,
        f"the order's amount {money_text(amount)} {currency} ({quantity:,} × "
        f"{money_text(unit)}) is over the per-order limit of {money_text(cap)} {currency} "
        "(/limits)",
        LIMIT_ORDER,
        {"amount": money_text(amount), "quantity": f"{quantity:,}", "price": money_text(unit),
         "limit": money_text(cap), "currency": currency},
    )


def day_refusal(
    held: HoldResult, limits: Limits, market: str, currency: str, amount: Decimal
) -> Refusal:
    """Why the day's hold was refused: the orders-per-day cap, or the amount bought."""
    used = held.used
    if held.limit is LimitName.ORDERS:
        most = limits.orders or 0
        return Refusal(
            LIMIT_ORDERS,
            f"{used.orders} orders on {market} today already: the limit is {most} a day "
            "(/limits)",
            LIMIT_ORDERS,
            {"used": str(used.orders), "orders": str(most), "market": market},
        )
    cap = limits.get(LimitName.DAY, currency) or Decimal(0)
    return Refusal(
        LIMIT_DAY,
        f"buying {money_text(amount)} {currency} more on {market} today would pass the daily "
        f"limit of {money_text(cap)} {currency}: {money_text(used.bought)} {currency} "
        "bought so far (/limits)",
        LIMIT_DAY,
        {"amount": money_text(amount), "bought": money_text(used.bought),
         "limit": money_text(cap), "market": market, "currency": currency},
    )


class LimitGuard:
    def __init__(self, storage: Storage, kis: KisClient, db: DbGate) -> None:
        self._storage = storage
        self._kis = kis
        self._db = db

    async def check(
        self,
        *,
        alert_id: int,
        user_id: int,
        limits: Limits,
        market: Market,
        inst: Instrument,
        sized: SizedOrder,
        creds: AppCredentials,
        now: datetime,
        account_id: int | None = None,
    ) -> Refusal | None:
        """None when the order may go (its day's share of the account's use is then
        held), else the refusal."""
        if not limits.any:
            return None
        currency = market.currency.code
        amount = Decimal(0)
        if limits.amount_caps(currency):
            unit = unit_price(market, creds.env, inst, sized)
            if unit is None:
                try:
                    unit = (await market.quote(self._kis, creds, inst)).price
                except KisError as exc:
                    return Refusal(
                        LIMIT_UNCHECKED,
                        f"the risk limits could not be checked: KIS did not say the price "
                        f"({type(exc).__name__})",
                        LIMIT_UNCHECKED,
                        {"detail": str(exc)[:200]},
                    )
            refusal = order_refusal(limits, currency, sized.quantity, unit)
            if refusal is not None:
                return refusal
            amount = unit * sized.quantity
        buying = sized.side is Side.BUY
        max_amount = limits.get(LimitName.DAY, currency) if buying else None
        if max_amount is None and limits.orders is None:
            return None
        bought = amount if buying else Decimal(0)
        held = await self._db(
            self._storage.limits.hold(
                user_id=user_id, alert_id=alert_id, market=market.code,
                day=market.hours.trading_day(now).isoformat(), amount=bought,
                max_amount=max_amount, max_orders=limits.orders, account_id=account_id,
            )
        )
        if held.limit is None:
            return None
        return day_refusal(held, limits, market.code, currency, bought)

    async def release(self, alert_id: int) -> None:
        """The order was not placed: its share of the day goes back (once)."""
        await self._db(self._storage.limits.release(alert_id))
