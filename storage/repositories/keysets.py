"""KIS key sets, one per account and environment; app key and secret encrypted.

Methods that take a user and no `account_id` act on the user's default account (what
single-account callers mean by "the user's keys")."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kis.env import Environment
from kis.secret import Secret
from storage import aad
from storage.crypto import SecretBox, hash_token
from storage.db import Database
from storage.errors import UnknownUser
from storage.models import AccountRow, KeySet, User
from storage.records import ActiveKeySet, KeySetRecord
from storage.repositories._sql import ChangeListener, ChangeListeners, Clock, rowcount, upsert
from storage.repositories.accounts import account_record
from storage.repositories.users import user_record
from storage.signals import Signals
from storage.types import utcnow

_SAVED_COLUMNS = (
    "app_key_enc",
    "app_key_hash",
    "app_secret_enc",
    "cano",
    "product_code",
    "hts_id",
    "validated",
    "check_results",
    "checked_at",
    "updated_at",
    "account_bound",
)


def _reveal(value: Secret | str) -> str:
    return value.reveal() if isinstance(value, Secret) else value


class KeySets:
    def __init__(
        self, db: Database, box: SecretBox, clock: Clock = utcnow, signals: Signals | None = None
    ) -> None:
        self._db = db
        self._box = box
        self._clock = clock
        self._changes = ChangeListeners(signals)

    def on_change(self, listener: ChangeListener) -> None:
        """`listener(user_id)` after a user's key sets were saved, checked or deleted."""
        self._changes.add(listener)

    def _record(self, row: KeySet) -> KeySetRecord:
        env = row.environment
        sealed = row.account_id if row.account_bound else None
        return KeySetRecord(
            user_id=row.user_id,
            environment=Environment(env),
            app_key=Secret(
                self._box.decrypt(row.app_key_enc, aad.app_key(row.user_id, env, sealed))
            ),
            app_secret=Secret(
                self._box.decrypt(row.app_secret_enc, aad.app_secret(row.user_id, env, sealed))
            ),
            cano=row.cano,
            product_code=row.product_code,
            hts_id=row.hts_id,
            validated=row.validated,
            check_results=row.check_results,
            checked_at=row.checked_at,
            updated_at=row.updated_at,
            account_id=row.account_id,
        )

    async def save(
        self,
        user_id: int,
        environment: Environment,
        *,
        app_key: Secret | str,
        app_secret: Secret | str,
        cano: str,
        product_code: str,
        hts_id: str,
        account_id: int | None = None,
    ) -> None:
        """Stores (or replaces) the set; a replaced set is unvalidated until checked again."""
        env = Environment(environment).value
        key = _reveal(app_key)
        now = self._clock()
        async with self._db.transaction() as session:
            account = await self._account_in(session, user_id, account_id)
            values: dict[str, object] = {
                "user_id": user_id,
                "account_id": account,
                "account_bound": True,
                "environment": env,
                "app_key_enc": self._box.encrypt(key, aad.app_key(user_id, env, account)),
                "app_key_hash": hash_token(key),
                "app_secret_enc": self._box.encrypt(
                    _reveal(app_secret), aad.app_secret(user_id, env, account)
                ),
                "cano": cano,
                "product_code": product_code,
                "hts_id": hts_id,
                "validated": False,
                "check_results": None,
                "checked_at": None,
                "created_at": now,
                "updated_at": now,
            }
            await session.execute(
                upsert(
                    self._db.dialect,
                    KeySet,
                    values,
                    ["account_id", "environment"],
                    _SAVED_COLUMNS,
                )
            )
            await self._changes.signal_in(session, user_id)
        self._changes.notify(user_id)

    async def _account_in(
        self, session: AsyncSession, user_id: int, account_id: int | None
    ) -> int:
        """`account_id` (checked to be the user's), or the user's default account."""
        query = select(col(AccountRow.id)).where(col(AccountRow.user_id) == user_id)
        query = query.where(
            col(AccountRow.is_default) if account_id is None
            else col(AccountRow.id) == account_id
        )
        found = (await session.execute(query)).scalar_one_or_none()
        if found is None:
            raise UnknownUser(user_id)
        return found

    async def get(
        self, user_id: int, environment: Environment, *, account_id: int | None = None
    ) -> KeySetRecord | None:
        async with self._db.session() as session:
            row = (
                await session.execute(
                    select(KeySet).where(
                        col(KeySet.user_id) == user_id,
                        _of_account(user_id, account_id),
                        col(KeySet.environment) == Environment(environment).value,
                    )
                )
            ).scalar_one_or_none()
        return None if row is None else self._record(row)

    async def for_user(self, user_id: int) -> list[KeySetRecord]:
        """Every set of every account of the user (by account, then environment)."""
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(KeySet)
                    .where(col(KeySet.user_id) == user_id)
                    .order_by(col(KeySet.account_id), col(KeySet.environment))
                )
            ).scalars().all()
        return [self._record(row) for row in rows]

    async def for_account(self, account_id: int) -> list[KeySetRecord]:
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(KeySet)
                    .where(col(KeySet.account_id) == account_id)
                    .order_by(col(KeySet.environment))
                )
            ).scalars().all()
        return [self._record(row) for row in rows]

    async def record_checks(
        self,
        user_id: int,
        environment: Environment,
        results: Mapping[str, object],
        validated: bool | None,
        *,
        account_id: int | None = None,
    ) -> bool:
        """Stores the latest check results (no secrets in them!); False if no such set.

        `validated=None` leaves the verdict as it is (progress of a running check)."""
        now = self._clock()
        values: dict[str, object] = {
            "check_results": dict(results), "checked_at": now, "updated_at": now,
        }
        if validated is not None:
            values["validated"] = validated
        async with self._db.transaction() as session:
            result = await session.execute(
                update(KeySet)
                .where(
                    col(KeySet.user_id) == user_id,
                    _of_account(user_id, account_id),
                    col(KeySet.environment) == Environment(environment).value,
                )
                .values(**values)
            )
            await self._changes.signal_in(session, user_id)
        self._changes.notify(user_id)
        return rowcount(result) > 0

    async def delete_all(self, user_id: int) -> int:
        """Forgets every key set of the user; returns how many were deleted."""
        async with self._db.transaction() as session:
            result = await session.execute(delete(KeySet).where(col(KeySet.user_id) == user_id))
            await self._changes.signal_in(session, user_id)
        self._changes.notify(user_id)
        return rowcount(result)

    async def keys_in_use(self) -> set[tuple[str, Environment]]:
        """(app key hash, environment) of every validated key set of an active
        environment: the KIS keys the service must hold a session for."""
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(col(KeySet.app_key_hash), col(KeySet.environment))
                    .join(AccountRow, col(KeySet.account_id) == col(AccountRow.id))
                    .where(
                        col(KeySet.environment) == col(AccountRow.active_environment),
                        col(KeySet.validated).is_(True),
                    )
                    .distinct()
                )
            ).all()
        return {(str(digest), Environment(env)) for digest, env in rows}

    async def validated_for_active(self) -> list[ActiveKeySet]:
        """Accounts whose active environment has a validated set (fill-notice boot list)."""
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(User, AccountRow, KeySet)
                    .join(AccountRow, col(AccountRow.user_id) == col(User.id))
                    .join(KeySet, col(KeySet.account_id) == col(AccountRow.id))
                    .where(
                        col(KeySet.environment) == col(AccountRow.active_environment),
                        col(KeySet.validated).is_(True),
                    )
                    .order_by(col(AccountRow.id))
                )
            ).all()
        return [
            ActiveKeySet(user=user_record(user), keys=self._record(keys),
                         account=account_record(account))
            for user, account, keys in rows
        ]


def _of_account(user_id: int, account_id: int | None) -> ColumnElement[bool]:
    """Rows of `account_id`, or of the user's default account."""
    if account_id is not None:
        return col(KeySet.account_id) == account_id
    default = select(col(AccountRow.id)).where(
        col(AccountRow.user_id) == user_id, col(AccountRow.is_default)
    )
    return col(KeySet.account_id) == default.scalar_subquery()
