"""Fills from KIS fill notices: each notice stored once, the order's totals updated.

`record_and_queue` is on the way from a fill notice to the chat. On a SQLite file it
runs its transaction (fill, order totals, chat notice) on the database's direct
connection in one trip (`Database.write_direct`), instead of the dozen driver trips
of an ORM session.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import BigInteger, ColumnElement, Dialect, bindparam, case, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement
from sqlmodel import col

from kis.env import Environment
from storage.db import Database, in_transaction
from storage.models import Fill, Order
from storage.records import FillRecord, FillResult, OrderRecord, OrderStatus, OutboxMessage
from storage.repositories._sql import Clock, insert_ignoring, require_id
from storage.repositories.orders import order_record
from storage.repositories.outbox import (
    OutboxEntry,
    entry_values,
    insert_entry,
    outbox_insert,
    pending_message,
)
from storage.types import utcnow

# Given the stored fill, the chat message to queue with it (None: no message).
NoticeFor = Callable[[FillResult], OutboxEntry | None]

_Convert = Callable[[object], object]
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
        Returns the result and the queued message (None: repeat, or nothing to send).

        `notice` must be quick and do no I/O: on SQLite it runs in the database's
        thread, inside the transaction."""
        if self._db.has_direct:
            sql = self._statements = self._statements or _Statements(self._db.engine.dialect)
            fill = _FillParams(
                user_id, Environment(environment).value, order_no, quantity, price,
                filled_at, notice_key, self._clock(),
            )

            def work(conn: sqlite3.Connection) -> tuple[FillResult, OutboxMessage | None]:
                return in_transaction(conn, lambda c: _write(c, sql, fill, notice))

            # urgent: a chat notice waits on this; other writers queue behind it.
            return await self._db.write_direct(work, urgent=True)
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


# --- SQLite: the fill's transaction in one trip -----------------------------------------


@dataclass(frozen=True, slots=True)
class _FillParams:
    user_id: int
    environment: str
    order_no: str
    quantity: int
    price: int
    filled_at: datetime
    notice_key: str
    now: datetime


@dataclass(frozen=True, slots=True)
class _Sql:
    """A statement compiled once for sqlite3: its SQL, `?` parameter order, the
    parameters' conversions and, for a row it returns, each column's conversion."""

    compiled: SQLCompiler
    sql: str
    names: tuple[str, ...]
    binds: Mapping[str, _Convert]
    results: tuple[_Convert | None, ...]

    @classmethod
    def of(cls, statement: ClauseElement, dialect: Dialect,
           returns: Sequence[ColumnElement[object]] = ()) -> _Sql:
        compiled = statement.compile(dialect=dialect)
        if not isinstance(compiled, SQLCompiler):  # pragma: no cover - SQL statements only
            raise TypeError("not a SQL statement")
        binds: dict[str, _Convert] = {}
        for name, bind in compiled.binds.items():
            # As SQLAlchemy executes: the type's form for this dialect converts.
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                binds[name] = cast(_Convert, process)
        results = tuple(
            cast(_Convert | None, c.type.dialect_impl(dialect).result_processor(dialect, None))
            for c in returns
        )
        return cls(compiled, str(compiled), tuple(compiled.positiontup or ()), binds, results)

    def args(self, params: Mapping[str, object]) -> tuple[object, ...]:
        values = self.compiled.construct_params(dict(params)) or {}
        out: list[object] = []
        for name in self.names:
            value = values[name]
            process = self.binds.get(name)
            out.append(value if process is None else process(value))
        return tuple(out)

    def row(self, raw: Sequence[object]) -> list[object]:
        return [v if p is None else p(v) for v, p in zip(raw, self.results, strict=True)]


class _Statements:
    """The fill's statements for SQLite, parameters by name."""

    def __init__(self, dialect: Dialect) -> None:
        user_id = bindparam("user_id", type_=BigInteger)
        environment = bindparam("environment", type_=_FILL_TYPES["environment"])
        order_no = bindparam("order_no", type_=_FILL_TYPES["order_no"])
        order_of_notice = (
            select(col(Order.id))
            .where(
                col(Order.user_id) == user_id,
                col(Order.environment) == environment,
                col(Order.order_no) == order_no,
            )
            .order_by(col(Order.id).desc())
            .limit(1)
            .scalar_subquery()
        )
        values: dict[str, object] = {
            name: bindparam(name, type_=_FILL_TYPES[name])
            for name in ("quantity", "price", "filled_at", "notice_key", "created_at")
        }
        values.update(
            user_id=user_id, environment=environment, order_no=order_no,
            order_id=order_of_notice,
        )
        self.insert_fill = _Sql.of(
            insert_ignoring("sqlite", Fill, values, ["user_id", "notice_key"])
            .returning(col(Fill.id), col(Fill.order_id)),
            dialect,
        )
        self.order_of_repeat = _Sql.of(
            select(*_ORDER_COLUMNS).where(col(Order.id) == order_of_notice),
            dialect, _ORDER_COLUMNS,
        )
        quantity = bindparam("p_quantity", type_=BigInteger)
        self.add_to_order = _Sql.of(
            update(Order)
            .where(col(Order.id) == bindparam("p_order_id", type_=BigInteger))
            .values(
                filled_qty=col(Order.filled_qty) + quantity,
                filled_amount=col(Order.filled_amount) + bindparam("p_amount", type_=BigInteger),
                status=case(
                    (col(Order.filled_qty) + quantity >= col(Order.quantity),
                     OrderStatus.FILLED.value),
                    else_=OrderStatus.PARTIALLY_FILLED.value,
                ),
                updated_at=bindparam("p_now", type_=_FILL_TYPES["created_at"]),
            )
            .returning(*_ORDER_COLUMNS),
            dialect, _ORDER_COLUMNS,
        )
        self.insert_notice = _Sql.of(outbox_insert("sqlite"), dialect)


def _order(sql: _Sql, raw: Sequence[object] | None) -> OrderRecord | None:
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
        "user_id": fill.user_id, "environment": fill.environment, "order_no": fill.order_no,
    }
    inserted = conn.execute(sql.insert_fill.sql, sql.insert_fill.args({
        **of_order, "quantity": fill.quantity, "price": fill.price,
        "filled_at": fill.filled_at, "notice_key": fill.notice_key, "created_at": fill.now,
    })).fetchone()
    if inserted is None:  # seen before: nothing changes
        raw = conn.execute(
            sql.order_of_repeat.sql, sql.order_of_repeat.args(of_order)
        ).fetchone()
        return FillResult(new=False, order=_order(sql.order_of_repeat, raw)), None
    order_id = inserted[1]
    order = None
    if order_id is not None:
        raw = conn.execute(sql.add_to_order.sql, sql.add_to_order.args({
            "p_order_id": order_id, "p_quantity": fill.quantity,
            "p_amount": fill.quantity * fill.price, "p_now": fill.now,
        })).fetchone()
        order = _order(sql.add_to_order, raw)
    result = FillResult(new=True, order=order)
    entry = notice(result)
    if entry is None:
        return result, None
    payload = dict(entry.payload)
    queued = conn.execute(sql.insert_notice.sql, sql.insert_notice.args(
        entry_values(fill.user_id, entry, payload, fill.now)
    )).fetchone()
    if queued is None:
        return result, None
    return result, pending_message(
        require_id(queued[0]), fill.user_id, entry, payload, fill.now
    )
