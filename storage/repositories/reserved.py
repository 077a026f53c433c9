"""KIS reservation orders (예약주문) made for alerts outside KRX hours.

One row per alert, written `pending` before the request leaves (so a resumed alert is
never reserved twice), then the outcome with the alert's close and the chat notice in
one transaction. KIS sends no notice when it executes a reservation at the open: the
result is read from KIS and reported once (`reported_at`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, select, update
from sqlmodel import col

from kis.env import KST, Environment
from storage.db import Database
from storage.errors import OrderAlreadyExists
from storage.models import ReservedOrder
from storage.portfolio_records import (
    OPEN_RESERVATIONS,
    ReservationStatus,
    ReservedOrderRecord,
)
from storage.records import AlertStatus, OutboxMessage
from storage.repositories._sql import Clock, insert_ignoring, require_id, rowcount
from storage.repositories.alerts import finish_in
from storage.repositories.outbox import OutboxEntry, insert_entry
from storage.types import utcnow


def _record(row: ReservedOrder) -> ReservedOrderRecord:
    return ReservedOrderRecord(
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
        entry_date=row.entry_date,
        seq=row.seq,
        status=ReservationStatus(row.status),
        reason=row.reason,
        order_no=row.order_no,
        filled_qty=row.filled_qty,
        filled_amount=row.filled_amount,
        reported_at=row.reported_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        account_id=row.account_id,
    )


class ReservedOrders:
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
        price: Decimal | None,
        entry_date: str,
        name: str | None = None,
        account_id: int | None = None,
    ) -> ReservedOrderRecord:
        """Recorded before the request leaves; `OrderAlreadyExists` on a repeat."""
        now = self._clock()
        async with self._db.transaction() as session:
            new_id = (
                await session.execute(
                    insert_ignoring(
                        self._db.dialect,
                        ReservedOrder,
                        {
                            "alert_id": alert_id, "user_id": user_id,
                            "account_id": account_id, "environment": environment.value,
                            "symbol": symbol, "name": name,
                            "side": side, "order_type": order_type, "quantity": quantity,
                            "price": price, "entry_date": entry_date,
                            "status": ReservationStatus.PENDING.value, "filled_qty": 0,
                            "filled_amount": Decimal(0), "created_at": now, "updated_at": now,
                        },
                        ["alert_id"],
                    ).returning(col(ReservedOrder.id))
                )
            ).scalar_one_or_none()
            if new_id is None:
                raise OrderAlreadyExists(alert_id, None)
            row = await session.get(ReservedOrder, new_id)
            assert row is not None
            return _record(row)

    async def record_outcome(
        self,
        record: ReservedOrderRecord,
        status: ReservationStatus,
        *,
        seq: str | None = None,
        reason: str | None = None,
        notice: OutboxEntry | None = None,
    ) -> OutboxMessage | None:
        """KIS's answer to the reservation: the row, its alert and the chat notice."""
        now = self._clock()
        alert_status = {
            ReservationStatus.RESERVED: AlertStatus.DONE,
            ReservationStatus.UNKNOWN: AlertStatus.DONE,
        }.get(status, AlertStatus.FAILED)
        async with self._db.transaction() as session:
            await session.execute(
                update(ReservedOrder)
                .where(col(ReservedOrder.id) == record.id)
                .values(status=status.value, seq=seq or record.seq, reason=reason,
                        updated_at=now)
            )
            alert_reason = None if alert_status is AlertStatus.DONE else reason
            await finish_in(session, record.alert_id, alert_status, alert_reason, now)
            if notice is None:
                return None
            return await insert_entry(self._db.dialect, session, record.user_id, notice, now)

    async def get(self, reservation_id: int) -> ReservedOrderRecord | None:
        async with self._db.session() as session:
            row = await session.get(ReservedOrder, reservation_id)
            return None if row is None else _record(row)

    async def open_for_user(self, user_id: int) -> list[ReservedOrderRecord]:
        """Reservations not yet executed, cancelled or refused, oldest first."""
        return await self._many(
            col(ReservedOrder.user_id) == user_id,
            col(ReservedOrder.status).in_([s.value for s in OPEN_RESERVATIONS]),
        )

    async def awaiting_result(self, statuses: Sequence[ReservationStatus]) -> list[
        ReservedOrderRecord
    ]:
        """Rows in `statuses` whose result was not reported yet, oldest first."""
        return await self._many(
            col(ReservedOrder.status).in_([s.value for s in statuses]),
            col(ReservedOrder.reported_at).is_(None),
        )

    async def record_result(
        self,
        reservation_id: int,
        status: ReservationStatus,
        *,
        order_no: str | None = None,
        filled_qty: int = 0,
        filled_amount: Decimal = Decimal(0),
        reason: str | None = None,
        notice: OutboxEntry | None = None,
    ) -> OutboxMessage | None:
        """What KIS did with it at the open, reported once: None if reported before."""
        now = self._clock()
        async with self._db.transaction() as session:
            changed = await session.execute(
                update(ReservedOrder)
                .where(
                    col(ReservedOrder.id) == reservation_id,
                    col(ReservedOrder.reported_at).is_(None),
                )
                .values(status=status.value, order_no=order_no, filled_qty=filled_qty,
                        filled_amount=filled_amount, reason=reason, reported_at=now,
                        updated_at=now)
            )
            if rowcount(changed) != 1 or notice is None:
                return None
            user_id = (
                await session.execute(
                    select(col(ReservedOrder.user_id)).where(
                        col(ReservedOrder.id) == reservation_id
                    )
                )
            ).scalar_one()
            return await insert_entry(self._db.dialect, session, user_id, notice, now)

    async def claim_cancel(self, reservation_id: int, user_id: int) -> ReservedOrderRecord | None:
        """reserved → cancelling for the one press that may send the cancel."""
        return await self._move(
            reservation_id, user_id, ReservationStatus.RESERVED, ReservationStatus.CANCELLING
        )

    async def finish_cancel(
        self, reservation_id: int, cancelled: bool, reason: str | None
    ) -> None:
        now = self._clock()
        values: dict[str, object] = {"reason": reason, "updated_at": now}
        if cancelled:
            values.update(status=ReservationStatus.CANCELLED.value, reported_at=now)
        else:
            values.update(status=ReservationStatus.RESERVED.value)
        async with self._db.transaction() as session:
            await session.execute(
                update(ReservedOrder)
                .where(
                    col(ReservedOrder.id) == reservation_id,
                    col(ReservedOrder.status) == ReservationStatus.CANCELLING.value,
                )
                .values(**values)
            )

    async def _move(
        self,
        reservation_id: int,
        user_id: int,
        old: ReservationStatus,
        new: ReservationStatus,
    ) -> ReservedOrderRecord | None:
        async with self._db.transaction() as session:
            changed = await session.execute(
                update(ReservedOrder)
                .where(
                    col(ReservedOrder.id) == reservation_id,
                    col(ReservedOrder.user_id) == user_id,
                    col(ReservedOrder.status) == old.value,
                )
                .values(status=new.value, updated_at=self._clock())
            )
            if rowcount(changed) != 1:
                return None
            row = await session.get(ReservedOrder, reservation_id, populate_existing=True)
            return None if row is None else _record(row)

    async def _many(self, *conditions: ColumnElement[bool]) -> list[ReservedOrderRecord]:
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(ReservedOrder).where(*conditions).order_by(col(ReservedOrder.id))
                )
            ).scalars().all()
        return [_record(row) for row in rows]


def entry_date(moment: datetime) -> str:
    """KST `YYYYMMDD` as KIS dates reservations."""
    return moment.astimezone(KST).strftime("%Y%m%d")
