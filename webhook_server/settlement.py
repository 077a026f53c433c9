"""Settle an order's fills against KIS's daily executions: what is missing is recorded
once, with its chat notice.

KIS sends no fill id and a fill notice can be lost (a socket down, a PAPER notice that
never came: KIS.md 11). `FillSettler.settle(order_id)` asks KIS for the order's row of
today's executions; when KIS shows more filled than the order does, that figure becomes
the order's filled total (`Orders.record_settlement`) and the chat hears about the
difference. It is idempotent and safe while notices keep arriving: an order's filled
total is the larger of its notices' sum and what KIS showed, so nothing counts twice.
An answer without the order's row proves nothing (PAPER answers come back empty at
times: KIS.md 8, 15): nothing is concluded from it; the order is asked about again
later, a bounded number of times.

`settle_later(order_id)` runs the check once the order's notices have been quiet for
`quiet_s` (each call pushes it back) — for an order still short of its quantity.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from kis.client import KisClient
from kis.env import KST, Environment
from kis.errors import KisError
from kis.markets import Instrument, Markets, default_markets
from storage.errors import log_failure
from storage.facade import Storage
from storage.notices import FROM_EXECUTIONS, Notice, NoticeKind
from storage.records import OrderRecord, OrderStatus
from storage.repositories.outbox import OutboxEntry
from storage.types import utcnow
from webhook_server.pipeline import Wake, credentials, wake_notifier

log = logging.getLogger(__name__)

_LIVE = (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)


class Settled(enum.Enum):
    NOTHING = "nothing"  # complete, not at KIS yet, or KIS shows no more than we have
    RECORDED = "recorded"  # fills that were missing are recorded
    UNCHECKED = "unchecked"  # KIS could not be asked, or its answer lacked the order


class FillSettler:
    def __init__(
        self,
        *,
        storage: Storage,
        kis: KisClient,
        markets: Markets | None = None,
        wake: Wake | None = None,
        quiet_s: float = 5.0,
        retries: int = 3,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._storage = storage
        self._kis = kis
        self._markets = markets or default_markets()
        self._wake = wake
        self._quiet_s = quiet_s
        self._retries = retries
        self._clock = clock
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._unchecked: dict[int, int] = {}  # order id → answers that lacked it
        self._tasks: set[asyncio.Task[Settled]] = set()

    def __repr__(self) -> str:
        return f"FillSettler(scheduled={len(self._timers)})"

    def set_wake(self, wake: Wake) -> None:
        self._wake = wake

    def settle_later(self, order_id: int) -> None:
        """Check the order once its notices have been quiet for a while."""
        old = self._timers.pop(order_id, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._timers[order_id] = loop.call_later(self._quiet_s, self._fire, order_id)

    def _fire(self, order_id: int) -> None:
        self._timers.pop(order_id, None)
        task = asyncio.get_running_loop().create_task(self._settle_logged(order_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle_logged(self, order_id: int) -> Settled:
        try:
            outcome = await self.settle(order_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log_failure(log, exc, "settling the fills of order %d failed", order_id)
            return Settled.UNCHECKED
        if outcome is Settled.UNCHECKED:
            tries = self._unchecked.get(order_id, 0) + 1
            if tries < self._retries:
                self._unchecked[order_id] = tries
                self.settle_later(order_id)
            else:
                self._unchecked.pop(order_id, None)
                log.warning("order %d: KIS's executions did not show it; left as is", order_id)
        else:
            self._unchecked.pop(order_id, None)
        return outcome

    async def settle_user(
        self, user_id: int, env: Environment, account_id: int | None = None
    ) -> int:
        """Settle every order of the user's (one account's) KIS day that is not filled in
        full (e.g. after the fill-notice subscription was down); returns how many were
        corrected."""
        day_start = self._clock().astimezone(KST).replace(hour=0, minute=0, second=0,
                                                          microsecond=0)
        orders = await self._storage.orders.incomplete(user_id, env, day_start,
                                                       account_id=account_id)
        corrected = 0
        for order in orders:
            if await self._settle_logged(order.id) is Settled.RECORDED:
                corrected += 1
        return corrected

    async def settle(self, order_id: int) -> Settled:
        order = await self._storage.orders.get(order_id)
        if (
            order is None
            or order.order_no is None
            or order.status not in _LIVE
            or order.filled_qty >= order.quantity
        ):
            return Settled.NOTHING
        user = await self._storage.users.get(order.user_id)
        if user is None or order.account_id is None:
            return Settled.NOTHING
        keys = await self._storage.key_sets.get(order.user_id, order.environment,
                                                account_id=order.account_id)
        if keys is None:
            return Settled.NOTHING
        creds, account = credentials(keys)
        instrument = Instrument(order.market, order.symbol, order.exchange)
        market = self._markets.of(instrument)
        day = market.hours.trading_day(order.created_at)  # KIS asks in the market's dates
        try:
            rows = await market.executions(
                self._kis, creds, account, day, instrument, order.order_no
            )
        except KisError as exc:
            log.warning("order %d: daily executions unavailable (%s)", order.id,
                        type(exc).__name__)
            return Settled.UNCHECKED
        row = next((r for r in rows if r.order_no == order.order_no), None)
        if row is None:
            return Settled.UNCHECKED  # proves nothing (PAPER answers can be empty)
        if row.filled_qty <= order.filled_qty:
            return Settled.NOTHING
        amount = row.avg_price * row.filled_qty
        chat_id = user.chat_id
        several = len(await self._storage.accounts.for_user(order.user_id)) > 1
        named = await self._storage.accounts.get(order.account_id) if several else None
        label = "" if named is None else named.name

        def notice(before: OrderRecord, after: OrderRecord) -> OutboxEntry:
            return _settled_notice(chat_id, before, after, label)

        after, queued = await self._storage.orders.record_settlement(
            order.id, row.filled_qty, amount, notice
        )
        if after is None:
            return Settled.NOTHING  # a notice or another check got there first
        log.info("order %d: %d filled per KIS's daily executions (notices had %d)",
                 order.id, after.filled_qty, order.filled_qty)
        wake_notifier(self._wake, queued)
        return Settled.RECORDED

    async def close(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _settled_notice(
    chat_id: int, before: OrderRecord, after: OrderRecord, account: str = ""
) -> OutboxEntry:
    missing = after.filled_qty - before.filled_qty
    tick = Decimal("0.0001") if after.currency == "USD" else Decimal(1)
    price = ((after.filled_amount - before.filled_amount) / Decimal(missing)).quantize(
        tick, ROUND_HALF_UP
    )
    notice = Notice(
        kind=(
            NoticeKind.ORDER_FILLED if after.filled_qty >= after.quantity
            else NoticeKind.ORDER_PARTIAL
        ),
        env=after.environment.value,
        symbol=after.symbol,
        name=after.name or "",
        side=after.side,
        quantity=missing,
        price=price,
        filled=after.filled_qty,
        ordered=after.quantity,
        order_no=after.order_no or "",
        reason_key=FROM_EXECUTIONS,
        market=after.market,
        exchange=after.exchange if after.market != "KRX" else "",
        currency=after.currency,
        account=account,
    )
    dedupe = f"settled:{after.id}:{after.filled_qty}"
    return OutboxEntry(chat_id, notice.kind.value, notice.to_payload(), dedupe)
