"""Orders: one per alert (a unique constraint), and their lifecycle with KIS."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    String,
    bindparam,
    exists,
    func,
    literal_column,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert
from sqlmodel import col

from kis.env import Environment
from storage.db import Database, in_transaction
from storage.errors import LeaseLost, OrderAlreadyExists
from storage.models import Alert, Fill, Lease, Order
from storage.records import AlertStatus, OrderRecord, OrderStatus, OutboxMessage, Reason
from storage.repositories._sql import (
    Clock,
    insert_ignoring_by_column,
    require_id,
    rowcount,
)
from storage.repositories.alerts import finish_in, reason_values
from storage.repositories.outbox import (
    OutboxEntry,
    entry_values,
    insert_entry,
    outbox_insert,
    pending_message,
)
from storage.types import Money, UtcDateTime, utcnow

# Statuses whose outcome is not known after a crash: reconcile with KIS first. A
# pending row counts: the request may have left just before the crash.
UNRESOLVED = (OrderStatus.PENDING, OrderStatus.SENT, OrderStatus.UNKNOWN)


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
        market=row.market,
        exchange=row.exchange,
        currency=row.currency,
        notice_qty=row.notice_qty,
        notice_amount=row.notice_amount,
        settled_qty=row.settled_qty,
        reason_key=row.reason_key,
        reason_params=row.reason_params,
        account_id=row.account_id,
    )


_PENDING_COLUMNS = (
    "alert_id", "user_id", "account_id", "environment", "symbol", "name", "side", "order_type",
    "quantity",
    "price", "status", "filled_qty", "filled_amount", "notice_qty", "notice_amount",
    "settled_qty", "created_at", "updated_at", "market", "exchange", "currency",
)
_PENDING_INSERTS: dict[str, ReturningInsert[int | None]] = {}


def _pending_insert(dialect: str) -> ReturningInsert[int | None]:
    """INSERT of a pending order unless its alert has one; parameters by column name."""
    statement = _PENDING_INSERTS.get(dialect)
    if statement is None:
        statement = _PENDING_INSERTS[dialect] = insert_ignoring_by_column(
            dialect, Order, _PENDING_COLUMNS, ["alert_id"]
        ).returning(col(Order.id))
    return statement


@dataclass(frozen=True, slots=True)
class Fence:
    """The lease an order is placed under: it is written only while `holder` holds
    `lease` under `epoch` (several instances on PostgreSQL)."""

    lease: str
    holder: str
    epoch: int


def _fenced_pending_insert() -> ReturningInsert[int | None]:
    """PostgreSQL: the pending order, only while the fence's lease is held (checked and
    share-locked in the same statement: a takeover waits for this insert, or this insert
    finds the lease gone), unless its alert has an order already."""
    table = Order.__table__  # type: ignore[attr-defined]  # SQLModel table
    held: Select[int] = (
        select(literal_column("1", type_=BigInteger()))
        .select_from(Lease)
        .where(
            col(Lease.name) == bindparam("f_lease", type_=String()),
            col(Lease.holder) == bindparam("f_holder", type_=String()),
            col(Lease.epoch) == bindparam("f_epoch", type_=BigInteger()),
            col(Lease.expires_at) > func.statement_timestamp(),
        )
        .with_for_update(read=True)
    )
    source = select(
        *(bindparam(name, type_=table.c[name].type) for name in _PENDING_COLUMNS)
    ).where(exists(held))
    return (
        postgresql.insert(Order)
        .from_select(list(_PENDING_COLUMNS), source)
        .on_conflict_do_nothing(index_elements=["alert_id"])
        .returning(col(Order.id))
    )


_FENCED_PENDING_INSERT: Final = _fenced_pending_insert()


# record_accepted on a SQLite file: prebuilt statements run in one trip to the direct
# connection. Parameter names are not column names (no SET clauses of their own).
# KIS numbers orders per day: an unlinked fill is this order's only if it is not older
# than the order (an hour of slack for clock skew between us and KIS).
FILL_LINK_SLACK: Final = timedelta(hours=1)
_LINK_FILLS: Final = (
    update(Fill)
    .where(
        col(Fill.user_id) == bindparam("p_user_id"),
        # KIS numbers each account's orders on its own: only this account's fills.
        col(Fill.account_id).is_not_distinct_from(bindparam("p_account_id", type_=BigInteger())),
        col(Fill.environment) == bindparam("p_env", type_=String()),
        col(Fill.order_no) == bindparam("p_order_no", type_=String()),
        col(Fill.order_id).is_(None),
        col(Fill.filled_at) >= bindparam("p_since", type_=UtcDateTime()),
    )
    .values(order_id=bindparam("p_order_id"))
)
# The sum of scaled prices is the scaled amount: read back as money, not as a count.
_FILLED_AMOUNT: Final = type_coerce(
    func.coalesce(func.sum(col(Fill.quantity) * col(Fill.price)), 0), Money()
)
_FILL_TOTALS: Final = select(
    func.coalesce(func.sum(col(Fill.quantity)), 0),
    _FILLED_AMOUNT,
).where(col(Fill.order_id) == bindparam("p_order_id"))
_ACCEPT_ORDER: Final = (
    update(Order)
    .where(col(Order.id) == bindparam("p_order_id"))
    .values(
        order_no=bindparam("p_order_no", type_=String()),
        branch=bindparam("p_branch", type_=String()),
        status=bindparam("p_status", type_=String()),
        filled_qty=bindparam("p_filled_qty"),
        filled_amount=bindparam("p_filled_amount", type_=Money()),
        notice_qty=bindparam("p_filled_qty"),
        notice_amount=bindparam("p_filled_amount", type_=Money()),
        reason=None,
        reason_key=None,
        reason_params=None,
        sent_at=func.coalesce(col(Order.sent_at), bindparam("p_now", type_=UtcDateTime())),
        updated_at=bindparam("p_now", type_=UtcDateTime()),
    )
)
_ALERT_DONE: Final = (
    update(Alert)
    .where(col(Alert.id) == bindparam("p_alert_id"))
    .values(
        status=AlertStatus.DONE.value,
        reason=None,
        reason_key=None,
        reason_params=None,
        updated_at=bindparam("p_now", type_=UtcDateTime()),
    )
)


def accepted_status(filled_qty: int, quantity: int) -> OrderStatus:
    if filled_qty <= 0:
        return OrderStatus.ACCEPTED
    if filled_qty >= quantity:
        return OrderStatus.FILLED
    return OrderStatus.PARTIALLY_FILLED


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
        price: Decimal | None = None,
        name: str | None = None,
        market: str = "KRX",
        exchange: str = "KRX",
        currency: str = "KRW",
        fence: Fence | None = None,
        account_id: int | None = None,
    ) -> OrderRecord:
        """Records the order before it is sent; raises `OrderAlreadyExists` on a repeat.

        With `fence` (several instances on PostgreSQL) the row is written only while the
        lease is held, else `LeaseLost`: nothing may be sent."""
        now = self._clock()
        values: dict[str, object] = {
            "alert_id": alert_id,
            "user_id": user_id,
            "account_id": account_id,
            "environment": Environment(environment).value,
            "symbol": symbol,
            "name": name,
            "side": side,
            "order_type": order_type,
            "quantity": quantity,
            "price": price,
            "status": OrderStatus.PENDING.value,
            "filled_qty": 0,
            "filled_amount": Decimal(0),
                        "notice_qty": 0,
            "notice_amount": Decimal(0),
            "settled_qty": 0,
            "created_at": now,
            "updated_at": now,
            "market": market,
            "exchange": exchange,
            "currency": currency,
        }
        # One prebuilt statement, one trip to the database: this is on the way to KIS.
        if fence is not None and self._db.dialect == "postgresql":
            fenced = {**values, "f_lease": fence.lease, "f_holder": fence.holder,
                      "f_epoch": fence.epoch}
            inserted = await self._db.write_one(_FENCED_PENDING_INSERT, fenced)
        else:
            inserted = await self._db.write_one(_pending_insert(self._db.dialect), values)
        if not inserted:
            async with self._db.session() as session:
                existing = (
                    await session.execute(
                        select(col(Order.id)).where(col(Order.alert_id) == alert_id)
                    )
                ).scalar_one_or_none()
            if existing is None and fence is not None:
                raise LeaseLost(fence.lease)
            raise OrderAlreadyExists(alert_id, existing)
        new_id = inserted[0][0]
        # Built from what was inserted: no read back on the way to KIS.
        return OrderRecord(
            id=require_id(new_id),
            alert_id=alert_id,
            user_id=user_id,
            environment=Environment(environment),
            symbol=symbol,
            name=name,
            side=side,
            order_type=order_type,
            quantity=quantity,
            price=price,
            order_no=None,
            branch=None,
            status=OrderStatus.PENDING,
            reason=None,
            msg_cd=None,
            filled_qty=0,
            filled_amount=Decimal(0),
            created_at=now,
            sent_at=None,
            updated_at=now,
            market=market,
            exchange=exchange,
            currency=currency,
            account_id=account_id,
        )

    async def mark_sent(self, order_id: int) -> OrderRecord | None:
        now = self._clock()
        return await self._update(
            order_id, status=OrderStatus.SENT.value, sent_at=now, updated_at=now
        )

    async def mark_accepted(
        self, order_id: int, order_no: str, branch: str | None = None
    ) -> OrderRecord | None:
        """KIS gave an order number. Fills that arrived before it are linked now."""
        async with self._db.transaction() as session:
            row = await session.get(Order, order_id)
            if row is None:
                return None
            return await self._accept_in(
                session, order_record(row), order_no, branch, self._clock()
            )

    async def record_accepted(
        self,
        order: OrderRecord,
        order_no: str,
        branch: str | None = None,
        *,
        notice: OutboxEntry | None = None,
    ) -> tuple[OrderRecord, OutboxMessage | None]:
        """KIS accepted `order`: the order gets its number (fills that came first are
        linked), its alert is done, and the chat notice is queued — one transaction.

        Returns the order as recorded and the queued message (None without a notice or
        when its dedupe key was queued before)."""
        now = self._clock()
        if self._db.has_direct:
            return await self._record_accepted_direct(order, order_no, branch, notice, now)
        async with self._db.transaction() as session:
            record = await self._accept_in(session, order, order_no, branch, now)
            await finish_in(session, order.alert_id, AlertStatus.DONE, None, now)
            queued = (
                None
                if notice is None
                else await insert_entry(self._db.dialect, session, order.user_id, notice, now)
            )
        return record, queued

    async def _record_accepted_direct(
        self,
        order: OrderRecord,
        order_no: str,
        branch: str | None,
        notice: OutboxEntry | None,
        now: datetime,
    ) -> tuple[OrderRecord, OutboxMessage | None]:
        """`record_accepted` on a SQLite file: one transaction in one database trip."""
        db = self._db
        link = db.prepare(_LINK_FILLS, frozenset({"p_user_id", "p_account_id", "p_env",
                                                  "p_order_no", "p_order_id", "p_since"}))
        totals = db.prepare(_FILL_TOTALS, frozenset({"p_order_id"}))
        accept = db.prepare(_ACCEPT_ORDER, frozenset({
            "p_order_id", "p_order_no", "p_branch", "p_status", "p_filled_qty",
            "p_filled_amount", "p_now"}))
        done = db.prepare(_ALERT_DONE, frozenset({"p_alert_id", "p_now"}))
        link_values = link.positional({
            "p_user_id": order.user_id, "p_account_id": order.account_id,
            "p_env": order.environment.value,
            "p_order_no": order_no, "p_order_id": order.id,
            "p_since": order.created_at - FILL_LINK_SLACK,
        })
        totals_values = totals.positional({"p_order_id": order.id})
        done_values = done.positional({"p_alert_id": order.alert_id, "p_now": now})
        accept_params: dict[str, object] = {
            "p_order_id": order.id, "p_order_no": order_no, "p_branch": branch, "p_now": now,
        }
        payload: dict[str, object] = {}
        queue_sql: str | None = None
        queue_values: tuple[object, ...] = ()
        if notice is not None:
            payload = dict(notice.payload)
            values = entry_values(order.user_id, notice, payload, now)
            queue = db.prepare(outbox_insert(db.dialect), frozenset(values))
            queue_sql, queue_values = queue.sql, queue.positional(values)
        known = order.order_no is not None

        def work(conn: sqlite3.Connection) -> tuple[int, Decimal, int | None]:
            linked = conn.execute(link.sql, link_values).rowcount
            qty, amount = 0, Decimal(0)
            if linked > 0 or known:
                raw = conn.execute(totals.sql, totals_values).fetchone()
                if raw:
                    row = totals.row(raw)
                    qty, amount = int(str(row[0])), Decimal(str(row[1]))
            status = accepted_status(qty, order.quantity)
            conn.execute(accept.sql, accept.positional({
                **accept_params, "p_status": status.value, "p_filled_qty": qty,
                "p_filled_amount": amount,
            }))
            conn.execute(done.sql, done_values)
            new_id: int | None = None
            if queue_sql is not None:
                rows = conn.execute(queue_sql, queue_values).fetchall()
                new_id = rows[0][0] if rows else None
            return qty, amount, new_id

        qty, amount, new_id = await db.write_direct(lambda conn: in_transaction(conn, work))
        record = replace(
            order,
            order_no=order_no,
            branch=branch,
            status=accepted_status(qty, order.quantity),
            filled_qty=qty,
            filled_amount=amount,
            notice_qty=qty,
            notice_amount=amount,
            reason=None,
            reason_key=None,
            reason_params=None,
            sent_at=order.sent_at or now,
            updated_at=now,
        )
        queued = (
            None
            if notice is None or new_id is None
            else pending_message(new_id, order.user_id, notice, payload, now)
        )
        return record, queued

    async def record_outcome(
        self,
        order: OrderRecord,
        status: OrderStatus,
        reason: Reason | str | None,
        msg_cd: str | None = None,
        *,
        alert_status: AlertStatus | None = None,
        alert_reason: Reason | str | None = None,
        notice: OutboxEntry | None = None,
    ) -> tuple[OrderRecord, OutboxMessage | None]:
        """`order` rejected, failed or of unknown outcome; with `alert_status` its alert
        is closed too, and `notice` is queued — one transaction."""
        if status not in (OrderStatus.REJECTED, OrderStatus.FAILED, OrderStatus.UNKNOWN):
            raise ValueError(f"record_outcome does not record {status.value}")
        now = self._clock()
        columns = reason_values(reason)
        values: dict[str, object] = {
            "status": status.value,
            "msg_cd": msg_cd,
            "updated_at": now,
            **columns,
        }
        sent_at = order.sent_at
        if status is not OrderStatus.FAILED:  # KIS answered, or may have got it
            values["sent_at"] = func.coalesce(col(Order.sent_at), now)
            sent_at = sent_at or now
        async with self._db.transaction() as session:
            await session.execute(
                update(Order).where(col(Order.id) == order.id).values(**values)
            )
            if alert_status is not None:
                await finish_in(session, order.alert_id, alert_status, alert_reason, now)
            queued = (
                None
                if notice is None
                else await insert_entry(self._db.dialect, session, order.user_id, notice, now)
            )
        record = replace(
            order,
            status=status,
            reason=_text(columns["reason"]),
            reason_key=_text(columns["reason_key"]),
            reason_params=order_reason_params(columns["reason_params"]),
            msg_cd=msg_cd,
            sent_at=sent_at,
            updated_at=now,
        )
        return record, queued

    async def record_settlement(
        self,
        order_id: int,
        filled_qty: int,
        filled_amount: Decimal,
        notice: Callable[[OrderRecord, OrderRecord], OutboxEntry | None],
    ) -> tuple[OrderRecord | None, OutboxMessage | None]:
        """KIS's daily executions show `filled_qty` shares of the order filled for
        `filled_amount` (in the order's currency). When that is more than the order
        shows (fills whose notices were lost), it becomes the order's filled total and
        `notice(before, after)` is queued — one transaction. Idempotent: the same or a
        smaller figure changes nothing, and a notice arriving later for a fill counted
        here is not counted again (`Fills`). Returns the order after the change, or
        None when nothing changed.
        """
        now = self._clock()
        live = (OrderStatus.ACCEPTED.value, OrderStatus.PARTIALLY_FILLED.value)
        async with self._db.transaction() as session:
            row = (
                await session.execute(
                    select(Order).where(col(Order.id) == order_id).with_for_update()
                )
            ).scalar_one_or_none()
            if row is None or row.filled_qty >= filled_qty or row.status not in live:
                return None, None
            before = order_record(row)
            status = accepted_status(filled_qty, before.quantity)
            changed = await session.execute(
                update(Order)
                .where(col(Order.id) == order_id, col(Order.filled_qty) < filled_qty)
                .values(
                    settled_qty=filled_qty,
                    filled_qty=filled_qty,
                    filled_amount=filled_amount,
                    status=status.value,
                    updated_at=now,
                )
            )
            if rowcount(changed) == 0:
                return None, None
            after = replace(
                before, settled_qty=filled_qty, filled_qty=filled_qty,
                filled_amount=filled_amount, status=status, updated_at=now,
            )
            entry = notice(before, after)
            queued = (
                None
                if entry is None
                else await insert_entry(self._db.dialect, session, before.user_id, entry, now)
            )
        return after, queued

    async def incomplete(
        self, user_id: int, environment: Environment, since: datetime, *,
        account_id: int | None = None,
    ) -> list[OrderRecord]:
        """The user's (or one account's) orders accepted at KIS since `since` that are
        not filled in full."""
        return await self._many(
            col(Order.user_id) == user_id,
            *_of_account(account_id),
            col(Order.environment) == Environment(environment).value,
            col(Order.created_at) >= since,
            col(Order.status).in_(
                [OrderStatus.ACCEPTED.value, OrderStatus.PARTIALLY_FILLED.value]
            ),
        )

    async def _accept_in(
        self,
        session: AsyncSession,
        order: OrderRecord,
        order_no: str,
        branch: str | None,
        now: datetime,
    ) -> OrderRecord:
        linked = await session.execute(
            update(Fill)
            .where(
                col(Fill.user_id) == order.user_id,
                col(Fill.account_id).is_not_distinct_from(order.account_id),
                col(Fill.environment) == order.environment.value,
                col(Fill.order_no) == order_no,
                col(Fill.order_id).is_(None),
                col(Fill.filled_at) >= order.created_at - FILL_LINK_SLACK,
            )
            .values(order_id=order.id)
        )
        filled_qty, filled_amount = 0, Decimal(0)
        # Fills can only be ours if some were just linked or the number was known before.
        if rowcount(linked) > 0 or order.order_no is not None:
            qty, amount = (
                await session.execute(
                    select(
                        func.coalesce(func.sum(col(Fill.quantity)), 0), _FILLED_AMOUNT
                    ).where(col(Fill.order_id) == order.id)
                )
            ).one()
            filled_qty, filled_amount = int(qty), Decimal(amount)
        status = accepted_status(filled_qty, order.quantity)
        await session.execute(
            update(Order)
            .where(col(Order.id) == order.id)
            .values(
                order_no=order_no,
                branch=branch,
                status=status.value,
                filled_qty=filled_qty,
                filled_amount=filled_amount,
                notice_qty=filled_qty,
                notice_amount=filled_amount,
                reason=None,
                reason_key=None,
                reason_params=None,
                sent_at=func.coalesce(col(Order.sent_at), now),
                updated_at=now,
            )
        )
        return replace(
            order,
            order_no=order_no,
            branch=branch,
            status=status,
            filled_qty=filled_qty,
            filled_amount=filled_amount,
            notice_qty=filled_qty,
            notice_amount=filled_amount,
            reason=None,
            reason_key=None,
            reason_params=None,
            sent_at=order.sent_at or now,
            updated_at=now,
        )

    async def mark_rejected(
        self, order_id: int, reason: Reason | str, msg_cd: str | None = None
    ) -> OrderRecord | None:
        """KIS refused the order (`msg1`, `msg_cd`)."""
        return await self._mark_ended(order_id, OrderStatus.REJECTED, reason, msg_cd)

    async def mark_failed(
        self, order_id: int, reason: Reason | str, msg_cd: str | None = None
    ) -> OrderRecord | None:
        """The order never reached KIS."""
        return await self._mark_ended(order_id, OrderStatus.FAILED, reason, msg_cd)

    async def _mark_ended(
        self, order_id: int, status: OrderStatus, reason: Reason | str, msg_cd: str | None
    ) -> OrderRecord | None:
        return await self._update(
            order_id, status=status.value, msg_cd=msg_cd, updated_at=self._clock(),
            **reason_values(reason),
        )

    async def mark_unknown(
        self, order_id: int, reason: Reason | str | None = None
    ) -> OrderRecord | None:
        """Sent, but the answer was lost: reconcile before anything is re-sent."""
        return await self._update(
            order_id, status=OrderStatus.UNKNOWN.value, updated_at=self._clock(),
            **reason_values(reason),
        )

    async def get(self, order_id: int) -> OrderRecord | None:
        async with self._db.session() as session:
            row = await session.get(Order, order_id)
            return None if row is None else order_record(row)

    async def by_alert(self, alert_id: int) -> OrderRecord | None:
        return await self._one(col(Order.alert_id) == alert_id)

    async def by_order_no(
        self, user_id: int, order_no: str, environment: Environment | None = None, *,
        account_id: int | None = None,
    ) -> OrderRecord | None:
        """The user's (with `account_id`: that account's) newest order with this KIS
        order number (KIS numbers each account's orders on its own)."""
        conditions = [col(Order.user_id) == user_id, col(Order.order_no) == order_no,
                      *_of_account(account_id)]
        if environment is not None:
            conditions.append(col(Order.environment) == Environment(environment).value)
        return await self._one(*conditions)

    async def unknown_orders(self, lease: str | None = None) -> list[OrderRecord]:
        """Orders whose outcome is not known (pending, sent, unknown); call at start-up,
        or when taking over `lease` (only its orders then), when nothing is in flight."""
        unresolved = col(Order.status).in_([s.value for s in UNRESOLVED])
        if lease is None:
            return await self._many(unresolved)
        of_lease = select(col(Alert.id)).where(col(Alert.lease) == lease)
        return await self._many(unresolved, col(Order.alert_id).in_(of_lease.scalar_subquery()))

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


def _of_account(account_id: int | None) -> list[ColumnElement[bool]]:
    return [] if account_id is None else [col(Order.account_id) == account_id]


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def order_reason_params(value: object) -> dict[str, str] | None:
    if not isinstance(value, dict):
        return None
    return {str(k): str(v) for k, v in value.items()}
