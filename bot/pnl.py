"""A market day's fills and realised profit/loss, as `/pnl` and the daily digest show it.

Fills come fresh from KIS's daily executions (every page). Realised P&L: KIS's own
inquiry where one exists (REAL, KRX: `inquire-balance-rlz-pl`); elsewhere (PAPER, US)
it is worked out from each sell's fill price and the average purchase price it sold at
— the one KIS reported when moahook sized the sell, else the one KIS reports for the
holding now. When KIS's executions come back empty (PAPER does that at times, KIS.md
section 15) the fill notices moahook stored stand in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Final

from kis.client import KisClient
from kis.env import KST
from kis.errors import KisError
from kis.markets import Market
from kis.models import Account, AppCredentials, Execution
from storage.facade import Storage
from storage.repositories.activity import FilledTrade

log = logging.getLogger(__name__)

SOURCE_KIS: Final = "kis"
SOURCE_COMPUTED: Final = "computed"
SOURCE_UNAVAILABLE: Final = "unavailable"


@dataclass(frozen=True, slots=True)
class Trade:
    """One order's fills of the day: quantity filled at the average price."""

    order_no: str
    time: str  # HHMMSS as KIS gives it, "" when unknown
    symbol: str
    name: str
    exchange: str
    side: str
    quantity: int
    price: Decimal


@dataclass(frozen=True, slots=True)
class MarketDay:
    market: str
    currency: str
    day: date
    trades: list[Trade] = field(default_factory=list)
    realised: Decimal | None = None
    source: str = SOURCE_UNAVAILABLE
    missing_cost: list[str] = field(default_factory=list)
    from_records: bool = False
    error: str = ""  # KIS could not be asked for the fills


def day_bounds(market: Market, day: date) -> tuple[datetime, datetime]:
    """The market's local day as an aware interval."""
    start = datetime.combine(day, time(0), tzinfo=market.hours.tz)
    return start, start + timedelta(days=1)


def trades_of(executions: Iterable[Execution], exchange: str) -> list[Trade]:
    return [
        Trade(e.order_no, e.order_time, e.symbol, e.name, exchange, e.side.value,
              e.filled_qty, e.avg_price)
        for e in executions
        if e.filled_qty > 0
    ]


def trades_from_records(records: Iterable[FilledTrade]) -> list[Trade]:
    """moahook's stored fills, one line per order."""
    by_order: dict[str, list[FilledTrade]] = {}
    for record in records:
        by_order.setdefault(record.order_no, []).append(record)
    trades = []
    for order_no, fills in by_order.items():
        first = fills[0]
        quantity = sum(f.quantity for f in fills)
        amount = sum((f.price * f.quantity for f in fills), Decimal(0))
        trades.append(Trade(
            order_no, first.filled_at.astimezone(KST).strftime("%H%M%S"),
            first.symbol, first.name, first.exchange, first.side, quantity,
            amount / quantity if quantity else Decimal(0),
        ))
    return trades


def realised(
    trades: Iterable[Trade], by_order: Mapping[str, Decimal], by_symbol: Mapping[str, Decimal]
) -> tuple[Decimal, list[str]]:
    """Σ (fill price − average purchase price) × quantity over the sells; the symbols of
    sells whose purchase price is unknown are left out and named."""
    total = Decimal(0)
    missing: list[str] = []
    for trade in trades:
        if trade.side != "sell":
            continue
        cost = by_order.get(trade.order_no) or by_symbol.get(trade.symbol)
        if cost is None:
            missing.append(trade.symbol)
            continue
        total += (trade.price - cost) * trade.quantity
    return total, sorted(set(missing))


async def market_day(
    *,
    kis: KisClient,
    storage: Storage,
    market: Market,
    user_id: int,
    creds: AppCredentials,
    account: Account,
    day: date,
    account_id: int | None = None,
) -> MarketDay:
    """The market day `day` of one account (the market's own date; KIS's realised-P&L
    inquiry only knows today, so pass today's for `/pnl`); `account_id` is moahook's
    account of `account` (None: every account of the user)."""
    currency = market.currency.code
    env = creds.env
    try:
        executions = await market.day_executions(kis, creds, account, day)
    except KisError as exc:
        log.info("day executions of %s failed: %s", market.code, type(exc).__name__)
        return MarketDay(market.code, currency, day, error=kis_reason(exc))
    exchange = market.code if market.code == "KRX" else ""
    trades = trades_of(executions, exchange)
    recorded_costs: dict[str, Decimal] = {}
    from_records = False
    if not trades:
        start, end = day_bounds(market, day)
        records = await storage.activity.fills_between(user_id, env, market.code, start, end,
                                                       account_id)
        if records:
            trades, from_records = trades_from_records(records), True
            recorded_costs = {r.order_no: r.cost for r in records if r.cost is not None}
    booked: Decimal | None = None
    if day == market.hours.trading_day(datetime.now(UTC)):  # KIS books only today's
        try:
            booked = await market.realised_pnl(kis, creds, account)
        except KisError as exc:
            log.info("realised P&L of %s failed: %s", market.code, type(exc).__name__)
    if booked is not None:
        return MarketDay(market.code, currency, day, trades, booked, SOURCE_KIS,
                         from_records=from_records)
    sells = [t for t in trades if t.side == "sell"]
    costs = {**recorded_costs, **await storage.activity.sale_costs(
        user_id, env, [t.order_no for t in sells], account_id
    )}
    held: dict[str, Decimal] = {}
    if any(t.order_no not in costs for t in sells):
        try:
            portfolio = await market.portfolio(kis, creds, account)
        except KisError:
            portfolio = None
        if portfolio is not None:
            held = {h.symbol: h.avg_price for h in portfolio.holdings if h.avg_price > 0}
    total, missing = realised(trades, costs, held)
    return MarketDay(market.code, currency, day, trades, total, SOURCE_COMPUTED, missing,
                     from_records)


def kis_reason(exc: KisError) -> str:
    """KIS's own words for a refusal, else what went wrong (never a secret: the client
    scrubs them)."""
    msg1 = getattr(exc, "msg1", "")
    msg_cd = getattr(exc, "msg_cd", "")
    if msg1:
        return f"[{msg_cd}] {msg1}" if msg_cd else str(msg1)
    return (str(exc).strip() or type(exc).__name__)[:200]
