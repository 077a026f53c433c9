"""Turn an alert into an order size once KIS has said the price and the holding. Pure.

The pipeline asks `needs(alert)` what to fetch (fresh from KIS for every alert), then
calls `size_order`. A refusal carries a stable code and a message for the chat.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal

from kis.markets import Market
from kis.models import OrderType, Side
from webhook_server.alert import Alert, Amount, Position, Quantity, SellAll, SellPercent


class RefusalCode(enum.StrEnum):
    BELOW_ONE_SHARE = "below_one_share"
    NOT_HELD = "not_held"
    INSUFFICIENT_HOLDING = "insufficient_holding"
    PERCENT_ROUNDS_TO_ZERO = "percent_rounds_to_zero"
    NOTHING_TO_DO = "nothing_to_do"
    POSITION_AGAINST_ACTION = "position_against_action"


@dataclass(frozen=True, slots=True)
class SizedOrder:
    side: Side
    quantity: int
    order_type: OrderType
    price: Decimal  # on the market's tick for priced orders; 0 otherwise
    last: Decimal | None = None  # the current price KIS said, when it was asked
    cost: Decimal | None = None  # a sell's average purchase price, as KIS said it


@dataclass(frozen=True, slots=True)
class SizingRefusal:
    """`message` is the English reason; `params` fill the bot's `reason.<code>` text."""

    reason_code: RefusalCode
    message: str
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SizingNeeds:
    """What to ask KIS before sizing: the current price, the holding."""

    price: bool
    holding: bool


def needs(alert: Alert, market: Market) -> SizingNeeds:
    # Amount mode divides by the limit price when there is one, else the current price;
    # some markets also price a market order from it (US: a marketable limit).
    price = (
        isinstance(alert.sizing, Amount) and not alert.order_type.has_price
    ) or market.needs_quote(alert.order_type)
    # Every sell checks the holding ("sell of a stock not held"); position diffs against it.
    holding = isinstance(alert.sizing, Position) or alert.action is Side.SELL
    return SizingNeeds(price=price, holding=holding)


def size_order(
    alert: Alert,
    market: Market,
    *,
    current_price: Decimal | None = None,
    holding: int | None = None,
    tick: Decimal | None = None,
) -> SizedOrder | SizingRefusal:
    """Size `alert`. `holding` is the sellable quantity (`ord_psbl_qty`); `tick` is KIS's
    own tick when known (KRX `aspr_unit`). Raises ValueError when an input that
    `needs(alert)` asked for is missing — a pipeline bug, not a user error."""
    wanted = needs(alert, market)
    if wanted.price and (current_price is None or current_price <= 0):
        raise ValueError("amount mode needs the current price")
    if wanted.holding and (holding is None or holding < 0):
        raise ValueError("this alert needs the holding")
    held = holding or 0

    sizing = alert.sizing
    if isinstance(sizing, Position):
        difference = sizing.target - held
        if difference == 0:
            return SizingRefusal(
                RefusalCode.NOTHING_TO_DO,
                f"already holding {_shares(held)} of {alert.symbol}, the target position",
                {"held": f"{held:,}"},
            )
        side = Side.BUY if difference > 0 else Side.SELL
        if alert.action is not None and side is not alert.action:
            # The strategy says one direction and the target the other: never guess.
            return SizingRefusal(
                RefusalCode.POSITION_AGAINST_ACTION,
                f"the target position of {_shares(sizing.target)} from {held:,} held needs a "
                f"{side.value} of {_shares(abs(difference))}, but the alert's action is "
                f"{alert.action.value}",
                {"target": f"{sizing.target:,}", "held": f"{held:,}", "side": side.value,
                 "quantity": f"{abs(difference):,}", "action": alert.action.value},
            )
        return _order(alert, market, side, abs(difference), tick)

    if alert.action is None:  # parse_alert guarantees an action outside position mode
        raise ValueError("alert has no action")
    side = alert.action
    if side is Side.SELL and held == 0:
        return SizingRefusal(RefusalCode.NOT_HELD, f"cannot sell {alert.symbol}: no shares held")

    if isinstance(sizing, Quantity):
        quantity = sizing.shares
    elif isinstance(sizing, SellAll):
        quantity = held
    elif isinstance(sizing, SellPercent):
        quantity = int((held * sizing.percent / 100).to_integral_value(ROUND_FLOOR))
        if quantity < 1:
            return SizingRefusal(
                RefusalCode.PERCENT_ROUNDS_TO_ZERO,
                f"{sizing.percent}% of {_shares(held)} of {alert.symbol} rounds down to 0 shares",
                {"percent": f"{sizing.percent}", "held": f"{held:,}"},
            )
    else:
        unit_price = _amount_price(alert, market, side, current_price, tick)
        quantity = int((sizing.krw / unit_price).to_integral_value(ROUND_FLOOR))
        if quantity < 1:
            currency = market.currency.code
            return SizingRefusal(
                RefusalCode.BELOW_ONE_SHARE,
                f"amount {_money(sizing.krw)} {currency} is less than one share of "
                f"{alert.symbol} at {_money(unit_price)} {currency}",
                {"amount": _money(sizing.krw), "price": _money(unit_price),
                 "currency": currency},
            )

    if side is Side.SELL and quantity > held:
        return SizingRefusal(
            RefusalCode.INSUFFICIENT_HOLDING,
            f"cannot sell {_shares(quantity)} of {alert.symbol}: {held:,} can be sold",
            {"quantity": f"{quantity:,}", "sellable": f"{held:,}"},
        )
    return _order(alert, market, side, quantity, tick)


def _amount_price(
    alert: Alert, market: Market, side: Side, current_price: Decimal | None,
    tick: Decimal | None,
) -> Decimal:
    if alert.order_type.has_price and alert.price is not None:
        return market.round_price(alert.price, side, tick)
    if current_price is None:  # guarded by needs() above
        raise ValueError("amount mode needs the current price")
    return Decimal(current_price)


def _order(
    alert: Alert, market: Market, side: Side, quantity: int, tick: Decimal | None
) -> SizedOrder:
    if not alert.order_type.has_price or alert.price is None:
        return SizedOrder(side, quantity, alert.order_type, Decimal(0))
    price = market.round_price(alert.price, side, tick)
    return SizedOrder(side, quantity, alert.order_type, price)


def _shares(count: int) -> str:
    return f"{count:,} share" if count == 1 else f"{count:,} shares"


def _money(value: Decimal) -> str:
    if value == value.to_integral_value():
        return f"{int(value):,}"
    if value == value.quantize(Decimal("0.01")):
        return f"{value:,.2f}"
    return format(value.normalize(), ",f")  # sub-penny prices keep their places
