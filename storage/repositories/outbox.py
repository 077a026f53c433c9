"""The notification outbox: Telegram messages that survive restarts and retries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.db import Database
from storage.models import OutboxItem
from storage.records import OutboxMessage, OutboxStatus
from storage.repositories._sql import Clock, insert_ignoring, require_id
from storage.types import utcnow

_MAX_ERROR_CHARS: Final = 500


def _record(row: OutboxItem) -> OutboxMessage:
    return OutboxMessage(
        id=require_id(row.id),
        user_id=row.user_id,
        chat_id=row.chat_id,
        kind=row.kind,
        payload=row.payload,
        dedupe_key=row.dedupe_key,
        status=OutboxStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        sent_at=row.sent_at,
    )


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A chat message to queue: what `Outbox.add` takes, also inside another
    repository's transaction (`insert_entry`)."""

    chat_id: int
    kind: str
    payload: Mapping[str, object]
    dedupe_key: str


async def insert_entry(
    dialect: str, session: AsyncSession, user_id: int | None, entry: OutboxEntry, now: datetime
) -> OutboxMessage | None:
    """Inserts the entry in the caller's transaction unless its dedupe key is queued
    already; the new row as the notifier will see it, or None for a repeat.

    Built from the inserted values and the new id, so sending it needs no re-read."""
    payload = dict(entry.payload)
    values: dict[str, object] = {
        "user_id": user_id,
        "chat_id": entry.chat_id,
        "kind": entry.kind,
        "payload": payload,
        "dedupe_key": entry.dedupe_key,
        "status": OutboxStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    new_id = (
        await session.execute(
            insert_ignoring(dialect, OutboxItem, values, ["dedupe_key"])
            .returning(col(OutboxItem.id))
        )
    ).scalar_one_or_none()
    if new_id is None:
        return None
    return OutboxMessage(
        id=new_id,
        user_id=user_id,
        chat_id=entry.chat_id,
        kind=entry.kind,
        payload=payload,
        dedupe_key=entry.dedupe_key,
        status=OutboxStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        last_error=None,
        created_at=now,
        sent_at=None,
    )


class Outbox:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self._db = db
        self._clock = clock

    async def add(
        self,
        user_id: int | None,
        chat_id: int,
        kind: str,
        payload: Mapping[str, object],
        dedupe_key: str,
        now: datetime | None = None,
    ) -> OutboxMessage | None:
        """Queues a message once per `dedupe_key`: the new row (hand it to the notifier
        as it is), or None if it was queued before."""
        entry = OutboxEntry(chat_id, kind, payload, dedupe_key)
        async with self._db.transaction() as session:
            return await insert_entry(
                self._db.dialect, session, user_id, entry, now or self._clock()
            )

    async def enqueue(
        self,
        user_id: int | None,
        chat_id: int,
        kind: str,
        payload: Mapping[str, object],
        dedupe_key: str,
        now: datetime | None = None,
    ) -> bool:
        """Queues a message once per `dedupe_key`; False if it was queued before."""
        return await self.add(user_id, chat_id, kind, payload, dedupe_key, now) is not None

    async def due(self, limit: int = 100, now: datetime | None = None) -> list[OutboxMessage]:
        """Pending messages whose time has come, oldest first."""
        now = now or self._clock()
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(OutboxItem)
                    .where(
                        col(OutboxItem.status) == OutboxStatus.PENDING.value,
                        col(OutboxItem.next_attempt_at) <= now,
                    )
                    .order_by(col(OutboxItem.id))
                    .limit(limit)
                )
            ).scalars().all()
        return [_record(row) for row in rows]

    async def mark_sent(self, message_id: int, now: datetime | None = None) -> None:
        now = now or self._clock()
        async with self._db.transaction() as session:
            await session.execute(
                update(OutboxItem)
                .where(col(OutboxItem.id) == message_id)
                .values(
                    status=OutboxStatus.SENT.value,
                    sent_at=now,
                    attempts=col(OutboxItem.attempts) + 1,
                )
            )

    async def mark_failed(
        self, message_id: int, error: str, retry_at: datetime | None
    ) -> None:
        """Records a failed attempt; retried at `retry_at`, or given up when it is None."""
        values: dict[str, object] = {
            "attempts": col(OutboxItem.attempts) + 1,
            "last_error": error[:_MAX_ERROR_CHARS],
        }
        if retry_at is None:
            values["status"] = OutboxStatus.FAILED.value
        else:
            values["next_attempt_at"] = retry_at
        async with self._db.transaction() as session:
            await session.execute(
                update(OutboxItem).where(col(OutboxItem.id) == message_id).values(**values)
            )

    async def pending_count(self) -> int:
        async with self._db.session() as session:
            return int(
                (
                    await session.execute(
                        select(func.count())
                        .select_from(OutboxItem)
                        .where(col(OutboxItem.status) == OutboxStatus.PENDING.value)
                    )
                ).scalar_one()
            )
