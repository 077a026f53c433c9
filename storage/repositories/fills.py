"""Fills from KIS fill notices: each notice stored once, the order's totals updated."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kis.env import Environment
from storage.db import Database
from storage.models import Fill, Order
from storage.records import FillRecord, FillResult, OrderStatus, OutboxMessage
from storage.repositories._sql import Clock, insert_ignoring, require_id
from storage.repositories.orders import order_record
from storage.repositories.outbox import OutboxEntry, insert_entry
from storage.types import utcnow

# Given the stored fill, the chat message to queue with it (None: no message).
NoticeFor = Callable[[FillResult], OutboxEntry | None]


def _record(row: Fill) -> FillRecord:
    return FillRecord(
        id=require_id(row.id),
        user_id=row.user_id,
        order_id=row.order_id,
        order_no=row.order_no,
        quantity=row.quantity,
        price=row.price,
        filled_at=row.filled_at,
        notice_key=row.notice_key,
    )


class Fills:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self._db = db
        self._clock = clock

    async def record(
        self,
        user_id: int,
        environment: Environment,
        order_no: str,
        *,
        quantity: int,
        price: int,
        filled_at: datetime,
        notice_key: str,
    ) -> FillResult:
        """Stores one fill; a notice seen before (same `notice_key`) changes nothing.

        A fill whose order number is not known yet is kept unlinked and attached
        when `Orders.mark_accepted` learns the number.
        """
        async with self._db.transaction() as session:
            return await self._record_in(
                session, user_id, environment, order_no, quantity=quantity, price=price,
                filled_at=filled_at, notice_key=notice_key,
            )

    async def record_and_queue(
        self,
        user_id: int,
        environment: Environment,
        order_no: str,
        *,
        quantity: int,
        price: int,
        filled_at: datetime,
        notice_key: str,
        notice: NoticeFor,
    ) -> tuple[FillResult, OutboxMessage | None]:
        """`record`, and for a new fill the chat message `notice(result)` queued in the
        same transaction: the fill and its notice are stored together or not at all.
        Returns the result and the queued message (None: repeat, or nothing to send)."""
        async with self._db.transaction() as session:
            result = await self._record_in(
                session, user_id, environment, order_no, quantity=quantity, price=price,
                filled_at=filled_at, notice_key=notice_key,
            )
            entry = notice(result) if result.new else None
            if entry is None:
                return result, None
            queued = await insert_entry(
                self._db.dialect, session, user_id, entry, self._clock()
            )
        return result, queued

    async def _record_in(
        self,
        session: AsyncSession,
        user_id: int,
        environment: Environment,
        order_no: str,
        *,
        quantity: int,
        price: int,
        filled_at: datetime,
        notice_key: str,
    ) -> FillResult:
        env = Environment(environment).value
        # The order is found inside the INSERT (one round trip instead of two).
        order_of_notice = (
            select(col(Order.id))
            .where(
                col(Order.user_id) == user_id,
                col(Order.environment) == env,
                col(Order.order_no) == order_no,
            )
            .order_by(col(Order.id).desc())
            .limit(1)
            .scalar_subquery()
        )
        values: dict[str, object] = {
            "user_id": user_id,
            "order_id": order_of_notice,
            "environment": env,
            "order_no": order_no,
            "quantity": quantity,
            "price": price,
            "filled_at": filled_at,
            "notice_key": notice_key,
            "created_at": self._clock(),
        }
        inserted = (
            await session.execute(
                insert_ignoring(self._db.dialect, Fill, values, ["user_id", "notice_key"])
                .returning(col(Fill.id), col(Fill.order_id))
            )
        ).one_or_none()
        if inserted is None:  # seen before: nothing changes
            order = (
                await session.execute(select(Order).where(col(Order.id) == order_of_notice))
            ).scalar_one_or_none()
            return FillResult(new=False, order=None if order is None else order_record(order))
        order_id: int | None = inserted[1]
        if order_id is None:  # the order number is not known yet
            return FillResult(new=True, order=None)
        # One statement: SET expressions all see the row as it was; RETURNING gives the
        # row after the update without another round trip.
        fresh = (
            await session.execute(
                update(Order)
                .where(col(Order.id) == order_id)
                .values(
                    filled_qty=col(Order.filled_qty) + quantity,
                    filled_amount=col(Order.filled_amount) + quantity * price,
                    status=case(
                        (
                            col(Order.filled_qty) + quantity >= col(Order.quantity),
                            OrderStatus.FILLED.value,
                        ),
                        else_=OrderStatus.PARTIALLY_FILLED.value,
                    ),
                    updated_at=self._clock(),
                )
                .returning(Order)
                .execution_options(populate_existing=True, synchronize_session=False)
            )
        ).scalar_one_or_none()
        return FillResult(new=True, order=None if fresh is None else order_record(fresh))

    async def for_order(self, order_id: int) -> list[FillRecord]:
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(Fill).where(col(Fill.order_id) == order_id).order_by(col(Fill.id))
                )
            ).scalars().all()
        return [_record(row) for row in rows]
