"""What sizing needs from KIS, read fresh for each alert, and the size it gives.

The order pipeline and the dry run (`/test`) share these, so a test says exactly what
the real alert would do. The alert's market asks KIS (KRX or overseas): nothing here
knows which.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from kis.client import KisClient
from kis.errors import KisServerError
from kis.markets import Held, Market
from kis.models import Account, AppCredentials, Side
from webhook_server.alert import Alert, Position
from webhook_server.guards import Refusal, sizing_refusal
from webhook_server.sizing import SizedOrder, SizingRefusal, needs, size_order


@dataclass(frozen=True, slots=True)
class Figures:
    """KIS's answers for one alert: the current price (and tick) and the holding."""

    price: Decimal | None = None
    tick: Decimal | None = None
    holding: int | None = None  # what sizing uses: sellable shares, or held for a position
    held: Held | None = None


async def inquire(
    kis: KisClient, market: Market, creds: AppCredentials, account: Account, alert: Alert
) -> Figures:
    """Ask KIS what `needs(alert, market)` says; raises `KisError` when it cannot say."""
    wanted = needs(alert, market)
    price: Decimal | None = None
    tick: Decimal | None = None
    holding: int | None = None
    held: Held | None = None
    if wanted.price:
        quote = await market.quote(kis, creds, alert.instrument)
        if quote.price <= 0:
            # A success without a price (e.g. an unknown code): sizing cannot divide by
            # it, so it fails like any other inquiry, with a notice.
            raise KisServerError(
                rt_cd="0", msg_cd="", msg1=f"no current price for {alert.symbol}",
                tr_id=None, http_status=200,
            )
        price, tick = quote.price, quote.tick
    if wanted.holding:
        held = await market.held(kis, creds, account, alert.instrument)
        if held is None:
            holding = 0
        elif isinstance(alert.sizing, Position):
            holding = held.quantity  # the position is what is held
        else:
            holding = held.sellable  # what can be sold now (ord_psbl_qty)
    return Figures(price, tick, holding, held)


def size(alert: Alert, market: Market, figures: Figures) -> SizedOrder | Refusal:
    result = size_order(
        alert, market, current_price=figures.price, holding=figures.holding, tick=figures.tick
    )
    if isinstance(result, SizingRefusal):
        return sizing_refusal(alert, result)
    held = figures.held
    if (
        isinstance(alert.sizing, Position)
        and held is not None
        and result.side is Side.SELL
        and result.quantity > held.sellable
    ):
        return Refusal(
            "insufficient_holding",
            f"cannot sell {result.quantity:,} of {alert.symbol} to reach the target "
            f"position: {held.sellable:,} can be sold now",
            "insufficient_holding",
            {"quantity": f"{result.quantity:,}", "sellable": f"{held.sellable:,}"},
        )
    return replace(result, last=figures.price)
