"""Fill-notice connection states of accounts as their KIS key's owner sees them, for
every instance (several instances: the bot's `/status` or a key check may run where
the connection does not)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import delete, select
from sqlmodel import col

from kis.env import Environment
from storage.db import Database
from storage.models import FillSession
from storage.repositories._sql import Clock, upsert
from storage.signals import Signals
from storage.types import utcnow

STATES_CHANNEL: Final = "fill_states"  # signal: an account's published state changed


@dataclass(frozen=True, slots=True)
class PublishedState:
    account_id: int
    user_id: int
    environment: Environment
    hts_id: str
    status: str
    reason: str | None
    since: datetime
    instance: str
    updated_at: datetime


def _record(row: FillSession) -> PublishedState:
    return PublishedState(
        row.account_id, row.user_id, Environment(row.environment), row.hts_id, row.status,
        row.reason,
        row.since, row.instance, row.updated_at,
    )


class FillSessions:
    def __init__(self, db: Database, signals: Signals, clock: Clock = utcnow) -> None:
        self._db = db
        self._signals = signals
        self._clock = clock

    async def publish(
        self,
        account_id: int,
        user_id: int,
        environment: Environment,
        hts_id: str,
        status: str,
        reason: str | None,
        since: datetime,
        instance: str,
    ) -> None:
        values: dict[str, object] = {
            "account_id": account_id, "user_id": user_id,
            "environment": Environment(environment).value,
            "hts_id": hts_id, "status": status, "reason": reason, "since": since,
            "instance": instance, "updated_at": self._clock(),
        }
        async with self._db.transaction() as session:
            await session.execute(
                upsert(self._db.dialect, FillSession, values, ["account_id"],
                       [k for k in values if k != "account_id"])
            )
            await self._signals.notify_in(session, STATES_CHANNEL, str(account_id))

    async def get(self, account_id: int) -> PublishedState | None:
        async with self._db.session() as session:
            row = await session.get(FillSession, account_id)
            return None if row is None else _record(row)

    async def all(self) -> list[PublishedState]:
        async with self._db.session() as session:
            rows = (await session.execute(select(FillSession))).scalars().all()
        return [_record(row) for row in rows]

    async def forget(self, account_id: int) -> None:
        async with self._db.transaction() as session:
            await session.execute(
                delete(FillSession).where(col(FillSession.account_id) == account_id)
            )
            await self._signals.notify_in(session, STATES_CHANNEL, str(account_id))
