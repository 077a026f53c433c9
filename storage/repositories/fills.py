"""Fills from KIS fill notices: each notice stored once, the order's totals updated.

`record_and_queue` is on the way from a fill notice to the chat. On a SQLite file it
runs its transaction (fill, order totals, chat notice) on the database's direct
connection in one trip (`Database.write_direct`), instead of the dozen driver trips
of an ORM session.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import BigInteger, ScalarSelect, Update, bindparam, case, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kis.env import Environment
from storage.db import Database, Prepared, in_transaction
from storage.models import Fill, Order
from storage.records import FillRecord, FillResult, OrderRecord, OrderStatus, OutboxMessage
from storage.repositories._sql import Clock, insert_ignoring, require_id
from storage.repositories.orders import order_record
from storage.repositories.outbox import (
    OUTBOX_COLUMNS,
    OutboxEntry,
    entry_values,
    insert_entry,
    outbox_insert,
    pending_message,
)
from storage.types import Money, utcnow

# Given the stored fill, the chat message to queue with it (None: no message).
NoticeFor = Callable[[FillResult], OutboxEntry | None]

_ORDER_COLUMNS: Final = tuple(Order.__table__.c)  # type: ignore[attr-defined]  # SQLModel table
_ORDER_KEYS: Final = tuple(c.key for c in _ORDER_COLUMNS)
_FILL_TYPES: Final = {c.key: c.type for c in Fill.__table__.c}  # type: ignore[attr-defined]  # SQLModel table


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
        market=row.market,
        currency=row.currency,
        account_id=row.account_id,
    )


class Fills:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self._db = db
        self._clock = clock
        self._statements: _Statements | None = None

    async def record(
        self,
        user_id: int,
        environment: Environment,
        order_no: str,
        *,
        quantity: int,
        price: Decimal,
        filled_at: datetime,
        notice_key: str,
        market: str = "KRX",
        currency: str = "KRW",
        account_id: int | None = None,
    ) -> FillResult:
        """Stores one fill; a notice seen before (same `notice_key`) changes nothing.
        `account_id`: the account the notice is for (its order is that account's).

        A fill whose order number is not known yet is kept unlinked and attached
        when `Orders.mark_accepted` learns the number.
        """
        async with self._db.transaction() as session:
            return await self._record_in(
                session, user_id, environment, order_no, quantity=quantity, price=price,
                filled_at=filled_at, notice_key=notice_key, market=market, currency=currency,
                account_id=account_id,
            )

    async def record_and_queue(
        self,
        user_id: int,
        environment: Environment,
        order_no: str,
        *,
        quantity: int,
        price: Decimal,
        filled_at: datetime,
        notice_key: str,
        market: str = "KRX",
        currency: str = "KRW",
        notice: NoticeFor,
        account_id: int | None = None,
    ) -> tuple[FillResult, OutboxMessage | None]:
        """`record`, and for a new fill the chat message `notice(result)` queued in the
        same transaction: the fill and its notice are stored together or not at all.
        Returns the result and the queued message (None: repeat, or nothing to send).

        `notice` must be quick and do no I/O: on SQLite it runs in the database's
        thread, inside the transaction."""
        if self._db.has_direct:
            sql = self._statements = self._statements or _Statements(self._db)
            fill = _FillParams(
                user_id, Environment(environment).value, order_no, quantity, price,
                filled_at, notice_key, self._clock(), market, currency, account_id,
            )

            def work(conn: sqlite3.Connection) -> tuple[FillResult, OutboxMessage | None]:
                return in_transaction(conn, lambda c: _write(c, sql, fill, notice))

            # urgent: a chat notice waits on this; other writers queue behind it.
            return await self._db.write_direct(work, urgent=True)
        async with self._db.transaction() as session:
            result = await self._record_in(
                session, user_id, environment, order_no, quantity=quantity, price=price,
                filled_at=filled_at, notice_key=notice_key, market=market, currency=currency,
                account_id=account_id,
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
        price: Decimal,
        filled_at: datetime,
        notice_key: str,
        market: str = "KRX",
        currency: str = "KRW",
        account_id: int | None = None,
    ) -> FillResult:
        env = Environment(environment).value
        # The order is found inside the INSERT (one round trip instead of two).
        order_of_notice = _order_of_notice(user_id, account_id, env, order_no)
        values: dict[str, object] = {
            "user_id": user_id,
            "account_id": account_id,
            "order_id": order_of_notice,
            "environment": env,
            "order_no": order_no,
            "quantity": quantity,
            "price": price,
            "filled_at": filled_at,
            "notice_key": notice_key,
            "created_at": self._clock(),
            "market": market,
            "currency": currency,
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
                _add_to_order(order_id, quantity, quantity * price, self._clock())
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

    async def for_orders(self, user_id: int, order_ids: Sequence[int]) -> list[FillRecord]:
        """The fills of several of the user's orders in one query, oldest first."""
        if not order_ids:
            return []
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(Fill)
                    .where(col(Fill.user_id) == user_id, col(Fill.order_id).in_(order_ids))
                    .order_by(col(Fill.id))
                )
            ).scalars().all()
        return [_record(row) for row in rows]


def _order_of_notice(
    user_id: object, account_id: object, environment: object, order_no: object
) -> ScalarSelect[int | None]:
    """The account's newest order with the notice's order number (values or bind
    parameters): KIS numbers each account's orders on its own."""
    return (
        select(col(Order.id))
        .where(
            col(Order.user_id) == user_id,
            col(Order.account_id).is_not_distinct_from(account_id),
            col(Order.environment) == environment,
            col(Order.order_no) == order_no,
        )
        .order_by(col(Order.id).desc())
        .limit(1)
        .scalar_subquery()
    )


def _add_to_order(order_id: object, quantity: object, amount: object, now: object) -> Update:
    """A fill's quantity and amount added to its order's notice totals; the filled
    totals become the larger of those and what KIS's daily executions showed, the status
    to match (values or bind parameters). One statement whose SET expressions all see
    the row as it was, so concurrent writers never lose an update."""
    noticed = col(Order.notice_qty) + quantity
    grows = noticed >= col(Order.filled_qty)
    filled = case((grows, noticed), else_=col(Order.filled_qty))
    return (
        update(Order)
        .where(col(Order.id) == order_id)
        .values(
            notice_qty=noticed,
            notice_amount=col(Order.notice_amount) + amount,
            filled_qty=filled,
            filled_amount=case(
                (grows, col(Order.notice_amount) + amount), else_=col(Order.filled_amount)
            ),
            status=case(
                (filled >= col(Order.quantity), OrderStatus.FILLED.value),
                else_=OrderStatus.PARTIALLY_FILLED.value,
            ),
            updated_at=now,
        )
    )


# --- SQLite: the fill's transaction in one trip -----------------------------------------


@dataclass(frozen=True, slots=True)
class _FillParams:
    user_id: int
    environment: str
    order_no: str
    quantity: int
    price: Decimal
    filled_at: datetime
    notice_key: str
    now: datetime
    market: str
    currency: str
    account_id: int | None


_OF_ORDER: Final = frozenset({"user_id", "account_id", "environment", "order_no"})
_FILL_VALUES: Final = (
    "quantity", "price", "filled_at", "notice_key", "created_at", "market", "currency",
)
_FILL_KEYS: Final = _OF_ORDER | frozenset(_FILL_VALUES)


class _Statements:
    """The fill's statements prepared for the direct connection, parameters by name."""

    def __init__(self, db: Database) -> None:
        user_id = bindparam("user_id", type_=BigInteger)
        account_id = bindparam("account_id", type_=BigInteger)
        environment = bindparam("environment", type_=_FILL_TYPES["environment"])
        order_no = bindparam("order_no", type_=_FILL_TYPES["order_no"])
        order_of_notice = _order_of_notice(user_id, account_id, environment, order_no)
        values: dict[str, object] = {
            name: bindparam(name, type_=_FILL_TYPES[name])
            for name in _FILL_VALUES
        }
        values.update(
            user_id=user_id, account_id=account_id, environment=environment,
            order_no=order_no, order_id=order_of_notice,
        )
        self.insert_fill = db.prepare(
            insert_ignoring("sqlite", Fill, values, ["user_id", "notice_key"])
            .returning(col(Fill.id), col(Fill.order_id)),
            _FILL_KEYS,
        )
        self.order_of_repeat = db.prepare(
            select(*_ORDER_COLUMNS).where(col(Order.id) == order_of_notice), _OF_ORDER
        )
        self.add_to_order = db.prepare(
            _add_to_order(
                bindparam("p_order_id", type_=BigInteger),
                bindparam("p_quantity", type_=BigInteger),
                bindparam("p_amount", type_=Money()),
                bindparam("p_now", type_=_FILL_TYPES["created_at"]),
            ).returning(*_ORDER_COLUMNS),
            frozenset({"p_order_id", "p_quantity", "p_amount", "p_now"}),
        )
        self.insert_notice = db.prepare(outbox_insert("sqlite"), frozenset(OUTBOX_COLUMNS))


def _order(sql: Prepared, raw: Sequence[object] | None) -> OrderRecord | None:
    """An order row as `Orders` records it (built directly: no ORM instance)."""
    if raw is None:
        return None
    # Any: the converted values match the record's fields by construction.
    values: dict[str, Any] = dict(zip(_ORDER_KEYS, sql.row(raw), strict=True))
    values["environment"] = Environment(values["environment"])
    values["status"] = OrderStatus(values["status"])
    return OrderRecord(**values)


def _write(
    conn: sqlite3.Connection, sql: _Statements, fill: _FillParams, notice: NoticeFor
) -> tuple[FillResult, OutboxMessage | None]:
    """The fill, its order's totals and its notice, on the direct connection inside
    the caller's transaction."""
    of_order = {
        "user_id": fill.user_id, "account_id": fill.account_id,
        "environment": fill.environment, "order_no": fill.order_no,
    }
    inserted = conn.execute(sql.insert_fill.sql, sql.insert_fill.positional({
        **of_order, "quantity": fill.quantity, "price": fill.price,
        "filled_at": fill.filled_at, "notice_key": fill.notice_key, "created_at": fill.now,
        "market": fill.market, "currency": fill.currency,
    })).fetchone()
    if inserted is None:  # seen before: nothing changes
        raw = conn.execute(
            sql.order_of_repeat.sql, sql.order_of_repeat.positional(of_order)
        ).fetchone()
        return FillResult(new=False, order=_order(sql.order_of_repeat, raw)), None
    order_id = inserted[1]
    order = None
    if order_id is not None:
        raw = conn.execute(sql.add_to_order.sql, sql.add_to_order.positional({
            "p_order_id": order_id, "p_quantity": fill.quantity,
            "p_amount": fill.quantity * fill.price, "p_now": fill.now,
        })).fetchone()
        order = _order(sql.add_to_order, raw)
    result = FillResult(new=True, order=order)
    entry = notice(result)
    if entry is None:
        return result, None
    payload = dict(entry.payload)
    queued = conn.execute(sql.insert_notice.sql, sql.insert_notice.positional(
        entry_values(fill.user_id, entry, payload, fill.now)
    )).fetchone()
    if queued is None:
        return result, None
    return result, pending_message(
        require_id(queued[0]), fill.user_id, entry, payload, fill.now
    )
