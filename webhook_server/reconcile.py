"""Find out whether an order whose answer was lost exists at KIS (KIS.md sections 6, 8).

An order that may have left (row `pending`, `sent` or `unknown`) is looked up in
KIS's daily orders/executions: by order number when it is known, else by symbol,
side, quantity (and limit price) placed no earlier than the row was created, and not
already matched to another order of ours. Today's rows can lag, so an empty answer
is asked again a few times, with a bound, before concluding "not placed".
Nothing here ever sends an order.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from kis.client import KisClient
from kis.env import KST
from kis.errors import KisError
from kis.markets import Instrument, Markets
from kis.models import Account, AppCredentials, Execution, Side
from storage.records import OrderRecord

log = logging.getLogger(__name__)

NOT_PLACED: Final = "not placed at KIS (checked daily executions)"
CLOCK_SLACK: Final = timedelta(seconds=5)  # our clock vs KIS's ORD_TMD

IsTaken = Callable[[str], Awaitable[bool]]


class Outcome(enum.Enum):
    FOUND = "found"
    NOT_FOUND = "not_found"
    UNCHECKED = "unchecked"  # KIS could not be asked: the outcome stays unknown


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    execution: Execution | None = None
    error: str = ""


def kis_day(order: OrderRecord) -> date:
    return order.created_at.astimezone(KST).date()


async def match_execution(
    order: OrderRecord, executions: Sequence[Execution], is_taken: IsTaken
) -> Execution | None:
    """The KIS row that is this order, or None."""
    if order.order_no:
        return next((e for e in executions if e.order_no == order.order_no), None)
    earliest = (order.created_at.astimezone(KST) - CLOCK_SLACK).strftime("%H%M%S")
    if (order.created_at.astimezone(KST) - CLOCK_SLACK).date() != kis_day(order):
        earliest = "000000"
    candidates = [
        e
        for e in executions
        if e.symbol == order.symbol
        and e.side is Side(order.side)
        and e.order_qty == order.quantity
        and (order.order_type != "limit" or e.order_price == (order.price or 0))
        and e.order_time >= earliest
    ]
    for execution in sorted(candidates, key=lambda e: (e.order_time, e.order_no)):
        if not await is_taken(execution.order_no):
            return execution
    return None


def ended_unfilled(execution: Execution) -> str | None:
    """Why a found order never traded — KIS rejected or cancelled all of it — or None
    when it is live or (partly) filled."""
    if execution.filled_qty > 0:
        return None
    if execution.rejected_qty > 0 and execution.rejected_qty >= execution.order_qty:
        return "rejected"
    if execution.cancelled:
        return "cancelled"
    return None


class Reconciler:
    def __init__(
        self,
        kis: KisClient,
        markets: Markets,
        *,
        attempts: int = 4,
        delay_s: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._kis = kis
        self._markets = markets
        self._attempts = attempts
        self._delay_s = delay_s
        self._sleep = sleep

    async def check(
        self,
        order: OrderRecord,
        creds: AppCredentials,
        account: Account,
        is_taken: IsTaken,
        *,
        attempts: int | None = None,
    ) -> Verdict:
        tries = attempts or self._attempts
        instrument = Instrument(order.market, order.symbol, order.exchange)
        market = self._markets.of(instrument)
        day = market.hours.trading_day(order.created_at)  # KIS asks in the market's dates
        error = ""
        asked = False
        for attempt in range(1, tries + 1):
            try:
                rows = await market.executions(
                    self._kis, creds, account, day, instrument, order.order_no or ""
                )
            except KisError as exc:
                error = str(exc)
                log.warning("reconcile order %d: attempt %d: %s", order.id, attempt,
                            type(exc).__name__)
            else:
                asked = True
                found = await match_execution(order, rows, is_taken)
                if found is not None:
                    return Verdict(Outcome.FOUND, found)
            if attempt < tries:
                await self._sleep(self._delay_s * attempt)
        if asked:
            return Verdict(Outcome.NOT_FOUND)
        return Verdict(Outcome.UNCHECKED, error=error)
