"""KIS key sets, one per user and environment; app key and secret encrypted."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete, select, update
from sqlmodel import col

from kis.env import Environment
from kis.secret import Secret
from storage import aad
from storage.crypto import SecretBox, hash_token
from storage.db import Database
from storage.models import KeySet, User
from storage.records import ActiveKeySet, KeySetRecord
from storage.repositories._sql import ChangeListener, ChangeListeners, Clock, rowcount, upsert
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
        return KeySetRecord(
            user_id=row.user_id,
            environment=Environment(env),
            app_key=Secret(self._box.decrypt(row.app_key_enc, aad.app_key(row.user_id, env))),
            app_secret=Secret(
                self._box.decrypt(row.app_secret_enc, aad.app_secret(row.user_id, env))
            ),
            cano=row.cano,
            product_code=row.product_code,
            hts_id=row.hts_id,
            validated=row.validated,
            check_results=row.check_results,
            checked_at=row.checked_at,
            updated_at=row.updated_at,
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
    ) -> None:
        """Stores (or replaces) the set; a replaced set is unvalidated until checked again."""
        env = Environment(environment).value
        key = _reveal(app_key)
        now = self._clock()
        values: dict[str, object] = {
            "user_id": user_id,
            "environment": env,
            "app_key_enc": self._box.encrypt(key, aad.app_key(user_id, env)),
            "app_key_hash": hash_token(key),
            "app_secret_enc": self._box.encrypt(
                _reveal(app_secret), aad.app_secret(user_id, env)
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
        async with self._db.transaction() as session:
            await session.execute(
                upsert(
                    self._db.dialect,
                    KeySet,
                    values,
                    ["user_id", "environment"],
                    _SAVED_COLUMNS,
                )
            )
            await self._changes.signal_in(session, user_id)
        self._changes.notify(user_id)

    async def get(self, user_id: int, environment: Environment) -> KeySetRecord | None:
        async with self._db.session() as session:
            row = (
                await session.execute(
                    select(KeySet).where(
                        col(KeySet.user_id) == user_id,
                        col(KeySet.environment) == Environment(environment).value,
                    )
                )
            ).scalar_one_or_none()
        return None if row is None else self._record(row)

    async def for_user(self, user_id: int) -> list[KeySetRecord]:
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(KeySet)
                    .where(col(KeySet.user_id) == user_id)
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
                    .join(User, col(KeySet.user_id) == col(User.id))
                    .where(
                        col(KeySet.environment) == col(User.active_environment),
                        col(KeySet.validated).is_(True),
                    )
                    .distinct()
                )
            ).all()
        return {(str(digest), Environment(env)) for digest, env in rows}

    async def validated_for_active(self) -> list[ActiveKeySet]:
        """Users whose active environment has a validated set (fill-notice boot list)."""
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(User, KeySet)
                    .join(KeySet, col(KeySet.user_id) == col(User.id))
                    .where(
                        col(KeySet.environment) == col(User.active_environment),
                        col(KeySet.validated).is_(True),
                    )
                    .order_by(col(User.id))
                )
            ).all()
        return [
            ActiveKeySet(user=user_record(user), keys=self._record(keys)) for user, keys in rows
        ]
