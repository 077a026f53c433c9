"""Orders: one per alert (a unique constraint), and their lifecycle with KIS."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, func, select, update
from sqlmodel import col

from kis.env import Environment
from storage.db import Database
from storage.errors import OrderAlreadyExists
from storage.models import Fill, Order
from storage.records import OrderRecord, OrderStatus
from storage.repositories._sql import Clock, insert_ignoring, require_id
from storage.types import utcnow

# Statuses whose outcome is not known after a crash: reconcile with KIS first.
UNRESOLVED = (OrderStatus.SENT, OrderStatus.UNKNOWN)


def order_record(row: Order) -> OrderRecord:
    return OrderRecord(
        id=require_id(row.id),
        alert_id=row.alert_id,
        user_id=row.user_id,
        environment=Environment(row.environment),
        symbol=row.symbol,
        name=row.name,
        side=row.side,
        order_type=row.order_type,
        quantity=row.quantity,
        price=row.price,
        order_no=row.order_no,
        branch=row.branch,
        status=OrderStatus(row.status),
        reason=row.reason,
        msg_cd=row.msg_cd,
        filled_qty=row.filled_qty,
        filled_amount=row.filled_amount,
        created_at=row.created_at,
        sent_at=row.sent_at,
        updated_at=row.updated_at,
    )


class Orders:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self._db = db
        self._clock = clock

    async def create_pending(
        self,
        alert_id: int,
        *,
        user_id: int,
        environment: Environment,
        symbol: str,
        side: str,
        order_type: str,
        quantity: int,
        price: int | None = None,
        name: str | None = None,
    ) -> OrderRecord:
        """Records the order before it is sent; raises `OrderAlreadyExists` on a repeat."""
        now = self._clock()
        values: dict[str, object] = {
            "alert_id": alert_id,
            "user_id": user_id,
            "environment": Environment(environment).value,
            "symbol": symbol,
            "name": name,
            "side": side,
            "order_type": order_type,
            "quantity": quantity,
            "price": price,
            "status": OrderStatus.PENDING.value,
            "filled_qty": 0,
            "filled_amount": 0,
            "created_at": now,
            "updated_at": now,
        }
        async with self._db.transaction() as session:
            new_id = (
                await session.execute(
                    insert_ignoring(self._db.dialect, Order, values, ["alert_id"]).returning(
                        col(Order.id)
                    )
                )
            ).scalar_one_or_none()
            if new_id is None:
                existing = (
                    await session.execute(
                        select(col(Order.id)).where(col(Order.alert_id) == alert_id)
                    )
                ).scalar_one_or_none()
                raise OrderAlreadyExists(alert_id, existing)
            row = await session.get(Order, new_id)
        if row is None:  # pragma: no cover - inserted just above
            raise LookupError(f"order {new_id} vanished")
        return order_record(row)

    async def mark_sent(self, order_id: int) -> OrderRecord | None:
        now = self._clock()
        return await self._update(
            order_id, status=OrderStatus.SENT.value, sent_at=now, updated_at=now
        )

    async def mark_accepted(
        self, order_id: int, order_no: str, branch: str | None = None
    ) -> OrderRecord | None:
        """KIS gave an order number. Fills that arrived before it are linked now."""
        now = self._clock()
        async with self._db.transaction() as session:
            row = await session.get(Order, order_id)
            if row is None:
                return None
            await session.execute(
                update(Fill)
                .where(
                    col(Fill.user_id) == row.user_id,
                    col(Fill.environment) == row.environment,
                    col(Fill.order_no) == order_no,
                    col(Fill.order_id).is_(None),
                )
                .values(order_id=order_id)
            )
            qty, amount = (
                await session.execute(
                    select(
                        func.coalesce(func.sum(col(Fill.quantity)), 0),
                        func.coalesce(func.sum(col(Fill.quantity) * col(Fill.price)), 0),
                    ).where(col(Fill.order_id) == order_id)
                )
            ).one()
            filled_qty, filled_amount = int(qty), int(amount)
            if filled_qty <= 0:
                status = OrderStatus.ACCEPTED
            elif filled_qty >= row.quantity:
                status = OrderStatus.FILLED
            else:
                status = OrderStatus.PARTIALLY_FILLED
            await session.execute(
                update(Order)
                .where(col(Order.id) == order_id)
                .values(
                    order_no=order_no,
                    branch=branch,
                    status=status.value,
                    filled_qty=filled_qty,
                    filled_amount=filled_amount,
                    reason=None,
                    updated_at=now,
                )
            )
            fresh = await session.get(Order, order_id, populate_existing=True)
        return None if fresh is None else order_record(fresh)

    async def mark_rejected(
        self, order_id: int, reason: str, msg_cd: str | None = None
    ) -> OrderRecord | None:
        """KIS refused the order (`msg1`, `msg_cd`)."""
        return await self._update(
            order_id,
            status=OrderStatus.REJECTED.value,
            reason=reason,
            msg_cd=msg_cd,
            updated_at=self._clock(),
        )

    async def mark_failed(
        self, order_id: int, reason: str, msg_cd: str | None = None
    ) -> OrderRecord | None:
        """The order never reached KIS."""
        return await self._update(
            order_id,
            status=OrderStatus.FAILED.value,
            reason=reason,
            msg_cd=msg_cd,
            updated_at=self._clock(),
        )

    async def mark_unknown(self, order_id: int, reason: str | None = None) -> OrderRecord | None:
        """Sent, but the answer was lost: reconcile before anything is re-sent."""
        return await self._update(
            order_id, status=OrderStatus.UNKNOWN.value, reason=reason, updated_at=self._clock()
        )

    async def get(self, order_id: int) -> OrderRecord | None:
        async with self._db.session() as session:
            row = await session.get(Order, order_id)
            return None if row is None else order_record(row)

    async def by_alert(self, alert_id: int) -> OrderRecord | None:
        return await self._one(col(Order.alert_id) == alert_id)

    async def by_order_no(
        self, user_id: int, order_no: str, environment: Environment | None = None
    ) -> OrderRecord | None:
        """The user's newest order with this KIS order number."""
        conditions = [col(Order.user_id) == user_id, col(Order.order_no) == order_no]
        if environment is not None:
            conditions.append(col(Order.environment) == Environment(environment).value)
        return await self._one(*conditions)

    async def unknown_orders(self) -> list[OrderRecord]:
        """Orders sent without a known outcome (`sent` or `unknown`); call at start-up."""
        return await self._many(col(Order.status).in_([s.value for s in UNRESOLVED]))

    async def recent(self, user_id: int, limit: int = 10) -> list[OrderRecord]:
        """Newest first (`/orders`)."""
        return await self._many(col(Order.user_id) == user_id, newest_first=True, limit=limit)

    async def since(self, user_id: int, since: datetime) -> list[OrderRecord]:
        """The user's orders created at or after `since`, newest first (`/status`)."""
        return await self._many(
            col(Order.user_id) == user_id, col(Order.created_at) >= since, newest_first=True
        )

    async def _update(self, order_id: int, **values: object) -> OrderRecord | None:
        async with self._db.transaction() as session:
            await session.execute(update(Order).where(col(Order.id) == order_id).values(**values))
            row = await session.get(Order, order_id, populate_existing=True)
        return None if row is None else order_record(row)

    async def _one(self, *conditions: ColumnElement[bool]) -> OrderRecord | None:
        async with self._db.session() as session:
            row = (
                await session.execute(
                    select(Order).where(*conditions).order_by(col(Order.id).desc()).limit(1)
                )
            ).scalar_one_or_none()
        return None if row is None else order_record(row)

    async def _many(
        self,
        *conditions: ColumnElement[bool],
        newest_first: bool = False,
        limit: int | None = None,
    ) -> list[OrderRecord]:
        order = col(Order.id).desc() if newest_first else col(Order.id)
        query = select(Order).where(*conditions).order_by(order)
        if limit is not None:
            query = query.limit(limit)
        async with self._db.session() as session:
            rows = (await session.execute(query)).scalars().all()
        return [order_record(row) for row in rows]
