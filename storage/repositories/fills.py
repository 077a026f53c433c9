"""Fills from KIS fill notices: each notice stored once, the order's totals updated."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, select, update
from sqlmodel import col

from kis.env import Environment
from storage.db import Database
from storage.models import Fill, Order
from storage.records import FillRecord, FillResult, OrderStatus
from storage.repositories._sql import Clock, insert_ignoring, require_id
from storage.repositories.orders import order_record
from storage.types import utcnow


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
        env = Environment(environment).value
        async with self._db.transaction() as session:
            order = (
                await session.execute(
                    select(Order)
                    .where(
                        col(Order.user_id) == user_id,
                        col(Order.environment) == env,
                        col(Order.order_no) == order_no,
                    )
                    .order_by(col(Order.id).desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            order_id = None if order is None else order.id
            values: dict[str, object] = {
                "user_id": user_id,
                "order_id": order_id,
                "environment": env,
                "order_no": order_no,
                "quantity": quantity,
                "price": price,
                "filled_at": filled_at,
                "notice_key": notice_key,
                "created_at": self._clock(),
            }
            fill_id = (
                await session.execute(
                    insert_ignoring(
                        self._db.dialect, Fill, values, ["user_id", "notice_key"]
                    ).returning(col(Fill.id))
                )
            ).scalar_one_or_none()
            if fill_id is None or order_id is None:
                return FillResult(
                    new=fill_id is not None, order=None if order is None else order_record(order)
                )
            # One statement: SET expressions all see the row as it was.
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
            )
            fresh = await session.get(Order, order_id, populate_existing=True)
        return FillResult(new=True, order=None if fresh is None else order_record(fresh))

    async def for_order(self, order_id: int) -> list[FillRecord]:
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(Fill).where(col(Fill.order_id) == order_id).order_by(col(Fill.id))
                )
            ).scalars().all()
        return [_record(row) for row in rows]
