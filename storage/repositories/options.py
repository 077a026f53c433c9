"""User options: risk limits, confirm mode, daily digest, after-hours reservations."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlmodel import col

from storage.db import Database
from storage.models import AccountRow, KeySet, User, UserOptionsRow
from storage.options import NO_OPTIONS, LimitName, Limits, UserOptions
from storage.repositories._sql import ChangeListener, ChangeListeners, Clock, upsert
from storage.types import utcnow

_LIMIT_COLUMNS = {
    (LimitName.ORDER, "KRW"): "limit_order_krw",
    (LimitName.DAY, "KRW"): "limit_day_krw",
    (LimitName.ORDER, "USD"): "limit_order_usd",
    (LimitName.DAY, "USD"): "limit_day_usd",
}


def options_record(row: UserOptionsRow | None) -> UserOptions:
    if row is None:
        return NO_OPTIONS
    return UserOptions(
        confirm_seconds=row.confirm_seconds,
        digest=row.digest,
        afterhours_reserve=row.afterhours_reserve,
        limits=Limits(
            order_krw=row.limit_order_krw,
            day_krw=row.limit_day_krw,
            order_usd=row.limit_order_usd,
            day_usd=row.limit_day_usd,
            orders=row.limit_orders,
        ),
    )


class Options:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self._db = db
        self._clock = clock
        self._changes = ChangeListeners()

    def on_change(self, listener: ChangeListener) -> None:
        """`listener(user_id)` after a user's options changed (caches forget them)."""
        self._changes.add(listener)

    async def get(self, user_id: int) -> UserOptions:
        async with self._db.session() as session:
            return options_record(await session.get(UserOptionsRow, user_id))

    async def set_confirm(self, user_id: int, seconds: int | None) -> None:
        await self._set(user_id, confirm_seconds=seconds)

    async def set_digest(self, user_id: int, on: bool) -> None:
        await self._set(user_id, digest=on)

    async def set_afterhours(self, user_id: int, reserve: bool) -> None:
        await self._set(user_id, afterhours_reserve=reserve)

    async def set_limit(
        self, user_id: int, name: LimitName, currency: str, value: Decimal | None
    ) -> None:
        """`value` None removes the cap. Orders-per-day counts in every currency."""
        if name is LimitName.ORDERS:
            await self._set(user_id, limit_orders=None if value is None else int(value))
            return
        column = _LIMIT_COLUMNS.get((name, currency))
        if column is None:
            raise ValueError(f"no {name.value} limit in {currency}")
        await self._set(user_id, **{column: value})

    async def digest_users(self) -> list[tuple[int, int]]:
        """(user id, chat id) of users with the digest on and an account whose keys of
        its active environment passed the checks."""
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(col(User.id), col(User.chat_id))
                    .join(UserOptionsRow, col(UserOptionsRow.user_id) == col(User.id))
                    .join(AccountRow, col(AccountRow.user_id) == col(User.id))
                    .join(
                        KeySet,
                        (col(KeySet.account_id) == col(AccountRow.id))
                        & (col(KeySet.environment) == col(AccountRow.active_environment)),
                    )
                    .where(col(UserOptionsRow.digest).is_(True), col(KeySet.validated).is_(True))
                    .distinct()
                    .order_by(col(User.id))
                )
            ).all()
        return [(user_id, chat_id) for user_id, chat_id in rows if user_id is not None]

    async def _set(self, user_id: int, **changed: object) -> None:
        now = self._clock()
        values: dict[str, object] = {
            "user_id": user_id,
            "confirm_seconds": None,
            "digest": False,
            "afterhours_reserve": False,
            "limit_order_krw": None,
            "limit_day_krw": None,
            "limit_order_usd": None,
            "limit_day_usd": None,
            "limit_orders": None,
            **changed,
            "updated_at": now,
        }
        statement = upsert(
            self._db.dialect, UserOptionsRow, values, ["user_id"], [*changed, "updated_at"]
        )
        async with self._db.transaction() as session:
            await session.execute(statement)
        self._changes.notify(user_id)
