"""Accounts (SPEC section 16): named sets of a user's KIS keys, one of them the default.

Every user has at least one account (`main` is made with the user) and exactly one
default. The user's `active_environment` column is the default account's environment,
kept equal to it by this repository in the same transactions (what single-account code
reads about "the user's environment" stays true).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kis.env import Environment
from storage.account_names import FIRST_ACCOUNT, AccountNameError, normalize_account_name
from storage.db import Database
from storage.errors import StorageError, UnknownUser
from storage.models import AccountRow, User
from storage.records import AccountRecord
from storage.repositories._sql import ChangeListener, ChangeListeners, Clock, require_id
from storage.signals import Signals
from storage.types import utcnow


class AccountNameTaken(StorageError):
    def __init__(self, name: str) -> None:
        super().__init__(f"an account named {name!r} exists already")
        self.name = name


class LastAccount(StorageError):
    """A user's only account cannot be deleted (its keys can: `/delete`)."""

    def __init__(self) -> None:
        super().__init__("the only account cannot be deleted")


class UnknownAccount(StorageError, LookupError):
    def __init__(self, account_id: int) -> None:
        super().__init__(f"no account with id {account_id}")
        self.account_id = account_id


_Change = Callable[[AsyncSession, AccountRow, datetime], Awaitable[None]]


def account_record(row: AccountRow) -> AccountRecord:
    return AccountRecord(
        id=require_id(row.id),
        user_id=row.user_id,
        name=row.name,
        active_environment=Environment(row.active_environment),
        is_default=row.is_default,
        created_at=row.created_at,
    )


async def add_account_in(
    session: AsyncSession,
    user_id: int,
    name: str,
    environment: Environment,
    *,
    default: bool,
    now: datetime,
) -> int:
    """Inserts an account inside the caller's transaction; returns its id."""
    row = AccountRow(
        user_id=user_id, name=name, active_environment=Environment(environment).value,
        is_default=default, created_at=now, updated_at=now,
    )
    session.add(row)
    await session.flush()
    return require_id(row.id)


class Accounts:
    def __init__(
        self, db: Database, clock: Clock = utcnow, signals: Signals | None = None
    ) -> None:
        self._db = db
        self._clock = clock
        self._changes = ChangeListeners(signals)

    def on_change(self, listener: ChangeListener) -> None:
        """`listener(user_id)` after one of the user's accounts was added, renamed,
        deleted, made the default or switched environment."""
        self._changes.add(listener)

    # -- reading ------------------------------------------------------------------------

    async def for_user(self, user_id: int) -> list[AccountRecord]:
        """The default first, then the others in the order they were made."""
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(AccountRow)
                    .where(col(AccountRow.user_id) == user_id)
                    .order_by(col(AccountRow.is_default).desc(), col(AccountRow.id))
                )
            ).scalars().all()
        return [account_record(row) for row in rows]

    async def get(self, account_id: int) -> AccountRecord | None:
        async with self._db.session() as session:
            row = await session.get(AccountRow, account_id)
            return None if row is None else account_record(row)

    async def by_name(self, user_id: int, name: str) -> AccountRecord | None:
        try:
            wanted = normalize_account_name(name)
        except AccountNameError:
            return None
        async with self._db.session() as session:
            row = (
                await session.execute(
                    select(AccountRow).where(
                        col(AccountRow.user_id) == user_id, col(AccountRow.name) == wanted
                    )
                )
            ).scalar_one_or_none()
        return None if row is None else account_record(row)

    async def default(self, user_id: int) -> AccountRecord | None:
        async with self._db.session() as session:
            row = (
                await session.execute(
                    select(AccountRow).where(
                        col(AccountRow.user_id) == user_id, col(AccountRow.is_default)
                    )
                )
            ).scalar_one_or_none()
        return None if row is None else account_record(row)

    # -- changes ------------------------------------------------------------------------

    async def create(
        self, user_id: int, name: str, *, environment: Environment | None = None
    ) -> AccountRecord:
        """A new account (raises `AccountNameError`, `AccountNameTaken`). It starts in
        `environment`, else in the user's active environment; a user's first account
        becomes the default."""
        wanted = normalize_account_name(name)
        now = self._clock()
        try:
            async with self._db.transaction() as session:
                user = await session.get(User, user_id)
                if user is None:
                    raise UnknownUser(user_id)
                has_default = (
                    await session.execute(
                        select(func.count()).where(
                            col(AccountRow.user_id) == user_id, col(AccountRow.is_default)
                        )
                    )
                ).scalar_one() > 0
                env = environment or Environment(user.active_environment)
                new_id = await add_account_in(
                    session, user_id, wanted, env, default=not has_default, now=now
                )
                if not has_default:
                    await _mirror(session, user_id, env, now)
                await self._changes.signal_in(session, user_id)
        except IntegrityError:
            raise AccountNameTaken(wanted) from None
        self._changes.notify(user_id)
        created = await self.get(new_id)
        assert created is not None
        return created

    async def ensure(self, user_id: int, name: str) -> AccountRecord:
        """The user's account of this name, made if there is none."""
        found = await self.by_name(user_id, name)
        if found is not None:
            return found
        try:
            return await self.create(user_id, name)
        except AccountNameTaken:  # made meanwhile
            again = await self.by_name(user_id, name)
            if again is None:  # pragma: no cover - deleted in the same instant
                raise
            return again

    async def rename(self, account_id: int, name: str) -> AccountRecord:
        wanted = normalize_account_name(name)

        async def change(session: AsyncSession, row: AccountRow, now: datetime) -> None:
            await session.execute(
                update(AccountRow).where(col(AccountRow.id) == row.id)
                .values(name=wanted, updated_at=now)
            )

        try:
            await self._change(account_id, change)
        except IntegrityError:
            raise AccountNameTaken(wanted) from None
        renamed = await self.get(account_id)
        assert renamed is not None
        return renamed

    async def set_default(self, account_id: int) -> None:
        await self._change(account_id, _make_default)

    async def set_environment(self, account_id: int, environment: Environment) -> None:
        env = Environment(environment)

        async def change(session: AsyncSession, row: AccountRow, now: datetime) -> None:
            await session.execute(
                update(AccountRow).where(col(AccountRow.id) == row.id)
                .values(active_environment=env.value, updated_at=now)
            )
            if row.is_default:
                await _mirror(session, row.user_id, env, now)

        await self._change(account_id, change)

    async def _change(self, account_id: int, change: _Change) -> None:
        """`change` on the account in one transaction that signals its user's caches."""
        now = self._clock()
        async with self._db.transaction() as session:
            row = await session.get(AccountRow, account_id)
            if row is None:
                raise UnknownAccount(account_id)
            user_id = row.user_id
            await change(session, row, now)
            await self._changes.signal_in(session, user_id)
        self._changes.notify(user_id)

    async def delete(self, account_id: int) -> AccountRecord | None:
        """Deletes the account and its key sets (raises `LastAccount` for the only one).
        Returns the new default when the deleted one was it, else None. Its alerts,
        orders and fills stay in the history."""
        now = self._clock()
        successor: AccountRecord | None = None
        async with self._db.transaction() as session:
            row = await session.get(AccountRow, account_id)
            if row is None:
                raise UnknownAccount(account_id)
            user_id, was_default = row.user_id, row.is_default
            others = (
                await session.execute(
                    select(AccountRow)
                    .where(col(AccountRow.user_id) == user_id, col(AccountRow.id) != account_id)
                    .order_by(col(AccountRow.id))
                )
            ).scalars().all()
            if not others:
                raise LastAccount
            await session.delete(row)
            await session.flush()
            if was_default:
                await _make_default(session, others[0], now)
                successor = account_record(others[0])
            await self._changes.signal_in(session, user_id)
        self._changes.notify(user_id)
        return None if successor is None else await self.get(successor.id)

    async def keep_only_default(self, user_id: int) -> int:
        """`/delete`: every account but the default goes (with its keys); returns how many."""
        async with self._db.transaction() as session:
            rows = (
                await session.execute(
                    select(AccountRow).where(
                        col(AccountRow.user_id) == user_id, ~col(AccountRow.is_default)
                    )
                )
            ).scalars().all()
            for row in rows:
                await session.delete(row)
            await self._changes.signal_in(session, user_id)
        self._changes.notify(user_id)
        return len(rows)


async def _make_default(session: AsyncSession, row: AccountRow, now: datetime) -> None:
    # The old default first: at most one default per user, at every statement.
    await session.execute(
        update(AccountRow)
        .where(col(AccountRow.user_id) == row.user_id, col(AccountRow.id) != row.id,
               col(AccountRow.is_default))
        .values(is_default=False, updated_at=now)
    )
    await session.execute(
        update(AccountRow).where(col(AccountRow.id) == row.id)
        .values(is_default=True, updated_at=now)
    )
    await _mirror(session, row.user_id, Environment(row.active_environment), now)


async def _mirror(session: AsyncSession, user_id: int, env: Environment, now: datetime) -> None:
    """The user's environment is their default account's."""
    await session.execute(
        update(User).where(col(User.id) == user_id)
        .values(active_environment=env.value, updated_at=now)
    )


__all__ = [
    "FIRST_ACCOUNT",
    "AccountNameTaken",
    "Accounts",
    "LastAccount",
    "UnknownAccount",
    "account_record",
    "add_account_in",
]
