"""Cancels of open orders asked for in the chat: claiming one is the permission to send
the one cancel request to KIS, so two presses (or two devices) send it once."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlmodel import col

from storage.db import Database
from storage.models import OrderCancel
from storage.portfolio_records import CancelStatus
from storage.repositories._sql import Clock, insert_ignoring, rowcount
from storage.types import utcnow


class OrderCancels:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self._db = db
        self._clock = clock

    async def claim(self, order_id: int, user_id: int) -> bool:
        """True for the one caller that may send the cancel now: the first, or the
        first after KIS refused an earlier one."""
        now = self._clock()
        async with self._db.transaction() as session:
            inserted = (
                await session.execute(
                    insert_ignoring(
                        self._db.dialect,
                        OrderCancel,
                        {
                            "order_id": order_id, "user_id": user_id,
                            "status": CancelStatus.REQUESTED.value, "requested_at": now,
                            "updated_at": now,
                        },
                        ["order_id"],
                    ).returning(col(OrderCancel.order_id))
                )
            ).scalar_one_or_none()
            if inserted is not None:
                return True
            retried = await session.execute(
                update(OrderCancel)
                .where(
                    col(OrderCancel.order_id) == order_id,
                    col(OrderCancel.user_id) == user_id,
                    col(OrderCancel.status) == CancelStatus.REFUSED.value,
                )
                .values(status=CancelStatus.REQUESTED.value, reason=None, requested_at=now,
                        updated_at=now)
            )
            return rowcount(retried) == 1

    async def finish(self, order_id: int, status: CancelStatus, reason: str | None = None) -> None:
        async with self._db.transaction() as session:
            await session.execute(
                update(OrderCancel)
                .where(col(OrderCancel.order_id) == order_id)
                .values(status=status.value, reason=reason, updated_at=self._clock())
            )

    async def status(self, order_id: int) -> CancelStatus | None:
        async with self._db.session() as session:
            value = (
                await session.execute(
                    select(col(OrderCancel.status)).where(col(OrderCancel.order_id) == order_id)
                )
            ).scalar_one_or_none()
        return None if value is None else CancelStatus(value)

    async def statuses(self, order_ids: list[int]) -> dict[int, CancelStatus]:
        if not order_ids:
            return {}
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(col(OrderCancel.order_id), col(OrderCancel.status)).where(
                        col(OrderCancel.order_id).in_(order_ids)
                    )
                )
            ).all()
        return {int(order_id): CancelStatus(status) for order_id, status in rows}
