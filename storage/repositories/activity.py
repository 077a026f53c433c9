"""A user's trading activity over a period, for the daily digest and `/pnl`: orders,
refused alerts, fills with their order's side, and the cost basis sells were sized at."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, select
from sqlmodel import col

from kis.env import Environment
from storage.db import Database
from storage.models import Alert, Fill, Order, SaleCost
from storage.records import AlertRecord, AlertStatus, OrderRecord
from storage.repositories._sql import Clock, insert_ignoring, require_id
from storage.repositories.orders import order_record
from storage.types import utcnow


@dataclass(frozen=True, slots=True)
class FilledTrade:
    """One fill with what its order was: a row of a day's trades."""

    order_no: str
    symbol: str
    name: str
    side: str
    quantity: int
    price: Decimal
    filled_at: datetime
    market: str
    exchange: str
    currency: str
    cost: Decimal | None  # the average purchase price a sell was sized at


class Activity:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self._db = db
        self._clock = clock

    async def record_sale_cost(self, alert_id: int, avg_price: Decimal, currency: str) -> None:
        """The average purchase price KIS reported when this alert's sell was sized."""
        async with self._db.transaction() as session:
            await session.execute(
                insert_ignoring(
                    self._db.dialect, SaleCost,
                    {"alert_id": alert_id, "avg_price": avg_price, "currency": currency},
                    ["alert_id"],
                )
            )

    async def sale_costs(
        self, user_id: int, environment: Environment, order_nos: list[str],
        account_id: int | None = None,
    ) -> dict[str, Decimal]:
        """KIS order number → the cost basis its sell was sized at (moahook's orders; of
        one account with `account_id`)."""
        if not order_nos:
            return {}
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(col(Order.order_no), col(SaleCost.avg_price))
                    .join(SaleCost, col(SaleCost.alert_id) == col(Order.alert_id))
                    .where(
                        col(Order.user_id) == user_id,
                        *_of_account(Order, account_id),
                        col(Order.environment) == environment.value,
                        col(Order.order_no).in_(order_nos),
                    )
                    .order_by(col(Order.id))
                )
            ).all()
        return {str(order_no): Decimal(price) for order_no, price in rows}

    async def orders_between(
        self, user_id: int, environment: Environment, market: str, start: datetime,
        end: datetime, account_id: int | None = None,
    ) -> list[OrderRecord]:
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(Order)
                    .where(
                        col(Order.user_id) == user_id,
                        *_of_account(Order, account_id),
                        col(Order.environment) == environment.value,
                        col(Order.market) == market,
                        col(Order.created_at) >= start,
                        col(Order.created_at) < end,
                    )
                    .order_by(col(Order.id))
                )
            ).scalars().all()
        return [order_record(row) for row in rows]

    async def refused_between(
        self, user_id: int, market: str, start: datetime, end: datetime,
        account_id: int | None = None,
    ) -> list[AlertRecord]:
        """Alerts the guards refused in the period, for `market`'s instruments."""
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(Alert)
                    .where(
                        col(Alert.user_id) == user_id,
                        *([] if account_id is None else [col(Alert.account_id) == account_id]),
                        col(Alert.status) == AlertStatus.REFUSED.value,
                        col(Alert.received_at) >= start,
                        col(Alert.received_at) < end,
                    )
                    .order_by(col(Alert.id))
                )
            ).scalars().all()
        found: list[AlertRecord] = []
        for row in rows:
            parsed = row.parsed or {}
            if str(parsed.get("market") or "KRX") != market:
                continue
            found.append(
                AlertRecord(
                    id=require_id(row.id), user_id=row.user_id, received_at=row.received_at,
                    raw_body=row.raw_body, parsed=row.parsed,
                    idempotency_key=row.idempotency_key, status=AlertStatus(row.status),
                    reason=row.reason, updated_at=row.updated_at,
                )
            )
        return found

    async def fills_between(
        self, user_id: int, environment: Environment, market: str, start: datetime,
        end: datetime, account_id: int | None = None,
    ) -> list[FilledTrade]:
        """Fills of moahook's orders in the period, oldest first, with each sell's cost."""
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(Fill, Order, SaleCost.avg_price)  # type: ignore[call-overload]  # SQLModel column
                    .join(Order, col(Order.id) == col(Fill.order_id))
                    .outerjoin(SaleCost, col(SaleCost.alert_id) == col(Order.alert_id))
                    .where(
                        col(Fill.user_id) == user_id,
                        *_of_account(Fill, account_id),
                        col(Fill.environment) == environment.value,
                        col(Fill.market) == market,
                        col(Fill.filled_at) >= start,
                        col(Fill.filled_at) < end,
                    )
                    .order_by(col(Fill.filled_at), col(Fill.id))
                )
            ).all()
        return [
            FilledTrade(
                order_no=fill.order_no,
                symbol=order.symbol,
                name=order.name or "",
                side=order.side,
                quantity=fill.quantity,
                price=fill.price,
                filled_at=fill.filled_at,
                market=fill.market,
                exchange=order.exchange,
                currency=fill.currency,
                cost=None if cost is None else Decimal(cost),
            )
            for fill, order, cost in rows
        ]


def _of_account(
    model: type[Order] | type[Fill], account_id: int | None
) -> list[ColumnElement[bool]]:
    """Rows of one account (None: of every account of the user)."""
    return [] if account_id is None else [col(model.account_id) == account_id]
