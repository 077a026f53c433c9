"""The day's use of a user's risk limits, per account, taken atomically by each order.

A user's limits apply to each of their accounts on its own (SPEC section 16: each
account's order is limited on its own). `hold` counts an order against its account's
market day in one transaction: the alert row's hold (unique per alert row, which is one
account's: a resumed alert never counts twice) and a conditional update of the day's
usage that only succeeds while the caps still hold. Concurrent orders of one account
(several instances) serialise on that row, so together they never exceed a cap.
`release` gives an order's share back exactly once when it was not placed. Without an
`account_id`, the user's default account is meant.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.db import Database
from storage.models import AccountRow, LimitHold, LimitUsage
from storage.options import LimitName
from storage.portfolio_records import HoldResult, LimitUse
from storage.repositories._sql import Clock, insert_ignoring, rowcount
from storage.types import Money, utcnow


class _OverLimit(Exception):
    """Rolls the hold back: the conditional update found no room."""


class DayLimits:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self._db = db
        self._clock = clock

    async def hold(
        self,
        *,
        user_id: int,
        alert_id: int,
        market: str,
        day: str,
        amount: Decimal,
        max_amount: Decimal | None,
        max_orders: int | None,
        account_id: int | None = None,
    ) -> HoldResult:
        """Count one order (and `amount` bought) against `day` unless that would pass a
        cap; `limit` of the result names the cap it would pass."""
        now = self._clock()
        account = account_id
        try:
            async with self._db.transaction() as session:
                account = await _account_in(session, user_id, account_id)
                taken = (
                    await session.execute(
                        insert_ignoring(
                            self._db.dialect,
                            LimitHold,
                            {
                                "alert_id": alert_id, "user_id": user_id,
                                "account_id": account, "market": market,
                                "day": day, "amount": amount, "created_at": now,
                            },
                            ["alert_id"],
                        ).returning(col(LimitHold.alert_id))
                    )
                ).scalar_one_or_none()
                if taken is None:  # this alert holds its share already
                    return HoldResult(None, await self._usage_in(session, account, market, day))
                await session.execute(
                    insert_ignoring(
                        self._db.dialect,
                        LimitUsage,
                        {
                            "account_id": account, "user_id": user_id, "market": market,
                            "day": day, "orders": 0, "bought": Decimal(0), "updated_at": now,
                        },
                        ["account_id", "market", "day"],
                    )
                )
                room: list[ColumnElement[bool]] = [*_day(account, market, day)]
                if max_orders is not None:
                    room.append(col(LimitUsage.orders) + 1 <= max_orders)
                if max_amount is not None:
                    room.append(
                        col(LimitUsage.bought) + _money(amount) <= _money(max_amount)
                    )
                counted = await session.execute(
                    update(LimitUsage)
                    .where(*room)
                    .values(
                        orders=col(LimitUsage.orders) + 1,
                        bought=col(LimitUsage.bought) + _money(amount),
                        updated_at=now,
                    )
                )
                if rowcount(counted) != 1:
                    raise _OverLimit
                return HoldResult(None, await self._usage_in(session, account, market, day))
        except _OverLimit:
            used = await self.usage(user_id, market, day, account_id=account)
        over_orders = max_orders is not None and used.orders + 1 > max_orders
        return HoldResult(LimitName.ORDERS if over_orders else LimitName.DAY, used)

    async def release(self, alert_id: int) -> bool:
        """Give the alert's share back (its order was not placed); True the first time."""
        now = self._clock()
        async with self._db.transaction() as session:
            held = (
                await session.execute(
                    update(LimitHold)
                    .where(
                        col(LimitHold.alert_id) == alert_id,
                        col(LimitHold.released_at).is_(None),
                    )
                    .values(released_at=now)
                    .returning(
                        col(LimitHold.account_id), col(LimitHold.market), col(LimitHold.day),
                        col(LimitHold.amount),
                    )
                )
            ).one_or_none()
            if held is None:
                return False
            account_id, market, day, amount = held
            await session.execute(
                update(LimitUsage)
                .where(*_day(account_id, market, day))
                .values(
                    orders=col(LimitUsage.orders) - 1,
                    bought=col(LimitUsage.bought) - _money(Decimal(amount)),
                    updated_at=now,
                )
            )
        return True

    async def usage(
        self, user_id: int, market: str, day: str, *, account_id: int | None = None
    ) -> LimitUse:
        async with self._db.session() as session:
            account = await _account_in(session, user_id, account_id)
            return await self._usage_in(session, account, market, day)

    async def _usage_in(
        self, session: AsyncSession, account_id: int | None, market: str, day: str
    ) -> LimitUse:
        row = (
            await session.execute(
                select(col(LimitUsage.orders), col(LimitUsage.bought)).where(
                    *_day(account_id, market, day)
                )
            )
        ).one_or_none()
        if row is None:
            return LimitUse()
        return LimitUse(orders=int(row[0]), bought=Decimal(row[1]))


async def _account_in(
    session: AsyncSession, user_id: int, account_id: int | None
) -> int | None:
    if account_id is not None:
        return account_id
    return (
        await session.execute(
            select(col(AccountRow.id)).where(
                col(AccountRow.user_id) == user_id, col(AccountRow.is_default)
            )
        )
    ).scalar_one_or_none()


def _day(account_id: int | None, market: str, day: str) -> list[ColumnElement[bool]]:
    return [
        col(LimitUsage.account_id) == account_id,
        col(LimitUsage.market) == market,
        col(LimitUsage.day) == day,
    ]


def _money(value: Decimal) -> ColumnElement[Decimal]:
    return literal(value, Money())


def day_key(moment: datetime) -> str:
    """A market's day as stored: its local date (pass `moment` in the market's zone)."""
    return moment.date().isoformat()
